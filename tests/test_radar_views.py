"""Radar loader views (``radar.md`` §3), PDW derivation from RadChar frames, and the split_radarpos20k view."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sardata.errors import ConfigError
from sardata.features.pulses import CLASS_MOD, PDW_DTYPE, derive_pdw
from sardata.manifest.splits import radarpos_column
from sardata.sim.radchar_fixture import FS, frames
from sardata.stream.pulse_select import intercept_indices, strictly_increasing
from sardata.stream.radar import RadarView

SAMPLE_S = 1 / FS


# ----------------------------------------------------------------------------------------------- PDW derivation
@pytest.mark.parametrize(
    ("snr", "min_exact", "toa_tol", "pw_tol", "mod_ok"),
    [(20, 1.0, 2.5, 3.5, 0.95), (10, 0.85, 4.5, 11, 0.7), (-20, 0.0, None, None, None)],
)
def test_derived_pdws_match_frame_labels(snr: int, min_exact: float, toa_tol, pw_tol, mod_ok) -> None:
    """Pulse count exact, first TOA ≈ time_delay, ΔTOA ≈ PRI, PW ≈ pulse_width, modulation consistent with the
    class: tolerances in samples (0.3125 µs) that loosen with SNR; at −20 dB only the output format is checked."""
    n = 60
    iq, labels = frames(n, seed=11, snrs=[snr] * n)
    exact, mods_ok = 0, []
    for x, lab in zip(iq, labels, strict=True):
        pdw, mods = derive_pdw(x)
        assert pdw.dtype == PDW_DTYPE and mods.dtype == np.int16 and len(mods) == len(pdw)
        assert (pdw["src"] == 0).all() and np.isfinite(pdw["pw"]).all() and (np.diff(pdw["toa"]) > 0).all()
        if toa_tol is None or len(pdw) != lab["number_of_pulses"]:
            continue
        exact += 1
        assert abs(pdw["toa"][0] - lab["time_delay"]) <= toa_tol * SAMPLE_S
        assert np.abs(np.diff(pdw["toa"]) - lab["pulse_repetition_interval"]).max() <= toa_tol * 1.5 * SAMPLE_S
        assert np.abs(pdw["pw"] * 1e-6 - lab["pulse_width"]).max() <= pw_tol * SAMPLE_S
        assert np.allclose(pdw["rf"], 0.0, atol=0.5)  # baseband offset (MHz): every class is centred on 0 Hz
        mods_ok.append(np.mean([m in CLASS_MOD[int(lab["signal_type"])] for m in mods]))
    assert exact >= min_exact * n
    if mod_ok is not None:
        assert np.mean(mods_ok) >= mod_ok


# ----------------------------------------------------------------------------------------------- IQ view
def _iq_sample(x: np.ndarray, **kw) -> dict:
    return {"iq.npy": np.stack([x.real, x.imag]).astype(np.float32), "cls": 2, "__key__": "k", "__index__": 0,
            "__epoch__": 0, "valid": True, **kw}  # fmt: skip


def test_iq_view_joint_minmax_tau_and_flat_frames() -> None:
    iq, _ = frames(3, seed=4)
    out = RadarView()(_iq_sample(iq[0]))
    x = out["x"]
    assert x.shape == (2, 512) and x.dtype == np.float32 and x.min() == 0.0 and x.max() == 1.0
    raw = np.stack([iq[0].real, iq[0].imag]).astype(np.float32)
    lo, hi = raw.min(), raw.max()
    np.testing.assert_allclose(x, (raw - lo) / (hi - lo), rtol=1e-6)  # one min and one max for both channels
    assert out["tau"].dtype == np.float32 and (out["tau"] == np.arange(64)).all()
    assert out["valid"].shape == (512,) and out["valid"].all() and out["label"] == 2 and out["input"] == "iq"
    flat = RadarView()(_iq_sample(np.full(512, 0.5 + 0.5j)))
    assert (flat["x"] == 0).all()
    sym = RadarView(iq_norm="symmetric")(_iq_sample(iq[1]))["x"]
    assert sym.min() >= -1 and sym.max() <= 1 and np.isclose(np.abs(sym).max(), 1.0)
    us = RadarView(toa_units="us")(_iq_sample(iq[2], **{"toa.npy": np.arange(64) * 8 / FS}))["tau"]
    np.testing.assert_allclose(us, np.arange(64) * 2.5, rtol=1e-6)  # 8 samples = 2.5 µs per patch
    masked = RadarView()(_iq_sample(iq[0], valid=False))  # a pad="mask" filler: nothing valid
    assert not masked["valid"].any() and masked["sample_valid"] is False


# ----------------------------------------------------------------------------------------------- PDW view
def _train(n: int, pri_us: float = 10.0, jitter: float = 0.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pdw = np.zeros(n, PDW_DTYPE)
    steps = pri_us * 1e-6 * (1 + jitter * rng.uniform(-1, 1, n))
    pdw["toa"] = np.concatenate(([0.0], np.cumsum(steps[1:])))
    pdw["rf"], pdw["pw"], pdw["pa"] = 9250.0, 1.0, -50.0
    return pdw


def _pdw_sample(pdw: np.ndarray, index: int = 0, epoch: int = 0) -> dict:
    return {"pdw.npy": pdw, "cls": 1, "__key__": "p", "__index__": index, "__epoch__": epoch, "valid": True}


def test_pdw_view_fixed_ranges_channels_and_tau() -> None:
    out = RadarView(train=False, resample="window")(_pdw_sample(_train(600)))
    x = out["x"]
    assert x.shape == (2, 512) and out["start"] == 0 and out["valid"].all() and out["input"] == "pdw"
    np.testing.assert_allclose(x[0], (-5 + 6) / 4, rtol=1e-5)  # log10(10 µs) = −5 in [−6, −2]
    np.testing.assert_allclose(x[1], (9250 - 500) / 17500, rtol=1e-5)
    np.testing.assert_allclose(out["tau"], np.arange(64), atol=1e-3)  # constant PRI: τ = patch index
    whole = RadarView(train=False)(_pdw_sample(_train(600)))  # default: the whole intercept, index quantiles
    np.testing.assert_allclose(whole["x"][0], (-5 + 6) / 4, rtol=1e-5)  # dtoa="train": still the real PRI
    np.testing.assert_allclose(whole["tau"], np.arange(64), atol=0.07)  # strides of 1 or 2 pulses: τ ≈ index
    assert whole["tau"][0] == 0 and np.isclose(whole["tau"][-1], 63)
    four = RadarView(channels=("dtoa", "rf", "pw", "pa"), train=False)(_pdw_sample(_train(600)))["x"]
    assert four.shape == (4, 512)
    np.testing.assert_allclose(four[2], (-6 + 7.3) / 4, rtol=1e-5)  # log10(1 µs in s) = −6
    np.testing.assert_allclose(four[3], (-50 + 90) / 80, rtol=1e-5)
    hot = _train(600)
    hot["rf"] = 30000.0  # outside the fixed range: clipped
    assert (RadarView(channels=("rf", "pa"), train=False)(_pdw_sample(hot))["x"][0] == 1.0).all()
    per = RadarView(norm="per_sample", train=False)(_pdw_sample(_train(600, jitter=0.2)))["x"]
    assert per[0].min() == 0 and per[0].max() == 1 and (per[1] == 0).all()  # constant RF → 0
    warped = RadarView(train=False, resample="window")(_pdw_sample(_train(600, jitter=0.3, seed=2)))["tau"]
    assert warped[0] == 0 and np.isclose(warped[-1], 63) and not np.allclose(warped, np.arange(64))
    with pytest.raises(ConfigError, match="channels"):
        RadarView(channels=("dtoa", "toa"))


def test_pdw_view_window_start_is_seeded_per_sample() -> None:
    view = RadarView(train=True, seed=7, resample="window")
    long = _train(2000)
    starts = [view(_pdw_sample(long, index=i))["start"] for i in range(8)]
    assert starts == [view(_pdw_sample(long, index=i))["start"] for i in range(8)]  # same key → same draw
    assert len(set(starts)) > 1 and all(0 <= s <= 2000 - 512 for s in starts)
    assert view(_pdw_sample(long, index=0, epoch=1))["start"] != starts[0] or starts[1] != starts[0]
    assert RadarView(train=False, resample="window")(_pdw_sample(long, index=3))["start"] == 0
    out = view(_pdw_sample(long, index=5))
    assert np.isclose(out["x"][0], out["x"][0][0]).all()  # a window of real consecutive pulses


def test_pdw_view_short_trains_pad_or_repeat() -> None:
    short = _train(300)
    out = RadarView(train=False)(_pdw_sample(short))
    assert out["valid"].sum() == 300 and out["valid"][:300].all() and (out["x"][:, 300:] == 0).all()
    assert out["patch_valid"].sum() == 38  # ceil(300 / 8)
    assert (out["tau"][38:] == 0).all() and np.isclose(out["tau"][37], 37)
    near = RadarView(train=False, short="nearest")(_pdw_sample(short))
    assert near["valid"].all() and np.isclose(near["x"][0], near["x"][0][0]).all()
    empty = RadarView()(_pdw_sample(np.zeros(0, PDW_DTYPE)))
    assert not empty["valid"].any() and (empty["x"] == 0).all()


def test_radchar_sample_can_feed_pdw_view() -> None:
    iq, _ = frames(1, seed=3, snrs=[20])
    pdw, _ = derive_pdw(iq[0])
    sample = {**_iq_sample(iq[0]), "pdw.npy": pdw}
    out = RadarView(input="pdw", channels=("dtoa", "pw"), train=False)(sample)
    assert out["input"] == "pdw" and out["valid"].sum() == len(pdw)
    with pytest.raises(ConfigError, match="no pdw.npy"):
        RadarView(input="pdw")(_iq_sample(iq[0]))


# ----------------------------------------------------------------------------------------------- split view
def test_split_radarpos20k_four_thousand_per_class() -> None:
    rows = [(f"radchar_f-{c}-{i:05d}", c, "train") for c in range(5) for i in range(4100)]
    rows += [(f"radchar_t-{c}-{i:05d}", c, "test") for c in range(5) for i in range(50)]
    df = pd.DataFrame(rows, columns=["key", "label", "split"]).assign(source="radchar")
    col = radarpos_column(df, seed=0)
    chosen = df[col == "train"]
    assert len(chosen) == 20_000 and chosen.groupby("label").size().tolist() == [4000] * 5
    assert (chosen["split"] == "train").all()  # never from test
    again = radarpos_column(df.sample(frac=1, random_state=1).reset_index(drop=True), seed=0)
    assert set(df.loc[col == "train", "key"]) == set(
        df.sample(frac=1, random_state=1).reset_index(drop=True).loc[again == "train", "key"]
    )  # row order does not matter
    assert set(df.loc[radarpos_column(df, seed=1) == "train", "key"]) != set(chosen["key"])


# ----------------------------------------------------------------------------------------------- pulse selection
def test_old_resample_values_name_the_new_field() -> None:
    for old in ("pad", "nearest"):
        with pytest.raises(ConfigError, match=f"short={old!r}"):
            RadarView(resample=old)
    with pytest.raises(ConfigError, match="jitter"):
        RadarView(jitter=1.5)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(512, 5000), rule=st.sampled_from(["intercept_index", "intercept_toa"]),
       seed=st.integers(0, 2**16), jitter=st.sampled_from([0.0, 0.5, 1.0]), gaps=st.booleans())  # fmt: skip
def test_intercept_rules_take_512_distinct_real_pulses_in_order(n, rule, seed, jitter, gaps) -> None:
    rng = np.random.default_rng(seed)
    steps = rng.uniform(1e-6, 2e-5, n - 1)
    if gaps:  # scan gaps: a few steps 1,000x longer
        steps[rng.integers(0, n - 1, 5)] *= 1000
    toa = np.concatenate(([0.0], np.cumsum(steps)))
    idx = intercept_indices(toa, 512, rule, rng if jitter else None, jitter)
    assert idx.shape == (512,) and idx.dtype.kind == "i"
    assert (np.diff(idx) >= 1).all() and idx[0] >= 0 and idx[-1] <= n - 1  # distinct, ordered, in range
    if not jitter:
        assert idx[0] == 0 and idx[-1] == n - 1  # the whole intercept: first and last pulse


def test_intercept_index_spreads_evenly_and_jitter_is_seeded() -> None:
    toa = np.arange(5110) * 1e-5
    idx = intercept_indices(toa, 512, "intercept_index")
    assert set(np.diff(idx).tolist()) <= {9, 10, 11}  # ⌊5109/511⌉ = 10 ± rounding
    view = RadarView(seed=3)
    a, b = (view(_pdw_sample(_train(3000, jitter=0.2), index=4))["x"] for _ in range(2))
    assert (a == b).all()  # same (seed, epoch, index) → same jittered pulses
    c = view(_pdw_sample(_train(3000, jitter=0.2), index=5))["x"]
    assert not (a == c).all()


def test_strictly_increasing_is_the_smallest_fix() -> None:
    assert strictly_increasing(np.array([0, 0, 0, 5, 5]), 7).tolist() == [0, 1, 2, 5, 6]
    assert strictly_increasing(np.array([3, 3, 3]), 4).tolist() == [1, 2, 3]  # capped: room for the rest
    assert strictly_increasing(np.array([0, 2, 4]), 5).tolist() == [0, 2, 4]  # already fine: unchanged


def test_dtoa_train_keeps_the_pri_under_resampling() -> None:
    pdw = _train(2048, pri_us=10.0)
    train = RadarView(train=False)(_pdw_sample(pdw))["x"][0]
    selected = RadarView(train=False, dtoa="selected")(_pdw_sample(pdw))["x"][0]
    np.testing.assert_allclose(train, (-5 + 6) / 4, rtol=1e-5)  # every pulse's own PRI: 10 µs
    assert selected.mean() > train.mean() + 0.1  # gaps between selected pulses: ≈ 4 PRIs, log10 ≈ −4.4
