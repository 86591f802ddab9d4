"""Emitter types (``radar.md`` §2.1) and the constants every part of the simulator shares: drawn once per
type from ``SeedSequence([global_seed, type_id])``, so a type is the same whoever asks for it."""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from sardata.errors import ConfigError

#: Bumped whenever the same key would give different pulses (recorded in every file and meta).
SIM_VERSION = "2.0.0"  # 2.0.0: stop="intercept" is the default (radar.md §2.4.6 revised)

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
