"""SICD: complex SAR images in NITF 2.1 (Capella, Umbra, ICEYE open data; NGA's Sensor Independent Complex
Data), read through sarpy (``pip install 'sardata[sicd]'``).

Work unit = one ``.nitf``/``.ntf`` file (NITF magic bytes checked, the extension is not trusted). Pixels are read
through sarpy's memory-mapped reader one window at a time, so a scene is never in memory whole:

* ``mode=scene`` (default): ``tile`` × ``tile`` windows every ``stride`` pixels with geotiff's ``edge`` rule
  (``shift`` | ``pad`` | ``drop``); a window whose fraction of zero pixels (outside the valid data, or past the edge
  with ``pad``) is ≥ ``max_nodata_frac`` becomes a skipped member row; keys carry ``r<row>-c<col>``;
* ``mode=chip``: the whole image is one sample (a chip product), checked against the per-sample budget first.

Arrays keep SICD's axes: ``(1, rows, cols)``, rows along SICD's row direction (range for most products), no
transpose. ``output=complex`` (default) stores the pixels as ``cplx`` (complex64, as in the file) **and** the
detected ``img``; ``output=magnitude`` stores ``img`` only. ``img`` follows :mod:`sardata.sources._scene`:
``calibration=none`` gives ``|x|`` (``amplitude``/``linear``); ``sigma0|beta0|gamma0`` multiply ``|x|²`` by the
``Radiometric`` scale-factor polynomial evaluated per pixel (metres from the SCP, SICD Vol. 1), a file without it
is rejected (``missing_calibration``); ``db=true`` gives ``10·log10`` of the power. A window with padding or zero
pixels also gets a ``mask`` (1 = real pixel).

Manifest columns: ``sensor`` (``CollectorName``), ``band`` (from the centre frequency), ``pol`` (processed
Tx:Rcv, ``VV``), ``incidence_deg`` (at the SCP), ``pixel_spacing_m`` ``[Row.SS, Col.SS]`` (in the image plane
named by ``meta.image_plane``), and for projectable SICDs ``crs`` ``EPSG:4326`` with each window's ``bbox``
(lon/lat of its four corners projected to the SCP height surface by sarpy). The rest goes to ``meta``: collector,
core name, collect start and duration, radar mode, grazing, incidence, azimuth, twist, slope and layover angles
(degrees, at the SCP), side of track, resolution ``[Row.ImpRespWid, Col.ImpRespWid]``, centre frequency, image
corners and the scene shape.

Bad input becomes a rejected row: not NITF (``bad_format``), header length ≠ file size (``truncated`` /
``size_mismatch``), no SICD XML (``not_sicd``), XML sizes disagreeing with the image segments or their byte
counts (``size_mismatch``), compressed segments (``unsupported``), declared sizes over the budget or over
``max_tiles`` windows (``too_large``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from sardata.errors import ConfigError, DependencyNotFoundError, RejectFile
from sardata.sources._base import FileUnit, MemberStatus, Sample, Source, check_budget
from sardata.sources._scene import SceneOptions, detect, radiometry_of, read_padded, windows

NITF_MAGIC = (b"NITF02.10", b"NSIF01.00")
FL_OFFSET = 342  # NITF 2.1 / NSIF 1.0 file header: FL (12 digits) follows 342 bytes of fixed fields
FL_UNKNOWN = 999999999999  # "length not known" (streamed files)
PIXEL_BYTES = {"RE32F_IM32F": 8, "RE16I_IM16I": 4, "AMP8I_PHS8I": 2}
SF_POLY = {"sigma0": "SigmaZeroSFPoly", "beta0": "BetaZeroSFPoly", "gamma0": "GammaZeroSFPoly"}
#: radar bands by centre frequency (IEEE 521), GHz
BANDS = (("P", 0.3, 1.0), ("L", 1.0, 2.0), ("S", 2.0, 4.0), ("C", 4.0, 8.0), ("X", 8.0, 12.0), ("Ku", 12.0, 18.0),
         ("K", 18.0, 27.0), ("Ka", 27.0, 40.0))  # fmt: skip


@dataclass(frozen=True)
class SICDOptions(SceneOptions):
    mode: str = "scene"  # scene | chip
    output: str = "complex"  # complex | magnitude

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.mode not in ("scene", "chip"):
            raise ConfigError(f"sicd mode {self.mode!r}; choose scene or chip")
        if self.output not in ("complex", "magnitude"):
            raise ConfigError(f"sicd output {self.output!r}; choose complex or magnitude")


class SICD(Source):
    id = "sicd"
    version = "1.0.0"
    description = "SICD complex SAR (NITF; Capella, Umbra, ICEYE open data) via sarpy: windowed complex + detected"
    classes = ()
    Options = SICDOptions
    reads_whole_file = False
    data_suffixes = (".nitf", ".ntf")

    def __init__(self, root: Any, options: Any = None) -> None:
        super().__init__(root, options)
        if importlib.util.find_spec("sarpy") is None:
            raise DependencyNotFoundError("the sicd source reads NITF through sarpy: pip install 'sardata[sicd]'")

    def read(self, unit: FileUnit) -> Iterator[Sample | MemberStatus]:
        check_nitf_length(unit)
        with _quiet_sarpy():
            meta, reader = _open(unit)
            try:
                common = _common(meta, unit, self.options)
                if self.options.mode == "chip":
                    rows, cols = meta.ImageData.NumRows, meta.ImageData.NumCols
                    check_budget((1, rows, cols), 16, unit.rel)
                    yield self._sample(meta, common, reader.read(slice(0, rows), slice(0, cols), squeeze=False),
                                       None, 0, 0, None, None)  # fmt: skip
                else:
                    yield from self._tiles(meta, reader, common, unit)
            finally:
                reader.close()

    def _tiles(self, meta: Any, reader: Any, common: dict, unit: FileUnit) -> Iterator[Sample | MemberStatus]:
        o = self.options
        rows, cols = meta.ImageData.NumRows, meta.ImageData.NumCols

        def read(r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
            return reader.read(slice(r0, r1), slice(c0, c1), squeeze=False)

        for index, (r, c) in enumerate(windows(rows, cols, o, unit.rel)):
            token = f"r{r:06d}-c{c:06d}"
            data, inside = read_padded(read, rows, cols, r, c, o.tile)
            valid = data != 0 if inside is None else (data != 0) & inside
            frac = float(1.0 - valid.mean())
            if frac >= o.max_nodata_frac:
                yield MemberStatus(
                    token, "skipped", "nodata", f"{frac:.0%} zero pixels (limit {o.max_nodata_frac:.0%})"
                )
                continue
            yield self._sample(meta, common, data, token, r, c, index, valid)

    def _sample(self, meta: Any, common: dict, data: np.ndarray, token: str | None, r: int, c: int,
                index: int | None, valid: np.ndarray | None) -> Sample:  # fmt: skip
        o = self.options
        factor = None if o.calibration == "none" else _scale_factor(meta, o.calibration, r, c, data.shape)
        if factor is not None and not (factor > 0).all():
            raise RejectFile("bad_calibration", f"{SF_POLY[o.calibration]} is not positive over window {r},{c}")
        arrays = {"img": detect(data, factor, o)[None]}
        if o.output == "complex":
            arrays["cplx"] = data.astype(np.complex64)[None]
        if valid is not None and not valid.all():
            arrays["mask"] = valid.astype(np.uint8)
        h, w = data.shape
        bbox = _bbox(meta, r, c, h, w)
        columns = {**common["columns"], "bbox": bbox, "crs": "EPSG:4326" if bbox else None}
        extra = {"row": r, "col": c, "nodata_frac": 0.0 if valid is None else float(1.0 - valid.mean())}
        return Sample(arrays=arrays, split="unlabelled", key_token=token, sub_index=index, src_member=token,
                      columns=columns, meta={**common["meta"], **extra})  # fmt: skip


@contextlib.contextmanager
def _quiet_sarpy() -> Iterator[None]:
    """sarpy logs validity notes at warning level and warns that its SICD code is deprecated for sarkit: neither
    concerns a run, so both are silenced while one file is read. Importing sarpy's NITF module also switches
    Pillow to accept truncated images process-wide; the setting is put back, so other sources keep rejecting
    cut JPEG/PNG files."""
    from PIL import ImageFile

    logger = logging.getLogger("sarpy")
    level, truncated = logger.level, ImageFile.LOAD_TRUNCATED_IMAGES
    logger.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
        ImageFile.LOAD_TRUNCATED_IMAGES = truncated


def check_nitf_length(unit: FileUnit) -> None:
    """Magic bytes and the header's file length (FL) against the size on disk: a cut or padded file is rejected
    before sarpy maps it."""
    with open(unit.path, "rb") as fh:
        head = fh.read(FL_OFFSET + 12)
    if head[:9] not in NITF_MAGIC:
        raise RejectFile("bad_format", "not a NITF 2.1 / NSIF 1.0 file (magic bytes)")
    field = head[FL_OFFSET : FL_OFFSET + 12]
    if len(field) < 12 or not field.isdigit():
        raise RejectFile("truncated" if len(head) < FL_OFFSET + 12 else "bad_header", f"file length field {field!r}")
    declared, size = int(field), os.path.getsize(unit.path)
    if declared != FL_UNKNOWN and declared != size:
        reason = "truncated" if size < declared else "size_mismatch"
        raise RejectFile(reason, f"NITF header declares {declared} bytes, the file holds {size}")


def _open(unit: FileUnit) -> tuple[Any, Any]:
    """The SICD metadata and a sarpy reader, after the XML's sizes were checked against the image segments."""
    from sarpy.io.complex.sicd import SICDDetails, SICDReader

    try:
        details = SICDDetails(unit.path)
    except Exception as exc:  # noqa: BLE001 - sarpy raises SarpyIOError, ValueError, struct errors...
        reason = "not_sicd" if "SICD" in str(exc) or "data extension" in str(exc) else "undecodable"
        raise RejectFile(reason, f"sarpy cannot read the NITF/SICD header: {str(exc)[:300]}") from exc
    meta = details.sicd_meta
    try:
        _check_sizes(meta, details)
        return meta, SICDReader(details)
    except RejectFile:
        details.close()
        raise
    except Exception as exc:  # noqa: BLE001
        details.close()
        raise RejectFile("undecodable", f"sarpy cannot open the image: {str(exc)[:300]}") from exc


def _check_sizes(meta: Any, details: Any) -> None:
    image = getattr(meta, "ImageData", None)
    rows, cols = getattr(image, "NumRows", None), getattr(image, "NumCols", None)
    pixel = getattr(image, "PixelType", None)
    if not isinstance(rows, int) or not isinstance(cols, int) or rows < 1 or cols < 1:
        raise RejectFile("bad_header", f"SICD ImageData declares {rows}x{cols} pixels")
    if pixel not in PIXEL_BYTES:
        raise RejectFile("unsupported", f"SICD PixelType {pixel!r}")
    headers = list(details.img_headers)
    if any(h.IC.strip() != "NC" for h in headers):
        raise RejectFile("unsupported", "compressed image segments (SICD images are uncompressed)")
    seg_rows, seg_cols = sum(h.NROWS for h in headers), {h.NCOLS for h in headers}
    if seg_rows != rows or seg_cols != {cols}:
        raise RejectFile("size_mismatch", f"SICD XML declares {rows}x{cols}, the image segments {seg_rows}x{seg_cols}")
    expected = rows * cols * PIXEL_BYTES[pixel]
    held = int(np.sum(details.nitf_header.ImageSegments.item_sizes, dtype=np.int64))
    if held != expected:
        raise RejectFile("size_mismatch", f"{rows}x{cols} {pixel} needs {expected} bytes, the segments hold {held}")


def _value(obj: Any, *path: str) -> Any:
    for name in path:
        obj = getattr(obj, name, None)
        if obj is None:
            return None
    return obj


def _float(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if np.isfinite(f) else None


def _band(freq_hz: float | None) -> str | None:
    if freq_hz is None:
        return None
    return next((name for name, lo, hi in BANDS if lo <= freq_hz / 1e9 < hi), None)


def _common(meta: Any, unit: FileUnit, o: SICDOptions) -> dict[str, Any]:
    """Columns and meta shared by every window of one file."""
    if o.calibration != "none" and _value(meta, "Radiometric", SF_POLY[o.calibration]) is None:
        raise RejectFile("missing_calibration", f"no Radiometric/{SF_POLY[o.calibration]} for -o calibration=")
    pol = _value(meta, "ImageFormation", "TxRcvPolarizationProc")
    freq = [_float(_value(meta, "RadarCollection", "TxFrequency", k)) for k in ("Min", "Max")]
    centre = (freq[0] + freq[1]) / 2 if None not in freq else None
    angles = {f"{k.lower()}_deg": _float(_value(meta, "SCPCOA", f"{k}Ang"))
              for k in ("Graze", "Incidence", "Azim", "Twist", "Slope", "Layover")}  # fmt: skip
    row_ss, col_ss = (_float(_value(meta, "Grid", d, "SS")) for d in ("Row", "Col"))
    radiometry, scale = radiometry_of(o.calibration, o.db)
    start = _value(meta, "Timeline", "CollectStart")
    corners = _value(meta, "GeoData", "ImageCorners")
    info = {
        "scene": unit.rel, "scene_shape": [meta.ImageData.NumRows, meta.ImageData.NumCols],
        "pixel_type": meta.ImageData.PixelType, "collector": _value(meta, "CollectionInfo", "CollectorName"),
        "core_name": _value(meta, "CollectionInfo", "CoreName"),
        "collect_start": None if start is None else str(np.datetime_as_string(start, unit="us")),
        "collect_duration_s": _float(_value(meta, "Timeline", "CollectDuration")),
        "radar_mode": _value(meta, "CollectionInfo", "RadarMode", "ModeType"),
        "side_of_track": _value(meta, "SCPCOA", "SideOfTrack"), **angles,
        "tx_rcv_polarization": pol, "centre_frequency_hz": centre,
        "image_plane": _value(meta, "Grid", "ImagePlane"), "grid_type": _value(meta, "Grid", "Type"),
        "sample_spacing_m": [row_ss, col_ss],
        "resolution_m": [_float(_value(meta, "Grid", d, "ImpRespWid")) for d in ("Row", "Col")],
        "image_corners": None if corners is None else [[_float(p.Lat), _float(p.Lon)] for p in corners],
        "calibration": o.calibration, **({"db_floor": o.db_floor} if o.db else {}),
    }  # fmt: skip
    columns = {
        "radiometry": radiometry, "scale": scale, "sensor": info["collector"], "band": _band(centre),
        "pol": pol.replace(":", "") if isinstance(pol, str) and len(pol) == 3 else pol,
        "incidence_deg": angles["incidence_deg"],
        "pixel_spacing_m": [row_ss, col_ss] if None not in (row_ss, col_ss) else None,
    }  # fmt: skip
    return {"columns": columns, "meta": info}


def _scale_factor(meta: Any, calibration: str, r: int, c: int, shape: tuple[int, int]) -> np.ndarray:
    """The Radiometric scale-factor polynomial at every pixel of a window: a function of metres from the SCP,
    ``xrow = (row + FirstRow − SCPPixel.Row) · Row.SS`` (likewise for columns)."""
    image, grid = meta.ImageData, meta.Grid
    xrow = (np.arange(r, r + shape[0]) + image.FirstRow - image.SCPPixel.Row) * grid.Row.SS
    ycol = (np.arange(c, c + shape[1]) + image.FirstCol - image.SCPPixel.Col) * grid.Col.SS
    coefs = np.asarray(getattr(meta.Radiometric, SF_POLY[calibration]).Coefs, dtype=np.float64)
    return np.polynomial.polynomial.polygrid2d(xrow, ycol, coefs)


def _bbox(meta: Any, r: int, c: int, h: int, w: int) -> list[float] | None:
    """``[min lon, min lat, max lon, max lat]`` of a window's outer pixel corners, or None when the SICD cannot
    be projected (sarpy's image-to-ground projection onto the SCP height)."""
    from sarpy.geometry.point_projection import image_to_ground_geo

    corners = np.array([[r - 0.5, c - 0.5], [r - 0.5, c + w - 0.5], [r + h - 0.5, c - 0.5], [r + h - 0.5, c + w - 0.5]])
    try:
        if not meta.can_project_coordinates():
            return None
        llh = image_to_ground_geo(corners, meta)
    except Exception:  # noqa: BLE001 - a projection that fails costs the bbox only
        return None
    if not np.isfinite(llh).all():
        return None
    lat, lon = llh[:, 0], llh[:, 1]
    return [float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max())]
