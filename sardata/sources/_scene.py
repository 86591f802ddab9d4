"""Shared parts of the complex-SAR scene readers (``sicd``, ``sentinel1``): tile windows, detection and
calibration into the radiometry columns (:mod:`sardata.radiometry`), companion XML files, grid interpolation.

Radiometry of a detected tile (``sources.md`` §0.7; :func:`sardata.radiometry.to_linear_magnitude` inverts each):

=====================  ===============================  ==============================
calibration            ``db=false``                     ``db=true``
=====================  ===============================  ==============================
``none``               ``|x|`` → amplitude / linear     ``10·log10(|x|²)`` → intensity / db
``sigma0`` (β⁰, γ⁰)    ``|x|²·k`` → sigma0 / linear     ``10·log10(|x|²·k)`` → sigma0 / db
=====================  ===============================  ==============================

``k`` is the product's calibration factor per pixel (SICD scale-factor polynomial, Sentinel-1 ``1 / A²``). In dB,
powers below ``db_floor`` (zero pixels included) are set to the floor, so no sample holds ``-inf``.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sardata.errors import ConfigError, ManifestSchemaError, RejectFile
from sardata.safepath import resolve_inside
from sardata.sources._base import check_budget
from sardata.sources.geotiff import tile_starts

CALIBRATIONS = ("none", "sigma0", "beta0", "gamma0")
_DOCTYPE = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)


@dataclass(frozen=True)
class SceneOptions:
    """Tiling and detection options shared by the scene readers (``-o key=value``)."""

    tile: int = 256
    stride: int = 256
    edge: str = "shift"  # shift | pad | drop, as geotiff
    max_nodata_frac: float = 0.5  # zero pixels (and pad) at or above this fraction: the tile is a skipped row
    calibration: str = "none"  # none | sigma0 | beta0 | gamma0
    db: bool = False
    db_floor: float = -100.0
    max_tiles: int = 100_000  # a scene declaring more tiles is rejected (too_large) before any read

    def __post_init__(self) -> None:
        if self.tile < 1 or self.stride < 1:
            raise ConfigError("tile and stride must be positive")
        if self.edge not in ("shift", "pad", "drop"):
            raise ConfigError(f"edge {self.edge!r}; choose shift, pad or drop")
        if self.calibration not in CALIBRATIONS:
            raise ConfigError(f"calibration {self.calibration!r}; choose one of {', '.join(CALIBRATIONS)}")
        if not 0.0 < self.max_nodata_frac <= 1.0:
            raise ConfigError("max_nodata_frac must be in (0, 1]")
        if not math.isfinite(self.db_floor) or self.max_tiles < 1:
            raise ConfigError("db_floor must be finite and max_tiles positive")


def windows(height: int, width: int, o: SceneOptions, what: str) -> list[tuple[int, int]]:
    """Tile offsets ``(row, col)`` of a ``height`` × ``width`` scene, checked against the budget and ``max_tiles``
    before anything is read."""
    if height < 1 or width < 1:
        raise RejectFile("bad_header", f"{what} declares {height}x{width} pixels")
    if height < o.tile or width < o.tile:
        raise RejectFile("too_small", f"{width}x{height} scene is smaller than one {o.tile}px tile (-o tile=)")
    n_rows = len(range(0, height - o.tile + 1, o.stride)) + 1  # an upper bound, computed without a list
    n_cols = len(range(0, width - o.tile + 1, o.stride)) + 1
    if n_rows * n_cols > o.max_tiles:
        raise RejectFile("too_large", f"{what}: {height}x{width} pixels give over {o.max_tiles} tiles (-o max_tiles=)")
    check_budget((1, o.tile, o.tile), 16, f"{what} tile")  # complex128 intermediates of one tile
    rows, cols = tile_starts(height, o.tile, o.stride, o.edge), tile_starts(width, o.tile, o.stride, o.edge)
    return [(r, c) for r in rows for c in cols]


def read_padded(read: Callable[[int, int, int, int], np.ndarray], height: int, width: int, r: int, c: int,
                tile: int) -> tuple[np.ndarray, np.ndarray | None]:  # fmt: skip
    """A ``tile`` × ``tile`` window at ``(r, c)``: ``read(r0, r1, c0, c1)`` returns the part inside the scene,
    the rest is zeros. Returns the window and, when it reaches past the edge, the inside mask (else None)."""
    r1, c1 = min(r + tile, height), min(c + tile, width)
    part = read(r, r1, c, c1)
    if (r1, c1) == (r + tile, c + tile):
        return part, None
    out = np.zeros((tile, tile), part.dtype)
    out[: r1 - r, : c1 - c] = part
    inside = np.zeros((tile, tile), bool)
    inside[: r1 - r, : c1 - c] = True
    return out, inside


def radiometry_of(calibration: str, db: bool) -> tuple[str, str]:
    """The ``radiometry`` and ``scale`` columns of a detected tile."""
    if calibration == "none":
        return ("intensity", "db") if db else ("amplitude", "linear")
    return calibration, "db" if db else "linear"


def detect(values: np.ndarray, factor: np.ndarray | float | None, o: SceneOptions) -> np.ndarray:
    """The ``img`` plane of complex or real pixel ``values``: ``|x|``, ``|x|²·factor`` or either in dB (module
    docstring). ``factor`` is None for ``calibration=none``."""
    power = np.abs(values.astype(np.complex128 if np.iscomplexobj(values) else np.float64)) ** 2
    if factor is not None:
        power = power * factor
    if not o.db:
        return (np.sqrt(power) if factor is None else power).astype(np.float32)
    return (10.0 * np.log10(np.maximum(power, 10.0 ** (o.db_floor / 10.0)))).astype(np.float32)


def nodata_fraction(valid: np.ndarray) -> float:
    return float(1.0 - valid.mean())


def read_companion(base: Path, rel: str, what: str) -> bytes:
    """Bytes of a companion file ``rel`` under the ingest root ``base`` (never outside it, never a directory,
    size-checked against the per-sample budget before it is read)."""
    try:
        path = resolve_inside(base, rel, what)
    except ManifestSchemaError as exc:
        raise RejectFile("unsafe_path", str(exc)) from exc
    if not path.is_file():
        raise RejectFile(f"missing_{what}", f"{rel} not found")
    check_budget((path.stat().st_size,), 1, rel)
    return path.read_bytes()


def parse_xml(data: bytes, rel: str) -> ET.Element:
    """An XML document without DTD or entity declarations (product XML has none), else ``bad_metadata``."""
    if _DOCTYPE.search(data[:4096]) or b"<!ENTITY" in data:
        raise RejectFile("bad_metadata", f"{rel}: DOCTYPE/ENTITY declarations are refused")
    try:
        return ET.fromstring(data)
    except ET.ParseError as exc:
        raise RejectFile("bad_metadata", f"{rel}: {exc}") from exc


def numbers(text: str | None, what: str) -> np.ndarray:
    """A whitespace-separated list of finite numbers (an XML vector), else ``bad_metadata``."""
    try:
        arr = np.array((text or "").split(), dtype=np.float64)
    except ValueError as exc:
        raise RejectFile("bad_metadata", f"{what}: not a list of numbers ({exc})") from exc
    if not np.isfinite(arr).all():
        raise RejectFile("bad_metadata", f"{what}: NaN or Inf values")
    return arr


@dataclass(frozen=True)
class LineGrid:
    """Values on a grid of image lines, each line with its own increasing pixel positions (a Sentinel-1
    calibration LUT, a geolocation grid). :meth:`at` interpolates bilinearly: along pixels on each of the two
    bracketing lines, then between them (ESA's definition for the calibration vectors)."""

    lines: np.ndarray  # (n,) strictly increasing
    pixels: Sequence[np.ndarray]
    values: Sequence[np.ndarray]

    def covers(self, height: int, width: int) -> bool:
        return (
            self.lines[0] <= 0
            and self.lines[-1] >= height - 1
            and all(p[0] <= 0 and p[-1] >= width - 1 for p in self.pixels)
        )

    def at(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Values at every (row, col) of the outer grid ``rows`` × ``cols`` (clamped at the grid's border)."""
        n = len(self.lines)
        if n == 1:
            return np.broadcast_to(np.interp(cols, self.pixels[0], self.values[0]), (len(rows), len(cols))).copy()
        j = np.clip(np.searchsorted(self.lines, rows, side="right") - 1, 0, n - 2)
        t = np.clip((rows - self.lines[j]) / (self.lines[j + 1] - self.lines[j]), 0.0, 1.0)[:, None]
        on_line = {k: np.interp(cols, self.pixels[k], self.values[k]) for k in np.unique(np.concatenate([j, j + 1]))}
        lo = np.stack([on_line[k] for k in j])
        hi = np.stack([on_line[k + 1] for k in j])
        return (1.0 - t) * lo + t * hi


def line_grid(lines: Sequence[float], pixels: Sequence[np.ndarray], values: Sequence[np.ndarray],
              what: str) -> LineGrid:  # fmt: skip
    """A checked :class:`LineGrid`: lines and each line's pixels strictly increasing, one value per pixel."""
    if not len(lines):
        raise RejectFile("bad_calibration", f"{what}: no vectors")
    line_arr = np.asarray(lines, dtype=np.float64)
    if np.any(np.diff(line_arr) <= 0):
        raise RejectFile("bad_calibration", f"{what}: lines are not strictly increasing")
    for k, (p, v) in enumerate(zip(pixels, values, strict=True)):
        if len(p) == 0 or len(p) != len(v):
            raise RejectFile("bad_calibration", f"{what}: vector {k} has {len(p)} pixels and {len(v)} values")
        if np.any(np.diff(p) <= 0):
            raise RejectFile("bad_calibration", f"{what}: vector {k}'s pixels are not strictly increasing")
    return LineGrid(line_arr, list(pixels), list(values))


def sample_columns(common: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """The typed manifest columns of one tile: the scene's plus the tile's own (``bbox``, ``incidence_deg``)."""
    return {**common, **{k: v for k, v in extra.items() if v is not None}}
