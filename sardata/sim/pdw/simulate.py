"""One intercepted train from its key (``radar.md`` §2.4–2.5): the entry point that ties the type, the plan
and the receiver together."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from sardata.errors import ConfigError
from sardata.sim.pdw.plan import Plan
from sardata.sim.pdw.receiver import Draws, ReceiverConfig, dead_time_keep, emit, measure, uniform_draw, vs_intervals
from sardata.sim.pdw.types import (
    INTERFERER_BASE,
    MAX_EMITTED,
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
    n_pulses: int = 576,
    t_max: float = 2.0,
    law: str | None = None,
    confusable: bool = False,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Simulate one intercepted train; the same arguments always give byte-identical output.

    Args:
        law: force the mode's PRI law (``ds``, ``sinusoidal``, ``jitter`` in VS; ``ds``, ``ds_stagger``,
            ``sliding`` in TAS; ``constant``, ``stagger``, ``jitter``, ``sliding``, ``sinusoidal`` in STT) —
            for tests; a forced ``stagger`` may still become ``stagger_jitter`` (p 0.25).
        confusable: draw the type as a member of the confusable downstream family.

    Returns:
        ``(pdw, meta)``: the structured train sorted by measured TOA, TOA relative to the first pulse, and the
        JSON-safe meta (law parameters in seconds, receiver draws, the seed key).
    """
    if mode not in (0, 1, 2):
        raise ConfigError(f"mode must be 0 (VS), 1 (TAS) or 2 (STT), got {mode}")
    if n_pulses < 1 or t_max <= 0:
        raise ConfigError("n_pulses must be ≥ 1 and t_max > 0")
    if law is not None and law not in MODE_LAWS[mode]:
        raise ConfigError(f"law {law!r} is not a {MODES[mode]} law; choose from {MODE_LAWS[mode]}")
    if global_seed < 0 or sample_idx < 0:
        raise ConfigError(f"global_seed and sample_idx must be ≥ 0, got {global_seed}, {sample_idx}")
    rx = receiver or ReceiverConfig()
    et = draw_type(global_seed, type_id, confusable)
    rng = np.random.default_rng(sample_seed(global_seed, type_id, mode, sample_idx))
    plan = Plan(et, mode, rng, law)
    d = Draws(
        ml=uniform_draw(rng, rx.ml_dbm), s_rx=uniform_draw(rng, rx.sensitivity_dbm), t_dead=uniform_draw(rng, rx.dead_time_s),
        p_miss=uniform_draw(rng, rx.p_miss), burst_len=uniform_draw(rng, rx.burst_mean_len) if rng.random() < rx.p_burst else None,
        r_s=uniform_draw(rng, rx.spurious_rate), interferer=bool(rng.random() < rx.p_interferer),
        sigma_t=uniform_draw(rng, rx.sigma_toa_s), sigma_f=uniform_draw(rng, rx.sigma_rf_mhz),
    )  # fmt: skip
    pbar = plan.mean_pri
    until = (2 * et.bars + 2) * plan.sweep_s + t_max if mode == 0 else t_max
    ivs = vs_intervals(plan, d.ml, d.s_rx, until) if mode == 0 else [(0.0, math.inf)]
    t_start = ivs[0][0] if ivs else 0.0
    em = emit(plan, rx, d, d.ml, rng, ivs, t_start + float(rng.uniform(0, pbar)), t_start + t_max, n_pulses,
               cap=MAX_EMITTED)  # fmt: skip
    ok = ~em["miss"].astype(bool)
    if np.count_nonzero(ok) >= n_pulses:  # window ends at the n-th surviving detection
        last = np.flatnonzero(ok)[n_pulses - 1]
        em = {k: v[: last + 1] for k, v in em.items()}
    truncated = int(np.count_nonzero(~em["miss"].astype(bool))) < n_pulses
    parts = [(em, 0)]
    inter_meta: dict[str, Any] | None = None
    if d.interferer and len(em["t"]):
        irng = np.random.default_rng(np.random.SeedSequence([global_seed, type_id, mode, sample_idx, 1]))
        i_type = INTERFERER_BASE + int(irng.integers(N_INTERFERER_TYPES))
        i_mode = int(irng.integers(3))
        rel = uniform_draw(irng, rx.interferer_rel_db)
        iplan = Plan(draw_type(global_seed, i_type), i_mode, irng)
        t0, t1 = float(em["t"][0]), float(em["t"][-1])
        iivs = vs_intervals(iplan, d.ml + rel, d.s_rx, t1) if i_mode == 0 else [(0.0, math.inf)]
        ie = emit(iplan, rx, d, d.ml + rel, irng, iivs, t0 - float(irng.uniform(0, iplan.mean_pri)), t1, None,
                   cap=MAX_INTERFERER_FACTOR * n_pulses)  # fmt: skip
        inside = ie["t"] >= em["t"][0]
        ie = {k: v[inside] for k, v in ie.items()}
        parts.append((ie, 1))
        inter_meta = {"type_id": i_type, "mode": i_mode, "rel_ml_db": rel, "pri_law": iplan.law,
                      "n_detected": int(len(ie["t"]))}  # fmt: skip
    if len(parts) == 1:  # emission is already in time order
        cat, src = em, np.zeros(len(em["t"]), np.int16)
    else:
        order = np.argsort(np.concatenate([p["t"] for p, _ in parts]), kind="stable")
        cat = {k: np.concatenate([p[k] for p, _ in parts])[order] for k in ("t", "pw", "rf", "pa", "miss")}
        src = np.concatenate([np.full(len(p["t"]), s, np.int16) for p, s in parts])[order]
    keep = dead_time_keep(cat["t"], cat["pw"], d.t_dead) & ~cat["miss"].astype(bool)
    cat = {k: v[keep] for k, v in cat.items()}
    src = src[keep]
    n_em = int(np.count_nonzero(src == 0))
    n_sp = 0
    if len(src) and d.r_s > 0:  # §2.4 step 4: spurious pulses
        n_sp = int(rng.poisson(d.r_s * n_em))
        t0, t1 = float(cat["t"][0]), float(cat["t"][-1])
        half = rng.random(n_sp) < 0.5
        rf_sp = np.where(half, et.f_c_mhz + rng.uniform(-500, 500, n_sp), rng.uniform(500, 18000, n_sp))
        sp = {"t": rng.uniform(t0, t1, n_sp), "pw": np.exp(rng.uniform(math.log(0.1e-6), math.log(50e-6), n_sp)),
              "rf": rf_sp, "pa": d.s_rx + rng.uniform(0, 10, n_sp)}  # fmt: skip
        cat = {k: np.concatenate([cat[k], sp[k]]) for k in ("t", "pw", "rf", "pa")}
        src = np.concatenate([src, np.full(n_sp, -1, np.int16)])
    pdw = measure(cat, src, d, rx, rng)
    meta = {
        "sim_version": SIM_VERSION, "seed": [global_seed, type_id, mode, sample_idx], "type_id": type_id,
        "mode": mode, "mode_name": MODES[mode], "confusable": confusable, **plan.describe(),
        "scan": plan.scan_dict(),
        "receiver": {"ml_dbm": d.ml, "sensitivity_dbm": d.s_rx, "dead_time_s": d.t_dead, "p_miss": d.p_miss,
                     "burst_mean_len": d.burst_len, "spurious_rate": d.r_s, "sigma_toa_s": d.sigma_t,
                     "sigma_rf_mhz": d.sigma_f},
        "interferer": inter_meta, "n_emitter": n_em, "n_spurious": n_sp, "n_pulses": int(len(pdw)),
        "truncated": truncated, "n_target": n_pulses, "t_max_s": t_max,
    }  # fmt: skip
    return pdw, meta
