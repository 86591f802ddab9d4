"""Sentinel-1 Level-1 SAFE products (GRD and SLC), read with rasterio and calibrated with the product's LUTs.

The root is a ``<product>.SAFE`` folder or a folder of them. Work unit = one ``measurement/*.tiff`` (one
polarisation; for SLC one swath); its companions are found by name inside the same SAFE and read with it:
``annotation/<stem>.xml`` (required), ``annotation/calibration/calibration-<stem>.xml`` (required unless
``calibration=none``), ``annotation/calibration/noise-<stem>.xml`` (optional, recorded, not applied: thermal noise
is not removed). Every other file of the SAFE is a skipped row with its reason (``companion``, ``metadata``,
``not_data``). Zipped SAFEs are not read in place: unzip them first.

Pixels are tiled with windowed reads (``tile``, ``stride``, geotiff's ``edge`` rule), never the whole image; a
window whose zero-DN fraction (border noise removal, invalid burst samples, ``pad``) is ≥ ``max_nodata_frac``
is a skipped member row. **SLC** is read as its whole swath image, bursts as they are stacked in the TIFF (burst
overlaps and the zero samples between them included, not debursted); ``meta.burst`` is the burst of a window's
first line.

Calibration (ESA, S1 Level-1 product specification): ``value = |DN|² / A²`` with ``A`` the ``sigmaNought``,
``betaNought`` or ``gamma`` LUT (``-o calibration=sigma0|beta0|gamma0``, default ``sigma0``) interpolated
bilinearly from the LUT grid (lines × pixels) to every pixel; ``calibration=none`` gives ``|DN|``; ``-o db=true``
gives ``10·log10`` (radiometry columns as in :mod:`sardata.sources._scene`). A LUT grid that does not cover the
image (first line > 0, last line < lines − 1, likewise pixels) is rejected (``lut_coverage``), never
extrapolated. SLC windows also store ``cplx`` = ``DN / A`` (calibrated complex, so ``|cplx|² = img`` in linear
scale; ``DN`` itself with ``calibration=none``); ``-o complex=false`` drops it. ``img`` of GRD and SLC is float32.

Annotation XML → columns ``sensor`` (Sentinel-1A…), ``band`` (C), ``pol``, ``incidence_deg`` (the geolocation
grid's incidence angle interpolated at the window centre; mid-swath when the grid is unusable),
``pixel_spacing_m`` ``[azimuth, range]`` (row, column), ``crs`` ``EPSG:4326`` and ``bbox`` (the window's corners
interpolated in the geolocation tie-point grid — an approximation of GDAL's GCP warp); and ``meta``: mission,
product type, mode, swath, polarisation, pass, start/stop time, orbit, datatake, image number, platform heading,
radar frequency, projection, mid-swath incidence, spacings, bursts.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import numpy as np

from sardata.errors import RejectFile
from sardata.sources._base import FileUnit, MemberStatus, Sample, Source, parse_float
from sardata.sources._scene import (
    LineGrid,
    SceneOptions,
    detect,
    line_grid,
    numbers,
    parse_xml,
    radiometry_of,
    read_companion,
    read_padded,
    windows,
)  # fmt: skip

LUT_TAGS = {"sigma0": "sigmaNought", "beta0": "betaNought", "gamma0": "gamma"}
DTYPES = {"GRD": ("uint16", 2), "SLC": ("complex_int16", 4)}
TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
HEADER = {"mission": "missionId", "product_type": "productType", "polarisation": "polarisation", "mode": "mode",
          "swath": "swath", "start_time": "startTime", "stop_time": "stopTime",
          "absolute_orbit": "absoluteOrbitNumber", "datatake_id": "missionDataTakeId", "image_number": "imageNumber"}  # fmt: skip
NUMBERS = {"platform_heading_deg": ".//productInformation/platformHeading",
           "radar_frequency_hz": ".//productInformation/radarFrequency",
           "range_pixel_spacing_m": ".//imageInformation/rangePixelSpacing",
           "azimuth_pixel_spacing_m": ".//imageInformation/azimuthPixelSpacing",
           "incidence_mid_swath_deg": ".//imageInformation/incidenceAngleMidSwath"}  # fmt: skip


@dataclass(frozen=True)
class Sentinel1Options(SceneOptions):
    calibration: str = "sigma0"  # sigma0 | beta0 | gamma0 | none
    complex: bool = True  # SLC: also store the calibrated complex window as cplx
    gdal_cache_mb: int = 64


class Sentinel1(Source):
    id = "sentinel1"
    version = "1.0.0"
    description = "Sentinel-1 SAFE (GRD, SLC): measurement TIFFs tiled, calibrated with the LUTs, annotation in meta"
    classes = ()
    Options = Sentinel1Options
    reads_whole_file = False
    companion_files = True

    def skip_reasons(self, rels: list[str]) -> dict[str, str]:
        out = super().skip_reasons(rels)
        listed = set(rels)
        for rel in rels:
            if rel not in out and not _is_measurement(rel):
                out[rel] = _why_not_data(rel, listed)
        return out

    def read(self, unit: FileUnit) -> Iterator[Sample | MemberStatus]:
        import rasterio

        with open(unit.path, "rb") as fh:
            if fh.read(4) not in TIFF_MAGIC:
                raise RejectFile("bad_format", "not a TIFF (magic bytes)")
        base = self.root if self.root.is_dir() else self.root.parent
        safe, stem = PurePosixPath(unit.rel).parent.parent, PurePosixPath(unit.rel).stem
        ann = _annotation(read_companion(base, str(safe / "annotation" / f"{stem}.xml"), "annotation"), stem)
        lut = None
        if self.options.calibration != "none":
            rel = str(safe / "annotation" / "calibration" / f"calibration-{stem}.xml")
            lut = _lut(read_companion(base, rel, "calibration"), rel, LUT_TAGS[self.options.calibration])
        noise = safe / "annotation" / "calibration" / f"noise-{stem}.xml"
        ann["meta"]["noise_file"] = str(noise) if (base / noise).is_file() else None
        try:
            with rasterio.Env(GDAL_CACHEMAX=self.options.gdal_cache_mb * 2**20), rasterio.open(unit.path) as ds:
                _check_raster(ds, unit, ann, lut)
                yield from self._tiles(ds, unit, ann, lut)
        except RejectFile:
            raise
        except rasterio.errors.RasterioError as exc:
            raise RejectFile("undecodable", f"rasterio cannot read it: {exc}") from exc

    def _tiles(self, ds: Any, unit: FileUnit, ann: dict, lut: LineGrid | None) -> Iterator[Sample | MemberStatus]:
        from rasterio.windows import Window

        o = self.options

        def read(r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
            return ds.read(1, window=Window(c0, r0, c1 - c0, r1 - r0))

        radiometry, scale = radiometry_of(o.calibration, o.db)
        columns = {**ann["columns"], "radiometry": radiometry, "scale": scale}
        meta = {**ann["meta"], "scene": unit.rel, "calibration": o.calibration, "thermal_noise_removed": False,
                **({"db_floor": o.db_floor} if o.db else {})}  # fmt: skip
        for index, (r, c) in enumerate(windows(ds.height, ds.width, o, unit.rel)):
            token = f"r{r:06d}-c{c:06d}"
            dn, inside = read_padded(read, ds.height, ds.width, r, c, o.tile)
            valid = dn != 0 if inside is None else (dn != 0) & inside
            frac = float(1.0 - valid.mean())
            if frac >= o.max_nodata_frac:
                yield MemberStatus(token, "skipped", "nodata", f"{frac:.0%} zero DN (limit {o.max_nodata_frac:.0%})")
                continue
            rows, cols = np.arange(r, r + o.tile, dtype=np.float64), np.arange(c, c + o.tile, dtype=np.float64)
            a = None if lut is None else lut.at(rows, cols)
            arrays = {"img": detect(dn, None if a is None else 1.0 / (a * a), o)[None]}
            if np.iscomplexobj(dn) and o.complex:
                arrays["cplx"] = (dn if a is None else dn / a).astype(np.complex64)[None]
            if not valid.all():
                arrays["mask"] = valid.astype(np.uint8)
            geo = _window_geo(ann["geo"], r, c, o.tile)
            extra = {"row": r, "col": c, "nodata_frac": frac}
            if ann["lines_per_burst"]:
                extra["burst"] = r // ann["lines_per_burst"]
            yield Sample(arrays=arrays, split="unlabelled", key_token=token, sub_index=index, src_member=token,
                         columns={**columns, **geo}, meta={**meta, **extra})  # fmt: skip


def _is_measurement(rel: str) -> bool:
    p = PurePosixPath(rel)
    return p.parent.name == "measurement" and p.suffix.lower() in (".tiff", ".tif")


def _why_not_data(rel: str, listed: set[str]) -> str:
    """The skip reason of a SAFE file that is not a measurement."""
    p = PurePosixPath(rel)
    name, folder = p.name.lower(), p.parent.name
    if folder == "annotation" and name.endswith(".xml"):
        tiff = p.parent.parent / "measurement" / f"{p.stem}.tiff"
        if str(tiff) in listed:
            return f"companion: annotation of {tiff}, read with it"
        return f"no_measurement: annotation without {tiff} in the listing"
    if folder == "calibration" and p.parent.parent.name == "annotation" and name.endswith(".xml"):
        kind, _, stem = p.stem.partition("-")
        tiff = p.parent.parent.parent / "measurement" / f"{stem}.tiff"
        if kind in ("calibration", "noise", "rfi") and str(tiff) in listed:
            return f"companion: {kind} of {tiff}, read with it" + (
                " (recorded, not applied)" if kind != "calibration" else ""
            )
        return f"no_measurement: {kind} file without {tiff} in the listing"
    if name.endswith(".zip"):
        return "not_data: zipped SAFE products are not read in place; unzip them and ingest the .SAFE folders"
    if name == "manifest.safe":
        return "metadata: SAFE product manifest; the annotation XML is read instead"
    if p.parent.name == "measurement":
        return "not_data: measurement files are GeoTIFFs (.tiff)"
    return "not_data: sentinel1 reads <product>.SAFE/measurement/*.tiff (previews, schemas and others are skipped)"


def _text(root: Any, path: str) -> str | None:
    node = root.find(path)
    return None if node is None or node.text is None else node.text.strip()


def _annotation(data: bytes, stem: str) -> dict[str, Any]:
    """Columns, meta, geolocation grid and burst length from a product annotation XML."""
    rel = f"annotation/{stem}.xml"
    root = parse_xml(data, rel)
    meta: dict[str, Any] = {k: _text(root, f"adsHeader/{tag}") for k, tag in HEADER.items()}
    meta |= {
        "pass": _text(root, ".//productInformation/pass"),
        "projection": _text(root, ".//productInformation/projection"),
    }
    meta |= {k: parse_float(_text(root, path)) for k, path in NUMBERS.items()}
    shape = [_text(root, f".//imageInformation/{tag}") for tag in ("numberOfLines", "numberOfSamples")]
    if not all(s and s.isdigit() for s in shape) or meta["product_type"] not in DTYPES:
        raise RejectFile(
            "bad_metadata", f"{rel}: numberOfLines/numberOfSamples {shape}, productType {meta['product_type']!r}"
        )
    per_burst = _text(root, ".//swathTiming/linesPerBurst")
    lines_per_burst = int(per_burst) if per_burst and per_burst.isdigit() and meta["product_type"] == "SLC" else 0
    meta["lines_per_burst"] = lines_per_burst or None
    meta["n_bursts"] = len(root.findall(".//swathTiming/burstList/burst")) if lines_per_burst else None
    meta["shape"] = [int(s) for s in shape]
    geo, warning = _geo_grid(root)
    if warning:
        meta["warning"] = warning
    mission = meta["mission"] or ""
    columns = {
        "sensor": f"Sentinel-1{mission[-1]}" if re.fullmatch(r"S1[A-D]", mission) else mission or None, "band": "C",
        "pol": meta["polarisation"], "incidence_deg": meta["incidence_mid_swath_deg"],
        "pixel_spacing_m": None if None in (meta["azimuth_pixel_spacing_m"], meta["range_pixel_spacing_m"])
        else [meta["azimuth_pixel_spacing_m"], meta["range_pixel_spacing_m"]],
    }  # fmt: skip
    return {"meta": meta, "columns": columns, "geo": geo, "lines_per_burst": lines_per_burst}


def _geo_grid(root: Any) -> tuple[dict[str, LineGrid] | None, str | None]:
    """Latitude, longitude and incidence angle as line grids from the geolocation tie points, or a warning."""
    rows: dict[float, list[tuple[float, float, float, float]]] = {}
    for point in root.findall(".//geolocationGrid/geolocationGridPointList/geolocationGridPoint"):
        vals = [parse_float(_text(point, t)) for t in ("line", "pixel", "latitude", "longitude", "incidenceAngle")]
        if None in vals:
            return None, "geolocation grid point without line/pixel/latitude/longitude/incidenceAngle"
        rows.setdefault(vals[0], []).append(tuple(vals[1:]))
    if not rows:
        return None, "no geolocation grid: bbox unknown, incidence is the mid-swath value"
    lines = sorted(rows)
    points = [np.array(sorted(rows[line]), dtype=np.float64) for line in lines]
    try:
        return {name: line_grid(lines, [p[:, 0] for p in points], [p[:, k] for p in points], "geolocation grid")
                for k, name in ((1, "lat"), (2, "lon"), (3, "incidence"))}, None  # fmt: skip
    except RejectFile as exc:
        return None, f"geolocation grid unusable: {exc.detail}"


def _window_geo(geo: dict[str, LineGrid] | None, r: int, c: int, tile: int) -> dict[str, Any]:
    if geo is None:
        return {}
    edges = np.array([r - 0.5, r + tile - 0.5]), np.array([c - 0.5, c + tile - 0.5])
    lat, lon = geo["lat"].at(*edges), geo["lon"].at(*edges)
    centre = np.array([r + (tile - 1) / 2])
    incidence = float(geo["incidence"].at(centre, np.array([c + (tile - 1) / 2]))[0, 0])
    return {"incidence_deg": incidence, "crs": "EPSG:4326",
            "bbox": [float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max())]}  # fmt: skip


def _lut(data: bytes, rel: str, tag: str) -> LineGrid:
    """One LUT of a calibration XML as a line grid; every value finite and positive."""
    root = parse_xml(data, rel)
    lines, pixels, values = [], [], []
    for k, vector in enumerate(root.findall("calibrationVectorList/calibrationVector")):
        line = parse_float(_text(vector, "line"))
        if line is None:
            raise RejectFile("bad_calibration", f"{rel}: vector {k} has no line")
        lines.append(line)
        pixels.append(numbers(_text(vector, "pixel"), f"{rel} vector {k} pixel"))
        values.append(numbers(_text(vector, tag), f"{rel} vector {k} {tag}"))
        if not (values[-1] > 0).all():
            raise RejectFile("bad_calibration", f"{rel}: vector {k} has {tag} values ≤ 0")
    return line_grid(lines, pixels, values, f"{rel} {tag}")


def _check_raster(ds: Any, unit: FileUnit, ann: dict, lut: LineGrid | None) -> None:
    """The measurement's type and size against the annotation, its bytes against its size, the LUT's coverage."""
    kind = ann["meta"]["product_type"]
    dtype, itemsize = DTYPES[kind]
    if ds.count != 1 or ds.dtypes[0] != dtype:
        raise RejectFile("bad_format", f"{kind} measurement of {ds.count} {ds.dtypes[0]} band(s), expected 1 {dtype}")
    lines, samples = ann["meta"]["shape"]
    if (ds.height, ds.width) != (lines, samples):
        raise RejectFile("size_mismatch", f"TIFF is {ds.height}x{ds.width}, the annotation says {lines}x{samples}")
    size = os.path.getsize(unit.path)
    if ds.compression is None and size < ds.height * ds.width * itemsize:
        raise RejectFile("truncated", f"{ds.height}x{ds.width} {dtype} needs {ds.height * ds.width * itemsize} bytes, "
                                      f"the file holds {size}")  # fmt: skip
    if lut is not None and not lut.covers(ds.height, ds.width):
        span = f"lines {lut.lines[0]:g}..{lut.lines[-1]:g}, pixels from {min(p[0] for p in lut.pixels):g} to " \
               f"{min(p[-1] for p in lut.pixels):g}"  # fmt: skip
        raise RejectFile("lut_coverage", f"calibration grid ({span}) does not cover the {ds.height}x{ds.width} image")
