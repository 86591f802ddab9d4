"""One intercepted train from its key (``radar.md`` §2.4–2.5): the entry point that ties the type, the plan
and the receiver together."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from sardata.errors import ConfigError
from sardata.sim.pdw.intercept import MAX_PULSES, check_stop, window
from sardata.sim.pdw.plan import Plan
from sardata.sim.pdw.receiver import Draws, ReceiverConfig, dead_time_keep, emit, measure, uniform_draw, vs_intervals
from sardata.sim.pdw.types import (
    INTERFERER_BASE,
    MAX_INTERFERER_FACTOR,
    MODE_LAWS,
    N_INTERFERER_TYPES,
    SIM_VERSION,
    draw_type,
)
from sardata.sources.pdwsim import MODES


# ----------------------------------------------------------------------------------------------- simulate
def sample_seed(global_seed: int, type_id: int, mode: int, sample_idx: int) -> np.random.SeedSequence:
    """The seed of one sample (``radar.md`` §2.5)."""
    return np.random.SeedSequence([global_seed, type_id, mode, sample_idx])


def simulate(
    global_seed: int,
    type_id: int,
    mode: int,
    sample_idx: int,
    *,
    receiver: ReceiverConfig | None = None,
    stop: str = "intercept",
    max_pulses: int = MAX_PULSES,
    n_pulses: int = 576,
    t_max: float = 2.0,
    law: str | None = None,
    confusable: bool = False,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Simulate one intercepted train; the same arguments always give byte-identical output.

    Args:
        stop: ``"intercept"`` (default): one whole illumination of the ESM, capped at ``max_pulses`` surviving
            detections and ``t_max`` (:mod:`sardata.sim.pdw.intercept`); ``"detections"``: the earlier rule,
            ``n_pulses`` surviving detections from the first detectable pulse.
        law: force the mode's PRI law (``ds``, ``sinusoidal``, ``jitter`` in VS; ``ds``, ``ds_stagger``,
            ``sliding`` in TAS; ``constant``, ``stagger``, ``jitter``, ``sliding``, ``sinusoidal`` in STT) —
            for tests; a forced ``stagger`` may still become ``stagger_jitter`` (p 0.25).
        confusable: draw the type as a member of the confusable downstream family.

    Returns:
        ``(pdw, meta)``: the structured train sorted by measured TOA, TOA relative to the first pulse, and the
        JSON-safe meta (law parameters in seconds, receiver draws, the seed key, the intercept).
    """
    _check(mode, sample_idx, global_seed, law)
    check_stop(stop, n_pulses, max_pulses, t_max)
    key = [global_seed, type_id, mode, sample_idx]
    rx = receiver or ReceiverConfig()
    et = draw_type(global_seed, type_id, confusable)
    rng = np.random.default_rng(sample_seed(*key))
    plan = Plan(et, mode, rng, law)
    d = _receiver_draws(rng, rx)
    win = window(plan, d, rng, key, stop=stop, n_pulses=n_pulses, max_pulses=max_pulses, t_max=t_max)
    em = emit(plan, rx, d, d.ml, rng, win.intervals, win.t_begin, win.t_end, win.target, cap=win.cap)
    ok = ~em["miss"].astype(bool)
    if np.count_nonzero(ok) >= win.target:  # the train ends at the target-th surviving detection
        last = np.flatnonzero(ok)[win.target - 1]
        em = {k: v[: last + 1] for k, v in em.items()}
    n_ok = int(np.count_nonzero(~em["miss"].astype(bool)))
    truncated = n_ok < win.target if stop == "detections" else n_ok >= win.target or win.meta["time_clipped"]
    cat, src, inter_meta = _with_interferer(em, plan, rx, d, key, win.target)
    keep = dead_time_keep(cat["t"], cat["pw"], d.t_dead) & ~cat["miss"].astype(bool)
    cat = {k: v[keep] for k, v in cat.items()}
    cat, src, n_sp = _with_spurious(cat, src[keep], d, et.f_c_mhz, rng)
    pdw = measure(cat, src, d, rx, rng)
    meta = _meta(key, confusable, plan, d, src, n_sp, len(pdw), win, truncated, t_max, inter_meta)
    return pdw, meta


def _meta(key: list[int], confusable: bool, plan: Plan, d: Draws, src: np.ndarray, n_sp: int, n: int, win: Any,
          truncated: bool, t_max: float, interferer: dict[str, Any] | None) -> dict[str, Any]:  # fmt: skip
    """The JSON-safe meta of one train: its key, the waveform plan, the receiver draws and the intercept."""
    return {
        "sim_version": SIM_VERSION, "seed": key, "type_id": key[1], "mode": key[2], "mode_name": MODES[key[2]],
        "confusable": confusable, **plan.describe(), "scan": plan.scan_dict(),
        "receiver": {"ml_dbm": d.ml, "sensitivity_dbm": d.s_rx, "dead_time_s": d.t_dead, "p_miss": d.p_miss,
                     "burst_mean_len": d.burst_len, "spurious_rate": d.r_s, "sigma_toa_s": d.sigma_t,
                     "sigma_rf_mhz": d.sigma_f},
        "interferer": interferer, "n_emitter": int(np.count_nonzero(src == 0)), "n_spurious": n_sp, "n_pulses": n,
        "truncated": bool(truncated), "n_target": win.target, "t_max_s": t_max, **win.meta,
    }  # fmt: skip


def _check(mode: int, sample_idx: int, global_seed: int, law: str | None) -> None:
    if mode not in (0, 1, 2):
        raise ConfigError(f"mode must be 0 (VS), 1 (TAS) or 2 (STT), got {mode}")
    if law is not None and law not in MODE_LAWS[mode]:
        raise ConfigError(f"law {law!r} is not a {MODES[mode]} law; choose from {MODE_LAWS[mode]}")
    if global_seed < 0 or sample_idx < 0:
        raise ConfigError(f"global_seed and sample_idx must be ≥ 0, got {global_seed}, {sample_idx}")


def _receiver_draws(rng: np.random.Generator, rx: ReceiverConfig) -> Draws:
    """The sample's receiver values (§2.4), in the order the seed stream fixes."""
    return Draws(
        ml=uniform_draw(rng, rx.ml_dbm), s_rx=uniform_draw(rng, rx.sensitivity_dbm),
        t_dead=uniform_draw(rng, rx.dead_time_s), p_miss=uniform_draw(rng, rx.p_miss),
        burst_len=uniform_draw(rng, rx.burst_mean_len) if rng.random() < rx.p_burst else None,
        r_s=uniform_draw(rng, rx.spurious_rate), interferer=bool(rng.random() < rx.p_interferer),
        sigma_t=uniform_draw(rng, rx.sigma_toa_s), sigma_f=uniform_draw(rng, rx.sigma_rf_mhz),
    )  # fmt: skip


def _with_interferer(em: dict[str, np.ndarray], plan: Plan, rx: ReceiverConfig, d: Draws, key: list[int],
                     target: int) -> tuple[dict[str, np.ndarray], np.ndarray, dict[str, Any] | None]:  # fmt: skip
    """Merge an interferer burst (another type/mode, ≤ 2 × target pulses, own seed stream) into the emission."""
    if not (d.interferer and len(em["t"])):  # emission is already in time order
        return em, np.zeros(len(em["t"]), np.int16), None
    irng = np.random.default_rng(np.random.SeedSequence([*key, 1]))
    i_type = INTERFERER_BASE + int(irng.integers(N_INTERFERER_TYPES))
    i_mode = int(irng.integers(3))
    rel = uniform_draw(irng, rx.interferer_rel_db)
    iplan = Plan(draw_type(key[0], i_type), i_mode, irng)
    t0, t1 = float(em["t"][0]), float(em["t"][-1])
    iivs = vs_intervals(iplan, d.ml + rel, d.s_rx, t1) if i_mode == 0 else [(0.0, math.inf)]
    ie = emit(iplan, rx, d, d.ml + rel, irng, iivs, t0 - float(irng.uniform(0, iplan.mean_pri)), t1, None,
              cap=MAX_INTERFERER_FACTOR * target)  # fmt: skip
    inside = ie["t"] >= em["t"][0]
    ie = {k: v[inside] for k, v in ie.items()}
    parts = [(em, 0), (ie, 1)]
    order = np.argsort(np.concatenate([p["t"] for p, _ in parts]), kind="stable")
    cat = {k: np.concatenate([p[k] for p, _ in parts])[order] for k in ("t", "pw", "rf", "pa", "miss")}
    src = np.concatenate([np.full(len(p["t"]), s, np.int16) for p, s in parts])[order]
    meta = {"type_id": i_type, "mode": i_mode, "rel_ml_db": rel, "pri_law": iplan.law, "n_detected": int(len(ie["t"]))}
    return cat, src, meta


def _with_spurious(cat: dict[str, np.ndarray], src: np.ndarray, d: Draws, f_c_mhz: float,
                   rng: np.random.Generator) -> tuple[dict[str, np.ndarray], np.ndarray, int]:  # fmt: skip
    """§2.4 step 4: Poisson spurious pulses at ``r_s`` × the emitter's detections, uniform over the train."""
    n_em = int(np.count_nonzero(src == 0))
    if not (len(src) and d.r_s > 0):
        return cat, src, 0
    n_sp = int(rng.poisson(d.r_s * n_em))
    t0, t1 = float(cat["t"][0]), float(cat["t"][-1])
    half = rng.random(n_sp) < 0.5
    rf_sp = np.where(half, f_c_mhz + rng.uniform(-500, 500, n_sp), rng.uniform(500, 18000, n_sp))
    sp = {"t": rng.uniform(t0, t1, n_sp), "pw": np.exp(rng.uniform(math.log(0.1e-6), math.log(50e-6), n_sp)),
          "rf": rf_sp, "pa": d.s_rx + rng.uniform(0, 10, n_sp)}  # fmt: skip
    cat = {k: np.concatenate([cat[k], sp[k]]) for k in ("t", "pw", "rf", "pa")}
    return cat, np.concatenate([src, np.full(n_sp, -1, np.int16)]), n_sp
