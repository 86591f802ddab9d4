"""SAMPLE (Synthetic and Measured Paired Labeled Experiment), AFRL public release (``sources.md`` §4).

Layout: ``png_images/{decibel,qpm}/{real,synth}/<class>/<stem>.png`` and ``mat_files/{real,synth}/<class>/<stem>.mat``
with ``<stem>`` = ``<class>_<real|synth>_A_elevDeg_<EEE>_azCenter_<AAA>_<FF>_serial_<serial>``.

**Work unit.** One sample per pose and domain (real or synthetic). The unit is the PNG of the chosen
normalisation (``-o normalisation=decibel|qpm``, default ``decibel``); its ``.mat`` is opened from the unit as a
companion. So that every file is in ``sources.parquet`` exactly once, the listing pass records:

* the ``.mat`` of a pose whose chosen PNG exists → ``skipped`` (``companion``, detail names the PNG);
* a ``.mat`` without that PNG → ``skipped`` (``no_png``; nothing to pair it with);
* PNGs of the other normalisation → ``skipped`` (``other_normalisation``; a second ingest with the other option
  reads them — keys differ because they contain the path, which is how SAR-JEPA's 5,380 PNGs are reached).

A companion that cannot be read (corrupt, not MATLAB, no ``complex_img``) rejects the PNG unit (``bad_mat``,
detail names the ``.mat``), so a damaged pair never becomes a sample silently lacking ``cplx``.

**Fields.** ``img`` = the 8-bit PNG as stored, ``(1, 128, 128)`` uint8 (``radiometry=display8``,
``scale=uint8``); no magnitude is re-derived from the ``.mat``. ``cplx`` = ``complex_img`` as complex64
``(1, H, W)`` (complex128 or complex64 accepted; ``complex_img_unshifted`` is not stored). MATLAB v5 is read with
``scipy.io.loadmat``; v7.3 (HDF5, magic at byte 0 or 512) with ``h5py``, transposed from HDF5's reversed axis
order, complex compounds ``real``/``imag`` combined, ``char`` arrays decoded.

**Labels and angles.** Label = the ``<class>`` folder (lower-case canonical ids), falling back to the name's
class token; a disagreement is kept in ``meta.warnings``. Name ``EEE`` → ``depression_deg`` (SAMPLE's
"elevation" is a depression angle), ``AAA.FF`` → ``azimuth_deg``; the ``.mat`` ``elevation``/``azimuth`` are kept
in ``meta`` and differences over 0.05° are warnings. ``.mat`` scalars (``center_freq``, ``bandwidth``, pixel
spacings, resolutions, ``aligned``, ``taylor_weights``, ``target_name``, ``source_mstar_file``, ``explanation``)
go to ``meta``; ``[range_pixel_spacing, xrange_pixel_spacing]`` → ``pixel_spacing_m``. ``meta.twin_key`` is the
key the real↔synthetic twin gets (``twin_present`` says whether its file exists). No split is shipped → ``pool``.

Limitation: the resume fingerprint covers the PNG only (``meta.mat_sha256`` records the companion); after
replacing ``.mat`` files rerun with ``--overwrite``.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from sardata.errors import ConfigError, RejectFile, SkipFile
from sardata.manifest.keys import make_key
from sardata.sources._base import FileUnit, MemberStatus, Sample, Source
from sardata.sources._image import decode_image
from sardata.sources._sniff import sniff

CLASSES = ("2s1", "bmp2", "btr70", "m1", "m2", "m35", "m548", "m60", "t72", "zsu23")
NORMALISATIONS = ("decibel", "qpm")
DOMAINS = ("real", "synth")
NAME_RE = re.compile(
    r"^(?P<cls>[a-z0-9]+)_(?P<domain>real|synth)_(?P<variant>[a-z0-9]+)_elevDeg_(?P<elev>\d+)"
    r"_azCenter_(?P<az>\d+)_(?P<azf>\d+)_serial_(?P<serial>.+)$",
    re.IGNORECASE,
)
MAT_VARIABLES = (
    "complex_img", "complex_img_unshifted", "azimuth", "elevation", "bandwidth", "center_freq",
    "range_pixel_spacing", "xrange_pixel_spacing", "range_resolution", "xrange_resolution", "taylor_weights",
    "aligned", "target_name", "source_mstar_file", "explanation",
)  # fmt: skip
#: ``.mat`` variables copied into ``meta`` (the two complex images are arrays, not metadata)
MAT_META = tuple(v for v in MAT_VARIABLES if not v.startswith("complex_img"))
ANGLE_TOLERANCE_DEG = 0.05
LFS_POINTER = b"version https://git-lfs.github.com/spec/"


@dataclass(frozen=True)
class SAMPLEOptions:
    #: which 8-bit PNG normalisation becomes ``img``: ``decibel`` or ``qpm``
    normalisation: str = "decibel"

    def __post_init__(self) -> None:
        if self.normalisation not in NORMALISATIONS:
            raise ConfigError(
                f"sample: normalisation must be one of {list(NORMALISATIONS)}, got {self.normalisation!r}"
            )


@dataclass(frozen=True)
class _Pose:
    """Where a PNG sits in the layout: ``parts[png_at]`` is ``png_images`` (or -1 outside the layout)."""

    norm: str | None
    domain: str | None
    folder_class: str
    png_at: int


class SAMPLE(Source):
    companion_files = True  # labels / metadata live in other files: resume checks the whole listing
    id = "sample"
    version = "1.0.0"
    description = "SAMPLE measured/synthetic MSTAR-like chips: 8-bit PNG (decibel|qpm) + complex .mat companion"
    classes = CLASSES
    Options = SAMPLEOptions

    def skip_reasons(self, rels: list[str]) -> dict[str, str]:
        out = super().skip_reasons(rels)
        chosen = self.options.normalisation
        present = {r.lower(): r for r in rels}
        for rel in rels:
            if rel in out:
                continue
            p = PurePosixPath(*Path(rel).parts)
            if p.suffix.lower() == ".png":
                norm = _layout(p.parts).norm
                if norm is not None and norm != chosen:
                    out[rel] = f"other_normalisation: {norm} PNG; this ingest reads {chosen} (-o normalisation={norm})"
            elif p.suffix.lower() == ".mat":
                png = png_for_mat(p.parts, chosen)
                if png is not None and png.lower() in present:
                    out[rel] = f"companion: read as cplx of {present[png.lower()]}"
                else:
                    out[rel] = f"no_png: no {png or 'png_images/' + chosen + '/... PNG'} to pair this .mat with"
        return out

    def read(self, unit: FileUnit) -> list[Sample | MemberStatus]:
        data = unit.data()
        suffix = Path(unit.rel).suffix.lower()
        if data.startswith(LFS_POINTER):
            raise RejectFile("lfs_pointer", "a Git LFS pointer, not the file; run `git lfs pull` in the clone")
        kind = sniff(data[:600])
        if suffix == ".mat":
            raise SkipFile("companion", "a .mat is read together with its PNG, never on its own")
        if kind != "png":
            if suffix == ".png":
                raise RejectFile("bad_format", f"content is {kind or 'unrecognised bytes'}, expected PNG")
            raise SkipFile("not_data", f"not a SAMPLE PNG or .mat (content {kind or 'unrecognised'})")
        return [self._read_png(unit, data)]

    def _read_png(self, unit: FileUnit, data: bytes) -> Sample:
        parts = unit.parts
        pose = _layout(parts)
        if pose.norm is None:
            raise RejectFile("bad_layout", "no decibel/ or qpm/ folder above the PNG; expected png_images/<norm>/...")
        if pose.norm != self.options.normalisation:
            raise SkipFile("other_normalisation", f"{pose.norm} PNG; this ingest reads {self.options.normalisation}")
        stem = Path(parts[-1]).stem
        m = NAME_RE.match(stem)
        if m is None:
            raise RejectFile(
                "bad_name", f"{stem!r} does not match <class>_<real|synth>_A_elevDeg_EEE_azCenter_AAA_FF_serial_<s>"
            )
        warnings: list[str] = []
        name_class, name_domain = m["cls"].lower(), m["domain"].lower()
        label = pose.folder_class.lower() if pose.folder_class.lower() in CLASSES else name_class
        if label not in CLASSES:
            raise RejectFile("unknown_class", f"class {label!r} (folder {pose.folder_class!r}) not in {list(CLASSES)}")
        if pose.folder_class.lower() not in CLASSES:
            warnings.append(f"folder {pose.folder_class!r} is not a class; label from the file name")
        elif name_class != label:
            warnings.append(f"file-name class {name_class} disagrees with folder class {label}")
        domain = pose.domain or name_domain
        if domain != name_domain:
            warnings.append(f"file-name domain {name_domain} disagrees with folder {domain}")
        depression, azimuth = float(m["elev"]), float(f"{m['az']}.{m['azf']}")
        img, img_meta = decode_image(data, expect=("png",))
        twin = _twin_rel(parts, pose, m)
        base = Path(unit.path).parents[len(parts) - 1]
        meta: dict[str, Any] = {
            **img_meta, "normalisation": pose.norm, "domain": domain, "name_class": name_class,
            "serial": m["serial"], "variant": m["variant"],
            "twin_src_path": twin, "twin_key": make_key(self.id, twin), "twin_present": (base / twin).is_file(),
        }  # fmt: skip
        columns: dict[str, Any] = {
            "radiometry": "display8", "scale": "uint8", "band": "X", "pol": "HH",
            "sensor": "MSTAR" if domain == "real" else "SAMPLE-synthetic",
            "depression_deg": depression, "azimuth_deg": azimuth,
        }  # fmt: skip
        arrays = {"img": img}
        mat_rel = mat_for_png(parts, pose, domain)
        mat_path = _existing(base, mat_rel) if mat_rel else None
        meta["mat_path"] = mat_path.relative_to(base).as_posix() if mat_path else None
        if mat_path is not None:
            mat_data = mat_path.read_bytes()
            cplx, mat_meta = load_mat(mat_data, meta["mat_path"])
            arrays["cplx"] = cplx
            meta |= {"mat_sha256": hashlib.sha256(mat_data).hexdigest(), **mat_meta}
            spacing = [_number(mat_meta.get("range_pixel_spacing")), _number(mat_meta.get("xrange_pixel_spacing"))]
            if None not in spacing:
                columns["pixel_spacing_m"] = spacing
            if cplx.shape[1:] != img.shape[1:]:
                warnings.append(f"complex_img is {cplx.shape[1:]} but the PNG is {img.shape[1:]}")
            for name, value in (("elevation", depression), ("azimuth", azimuth)):
                got = _number(mat_meta.get(name))
                if got is not None and abs(got - value) > ANGLE_TOLERANCE_DEG:
                    warnings.append(f".mat {name}={got} disagrees with the file name's {value}")
        if warnings:
            meta["warnings"] = warnings
        return Sample(arrays=arrays, split="pool", label_name=label, columns=columns, meta=meta)


# ----------------------------------------------------------------------------------------------- layout
def _layout(parts: tuple[str, ...]) -> _Pose:
    """Normalisation, domain and class folder of a PNG path (``png_images/<norm>/<domain>/<class>/<file>``)."""
    lower = [p.lower() for p in parts[:-1]]
    png_at = lower.index("png_images") if "png_images" in lower else -1
    norm = next((p for p in reversed(lower) if p in NORMALISATIONS), None)
    domain = next((p for p in reversed(lower) if p in DOMAINS), None)
    return _Pose(norm, domain, parts[-2] if len(parts) >= 2 else "", png_at)


def png_for_mat(parts: tuple[str, ...], norm: str) -> str | None:
    """Relative path of the ``norm`` PNG that a ``mat_files/<domain>/<class>/<stem>.mat`` belongs to."""
    lower = [p.lower() for p in parts[:-1]]
    if "mat_files" not in lower:
        return None
    i = lower.index("mat_files")
    rest = parts[i + 1 : -1]
    return PurePosixPath(*parts[:i], "png_images", norm, *rest, Path(parts[-1]).stem + ".png").as_posix()


def mat_for_png(parts: tuple[str, ...], pose: _Pose, domain: str) -> str | None:
    """Relative path of the ``.mat`` companion of a PNG in the standard layout (None outside it)."""
    if pose.png_at < 0:
        return None
    return PurePosixPath(
        *parts[: pose.png_at], "mat_files", domain, pose.folder_class, Path(parts[-1]).stem + ".mat"
    ).as_posix()


def _twin_rel(parts: tuple[str, ...], pose: _Pose, m: re.Match[str]) -> str:
    """Relative path of the other domain's PNG of the same pose (domain swapped in folder and name)."""
    other = {"real": "synth", "synth": "real"}[m["domain"].lower()]
    name = Path(parts[-1])
    stem = name.stem
    twin_name = stem[: m.start("domain")] + other + stem[m.end("domain") :] + name.suffix
    folders = [other if p.lower() in DOMAINS else p for p in parts[:-1]]
    return PurePosixPath(*folders, twin_name).as_posix()


def _existing(base: Path, rel: str) -> Path | None:
    """``base/rel`` if it exists, matching the file name case-insensitively (``.MAT``)."""
    path = base / rel
    if path.is_file():
        return path
    try:
        names = {n.lower(): n for n in os.listdir(path.parent)}
    except OSError:
        return None
    hit = names.get(path.name.lower())
    return path.parent / hit if hit else None


# ----------------------------------------------------------------------------------------------- .mat
def load_mat(data: bytes, where: str) -> tuple[np.ndarray, dict[str, Any]]:
    """Decode a SAMPLE ``.mat`` (v5 or v7.3) into ``cplx`` ``(1, H, W)`` complex64 and JSON-ready metadata.

    Raises:
        RejectFile: ``lfs_pointer`` or ``bad_mat`` (not MATLAB v5/v7.3, undecodable, no complex ``complex_img``).
    """
    if data.startswith(LFS_POINTER):
        raise RejectFile("lfs_pointer", f"{where} is a Git LFS pointer; run `git lfs pull` in the clone")
    kind = sniff(data[:600])
    try:
        if kind == "mat5":
            variables, fmt = _load_mat5(data), "v5"
        elif kind == "hdf5":
            variables, fmt = _load_mat73(data), "v7.3"
        else:
            raise RejectFile("bad_mat", f"{where}: content is {kind or 'unrecognised bytes'}, not MATLAB v5 or v7.3")
    except RejectFile:
        raise
    except Exception as exc:  # scipy raises ValueError/TypeError/MatReadError, h5py OSError... for corrupt files
        raise RejectFile("bad_mat", f"{where}: {type(exc).__name__}: {exc}") from exc
    img = variables.get("complex_img")
    if img is None:
        raise RejectFile("bad_mat", f"{where}: no complex_img variable (has {sorted(variables)})")
    img = np.asarray(img)
    if img.dtype.kind != "c" or img.ndim != 2:
        raise RejectFile("bad_mat", f"{where}: complex_img is {img.dtype} {img.shape}, expected a 2-D complex array")
    meta: dict[str, Any] = {"mat_format": fmt}
    for name in MAT_META:
        if name in variables:
            meta[name] = _plain(variables[name])
    missing = [v for v in MAT_VARIABLES if v not in variables]
    extra = sorted(set(variables) - set(MAT_VARIABLES))
    if missing:
        meta["mat_missing"] = missing
    if extra:
        meta["mat_extra"] = extra
    return np.ascontiguousarray(img.astype(np.complex64))[None], meta


def _load_mat5(data: bytes) -> dict[str, Any]:
    from scipy.io import loadmat

    raw = loadmat(io.BytesIO(data), chars_as_strings=True)
    return {k: v for k, v in raw.items() if not k.startswith("__")}


def _load_mat73(data: bytes) -> dict[str, Any]:
    """Top-level datasets of a v7.3 file, transposed back to MATLAB's axis order."""
    import h5py

    out: dict[str, Any] = {}
    with h5py.File(io.BytesIO(data), "r") as f:
        for name, obj in f.items():
            if not isinstance(obj, h5py.Dataset):
                continue  # '#refs#' and struct groups: not part of SAMPLE's flat variables
            cls = obj.attrs.get("MATLAB_class", b"")
            cls = cls.decode() if isinstance(cls, bytes) else str(cls)
            if obj.attrs.get("MATLAB_empty", 0):
                out[name] = "" if cls == "char" else np.zeros((0,))
                continue
            from sardata.sources._base import check_budget

            check_budget(obj.shape, obj.dtype.itemsize, f"HDF5 dataset {name}")  # before h5py allocates it
            value = obj[()]
            if isinstance(value, np.ndarray) and value.dtype.names and {"real", "imag"} <= set(value.dtype.names):
                value = value["real"] + 1j * value["imag"]
            if isinstance(value, np.ndarray):
                value = value.T
            if cls == "char" and isinstance(value, np.ndarray):
                value = "".join(chr(c) for c in value.ravel(order="C"))
            elif cls == "logical" and isinstance(value, np.ndarray):
                value = value.astype(bool)
            out[name] = value
    return out


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _plain(value: Any) -> Any:
    """A ``.mat`` value as JSON-ready Python: scalars unwrapped, strings joined, small arrays as lists."""
    if isinstance(value, str):
        return value
    arr = np.asarray(value)
    if arr.dtype.kind == "U":
        return "".join(str(s) for s in arr.ravel())
    if arr.dtype.kind not in "biuf":
        return {"dtype": str(arr.dtype), "shape": list(arr.shape)}
    if arr.size == 1:
        item = arr.ravel()[0].item()
        if isinstance(item, float):
            return item if np.isfinite(item) else None
        return bool(item) if arr.dtype.kind == "b" else item
    if arr.size <= 64:
        flat = arr.astype(np.float64).ravel() if arr.dtype.kind == "f" else arr.ravel()
        return [x if not isinstance(x, float) or np.isfinite(x) else None for x in flat.tolist()]
    return {"dtype": str(arr.dtype), "shape": list(arr.shape)}
