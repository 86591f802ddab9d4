"""Where one intercept begins and ends (``radar.md`` §2.4.6, revised 2026-12-04).

Why: stopping at the 576th detection cut every train from the same stationary stretch, so nothing in a patch
told where it sat in the train and the RadarPos position pretext could not be learned. The default stop rule
(``stop="intercept"``) now simulates one whole illumination of the ESM, so its start and end — and the antenna
pattern, the misses at the beam edges and the schedule in between — sit at fixed places in the train:

* **VS** (scanning beam): one main-lobe pass. The first sweep after t = 0 whose beam crosses the ESM bearing
  on a bar that reaches it, taken whole (a pass already under way at t = 0 is skipped). Without detectable
  sidelobes the intercept is the main-lobe interval (ML + gain ≥ S_rx − 3 dB, as for the gap jumps); with
  detectable sidelobes it spans :data:`TAIL_NULLS` first-null half-widths on each side of the crossing (the
  main lobe in the middle half, sidelobe tails around it).
* **TAS**: one full search frame — every beam position of the raster once (``n_az × bars`` search CPIs), with
  the track CPIs interleaved as the mode's schedule puts them — starting at the frame start (beam position 0).
* **STT**: one track dwell sequence of :data:`DWELL_CPIS` CPIs (drawn per sample from its own seed stream, so
  the waveform draws stay those of the old rule).

Every intercept is capped at ``t_max`` and at ``max_pulses`` surviving detections (``meta["truncated"]``
says so); the cap's default keeps ``sardata bench pdw`` ≥ 50k sequences/min on 2 cores (BENCHMARKS.md).
``stop="detections"`` is the earlier rule (``n_pulses`` detections from the first detectable pulse), kept
byte-identical.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from sardata.errors import ConfigError
from sardata.sim.pdw.plan import Plan
from sardata.sim.pdw.receiver import Draws, sidelobes_detectable, vs_crossings, vs_intervals
from sardata.sim.pdw.types import MAX_EMITTED

STOPS = ("intercept", "detections")
#: default cap of an intercept, in surviving detections (see the module docstring)
MAX_PULSES = 2048
#: sidelobe tails of a VS pass with detectable sidelobes: this many first-null half-widths each side
TAIL_NULLS = 2.0
#: CPIs in one STT track dwell sequence, U{lo..hi}
DWELL_CPIS = (4, 16)


@dataclass(frozen=True)
class Window:
    """What :func:`sardata.sim.pdw.receiver.emit` is asked for: detectable intervals, the emission start and
    end, the surviving-detection target and the emitted-pulse budget; ``meta`` describes it."""

    intervals: list[tuple[float, float]]
    t_begin: float
    t_end: float
    target: int
    cap: int
    meta: dict[str, Any]


def check_stop(stop: str, n_pulses: int, max_pulses: int, t_max: float) -> None:
    """Clear errors for the stop-rule arguments."""
    if stop not in STOPS:
        raise ConfigError(f"stop {stop!r}; choose from {STOPS}")
    if n_pulses < 1 or max_pulses < 1 or t_max <= 0:
        raise ConfigError("n_pulses and max_pulses must be ≥ 1 and t_max > 0")


def window(plan: Plan, d: Draws, rng: np.random.Generator, key: list[int], *, stop: str, n_pulses: int,
           max_pulses: int, t_max: float) -> Window:  # fmt: skip
    """The emission window of one train under ``stop`` (draws the start offset from ``rng`` as before)."""
    if stop == "detections":
        return _detections(plan, d, rng, n_pulses, t_max)
    if plan.mode == 0:
        return _vs_pass(plan, d, rng, max_pulses, t_max)
    pbar = plan.mean_pri
    if plan.mode == 1:
        plan.pos0 = 0  # the frame starts at beam position 0 (the draw stays in the stream)
        n_pos = plan.n_az * plan.et.bars
        cycles = math.ceil(n_pos / plan.n_search)
        budget = cycles * (plan.n_search * plan.cpi + plan.cpi_track)
        meta = {"stop": "intercept", "frame_positions": n_pos, "intercept_pulses": budget}
    else:
        drng = np.random.default_rng(np.random.SeedSequence([*key, 2]))
        n_cpi = int(drng.integers(DWELL_CPIS[0], DWELL_CPIS[1] + 1))
        budget = n_cpi * plan.cpi
        meta = {"stop": "intercept", "dwell_cpis": n_cpi, "intercept_pulses": budget}
    meta["time_clipped"] = budget * pbar > t_max
    t0 = float(rng.uniform(0, pbar))
    return Window([(0.0, math.inf)], t0, t0 + t_max, max_pulses, min(budget, MAX_EMITTED), meta)


def _detections(plan: Plan, d: Draws, rng: np.random.Generator, n_pulses: int, t_max: float) -> Window:
    """The earlier rule: from the first detectable pulse until ``n_pulses`` surviving detections."""
    until = (2 * plan.et.bars + 2) * plan.sweep_s + t_max if plan.mode == 0 else t_max
    ivs = vs_intervals(plan, d.ml, d.s_rx, until) if plan.mode == 0 else [(0.0, math.inf)]
    t_start = ivs[0][0] if ivs else 0.0
    t0 = t_start + float(rng.uniform(0, plan.mean_pri))
    return Window(ivs, t0, t_start + t_max, n_pulses, MAX_EMITTED, {"stop": "detections"})


def _vs_pass(plan: Plan, d: Draws, rng: np.random.Generator, max_pulses: int, t_max: float) -> Window:
    """One whole main-lobe pass (with sidelobe tails when they are detectable); see the module docstring."""
    et = plan.et
    until = (2 * et.bars + 2) * plan.sweep_s
    centre, half_ml = vs_crossings(plan, d.ml, d.s_rx, until)
    reach = half_ml >= 0
    if sidelobes_detectable(plan, d.ml, d.s_rx):
        half = np.full(len(centre), TAIL_NULLS * et.beamwidth_deg / 0.886 / et.scan_rate_dps)
    else:
        half = half_ml
    ok = np.flatnonzero(reach & (centre - half >= 0))
    if not len(ok):  # the beam never gets there: an empty intercept, as the earlier rule gives
        meta = {"stop": "intercept", "intercept_s": None, "time_clipped": False}
        return Window([], 0.0, 0.0, max_pulses, MAX_EMITTED, meta)
    lo, hi = float(centre[ok[0]] - half[ok[0]]), float(centre[ok[0]] + half[ok[0]])
    meta = {"stop": "intercept", "intercept_s": [lo, min(hi, lo + t_max)], "time_clipped": hi > lo + t_max}
    t0 = lo + float(rng.uniform(0, plan.mean_pri))
    return Window([(lo, min(hi, lo + t_max))], t0, min(hi, lo + t_max), max_pulses, MAX_EMITTED, meta)
