"""PDW simulator of multifunction-radar work modes (``radar.md`` §2): emitter types × modes → intercepted trains.

A sample is one intercepted pulse train of one emitter in one mode (0 VS, 1 TAS, 2 STT), returned as the
``pdw.npy`` structured array of the data contract (``toa`` <f8 s relative to the first pulse, ``rf`` <f4 MHz,
``pw`` <f4 µs, ``pa`` <f4 dBm, ``src`` <i2: −1 spurious, 0 emitter, 1 interferer) plus a JSON-safe meta dict.

Seeds (``radar.md`` §2.5). Every per-sample draw comes from ``default_rng(SeedSequence([global_seed, type_id, mode,
sample_idx]))``, so a sample regenerates byte for byte from its key. What is byte-exact: the
``pdw.npy`` pulses (PRIs are quantised, outputs are float32 of float64 sums) and every integer, string and
seed in the meta. What is not: the meta's derived floats (``pri_levels_s``, ``mean_pri_s``, …) come from
``np.exp``/``np.log`` whose last bit depends on numpy's SIMD kernels and the CPU, so a regenerated meta is
compared with :func:`meta_matches` (relative tolerance :data:`META_RTOL`), never byte for byte. Emitter types are drawn once from
``SeedSequence([global_seed, type_id])``; the id ranges keep the streams disjoint: pretraining types
``0 … 999_999``, downstream emitters ``DOWNSTREAM_BASE + e`` (unseen types), interferer types
``INTERFERER_BASE + j``, and the confusable family ``SeedSequence([global_seed, FAMILY_ID])``.

Decisions where the spec is silent (each is a constant or a flag below):

* **Type vs sample draws.** Type-level: everything in §2.1 plus, per PRI regime (``hprf`` 3–12 µs, ``tas``
  40–150 µs, ``stt_mprf`` 20–100 µs), a type-specific PRI sub-range (ratio U[1.5, 2.5], log-uniform placement),
  so emitters differ in PRF while modes keep their regimes. Per sample: the mode's law, levels, CPI lengths,
  PWs, scan phase, ESM bearing and every receiver setting.
* **Coherent modes.** All three modes hold RF inside a CPI, so ``p2p_hop`` types hop per CPI here (as
  ``cpi_hop``); the type law name is still recorded.
* **Intercept start.** The ESM records from its first detectable pulse: in VS (continuous scan) emission is
  skipped forward to the first instant the beam can reach the receiver (ML + gain ≥ S_rx − 3 dB, solved per
  sweep from the sinc² main lobe; sidelobes count as reachable at ≥ S_rx − 2 dB). Later gaps (beam away,
  sidelobes below that level) are skipped the same way, advancing the pulse index by gap / mean PRI: skipped
  pulses would be detected with probability < 2.3 % (sidelobes) or < 0.14 % (main-lobe skirts), and the exact
  length of such a gap is approximate. T_max = 2 s counts from the intercept start.
* **Stopping.** Emission stops when ``n_pulses`` emitter pulses survived detection and random misses; dead time
  is applied once at the end to the merged emitter + interferer stream (so an interferer may cost a few
  emitter pulses) — interferer pulses are real pulses, so they go through detection, dead time and misses
  before the spurious pulses (§2.4 steps 1–3, then 4). The interferer emits at most ``2 · n_pulses`` pulses
  (a burst of another emitter, not a second full train); one train emits at most 200,000 pulses.
* **Gilbert–Elliott bursts** are used by a sample with probability ``p_burst`` (0.25); bursts start with
  p_enter 0.01 per pulse, geometric length of mean U[2, 20], drawn per emission block.
* **Nominal PRIs are clipped to the mode range** before instability and rounding, so jitter/sinusoid/stagger
  never leave the regime (mode identity lives in the PRI regime).
* **TAS**: search CPIs step the beam one beamwidth at a time across the sector (``bars`` rows, raster order);
  track CPIs are at the main lobe with their own PRI and PW (search PW × U[0.3, 1]). Sliding advances on search
  pulses only. **VS** uses a bidirectional sector scan, one sweep per bar.
* **Datasets** (:func:`write_dataset`): HDF5 files with a flat ``pulses`` table + ``offsets`` (a flat table
  stays chunked and fast whatever the train lengths; no vlen compound arrays), an ``index`` table and one JSON
  string of meta per train. Pool: one file per ``types_per_file`` types (the unit of parallel writing and of
  ingest). Downstream: one file per mode; emitters ``e0…e6`` = type ids ``DOWNSTREAM_BASE + e``; the long-tail
  class→count permutation (identity unless ``permute_seed``) is shared by the three modes; train rows use
  ``sample_idx`` 0…count−1 and test rows ``TEST_INDEX_BASE + j``, so changing the train recipe never changes a
  test train. Interferers are drawn from their own 1000-type stream, not from the pool's types.
* **Antenna**: gain = sinc² main lobe (``sinc²(0.886 Δ/θ₃)``, in azimuth and elevation, dB added) inside the
  first null, sidelobe floor SLL elsewhere; the ESM sits at a uniform bearing in the sector and a uniform
  elevation over the bars.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from sardata.errors import ConfigError

PDW_DTYPE = np.dtype([("toa", "<f8"), ("rf", "<f4"), ("pw", "<f4"), ("pa", "<f4"), ("src", "<i2")])
MODES = ("VS", "TAS", "STT")
SIM_VERSION = "1.0.0"

DOWNSTREAM_BASE = 1_000_000
FAMILY_ID = 2_000_000
INTERFERER_BASE = 3_000_000
N_INTERFERER_TYPES = 1000

BANDS = (("L", 1000.0, 2000.0), ("S", 2000.0, 4000.0), ("C", 4000.0, 8000.0), ("X", 8000.0, 12000.0),
         ("Ku", 12000.0, 18000.0))  # fmt: skip
BAND_P = (0.10, 0.15, 0.15, 0.45, 0.15)
RF_LAWS = ("fixed", "cpi_hop", "p2p_hop", "sweep")
RF_LAW_P = (0.35, 0.30, 0.15, 0.20)
PRI_QUANTA_S = (10e-9, 25e-9, 50e-9, 100e-9)
#: PRI regimes (seconds): VS and STT-HPRF share ``hprf``.
REGIMES = {"hprf": (3e-6, 12e-6), "tas": (40e-6, 150e-6), "stt_mprf": (20e-6, 100e-6)}
MIN_PRI_GAP_S = 0.5e-6  # PRI_k ≥ PW_k + 0.5 µs
MAX_INTERFERER_FACTOR = 2
#: Relative tolerance for the derived floats of a regenerated meta (a few ULP of float64 is ~1e-15; 1e-9 is far
#: below any physical meaning and far above any SIMD-kernel drift).
META_RTOL = 1e-9


def meta_matches(a: Any, b: Any, rtol: float = META_RTOL) -> bool:
    """True if two meta values are equal, floats within ``rtol`` (ints, strings, bools, keys and lengths exact)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(meta_matches(a[k], b[k], rtol) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(meta_matches(x, y, rtol) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=rtol, abs_tol=0.0)
    return type(a) is type(b) and a == b


#: PRI laws each mode can draw (``law=`` may force one of them)
MODE_LAWS = {0: ("ds", "sinusoidal", "jitter"), 1: ("ds", "ds_stagger", "sliding"),
             2: ("constant", "stagger", "jitter", "sliding", "sinusoidal")}  # fmt: skip
SIDELOBE_MARGIN_DB = 2.0
MAIN_LOBE_MARGIN_DB = 3.0
MAX_EMITTED = 200_000  # emitted-pulse budget of one train (a train that hits it is kept, truncated)


# ----------------------------------------------------------------------------------------------- emitter types
@dataclass(frozen=True)
class EmitterType:
    """Everything drawn once per emitter type (``radar.md`` §2.1), in SI units except RF (MHz) and angles (°)."""

    type_id: int
    band: str
    f_c_mhz: float
    rf_law: str
    hop_channels_mhz: tuple[float, ...]
    hop_order: str  # iid | cycle
    hop_cycle: tuple[int, ...]
    pri_quantum_s: float
    sigma_j0: float  # relative PRI instability (fraction)
    stagger_ratios: tuple[int, ...]
    pw_base_s: float
    beamwidth_deg: float
    sidelobe_db: float
    scan_rate_dps: float
    sector_half_deg: float
    bars: int
    conical: bool
    conical_depth_db: float
    conical_hz: float
    pri_ranges_s: dict[str, tuple[float, float]] = field(default_factory=dict)
    confusable: bool = False

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["pri_ranges_s"] = {k: list(v) for k, v in sorted(self.pri_ranges_s.items())}
        for k in ("hop_channels_mhz", "hop_cycle", "stagger_ratios"):
            d[k] = list(d[k])
        return d


@dataclass(frozen=True)
class _Family:
    """Shared draws of a confusable downstream set: one band, one centre, overlapping PRI sub-ranges."""

    band: int
    f_c_mhz: float
    pri_ranges_s: dict[str, tuple[float, float]]


def _subrange(rng: np.random.Generator, lo: float, hi: float) -> tuple[float, float]:
    ratio = min(float(rng.uniform(1.5, 2.5)), hi / lo)
    a = math.exp(rng.uniform(math.log(lo), math.log(hi / ratio)))
    return a, min(hi, a * ratio)


@functools.lru_cache(maxsize=64)
def _family(global_seed: int) -> _Family:
    rng = np.random.default_rng(np.random.SeedSequence([global_seed, FAMILY_ID]))
    band = int(rng.choice(len(BANDS), p=BAND_P))
    _, lo, hi = BANDS[band]
    f_c = float(rng.uniform(lo + 0.1 * (hi - lo), hi - 0.1 * (hi - lo)))
    return _Family(band, f_c, {k: _subrange(rng, *v) for k, v in REGIMES.items()})


@functools.lru_cache(maxsize=4096)
def draw_type(global_seed: int, type_id: int, confusable: bool = False) -> EmitterType:
    """Draw emitter type ``type_id`` from its own stream ``SeedSequence([global_seed, type_id])``.

    ``confusable=True`` (downstream sets) puts the type in the family's band, within ±60 MHz of the family
    centre, with PRI sub-ranges that overlap the family's (each edge ×U[0.9, 1.1]).
    """
    if type_id < 0:
        raise ConfigError(f"type_id must be ≥ 0, got {type_id}")
    rng = np.random.default_rng(np.random.SeedSequence([global_seed, type_id]))
    band = int(rng.choice(len(BANDS), p=BAND_P))
    f_c = float(rng.uniform(BANDS[band][1], BANDS[band][2]))
    ranges = {k: _subrange(rng, *v) for k, v in REGIMES.items()}
    if confusable:
        fam = _family(global_seed)
        band, f_c = fam.band, fam.f_c_mhz + float(rng.uniform(-60.0, 60.0))
        ranges = {}
        for k, (lo, hi) in fam.pri_ranges_s.items():
            a, b = lo * rng.uniform(0.9, 1.1), hi * rng.uniform(0.9, 1.1)
            full = REGIMES[k]
            ranges[k] = (max(full[0], a), min(full[1], max(b, a * 1.2)))
    rf_law = RF_LAWS[int(rng.choice(4, p=RF_LAW_P))]
    m = int(rng.integers(3, 17))
    spacing = float(rng.uniform(5.0, 50.0))
    channels = tuple(float(f_c + (i - (m - 1) / 2) * spacing) for i in range(m))
    hop_order = "iid" if rng.random() < 0.5 else "cycle"
    cycle = tuple(int(i) for i in rng.permutation(m))
    q = float(PRI_QUANTA_S[int(rng.integers(4))])
    sigma_j0 = float(rng.uniform(0.0, 0.003))
    k = int(rng.integers(2, 8))
    ratios = tuple(int(r) for r in rng.choice(np.arange(20, 41), size=k, replace=False))
    pw_base = float(math.exp(rng.uniform(math.log(0.1e-6), math.log(1e-6))))
    conical = bool(rng.random() < 0.2)
    return EmitterType(
        type_id=type_id, band=BANDS[band][0], f_c_mhz=f_c, rf_law=rf_law, hop_channels_mhz=channels,
        hop_order=hop_order, hop_cycle=cycle, pri_quantum_s=q, sigma_j0=sigma_j0, stagger_ratios=ratios,
        pw_base_s=pw_base, beamwidth_deg=float(rng.uniform(1.5, 6.0)), sidelobe_db=float(rng.uniform(-35, -20)),
        scan_rate_dps=float(rng.uniform(30, 120)), sector_half_deg=float(rng.uniform(20, 60)),
        bars=int(rng.integers(1, 5)), conical=conical, conical_depth_db=float(rng.uniform(0.5, 3.0)),
        conical_hz=float(rng.uniform(20, 100)), pri_ranges_s=ranges, confusable=confusable,
    )  # fmt: skip


def downstream_type_ids(n: int = 7) -> list[int]:
    """Type ids of the ``n`` unseen downstream emitters (a stream disjoint from the pretraining types)."""
    return [DOWNSTREAM_BASE + e for e in range(n)]


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


def _u(rng: np.random.Generator, r: tuple[float, float]) -> float:
    return float(r[0]) if r[0] == r[1] else float(rng.uniform(r[0], r[1]))


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


class _Plan:
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


# ----------------------------------------------------------------------------------------------- emission
@dataclass
class _Draws:
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


def _vs_intervals(plan: _Plan, ml: float, s_rx: float, t_until: float) -> list[tuple[float, float]]:
    """Times in [0, ``t_until``] at which an emitter in VS can be detected.

    Sidelobes at ≥ S_rx − 2 dB (detection probability ≥ 2.3 % with 1 dB noise): always. Otherwise one interval
    per sweep whose bar reaches the receiver, centred on the instant the beam crosses the ESM bearing, as wide
    as the main-lobe angle where ML + gain ≥ S_rx − 3 dB (read from a sinc² table). Pulses outside the intervals
    (detection probability < 2.3 % resp. < 0.14 %) are not simulated — this bounds the cost of slow scans.
    """
    et = plan.et
    need = s_rx - MAIN_LOBE_MARGIN_DB - ml
    if ml + et.sidelobe_db >= s_rx - SIDELOBE_MARGIN_DB:
        return [(0.0, math.inf)]
    sweep, w = plan.sweep_s, et.sector_half_deg
    m = np.arange(math.floor(plan.scan_phase_s / sweep), math.floor((plan.scan_phase_s + t_until) / sweep) + 1)
    bar = m % et.bars
    x_el = 0.886 * np.abs(bar * et.beamwidth_deg - plan.el_esm) / et.beamwidth_deg
    g_el = np.where(x_el < 1, np.interp(x_el, _X, _G_TABLE), -np.inf)
    need_az = need - g_el
    idx = np.minimum(np.searchsorted(-_G_TABLE, -need_az, side="right"), len(_X) - 1)
    x_max = np.where(need_az <= 0, _X[idx], -1.0)
    half = x_max * et.beamwidth_deg / 0.886 / et.scan_rate_dps
    frac = np.where(m % 2 == 0, (plan.theta_esm + w) / (2 * w), (w - plan.theta_esm) / (2 * w))
    centre = (m + frac) * sweep - plan.scan_phase_s
    ok = (x_max >= 0) & (centre + half > 0) & (centre - half < t_until)
    return [(max(0.0, float(c - h)), float(c + h)) for c, h in zip(centre[ok], half[ok], strict=True)]


def _emit(plan: _Plan, rx: ReceiverConfig, d: _Draws, ml: float, rng: np.random.Generator,
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


def _gain(plan: _Plan, rx: ReceiverConfig, rng: np.random.Generator, b: dict[str, Any], times: np.ndarray) -> Any:
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


def _dead_time(t: np.ndarray, pw: np.ndarray, t_dead: float) -> np.ndarray:
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
    plan = _Plan(et, mode, rng, law)
    d = _Draws(
        ml=_u(rng, rx.ml_dbm), s_rx=_u(rng, rx.sensitivity_dbm), t_dead=_u(rng, rx.dead_time_s),
        p_miss=_u(rng, rx.p_miss), burst_len=_u(rng, rx.burst_mean_len) if rng.random() < rx.p_burst else None,
        r_s=_u(rng, rx.spurious_rate), interferer=bool(rng.random() < rx.p_interferer),
        sigma_t=_u(rng, rx.sigma_toa_s), sigma_f=_u(rng, rx.sigma_rf_mhz),
    )  # fmt: skip
    pbar = plan.mean_pri
    until = (2 * et.bars + 2) * plan.sweep_s + t_max if mode == 0 else t_max
    ivs = _vs_intervals(plan, d.ml, d.s_rx, until) if mode == 0 else [(0.0, math.inf)]
    t_start = ivs[0][0] if ivs else 0.0
    em = _emit(plan, rx, d, d.ml, rng, ivs, t_start + float(rng.uniform(0, pbar)), t_start + t_max, n_pulses,
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
        rel = _u(irng, rx.interferer_rel_db)
        iplan = _Plan(draw_type(global_seed, i_type), i_mode, irng)
        t0, t1 = float(em["t"][0]), float(em["t"][-1])
        iivs = _vs_intervals(iplan, d.ml + rel, d.s_rx, t1) if i_mode == 0 else [(0.0, math.inf)]
        ie = _emit(iplan, rx, d, d.ml + rel, irng, iivs, t0 - float(irng.uniform(0, iplan.mean_pri)), t1, None,
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
    keep = _dead_time(cat["t"], cat["pw"], d.t_dead) & ~cat["miss"].astype(bool)
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
    pdw = _measure(cat, src, d, rx, rng)
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


def _quant(x: np.ndarray, lsb: float) -> np.ndarray:
    return np.round(x / lsb) * lsb if lsb else x


def _measure(cat: dict[str, np.ndarray], src: np.ndarray, d: _Draws, rx: ReceiverConfig,
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


# ----------------------------------------------------------------------------------------------- datasets
#: HDF5 layout written by this module and read by the ``pdwsim`` source.
H5_FORMAT = "sardata-pdwsim"
H5_FORMAT_VERSION = 1
INDEX_DTYPE = np.dtype([("type_id", "<i4"), ("mode", "i1"), ("sample_idx", "<i8"), ("label", "<i2"),
                        ("split", "S12")])  # fmt: skip
LONGTAIL_COUNTS = (100, 50, 25, 15, 10, 5, 1)
TEST_TOTAL = 200
TEST_INDEX_BASE = 1_000_000  # test sample_idx = TEST_INDEX_BASE + j: independent of the train counts


@dataclass(frozen=True)
class SampleKey:
    """One row of a dataset plan: the simulator key plus where the sample goes."""

    type_id: int
    mode: int
    sample_idx: int
    split: str = "unlabelled"
    label: int = -1


@dataclass(frozen=True)
class FileJob:
    """One HDF5 file of a dataset: its rows, simulated and written by one worker."""

    rel: str
    keys: tuple[SampleKey, ...]
    global_seed: int
    confusable: bool = False
    n_pulses: int = 576
    t_max: float = 2.0
    classes: tuple[str, ...] = ()
    recipe: str = "{}"
    compression: str | None = None  # "gzip" (level 1, +shuffle) ≈ halves the files for ≈25 % more CPU


def pool_plan(n_types: int = 300, per_type_mode: int = 8, types_per_file: int = 10) -> list[list[SampleKey]]:
    """Pretraining pool ``n_types × 3 modes × per_type_mode`` as rows grouped into files of ``types_per_file``
    types (files are the unit of parallel writing and of ingest)."""
    if n_types < 1 or per_type_mode < 1 or types_per_file < 1 or n_types > DOWNSTREAM_BASE:
        raise ConfigError(f"pool: need 1 ≤ n_types ≤ {DOWNSTREAM_BASE}, per_type_mode ≥ 1, types_per_file ≥ 1")
    files = []
    for first in range(0, n_types, types_per_file):
        files.append([SampleKey(t, m, i) for t in range(first, min(n_types, first + types_per_file))
                      for m in range(3) for i in range(per_type_mode)])  # fmt: skip
    return files


def split_test_counts(n_classes: int, total: int = TEST_TOTAL, per_class: bool = False) -> list[int]:
    """Test samples per class and mode: ``total`` split as evenly as possible, earlier classes getting the
    remainder (200 over 7 → 29, 29, 29, 29, 28, 28, 28); ``per_class=True`` → ``total`` for every class."""
    if per_class:
        return [total] * n_classes
    q, r = divmod(total, n_classes)
    return [q + (c < r) for c in range(n_classes)]


def longtail_counts(global_seed: int, counts: tuple[int, ...] = LONGTAIL_COUNTS,
                    permute_seed: int | None = None) -> list[int]:  # fmt: skip
    """Train samples per class (same for every mode): class c gets ``counts[perm[c]]``; the permutation is the
    identity unless ``permute_seed`` is given (``SeedSequence([global_seed, permute_seed, 7])``)."""
    if permute_seed is None:
        return list(counts)
    perm = np.random.default_rng(np.random.SeedSequence([global_seed, permute_seed, len(counts)])).permutation(
        len(counts)
    )
    return [int(counts[p]) for p in perm]


def downstream_plan(global_seed: int = 0, counts: tuple[int, ...] = LONGTAIL_COUNTS, test_total: int = TEST_TOTAL,
                    test_per_class: bool = False, permute_seed: int | None = None) -> list[list[SampleKey]]:  # fmt: skip
    """Cross-mode downstream set (``radar.md`` §2.5.2): ``len(counts)`` unseen emitters × 3 modes, one file per
    mode holding that mode's long-tailed train rows and its test rows. Labels are emitter indices (``e<k>``)."""
    n = len(counts)
    ids = downstream_type_ids(n)
    train = longtail_counts(global_seed, counts, permute_seed)
    test = split_test_counts(n, test_total, test_per_class)
    files = []
    for m in range(3):
        rows = [SampleKey(ids[c], m, j, "train", c) for c in range(n) for j in range(train[c])]
        rows += [SampleKey(ids[c], m, TEST_INDEX_BASE + j, "test", c) for c in range(n) for j in range(test[c])]
        files.append(rows)
    return files


def simulate_key(job: FileJob, key: SampleKey, receiver: ReceiverConfig | None = None) -> tuple[np.ndarray, dict]:
    """Simulate one planned row (the regeneration entry point of integrity checks)."""
    return simulate(job.global_seed, key.type_id, key.mode, key.sample_idx, receiver=receiver,
                    n_pulses=job.n_pulses, t_max=job.t_max, confusable=job.confusable)  # fmt: skip


def write_h5(path: str | Any, job: FileJob, trains: list[np.ndarray], metas: list[dict]) -> None:
    """Write one dataset file: a flat ``pulses`` table (chunked), ``offsets`` (n + 1), the ``index`` table and
    per-sample ``meta`` JSON strings. Temp file + atomic rename; no timestamps, so bytes are reproducible."""
    import json

    import h5py

    from sardata.atomic import atomic_path

    n = len(job.keys)
    lengths = np.fromiter((len(t) for t in trains), np.int64, n)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    pulses = np.concatenate(trains) if trains else np.empty(0, PDW_DTYPE)
    index = np.empty(n, INDEX_DTYPE)
    index["type_id"] = [k.type_id for k in job.keys]
    index["mode"] = [k.mode for k in job.keys]
    index["sample_idx"] = [k.sample_idx for k in job.keys]
    index["label"] = [k.label for k in job.keys]
    index["split"] = [k.split.encode() for k in job.keys]
    types = sorted({k.type_id for k in job.keys})
    comp = {"compression": job.compression, "shuffle": True} if job.compression else {}
    if job.compression == "gzip":
        comp["compression_opts"] = 1  # fast: the writer must keep up with the simulator
    with atomic_path(path) as tmp, h5py.File(tmp, "w", libver=("earliest", "v108"), track_order=False) as f:
        f.create_dataset("pulses", data=pulses, chunks=(max(1, min(len(pulses), 65536)),), track_times=False, **comp)
        f.create_dataset("offsets", data=offsets, track_times=False)
        f.create_dataset("index", data=index, track_times=False)
        f.create_dataset("meta", data=[json.dumps(m, sort_keys=True, separators=(",", ":"), allow_nan=False)
                                       for m in metas], dtype=h5py.string_dtype("utf-8"), track_times=False)  # fmt: skip
        f.attrs["format"] = H5_FORMAT
        f.attrs["format_version"] = H5_FORMAT_VERSION
        f.attrs["sim_version"] = SIM_VERSION
        f.attrs["global_seed"] = job.global_seed
        f.attrs["classes"] = json.dumps(list(job.classes))
        f.attrs["recipe"] = job.recipe
        f.attrs["types"] = json.dumps([draw_type(job.global_seed, t, job.confusable).to_dict() for t in types],
                                      sort_keys=True, separators=(",", ":"))  # fmt: skip


def _done(path: Any, job: FileJob) -> bool:
    """A finished file of the same job (same recipe, rows and keys) is kept: reruns resume. Files only ever
    appear complete (atomic rename), so a file that exists and matches is whole."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("recipe") != job.recipe or f.attrs.get("format") != H5_FORMAT:
                return False
            idx = f["index"][()]
    except (OSError, KeyError):
        return False
    keys = [(k.type_id, k.mode, k.sample_idx) for k in job.keys]
    return len(idx) == len(keys) and list(zip(idx["type_id"].tolist(), idx["mode"].tolist(),
                                              idx["sample_idx"].tolist(), strict=True)) == keys  # fmt: skip


def run_job(job: FileJob, out: str | Any) -> int:
    """Simulate every row of ``job`` and write ``out/job.rel`` (skipped when an identical finished file is
    there); returns the number of rows."""
    from pathlib import Path

    if (Path(out) / job.rel).exists() and _done(Path(out) / job.rel, job):
        return len(job.keys)
    trains, metas = [], []
    for key in job.keys:
        pdw, meta = simulate_key(job, key)
        meta["split"] = key.split
        trains.append(pdw)
        metas.append(meta)
    write_h5(Path(out) / job.rel, job, trains, metas)
    return len(job.keys)


def _run_job_star(args: tuple[FileJob, str]) -> int:
    return run_job(*args)


def run_jobs(jobs: list[FileJob], out: str | Any, workers: int = 2, progress: Any = None) -> int:
    """Write ``jobs`` with ``workers`` processes (fork where available); ``progress(done_rows, total_rows)``."""
    import multiprocessing as mp

    total = sum(len(j.keys) for j in jobs)
    done = 0
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            done += run_job(job, out)
            if progress:
                progress(done, total)
        return done
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    with ctx.Pool(min(workers, len(jobs))) as pool:
        for n in pool.imap_unordered(_run_job_star, [(j, str(out)) for j in jobs]):
            done += n
            if progress:
                progress(done, total)
    return done


def write_dataset(
    out: str | Any,
    *,
    kind: str = "pool",
    global_seed: int = 0,
    n_types: int = 300,
    per_type_mode: int = 8,
    types_per_file: int = 10,
    confusable: bool = True,
    test_per_class: bool = False,
    permute_seed: int | None = None,
    counts: tuple[int, ...] = LONGTAIL_COUNTS,
    test_total: int = TEST_TOTAL,
    n_pulses: int = 576,
    t_max: float = 2.0,
    compression: str | None = None,
    workers: int = 2,
    progress: Any = None,
) -> dict[str, Any]:
    """Write the pretraining pool (``kind="pool"``: ``out/pool/pdw-pool-tNNNNNN.h5``) or the cross-mode downstream
    set (``kind="downstream"``: ``out/downstream/pdw-downstream-{vs,tas,stt}.h5``) plus ``out/<kind>-types.json``
    (the recipe and every type's drawn parameters). Ingest with ``sardata ingest pdwsim out/<kind>``.

    Files are uncompressed by default: the simulator is the bottleneck and ingest copies the trains anyway;
    ``compression="gzip"`` (level 1 + shuffle) makes files ≈2.3× smaller for ≈0.35 ms CPU per train. A rerun
    into the same directory keeps finished files of the same recipe (resume)."""
    import json
    from pathlib import Path

    from sardata.atomic import atomic_write_bytes

    recipe = {"kind": kind, "global_seed": global_seed, "n_pulses": n_pulses, "t_max_s": t_max,
              "sim_version": SIM_VERSION}  # fmt: skip
    if kind == "pool":
        recipe.update(n_types=n_types, per_type_mode=per_type_mode, types_per_file=types_per_file)
        groups = pool_plan(n_types, per_type_mode, types_per_file)
        rels = [f"pool/pdw-pool-t{g[0].type_id:06d}.h5" for g in groups]
        classes: tuple[str, ...] = ()
        confusable = False
    elif kind == "downstream":
        recipe.update(confusable=confusable, test_per_class=test_per_class, permute_seed=permute_seed,
                      counts=list(counts), test_total=test_total)  # fmt: skip
        groups = downstream_plan(global_seed, counts, test_total, test_per_class, permute_seed)
        rels = [f"downstream/pdw-downstream-{MODES[m].lower()}.h5" for m in range(3)]
        classes = tuple(f"e{c}" for c in range(len(counts)))
    else:
        raise ConfigError(f"dataset kind {kind!r}; choose pool or downstream")
    rjson = json.dumps(recipe, sort_keys=True, separators=(",", ":"))
    jobs = [FileJob(rel, tuple(g), global_seed, confusable, n_pulses, t_max, classes, rjson, compression)
            for rel, g in zip(rels, groups, strict=True)]  # fmt: skip
    out = Path(out)
    n = run_jobs(jobs, out, workers, progress)
    type_ids = sorted({k.type_id for g in groups for k in g})
    doc = {"recipe": recipe, "classes": list(classes), "files": rels,
           "types": [draw_type(global_seed, t, confusable).to_dict() for t in type_ids]}  # fmt: skip
    atomic_write_bytes(out / f"{kind}-types.json", json.dumps(doc, sort_keys=True, indent=1).encode())
    return {"samples": n, "files": len(jobs), "root": str(out / kind), "recipe": recipe}
