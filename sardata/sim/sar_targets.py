"""Synthetic SAR target chips for the embedded demo and tests.

Four vehicle-like shapes on speckled clutter, each with a radar shadow and a few bright point scatterers:
a plausible stand-in for MSTAR chips that needs no download. Amplitude = sqrt(reflectivity × Exp(1)) —
single-look, fully developed speckle (intensity gamma-distributed with shape 1). The shapes borrow four MSTAR
class ids so the data goes through the real MSTAR adapter unchanged:

=========  =====================================================
``t72``    tank: hull rectangle + round turret + gun barrel
``btr70``  wheeled carrier: long rounded hull
``zil131`` truck: cab and a longer cargo bed with a gap
``d7``     bulldozer: short hull + wide blade in front
=========  =====================================================

Everything derives from ``numpy.random.SeedSequence([seed, class, index])``, so any chip regenerates alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

SHAPES = ("t72", "btr70", "zil131", "d7")
TARGET_TYPE = {"t72": "t72_tank", "btr70": "btr70_transport", "zil131": "zil131_truck", "d7": "d7_bulldozer"}
FOLDER = {"t72": "T72", "btr70": "BTR70", "zil131": "ZIL131", "d7": "D7"}
SPLITS = (("train", 17), ("test", 15))


def _mask(shape: str, u: np.ndarray, v: np.ndarray, scale: float) -> np.ndarray:
    """Target footprint in target coordinates (u along the hull, v across), sizes in pixels × scale."""

    def box(u0: float, u1: float, v0: float, v1: float) -> np.ndarray:
        return (u >= u0 * scale) & (u <= u1 * scale) & (v >= v0 * scale) & (v <= v1 * scale)

    if shape == "t72":
        turret = (u - 1 * scale) ** 2 + v**2 <= (4.5 * scale) ** 2
        return box(-11, 11, -5, 5) | turret | box(3, 18, -0.8, 0.8)
    if shape == "btr70":
        return (np.abs(u) / (14 * scale)) ** 4 + (np.abs(v) / (4.5 * scale)) ** 4 <= 1
    if shape == "zil131":
        return box(-14, 5, -4.5, 4.5) | box(7, 13, -4, 4)
    if shape == "d7":
        return box(-8, 7, -5, 5) | box(9, 11, -9, 9)
    raise ValueError(f"unknown shape {shape!r}; choose from {SHAPES}")


@dataclass(frozen=True)
class Chip:
    magnitude: np.ndarray  # (H, W) float32 linear amplitude
    phase: np.ndarray  # (H, W) float32 in [0, 2π)
    azimuth_deg: float
    shape: str


def render_chip(
    shape: str, height: int, width: int, rng: np.random.Generator, azimuth_deg: float | None = None
) -> Chip:
    """One speckled chip of ``shape`` at a random (or given) azimuth."""
    az = float(rng.uniform(0, 360)) if azimuth_deg is None else azimuth_deg
    scale = float(rng.uniform(0.85, 1.15)) * min(height, width) / 64
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    yy -= (height - 1) / 2 + rng.normal(0, 1.5)
    xx -= (width - 1) / 2 + rng.normal(0, 1.5)
    th = np.deg2rad(az)
    u, v = xx * np.cos(th) + yy * np.sin(th), -xx * np.sin(th) + yy * np.cos(th)
    target = _mask(shape, u, v, scale)
    # shadow: the footprint projected away from the radar (down-range = +rows)
    shadow = np.zeros_like(target)
    for dy in range(2, int(8 * scale) + 2):
        shadow[dy:] |= target[:-dy]
    shadow &= ~target
    clutter = 0.004 * np.exp(rng.normal(0, 0.25, (height, width)))  # mildly textured ground
    refl = clutter * np.where(shadow, 0.08, 1.0) + np.where(target, 0.06, 0.0)
    ys, xs = np.nonzero(target)
    if len(ys):
        pick = rng.choice(len(ys), size=min(len(ys), int(rng.integers(4, 9))), replace=False)
        refl[ys[pick], xs[pick]] += rng.uniform(0.5, 2.0, len(pick))  # dominant scatterers
    intensity = refl * rng.exponential(1.0, (height, width))
    magnitude = np.sqrt(intensity).astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, (height, width)).astype(np.float32)
    return Chip(magnitude, phase, az, shape)


def to_display8(magnitude: np.ndarray, dynamic_range_db: float = 50.0) -> np.ndarray:
    """Amplitude → 8-bit display image over the top ``dynamic_range_db`` (the usual JPEG-conversion recipe)."""
    db = 20 * np.log10(np.maximum(magnitude, 1e-8))
    top = db.max()
    return np.clip((db - (top - dynamic_range_db)) / dynamic_range_db * 255 + 0.5, 0, 255).astype(np.uint8)


def write_demo_dataset(
    out: str | Path, per_class: int = 24, seed: int = 0, size: int = 64, nonsquare: bool = True
) -> dict[str, int]:
    """Write the demo as MSTAR raw Phoenix chips and as an ``MSTAR-10``-style JPEG folder.

    Layout::

        <out>/raw/MSTAR_SARDATA_DEMO/{TRAIN/17_DEG,TEST/15_DEG}/<T>/SN_<serial>/HB<n>.0<cc>
        <out>/jpeg/MSTAR-10/{train,test}/<T>/hb<n>.jpeg

    One class in three gets a non-square chip (``size × size+1``) to keep odd shapes exercised
    (``nonsquare=False`` makes every chip square, e.g. for benchmarks that stack batches).
    Returns the number of files written per layout.
    """
    out = Path(out)
    counts = {"raw": 0, "jpeg": 0}
    for ci, shape in enumerate(SHAPES):
        width = size + (1 if nonsquare and ci % 3 == 1 else 0)
        for si, (split, depression) in enumerate(SPLITS):
            raw_dir = (
                out
                / "raw"
                / "MSTAR_SARDATA_DEMO"
                / f"{split.upper()}/{depression}_DEG"
                / FOLDER[shape]
                / f"SN_S{ci}{si}"
            )
            jpg_dir = out / "jpeg" / "MSTAR-10" / split / FOLDER[shape]
            raw_dir.mkdir(parents=True, exist_ok=True)
            jpg_dir.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                rng = np.random.default_rng(np.random.SeedSequence([seed, ci, si, i]))
                chip = render_chip(shape, size, width, rng)
                _write_chip(chip, raw_dir, jpg_dir, n=10000 + si * 1000 + i, ci=ci, si=si, depression=depression)
                counts["raw"] += 1
                counts["jpeg"] += 1
    return counts


def _write_chip(chip: Chip, raw_dir: Path, jpg_dir: Path, n: int, ci: int, si: int, depression: int) -> None:
    """One chip as a Phoenix file (``HB<n>.0<cc>``, header as MSTAR writes it) and as an 8-bit JPEG."""
    from PIL import Image

    from sardata.sources.mstar import write_phoenix

    header = {
        "Filename": f"hb{n:05d}.00{ci:02d}",
        "TargetType": TARGET_TYPE[chip.shape],
        "TargetSerNum": f"S{ci}{si}",
        "TargetAz": f"{chip.azimuth_deg:.6f}",
        "DesiredDepression": depression,
        "MeasuredDepression": f"{depression + 0.09375:.6f}",
        "SensorName": "sardata-demo (synthetic)",
        "CenterFrequency": "9.60 GHz",
        "Polarization": "HH",
        "RangePixelSpacing": "0.202148",
        "CrossRangePixelSpacing": "0.203125",
        "CollectionDate": "20260101",
    }
    write_phoenix(raw_dir / f"HB{n:05d}.0{ci:02d}", chip.magnitude, chip.phase, header)
    Image.fromarray(to_display8(chip.magnitude), mode="L").save(jpg_dir / f"hb{n:05d}.jpeg", quality=95)
