"""Generic GeoTIFF / TIFF rasters: scenes tiled into chips, or a folder of chips (``sources.md`` §9).

``mode=scene`` (default): each raster is tiled with rasterio **windowed reads** into ``tile`` × ``tile`` chips
every ``stride`` pixels. The scene's edge (``edge``, the spec is silent): ``shift`` (default) adds a last row /
column of tiles shifted back to end exactly at the edge, so every pixel is sampled with real pixels only
(``ceil((H − tile) / stride) + 1`` rows, as torchgeo's grid sampler: a 2000 × 2100 scene at 256 gives 72 tiles);
``pad`` reads tiles past the edge, filled with the nodata value (0 when the file declares none; declared nodata counts towards ``max_nodata_frac``); ``drop`` keeps
full tiles on the stride grid only (``floor((H − tile) / stride) + 1`` rows: 56 tiles there, the earlier
behaviour, which never samples up to 12.6 % of that scene);
a chip whose nodata fraction is ≥ ``max_nodata_frac`` becomes a skipped member row. The whole scene is never in
memory: chips are yielded one at a time and the engine streams them to the sample store; GDAL's block cache is
capped at ``gdal_cache_mb``. Keys carry the scene slug and ``r<row>-c<col>``; each chip records its CRS, affine
transform, bbox and the band descriptions. Non-georeferenced files are accepted (``meta.warning``).

Scenes not on local disk: an input whose path is a URL (``https://…``, ``s3://…``, or GDAL's ``/vsicurl/…``,
``/vsis3/…``; ``gs://``/``az://`` once the program trusts them) is opened through GDAL's network readers and tiled
with the same windowed reads, so only the blocks of each tile are fetched (HTTP Range requests), never the whole
file first. The location passes the allow-list of :mod:`sardata.location`; S3 takes sardata's settings
(``SARDATA_S3_ENDPOINT_URL``, ``SARDATA_S3_ANON``) and the usual ``AWS_*`` credentials (:func:`gdal_options`).
Listing such inputs is :func:`sardata.discovery.remote_inputs`.

``mode=chips``: every raster under the root is one sample; with ``labels=folder`` the class is the first folder
below the root (classes = those folders, sorted, unless ``classes=`` lists them).

Pixels: uint8 stays uint8 (``display8``/``uint8``); other real types become float32; complex bands give ``cplx``
(complex64) and ``img`` = magnitude. Radiometry and scale are never guessed for real-valued data: declare them
(``-o radiometry=sigma0 -o scale=db``) or let ``name_regex`` (named groups ``radiometry``, ``scale``, ``pol``)
parse them from file names; undeclared values are recorded as ``unspecified`` so a build will not mix them.
"""

from __future__ import annotations

import math
import os
import re
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from sardata import __version__
from sardata.errors import ConfigError, RejectFile
from sardata.location import from_vsi, s3_settings, to_vsi, url_scheme
from sardata.sources._base import FileUnit, MemberStatus, Sample, Source, check_raster_budget

RASTER_SUFFIXES = (".tif", ".tiff", ".gtiff")
_NETWORK = re.compile(r"HTTP|curl|CURL|connect|resolve host|timed? ?out|S3|signature|Access Denied", re.I)


def gdal_path(location: str) -> str | None:
    """GDAL's virtual path for a scene that is not on local disk (``https://h/x.tif`` → ``/vsicurl/https://h/x.tif``,
    ``s3://b/k.tif`` → ``/vsis3/b/k.tif``; a given ``/vsicurl/``, ``/vsis3/`` path is checked the same way), or None
    for a local file. Raises ConfigError for a location the allow-list refuses or GDAL cannot read."""
    if location.startswith("/vsi") or ("://" in location and url_scheme(location) not in (None, "file")):
        return to_vsi(from_vsi(location))
    return None


def gdal_options(path: str, cache_mb: int) -> dict[str, Any]:
    """GDAL settings for reading ``path``: the block cache, and for network paths no directory listing, retries,
    timeouts, sardata's User-Agent and the S3 endpoint and anonymity from sardata's settings (path-style
    addressing for a custom endpoint, as MinIO and SeaweedFS need). Credentials stay GDAL's (``AWS_*``)."""
    opts: dict[str, Any] = {"GDAL_CACHEMAX": cache_mb * 2**20}
    if not path.startswith("/vsi"):
        return opts
    opts |= {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR", "GDAL_HTTP_MAX_RETRY": "3", "GDAL_HTTP_RETRY_DELAY": "0.5",
             "GDAL_HTTP_TIMEOUT": "60", "GDAL_HTTP_USERAGENT": f"sardata/{__version__}"}  # fmt: skip
    if path.startswith("/vsis3/"):
        endpoint, anon = s3_settings()
        endpoint = endpoint or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            parts = urllib.parse.urlsplit(endpoint)
            opts |= {"AWS_S3_ENDPOINT": parts.netloc + parts.path.rstrip("/"),
                     "AWS_HTTPS": "YES" if parts.scheme == "https" else "NO", "AWS_VIRTUAL_HOSTING": "FALSE"}  # fmt: skip
        if anon:
            opts["AWS_NO_SIGN_REQUEST"] = "YES"
    return opts


def tile_starts(size: int, tile: int, stride: int, edge: str) -> list[int]:
    """Offsets of the tiles along one axis of ``size`` pixels (``size ≥ tile``) under an ``edge`` rule."""
    starts = list(range(0, size - tile + 1, stride))
    if edge == "shift" and starts[-1] + tile < size:
        starts.append(size - tile)
    elif edge == "pad":
        starts = list(range(0, stride * math.ceil((size - tile) / stride) + 1, stride))
    return starts


@dataclass(frozen=True)
class GeoTIFFOptions:
    mode: str = "scene"  # scene | chips
    tile: int = 256
    stride: int = 256
    edge: str = "shift"  # shift | pad | drop  (module docstring)
    max_nodata_frac: float = 0.5
    nodata: float | None = None  # overrides the file's nodata value
    labels: str = "none"  # none | folder   (chips mode)
    classes: tuple[str, ...] = ()
    radiometry: str = "unspecified"
    scale: str = "unspecified"
    name_regex: str | None = None
    gdal_cache_mb: int = 64

    def __post_init__(self) -> None:
        if self.mode not in ("scene", "chips"):
            raise ConfigError(f"geotiff mode {self.mode!r}; choose scene or chips")
        if self.tile < 1 or self.stride < 1:
            raise ConfigError("geotiff tile and stride must be positive")
        if self.edge not in ("shift", "pad", "drop"):
            raise ConfigError(f"geotiff edge {self.edge!r}; choose shift, pad or drop")
        if self.labels not in ("none", "folder"):
            raise ConfigError(f"geotiff labels {self.labels!r}; choose none or folder")
        if self.name_regex:
            try:
                re.compile(self.name_regex)
            except re.error as exc:
                raise ConfigError(f"geotiff name_regex {self.name_regex!r}: {exc}") from exc


class GeoTIFF(Source):
    id = "geotiff"
    version = "1.0.0"
    description = "Any GeoTIFF/TIFF: scenes tiled into chips with windowed reads, or a folder of chips"
    classes = ()
    Options = GeoTIFFOptions
    reads_whole_file = False
    data_suffixes = RASTER_SUFFIXES

    def __init__(self, root: Any, options: Any = None) -> None:
        super().__init__(root, options)
        self._classes = list(self.options.classes)
        if not self._classes and self.options.mode == "chips" and self.options.labels == "folder":
            base = self.root if self.root.is_dir() else self.root.parent
            self._classes = sorted(p.name for p in base.iterdir() if p.is_dir())

    def class_names(self) -> list[str]:
        return self._classes

    def read(self, unit: FileUnit) -> Iterator[Sample | MemberStatus]:
        import rasterio

        try:
            remote = gdal_path(unit.path)
        except ConfigError as exc:
            raise RejectFile("refused_location", str(exc)) from exc
        if remote is None:
            with open(unit.path, "rb") as fh:
                if fh.read(4) not in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
                    raise RejectFile("bad_format", "not a TIFF (magic bytes)")
        path, kwargs = (unit.path, {}) if remote is None else (remote, {"driver": "GTiff"})  # remote: TIFF only
        try:
            with rasterio.Env(**gdal_options(path, self.options.gdal_cache_mb)), rasterio.open(path, **kwargs) as ds:
                if self.options.mode == "chips":
                    yield self._chip(ds, unit)
                else:
                    yield from self._tiles(ds, unit)
        except RejectFile:
            raise
        except rasterio.errors.RasterioError as exc:
            reason = "unreachable" if remote is not None and _NETWORK.search(str(exc)) else "undecodable"
            raise RejectFile(reason, f"rasterio cannot read it: {exc}") from exc

    # ------------------------------------------------------------------ scene mode
    def _tiles(self, ds: Any, unit: FileUnit) -> Iterator[Sample | MemberStatus]:
        from rasterio.windows import Window

        o = self.options
        if ds.height < o.tile or ds.width < o.tile:
            raise RejectFile("too_small", f"{ds.width}x{ds.height} scene is smaller than one {o.tile}px tile")
        rows, cols = tile_starts(ds.height, o.tile, o.stride, o.edge), tile_starts(ds.width, o.tile, o.stride, o.edge)
        check_raster_budget(ds, f"{unit.rel} tile", (o.tile, o.tile))  # each windowed read is one tile
        common = self._common(ds, unit)
        fill = self._nodata(ds)
        for i, r in enumerate(rows):
            for j, c in enumerate(cols):
                window = Window(c, r, o.tile, o.tile)
                token = f"r{r:06d}-c{c:06d}"
                past_edge = r + o.tile > ds.height or c + o.tile > ds.width  # only with edge="pad"
                data = (
                    ds.read(window=window, boundless=True, fill_value=fill or 0)
                    if past_edge
                    else ds.read(window=window)
                )
                frac = self._nodata_fraction(ds, data)
                if frac >= o.max_nodata_frac:
                    yield MemberStatus(token, "skipped", "nodata", f"{frac:.0%} nodata (limit {o.max_nodata_frac:.0%})")
                    continue
                transform = ds.window_transform(window)
                bounds = ds.window_bounds(window)
                index = i * len(cols) + j
                yield self._sample(data, common, token, index, transform, bounds, None,
                                   {"row": r, "col": c, "nodata_frac": frac})  # fmt: skip

    # ------------------------------------------------------------------ chips mode
    def _chip(self, ds: Any, unit: FileUnit) -> Sample:
        label = None
        if self.options.labels == "folder":
            folder = unit.parts[0] if len(unit.parts) > 1 else ""
            if folder not in self._classes:
                raise RejectFile("unknown_class", f"folder {folder or '(root)'!r} not in classes {self._classes}")
            label = folder
        check_raster_budget(ds, unit.rel)  # before GDAL allocates the declared raster
        data = ds.read()
        return self._sample(data, self._common(ds, unit), None, None, ds.transform, ds.bounds, label,
                            {"nodata_frac": self._nodata_fraction(ds, data)})  # fmt: skip

    # ------------------------------------------------------------------ shared
    def _common(self, ds: Any, unit: FileUnit) -> dict[str, Any]:
        o = self.options
        radiometry, scale, pol = o.radiometry, o.scale, None
        if o.name_regex:
            m = re.search(o.name_regex, unit.rel)
            if m:
                groups = m.groupdict()
                radiometry, scale, pol = (
                    groups.get("radiometry") or radiometry,
                    groups.get("scale") or scale,
                    groups.get("pol"),
                )
        if ds.dtypes[0] == "uint8":
            radiometry, scale = "display8", "uint8"
        crs = ds.crs.to_string() if ds.crs else None
        descriptions = [d or "" for d in ds.descriptions]
        common = {
            "radiometry": radiometry, "scale": scale, "crs": crs, "projected": bool(ds.crs and ds.crs.is_projected),
            "pol": pol or (",".join(descriptions) if all(descriptions) else None),
            "meta": {"scene": unit.rel, "scene_shape": [ds.count, ds.height, ds.width], "dtype": ds.dtypes[0],
                     "band_descriptions": descriptions, "nodata": self._nodata(ds)},
        }  # fmt: skip
        if not crs:
            common["meta"]["warning"] = "no CRS: not georeferenced"
        return common

    def _nodata(self, ds: Any) -> float | None:
        value = self.options.nodata if self.options.nodata is not None else ds.nodata
        return None if value is None else float(value)

    def _nodata_fraction(self, ds: Any, data: np.ndarray) -> float:
        nodata = self._nodata(ds)
        if nodata is None:
            return 0.0
        hit = np.isnan(data) if math.isnan(nodata) else data == nodata
        return float(hit.all(axis=0).mean())  # a pixel is nodata when every band is

    def _sample(self, data: np.ndarray, common: dict, token: str | None, index: int | None, transform: Any,
                bounds: Any, label: str | None, extra: dict) -> Sample:  # fmt: skip
        arrays: dict[str, np.ndarray] = {}
        if np.iscomplexobj(data):
            arrays["cplx"] = data.astype(np.complex64)
            arrays["img"] = np.abs(arrays["cplx"]).astype(np.float32)
        elif data.dtype == np.uint8:
            arrays["img"] = np.ascontiguousarray(data)
        else:
            arrays["img"] = data.astype(np.float32)
        nodata = common["meta"]["nodata"]
        if nodata is not None and "img" in arrays and arrays["img"].dtype == np.float32:
            bad = np.isnan(arrays["img"]) if math.isnan(nodata) else arrays["img"] == nodata
            arrays["img"][bad] = 0.0  # nodata pixels become 0 (recorded), never NaN in a sample
            if bad.any():
                arrays["mask"] = (~bad.all(axis=0)).astype(np.uint8)
        spacing = [abs(float(transform.a)), abs(float(transform.e))] if common["projected"] else None
        return Sample(
            arrays=arrays,
            split="unlabelled" if label is None else "pool",
            label_name=label,
            key_token=token,
            sub_index=index,
            src_member=token,
            columns={
                "radiometry": common["radiometry"],
                "scale": common["scale"],
                "crs": common["crs"],
                "bbox": [float(b) for b in bounds],
                "pol": common["pol"],
                "pixel_spacing_m": spacing,
            },  # fmt: skip
            meta={**common["meta"], **extra, "transform": [float(v) for v in tuple(transform)[:6]]},
        )
