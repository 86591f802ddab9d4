"""Radiometric normalisation policy: every source → float32 **magnitude in [0, 1]** for training, reversibly.

Each sample records ``radiometry`` and ``scale`` (``sources.md`` §0.7). Conversion to a training view, in two
steps, both recorded so the original values can be recovered from the manifest:

1. to linear magnitude (amplitude) ``a``:

   ===================================================  ==========================  ============================
   radiometry / scale                                   ``a``                       inverse
   ===================================================  ==========================  ============================
   ``display8``/``uint8`` (8-bit display images)        ``x / 255``                 ``x = a · 255``
   ``display16``/``unit`` (16-bit display, /65535)      ``x``                       ``x = a``
   ``amplitude``/``linear``                             ``x``                       ``x = a``
   ``intensity``, ``sigma0``, ``gamma0``, ``beta0``     ``sqrt(x)`` (power → ampl.) ``x = a²``
   /``linear``
   any power quantity / ``db``                          ``10^(x / 20)``             ``x = 20 · log10(a)``
   ===================================================  ==========================  ============================

2. to [0, 1] by a per-sample reference ``r`` (``x_norm_scale`` column): ``m = a / r``. Display images are
   already in [0, 1] (``r = 1``); radiometric data use ``r = max(a)`` over the sample, so ``m`` is exact and never
   clipped, and ``a = m · r``. Per-sample references keep chips from very different scenes comparable in contrast;
   the absolute level lives in ``x_norm_scale`` (GR is not scale-invariant, so this choice is recorded in
   ``dataset.json``).

Unknown or undeclared radiometry (``unspecified``, ``unknown``) cannot be converted: the caller must declare it at
ingest (e.g. ``-o radiometry=sigma0 -o scale=db``).
"""

from __future__ import annotations

import numpy as np

from sardata.errors import ConfigError

POLICY = "unit-magnitude-v1"
POWER = frozenset({"intensity", "sigma0", "gamma0", "beta0"})


def to_linear_magnitude(x: np.ndarray, radiometry: str, scale: str) -> np.ndarray:
    """Step 1: the sample's values as float64 linear magnitude."""
    x = x.astype(np.float64)
    if radiometry == "display8" or scale == "uint8":
        return x / 255.0
    if radiometry == "display16" and scale == "unit":
        return x
    if scale == "db":
        return np.power(10.0, x / 20.0)
    if scale == "linear" and radiometry == "amplitude":
        return x
    if scale == "linear" and radiometry in POWER:
        return np.sqrt(np.maximum(x, 0.0))
    raise ConfigError(
        f"cannot convert radiometry={radiometry!r} scale={scale!r} to magnitude; declare it at ingest "
        "(e.g. -o radiometry=sigma0 -o scale=linear)"
    )


def to_unit_magnitude(x: np.ndarray, radiometry: str, scale: str) -> tuple[np.ndarray, float]:
    """Both steps: float32 magnitude in [0, 1] and the per-sample reference ``r`` (``a = m · r``)."""
    a = to_linear_magnitude(x, radiometry, scale)
    if radiometry.startswith("display"):
        return np.clip(a, 0.0, 1.0).astype(np.float32), 1.0
    ref = float(a.max())
    if not np.isfinite(ref):
        raise ConfigError("non-finite values cannot be normalised")
    return (a / ref if ref > 0 else a).astype(np.float32), ref if ref > 0 else 1.0


def from_unit_magnitude(m: np.ndarray, ref: float, radiometry: str, scale: str) -> np.ndarray:
    """Invert :func:`to_unit_magnitude` (values above a display range's clip are not recoverable)."""
    a = m.astype(np.float64) * ref
    if radiometry == "display8" or scale == "uint8":
        return a * 255.0
    if scale == "db":
        return 20.0 * np.log10(np.maximum(a, 1e-300))
    if scale == "linear" and radiometry in POWER:
        return a * a
    return a


def gr_input(img: np.ndarray) -> np.ndarray:
    """First channel of an image in [0, 1] for GR when no normalisation policy was applied: 8-bit data / 255,
    radiometric data / its own maximum (the documented default of build-shards and the previews)."""
    plane = img[0].astype(np.float32)
    if img.dtype == np.uint8:
        return plane / np.float32(255)
    peak = float(plane.max())
    return plane / np.float32(peak) if peak > 0 else plane
