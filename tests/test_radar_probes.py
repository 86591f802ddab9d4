"""The RadarPos pretext's guards (issue 16): the ramp control is learnable, the index-from-content probe and the
TOA/index PE cosine measure what they claim. CPU, seeded, a few seconds each."""

from __future__ import annotations

import numpy as np
import pytest

from sardata.errors import ConfigError
from sardata.stream.radar import RadarView
from sardata.train import probes as P

CHANCE = 1 / 64


def test_ramp_control_pretext_learns_in_150_steps() -> None:
    """Content that encodes position: the pretext (loss, soft labels, optimiser) must learn it."""
    views = P.ramp_views(600, seed=0)
    res = P.pretext_top1(views[:480], views[480:], steps=150, lr=1e-3, seed=0)
    assert res.top1 >= 0.25, res
    assert res.loss < np.log(64)


def test_probe_separates_identifiable_from_stationary_inputs() -> None:
    ramp = P.position_probe(P.ramp_views(300, seed=1), steps=300, seed=1)
    assert ramp.top1 >= 2 * CHANCE and ramp.top1_pm1 > 3 * ramp.chance
    rng = np.random.default_rng(0)
    flat = [{**v, "x": rng.normal(0.5, 0.05, v["x"].shape).astype(np.float32)} for v in P.ramp_views(300, seed=1)]
    noise = P.position_probe(flat, steps=300, seed=1)  # stationary content: nothing to find
    assert noise.top1 < 2 * CHANCE and noise.n_test > 0 and noise.n_train + noise.n_test == 300 * 64


def test_toa_index_cosine() -> None:
    iq = P.apply_view(RadarView(train=False), P.radchar_samples(4, seed=0))
    assert P.toa_index_cosine(iq) == pytest.approx(1.0)  # IQ: τ is the index, so the two PEs coincide
    shifted = [{**v, "tau": v["tau"] + 10.0} for v in iq]
    freq = np.power(10000.0, -np.arange(0, 512, 2) / 512)
    assert P.toa_index_cosine(shifted) == pytest.approx(float(np.cos(10.0 * freq).mean()))
    with pytest.raises(ConfigError, match="valid patch"):
        P.toa_index_cosine([{**iq[0], "patch_valid": np.zeros(64, bool)}])
