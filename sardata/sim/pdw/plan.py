"""The waveform plan of one sample (``radar.md`` §2.2–2.3): per-mode PRI/PW/CPI/RF laws and beam positions as
pure functions of the pulse index, so emission can run in blocks and jump over undetectable gaps."""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from sardata.sim.pdw.types import MIN_PRI_GAP_S, REGIMES, EmitterType
from sardata.sources.pdwsim import MODES


# ----------------------------------------------------------------------------------------------- waveform plan
def _round_pw(x: float, base: float) -> float:
    """PWs are multiples of the type's PW base (at least one base)."""
    return max(1, round(x / base)) * base


def _levels(rng: np.random.Generator, lo: float, hi: float, n: int, min_ratio: float = 1.05) -> list[float]:
    """``n`` levels in [lo, hi], pairwise ≥ 5 % apart, uniform over such configurations in log space (sorted
    uniform spare room + fixed gaps), in random cycling order. Too narrow a range → geometric spacing."""
    span, gap = math.log(hi / lo), math.log(min_ratio)
    room = span - (n - 1) * gap
    if room <= 0:
        logs = np.linspace(0.0, span, n)
    else:
        logs = np.sort(rng.uniform(0.0, room, n)) + np.arange(n) * gap
    return [float(x) for x in lo * np.exp(rng.permutation(logs))]


class Plan:
    """The mode's waveform for one sample: nominal PRI, PW, CPI and beam position of pulse index k.

    Pulse-index functions let emission run in blocks and jump over undetectable gaps without state beyond the
    lazily drawn per-CPI RF channels.
    """

    def __init__(self, et: EmitterType, mode: int, rng: np.random.Generator, law: str | None = None) -> None:
        self.et, self.mode, self.rng = et, mode, rng
        self.params: dict[str, Any] = {}
        self.jitter = 0.0
        getattr(self, f"_plan_{MODES[mode].lower()}")(law)
        self._rf_plan()
        self._scan_plan()

    # -------------------------------------------------------------- per-mode draws
    def _plan_vs(self, law: str | None) -> None:
        rng, et = self.rng, self.et
        self.regime = "hprf"
        lo, hi = et.pri_ranges_s["hprf"]
        r = rng.random()
        self.law = law or ("ds" if r < 0.8 else "sinusoidal" if r < 0.9 else "jitter")
        self.cpi = int(rng.integers(64, 513))
        duty = float(rng.uniform(0.05, 0.30))
        if self.law == "ds":
            self.levels = _levels(rng, lo, hi, int(rng.integers(1, 4)))
            self.pw_levels = [_round_pw(duty * p, et.pw_base_s) for p in self.levels]
        else:
            self.levels = [float(math.exp(rng.uniform(math.log(lo), math.log(hi))))]
            self.pw_levels = [_round_pw(duty * self.levels[0], et.pw_base_s)]
            self._law_extras(rng, jitter_max=0.20)
        self.params.update(duty=duty)

    def _plan_tas(self, law: str | None) -> None:
        rng, et = self.rng, self.et
        self.regime = "tas"
        lo, hi = et.pri_ranges_s["tas"]
        r = rng.random()
        self.law = law or ("ds" if r < 0.6 else "ds_stagger" if r < 0.9 else "sliding")
        self.cpi = int(rng.integers(16, 65))
        self.cpi_track = int(rng.integers(16, 65))
        self.n_search = int(rng.integers(2, 7))
        self.levels = _levels(rng, lo, hi, int(rng.integers(3, 9)))
        if self.law == "sliding":
            self._law_extras(rng, jitter_max=0.0)
        self.track_pri = float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
        pw = min(float(rng.uniform(1e-6, 15e-6)), 0.12 * min(self.levels + [self.track_pri]))
        self.pw_levels = [_round_pw(pw, et.pw_base_s)]
        self.track_pw = _round_pw(self.pw_levels[0] * float(rng.uniform(0.3, 1.0)), et.pw_base_s)
        self.params.update(n_search=self.n_search, cpi_track=self.cpi_track, track_pri_s=self.track_pri,
                           track_pw_s=self.track_pw)  # fmt: skip

    def _plan_stt(self, law: str | None) -> None:
        rng, et = self.rng, self.et
        self.regime = "hprf" if rng.random() < 0.5 else "stt_mprf"
        lo, hi = et.pri_ranges_s[self.regime]
        r = rng.random()
        self.law = law or ("constant" if r < 0.4 else "stagger" if r < 0.7 else "jitter" if r < 0.85
                           else "sliding" if r < 0.925 else "sinusoidal")  # fmt: skip
        self.cpi = int(rng.integers(32, 257))
        self.levels = [float(math.exp(rng.uniform(math.log(lo), math.log(hi))))]
        self._law_extras(rng, jitter_max=0.10)
        if self.regime == "hprf":
            duty = float(rng.uniform(0.05, 0.30))
            pw = duty * self.levels[0]
            self.params.update(duty=duty)
        else:
            pw = float(rng.uniform(0.5e-6, 10e-6))
        self.pw_levels = [_round_pw(min(pw, self.levels[0] * 0.3), et.pw_base_s)]

    def _law_extras(self, rng: np.random.Generator, jitter_max: float) -> None:
        """Parameters of the jitter / stagger / sliding / sinusoidal laws (drawn only for the law in use)."""
        lo, hi = REGIMES[self.regime]
        p = self.levels[0]
        if self.law == "jitter":
            self.jitter = float(rng.uniform(0.01, jitter_max))
        elif self.law == "stagger":
            r = np.asarray(self.et.stagger_ratios, float)
            smin, smax = lo / r.min(), hi / r.max()  # scale keeping every stagger PRI inside the mode range
            sub_lo, sub_hi = self.et.pri_ranges_s[self.regime]
            a, b = max(smin, sub_lo / r.mean()), min(smax, sub_hi / r.mean())
            scale = float(rng.uniform(a, b)) if a < b else float(rng.uniform(smin, smax))
            self.levels = [float(x) for x in r * scale]
            if rng.random() < 0.25:  # stagger + jitter combination
                self.law = "stagger_jitter"
                self.jitter = float(rng.uniform(0.01, 0.05))
        elif self.law == "sliding":
            ratio = float(rng.uniform(1.1, 2.0))
            pmin = min(max(p / math.sqrt(ratio), lo), hi / ratio)
            self.params.update(slide_min_s=pmin, slide_max_s=pmin * ratio, slide_len=int(rng.integers(16, 257)),
                               slide_shape="sawtooth" if rng.random() < 0.5 else "triangle")  # fmt: skip
        elif self.law == "sinusoidal":
            self.params.update(sin_amp=float(rng.uniform(0.02, 0.15)), sin_period=int(rng.integers(16, 257)),
                               sin_phase=float(rng.uniform(0, 2 * math.pi)))  # fmt: skip

    def _rf_plan(self) -> None:
        et, rng = self.et, self.rng
        m = len(et.hop_channels_mhz)
        self.rf_constant = et.rf_law == "fixed" or (self.mode == 2 and rng.random() < 0.5)
        self.rf_const_ch = int(rng.integers(m))
        self.rf_start = int(rng.integers(m))
        self.sweep_dir = 1 if rng.random() < 0.5 else -1
        self._cpi_ch = np.empty(0, np.int64)
        if et.rf_law == "fixed":
            self.rf_mode = "fixed"
        elif self.rf_constant:
            self.rf_mode = "constant_channel"
        elif et.rf_law == "sweep":
            self.rf_mode = "sweep"
        else:
            self.rf_mode = "cycle" if et.hop_order == "cycle" else "iid"

    def _scan_plan(self) -> None:
        et, rng = self.et, self.rng
        bw = et.beamwidth_deg
        self.theta_esm = float(rng.uniform(-et.sector_half_deg, et.sector_half_deg))
        self.el_esm = float(rng.uniform(-0.5, et.bars - 0.5)) * bw
        self.sweep_s = 2 * et.sector_half_deg / et.scan_rate_dps
        self.scan_phase_s = float(rng.uniform(0, self.sweep_s * et.bars * 2))
        self.n_az = int(math.floor(2 * et.sector_half_deg / bw)) + 1
        self.pos0 = int(rng.integers(self.n_az * et.bars))
        self.conical_phase = float(rng.uniform(0, 2 * math.pi))

    @functools.cached_property
    def mean_pri(self) -> float:
        """Mean nominal PRI (s): the time scale of gap jumps and of t_0 ~ U[0, P̄)."""
        mean = sum(self.levels) / len(self.levels)
        if self.mode == 1:
            s = self.n_search * self.cpi
            return (s * mean + self.cpi_track * self.track_pri) / (s + self.cpi_track)
        if self.law == "sliding":
            return 0.5 * (self.params["slide_min_s"] + self.params["slide_max_s"])
        return mean

    # -------------------------------------------------------------- per-pulse evaluation
    def block(self, k: np.ndarray) -> dict[str, np.ndarray]:
        """Nominal PRI (clipped to the regime), PW, CPI index, RF and antenna gain (TAS) of pulse indices ``k``."""
        lo, hi = REGIMES[self.regime]
        n = len(k)
        gain = None
        track = None
        if self.mode == 1:
            cyc_len = self.n_search * self.cpi + self.cpi_track
            cyc, off = np.divmod(k, cyc_len)
            track = off >= self.n_search * self.cpi
            sj = np.minimum(off // self.cpi, self.n_search - 1)
            search_ctr = cyc * self.n_search + sj
            pos = off - sj * self.cpi
            cpi_idx = cyc * (self.n_search + 1) + np.where(track, self.n_search, sj)
            if self.law == "sliding":
                pri = self._sliding(cyc * self.n_search * self.cpi + np.minimum(off, self.n_search * self.cpi))
            else:
                pri = np.asarray(self.levels)[search_ctr % len(self.levels)]
                if self.law == "ds_stagger":
                    r = np.asarray(self.et.stagger_ratios, float)
                    pri = pri * (r / r.mean())[pos % len(r)]
            pri = np.where(track, self.track_pri, pri)
            pw = np.where(track, self.track_pw, self.pw_levels[0])
            lo_ctr = int(search_ctr[0])
            per_ctr = self._tas_gain(np.arange(lo_ctr, int(search_ctr[-1]) + 1))  # one gain per search CPI
            gain = np.where(track, 0.0, per_ctr[search_ctr - lo_ctr])
        else:
            cpi_idx = k // self.cpi
            law = self.law
            if law == "ds":
                li = cpi_idx % len(self.levels)
                pri = np.asarray(self.levels)[li]
                pw = np.asarray(self.pw_levels)[li]
            else:
                pw = np.full(n, self.pw_levels[0])
                if law in ("stagger", "stagger_jitter"):
                    pri = np.asarray(self.levels)[k % len(self.levels)]
                elif law == "sliding":
                    pri = self._sliding(k)
                elif law == "sinusoidal":
                    p = self.params
                    pri = self.levels[0] * (1 + p["sin_amp"] * np.sin(2 * np.pi * k / p["sin_period"] + p["sin_phase"]))
                else:
                    pri = np.full(n, self.levels[0])
        if self.jitter:
            pri = pri * (1 + self.rng.uniform(-self.jitter, self.jitter, n))
        pri = np.clip(pri, lo, hi)
        if self.et.sigma_j0:
            pri = pri * (1 + self.rng.normal(0.0, self.et.sigma_j0, n))
        q = self.et.pri_quantum_s
        pri = np.maximum(np.round(pri / q) * q, pw + MIN_PRI_GAP_S)
        return {"pri": pri, "pw": pw, "rf": self._rf(cpi_idx), "gain": gain, "track": track}

    def _sliding(self, c: np.ndarray) -> np.ndarray:
        p = self.params
        n = p["slide_len"]
        if p["slide_shape"] == "sawtooth":
            frac = (c % n) / (n - 1)
        else:
            ph = c % (2 * (n - 1))
            frac = np.where(ph < n, ph, 2 * (n - 1) - ph) / (n - 1)
        return p["slide_min_s"] + (p["slide_max_s"] - p["slide_min_s"]) * frac

    def _rf(self, cpi_idx: np.ndarray) -> np.ndarray:
        ch = np.asarray(self.et.hop_channels_mhz)
        m = len(ch)
        mode = self.rf_mode
        if mode == "fixed":
            return np.full(len(cpi_idx), self.et.f_c_mhz)
        if mode == "constant_channel":
            return np.full(len(cpi_idx), ch[self.rf_const_ch])
        if mode == "sweep":
            return ch[(self.rf_start + self.sweep_dir * cpi_idx) % m]
        if mode == "cycle":
            return ch[np.asarray(self.et.hop_cycle)[(self.rf_start + cpi_idx) % m]]
        need = int(cpi_idx.max()) + 1 if len(cpi_idx) else 0
        if need > len(self._cpi_ch):  # i.i.d. channel per CPI, drawn lazily in CPI order
            self._cpi_ch = np.concatenate([self._cpi_ch, self.rng.integers(0, m, need - len(self._cpi_ch))])
        return ch[self._cpi_ch[cpi_idx]]

    def _gain_db(self, d_az: np.ndarray, d_el: np.ndarray | float) -> np.ndarray:
        bw, sll = self.et.beamwidth_deg, self.et.sidelobe_db
        x_az, x_el = 0.886 * d_az / bw, 0.886 * np.asarray(d_el) / bw
        g = 10 * np.log10(np.maximum(np.sinc(x_az) ** 2 * np.sinc(x_el) ** 2, 1e-30))  # no errstate: it is slow
        return np.where((np.abs(x_az) < 1) & (np.abs(x_el) < 1), np.maximum(g, sll), sll)

    def _tas_gain(self, search_ctr: np.ndarray) -> np.ndarray:
        p = (search_ctr + self.pos0) % (self.n_az * self.et.bars)
        az = -self.et.sector_half_deg + (p % self.n_az) * self.et.beamwidth_deg
        bar = p // self.n_az
        return self._gain_db(az - self.theta_esm, bar * self.et.beamwidth_deg - self.el_esm)

    def vs_gain(self, t: np.ndarray) -> np.ndarray:
        """Sector/raster scan gain at times ``t``: bidirectional sweeps, one sweep per bar."""
        et = self.et
        u = (t + self.scan_phase_s) / self.sweep_s
        m = np.floor(u)
        frac = u - m
        fwd = (m % 2) == 0
        theta = np.where(fwd, -et.sector_half_deg + 2 * et.sector_half_deg * frac,
                         et.sector_half_deg - 2 * et.sector_half_deg * frac)  # fmt: skip
        bar = m % et.bars
        return self._gain_db(theta - self.theta_esm, bar * et.beamwidth_deg - self.el_esm)

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {"pri_law": self.law, "regime": self.regime, "cpi": self.cpi,
                             "pri_levels_s": list(self.levels), "pw_levels_s": list(self.pw_levels),
                             "mean_pri_s": self.mean_pri, "rf_law": self.et.rf_law, "rf_mode": self.rf_mode}  # fmt: skip
        if self.jitter:
            d["jitter"] = self.jitter
        if self.rf_mode == "constant_channel":
            d["rf_channel"] = self.rf_const_ch
        elif self.rf_mode in ("sweep", "cycle"):
            d["rf_start"] = self.rf_start
            if self.rf_mode == "sweep":
                d["sweep_dir"] = self.sweep_dir
        d.update(self.params)
        return d

    def scan_dict(self) -> dict[str, Any]:
        kind = {0: "sector" if self.et.bars == 1 else "raster", 1: "electronic_steps", 2: "locked"}[self.mode]
        d: dict[str, Any] = {"kind": kind, "theta_esm_deg": self.theta_esm, "el_esm_deg": self.el_esm}
        if self.mode == 0:
            d["phase_s"] = self.scan_phase_s
        elif self.mode == 1:
            d["pos0"] = self.pos0
        elif self.et.conical:
            d.update(conical_depth_db=self.et.conical_depth_db, conical_hz=self.et.conical_hz,
                     conical_phase=self.conical_phase)  # fmt: skip
        return d
