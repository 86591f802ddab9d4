"""The ESM receiver (``radar.md`` §2.4): emission through the antenna pattern, detection, dead time, misses
and measurement noise, in the spec's order."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from sardata.sim.pdw.plan import Plan
from sardata.sim.pdw.types import MAIN_LOBE_MARGIN_DB, SIDELOBE_MARGIN_DB
from sardata.sources.pdwsim import PDW_DTYPE


# ----------------------------------------------------------------------------------------------- receiver config
@dataclass(frozen=True)
class ReceiverConfig:
    """Ranges of the ESM receiver draws (``radar.md`` §2.4); each sample draws its own values from them.

    :meth:`ideal` turns every impairment off (tests recover PRI-law parameters from its TOAs).
    """

    ml_dbm: tuple[float, float] = (-60.0, -20.0)
    sensitivity_dbm: tuple[float, float] = (-75.0, -60.0)
    detect_noise_db: float = 1.0
    dead_time_s: tuple[float, float] = (0.1e-6, 1e-6)
    p_miss: tuple[float, float] = (0.0, 0.30)
    p_burst: float = 0.25
    burst_p_enter: float = 0.01
    burst_mean_len: tuple[float, float] = (2.0, 20.0)
    spurious_rate: tuple[float, float] = (0.0, 0.20)
    p_interferer: float = 0.2
    interferer_rel_db: tuple[float, float] = (-10.0, 0.0)
    sigma_toa_s: tuple[float, float] = (10e-9, 100e-9)
    toa_lsb_s: float = 10e-9
    pw_rel_noise: float = 0.02
    pw_abs_noise_s: float = 20e-9
    pw_lsb_s: float = 10e-9
    pw_min_s: float = 50e-9
    sigma_rf_mhz: tuple[float, float] = (0.5, 5.0)
    rf_lsb_mhz: float = 1.0
    pa_noise_db: float = 1.0
    pa_lsb_db: float = 0.25
    stt_pa_noise_db: float = 0.5

    @classmethod
    def ideal(cls) -> ReceiverConfig:
        """No noise, no misses, no spurious pulses, no dead time, infinite sensitivity, no quantisation."""
        return cls(sensitivity_dbm=(-400.0, -400.0), detect_noise_db=0.0, dead_time_s=(0.0, 0.0), p_miss=(0.0, 0.0),
                   p_burst=0.0, spurious_rate=(0.0, 0.0), p_interferer=0.0, sigma_toa_s=(0.0, 0.0), toa_lsb_s=0.0,
                   pw_rel_noise=0.0, pw_abs_noise_s=0.0, pw_lsb_s=0.0, pw_min_s=0.0, sigma_rf_mhz=(0.0, 0.0),
                   rf_lsb_mhz=0.0, pa_noise_db=0.0, pa_lsb_db=0.0, stt_pa_noise_db=0.0)  # fmt: skip


def uniform_draw(rng: np.random.Generator, r: tuple[float, float]) -> float:
    return float(r[0]) if r[0] == r[1] else float(rng.uniform(r[0], r[1]))


# ----------------------------------------------------------------------------------------------- emission
@dataclass
class Draws:
    """Receiver values of one sample."""

    ml: float
    s_rx: float
    t_dead: float
    p_miss: float
    burst_len: float | None
    r_s: float
    interferer: bool
    sigma_t: float
    sigma_f: float


def _bursts(rng: np.random.Generator, n: int, p_enter: float, mean_len: float) -> np.ndarray:
    """Gilbert–Elliott style burst-miss mask: bursts start w.p. ``p_enter``, geometric lengths."""
    starts = np.flatnonzero(rng.random(n) < p_enter)
    if not len(starts):
        return np.zeros(n, bool)
    lengths = rng.geometric(1.0 / mean_len, len(starts))
    diff = np.zeros(n + 1, np.int64)
    np.add.at(diff, starts, 1)
    np.add.at(diff, np.minimum(starts + lengths, n), -1)
    return np.cumsum(diff[:n]) > 0


_X = np.linspace(0.0, 1.0, 2001)
with np.errstate(divide="ignore"):
    _G_TABLE = 10 * np.log10(np.sinc(_X) ** 2)  # main-lobe gain (dB) vs normalised angle, decreasing on [0, 1)


def vs_intervals(plan: Plan, ml: float, s_rx: float, t_until: float) -> list[tuple[float, float]]:
    """Times in [0, ``t_until``] at which an emitter in VS can be detected.

    Sidelobes at ≥ S_rx − 2 dB (detection probability ≥ 2.3 % with 1 dB noise): always. Otherwise one interval
    per sweep whose bar reaches the receiver, centred on the instant the beam crosses the ESM bearing, as wide
    as the main-lobe angle where ML + gain ≥ S_rx − 3 dB (read from a sinc² table). Pulses outside the intervals
    (detection probability < 2.3 % resp. < 0.14 %) are not simulated — this bounds the cost of slow scans.
    """
    if sidelobes_detectable(plan, ml, s_rx):
        return [(0.0, math.inf)]
    centre, half = vs_crossings(plan, ml, s_rx, t_until)
    ok = (half >= 0) & (centre + half > 0) & (centre - half < t_until)
    return [(max(0.0, float(c - h)), float(c + h)) for c, h in zip(centre[ok], half[ok], strict=True)]


def sidelobes_detectable(plan: Plan, ml: float, s_rx: float) -> bool:
    """Sidelobe pulses reach S_rx − 2 dB (detection probability ≥ 2.3 % with 1 dB noise)."""
    return ml + plan.et.sidelobe_db >= s_rx - SIDELOBE_MARGIN_DB


def vs_crossings(plan: Plan, ml: float, s_rx: float, t_until: float) -> tuple[np.ndarray, np.ndarray]:
    """Per VS sweep in [0, ``t_until``]: the instant the beam crosses the ESM bearing and the half-time of the
    main-lobe interval where ML + gain ≥ S_rx − 3 dB (−1 where that sweep's bar never gets there)."""
    et = plan.et
    need = s_rx - MAIN_LOBE_MARGIN_DB - ml
    sweep, w = plan.sweep_s, et.sector_half_deg
    m = np.arange(math.floor(plan.scan_phase_s / sweep), math.floor((plan.scan_phase_s + t_until) / sweep) + 1)
    bar = m % et.bars
    x_el = 0.886 * np.abs(bar * et.beamwidth_deg - plan.el_esm) / et.beamwidth_deg
    g_el = np.where(x_el < 1, np.interp(x_el, _X, _G_TABLE), -np.inf)
    need_az = need - g_el
    idx = np.minimum(np.searchsorted(-_G_TABLE, -need_az, side="right"), len(_X) - 1)
    x_max = np.where(need_az <= 0, _X[idx], -1.0)
    half = np.where(x_max >= 0, x_max * et.beamwidth_deg / 0.886 / et.scan_rate_dps, -1.0)
    frac = np.where(m % 2 == 0, (plan.theta_esm + w) / (2 * w), (w - plan.theta_esm) / (2 * w))
    return (m + frac) * sweep - plan.scan_phase_s, half


def emit(plan: Plan, rx: ReceiverConfig, d: Draws, ml: float, rng: np.random.Generator,
          intervals: list[tuple[float, float]], t_begin: float, t_end: float, target: int | None,
          cap: int) -> dict[str, np.ndarray]:  # fmt: skip
    """Emit pulses block by block from ``t_begin`` and apply §2.4 step 1 (detection) and step 3 (misses, kept
    as a flag, since dead time acts before them). Pulses at or after ``t_end`` are not recorded; emission
    jumps over gaps between ``intervals`` and stops once ``target`` detected-and-not-missed pulses exist or
    ``cap`` pulses were emitted. Returns the detected pulses only.
    """
    pbar = plan.mean_pri
    t, k = t_begin, int(t_begin / pbar)
    out: dict[str, list[np.ndarray]] = {"t": [], "pw": [], "rf": [], "pa": [], "miss": []}
    n_ok, n_gen, iv = 0, 0, 0
    block = (target or 512) * 3 // 2
    while t < t_end and n_gen < cap:
        while iv < len(intervals) and t >= intervals[iv][1]:
            iv += 1
        if iv == len(intervals):
            break
        if t < intervals[iv][0]:  # jump an undetectable gap (pulse index advanced by gap / mean PRI)
            dk = int((intervals[iv][0] - t) / pbar)
            k += dk
            t += dk * pbar
        n = int(min(block, cap - n_gen))
        b = plan.block(np.arange(k, k + n))
        times = t + np.concatenate([[0.0], np.cumsum(b["pri"][:-1])])
        t = float(times[-1] + b["pri"][-1])
        k += n
        n_gen += n
        pa = ml + _gain(plan, rx, rng, b, times)
        det = times < t_end
        if rx.detect_noise_db:
            det &= pa >= d.s_rx + rng.normal(0.0, rx.detect_noise_db, n)
        else:
            det &= pa >= d.s_rx
        miss = rng.random(n) < d.p_miss if d.p_miss else np.zeros(n, bool)
        if d.burst_len is not None:
            miss |= _bursts(rng, n, rx.burst_p_enter, d.burst_len)
        idx = np.flatnonzero(det)
        for name, arr in (("t", times), ("pw", b["pw"]), ("rf", b["rf"]), ("pa", pa), ("miss", miss)):
            out[name].append(arr[idx])
        n_ok += int(np.count_nonzero(det & ~miss))
        if target is not None and n_ok >= target:
            break
        rate = max(n_ok / n_gen, 0.02)
        block = int(min(16384, max(256, ((target or 2048) - n_ok) / rate * 1.2)))
    return {name: np.concatenate(v) if v else np.empty(0) for name, v in out.items()}


def _gain(plan: Plan, rx: ReceiverConfig, rng: np.random.Generator, b: dict[str, Any], times: np.ndarray) -> Any:
    """Antenna gain (dB) seen by the ESM: scan pattern (VS), beam position per CPI (TAS), locked (STT)."""
    if plan.mode == 0:  # the beam moves < 0.02° in 8 HPRF pulses: evaluate every 8th pulse
        return np.repeat(plan.vs_gain(times[::8]), 8)[: len(times)]
    if plan.mode == 1:
        return b["gain"]
    n = len(times)
    gain = rng.normal(0.0, rx.stt_pa_noise_db, n) if rx.stt_pa_noise_db else np.zeros(n)
    if plan.et.conical:
        gain = gain + plan.et.conical_depth_db * np.sin(2 * np.pi * plan.et.conical_hz * times + plan.conical_phase)
    return gain


def dead_time_keep(t: np.ndarray, pw: np.ndarray, t_dead: float) -> np.ndarray:
    """Keep mask: a pulse inside ``PW_prev + t_dead`` of the previous *kept* detection is lost (exact greedy;
    the Python loop runs only over pulses that some earlier pulse could block)."""
    n = len(t)
    keep = np.ones(n, bool)
    if n < 2:
        return keep
    end = t + pw + t_dead
    prev_max = np.concatenate([[-np.inf], np.maximum.accumulate(end)[:-1]])
    amb = t < prev_max
    if not amb.any():
        return keep
    sure_end = np.maximum.accumulate(np.where(amb, -np.inf, end))
    run = -np.inf
    for i in np.flatnonzero(amb):
        if t[i] < max(sure_end[i - 1], run):
            keep[i] = False
        else:
            run = max(run, end[i])
    return keep


def _quant(x: np.ndarray, lsb: float) -> np.ndarray:
    return np.round(x / lsb) * lsb if lsb else x


def measure(cat: dict[str, np.ndarray], src: np.ndarray, d: Draws, rx: ReceiverConfig,
             rng: np.random.Generator) -> np.ndarray:  # fmt: skip
    """§2.4 step 5–6: measurement noise and quantisation, sort by measured TOA, TOA relative to the first."""
    n = len(src)
    toa = cat["t"] + (rng.normal(0.0, d.sigma_t, n) if d.sigma_t else 0.0)
    toa = _quant(toa, rx.toa_lsb_s)
    pw = cat["pw"] * (1 + rng.normal(0.0, rx.pw_rel_noise, n)) if rx.pw_rel_noise else cat["pw"]
    if rx.pw_abs_noise_s:
        pw = pw + rng.normal(0.0, rx.pw_abs_noise_s, n)
    pw = np.maximum(_quant(pw, rx.pw_lsb_s), rx.pw_min_s)
    rf = _quant(cat["rf"] + (rng.normal(0.0, d.sigma_f, n) if d.sigma_f else 0.0), rx.rf_lsb_mhz)
    pa = _quant(cat["pa"] + (rng.normal(0.0, rx.pa_noise_db, n) if rx.pa_noise_db else 0.0), rx.pa_lsb_db)
    order = np.argsort(toa, kind="stable")
    out = np.empty(n, PDW_DTYPE)
    out["toa"] = toa[order] - (toa[order[0]] if n else 0.0)
    out["rf"] = rf[order]
    out["pw"] = pw[order] * 1e6
    out["pa"] = pa[order]
    out["src"] = src[order]
    return out
