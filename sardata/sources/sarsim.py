"""SARSim simulated vehicle chips: a configurable folder-of-images reader (``sources.md`` §3) — layout unverified.

Nobody here has seen the official SARSim release (archive, folders, file format, class names, angle list and scene
names are all unknown), so this adapter reads any folder of images and is configured with ``-o key=value``:

* Files: PNG/JPEG/TIFF (8- or 16-bit greyscale, equal-channel RGB collapsed, colour → luma as
  :func:`~sardata.sources._image.decode_image`) and ``.npy`` (loaded with ``allow_pickle=False``). The type comes
  from the bytes; a file whose bytes are none of these is ``rejected`` (``bad_format``) when its extension claims
  an image or ``.npy``, else ``skipped`` (``not_data``).
* ``pattern``: a regex with named groups, **fully** matched (``re.fullmatch``) against the file ``stem``
  (default), ``name`` or relative ``path`` (``-o match=...``). ``depression`` → ``depression_deg``, ``azimuth``
  → ``azimuth_deg``, ``class`` → label, every other group (``scene``, ``model``, ``n``…) → ``meta`` as a string.
  The default is the SAR-JEPA repackage's ``<scene>_<n>`` (``grass_290.png``); ``-o pattern=none`` disables
  name parsing. A data file whose name does not match is ``rejected`` as ``name_mismatch`` (``-o
  unmatched=skip`` makes it a ``skipped`` row): in an unverified layout a mismatch means the pattern is wrong, and
  a rejected row makes the run exit non-zero instead of quietly ingesting part of the data.
* Classes: ``Source.classes`` must be a fixed tuple but the seven SARSim class names are unknown, so the
  registry attribute is ``()`` (and the source card lists ``classes: []``); ``-o classes=a,b,...`` configures
  the list and :meth:`SARSim.class_names` returns it, label ids being positions in it. With classes the run is
  labelled (split ``pool``): the label is the ``class`` group when the pattern has one, else the nearest
  ancestor folder named like a configured class (case-insensitive); both present and different → ``rejected``
  ``class_conflict``; neither, or a name outside the list → ``rejected`` ``unknown_class`` (the full list is
  unknown, so "not selected" cannot be told from "misspelt"). Without classes the run is unlabelled (split
  ``unlabelled``, label null) and a ``class`` group in the pattern is a :class:`~sardata.errors.ConfigError`.
* 16-bit pixels: ``img`` allows uint8 and float32 only. Default ``depth16=float32`` stores ``v / 65535`` as
  float32 (exactly invertible: ``rint(img * 65535) == v``) with ``radiometry=display16``, ``scale=unit``;
  ``depth16=shift8`` stores ``v >> 8`` as uint8 ``display8``/``uint8`` (the SAR-JEPA decode, ``sar-jepa.md``
  §2) so 8- and 16-bit files can share one view. Float data (``.npy``, float TIFF) is float32 with
  ``radiometry=unknown``, ``scale=unknown``: nothing says what it measures, and ``build-shards`` refuses to mix
  it with display images.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from sardata.errors import ConfigError, RejectFile, SkipFile
from sardata.sources._base import FileUnit, Sample, Source
from sardata.sources._image import decode_image, strict_pil
from sardata.sources._sniff import sniff

#: SAR-JEPA repackage names, ``grass_290`` (matched against the stem)
DEFAULT_PATTERN = r"(?P<scene>[A-Za-z][A-Za-z0-9-]*)_(?P<n>\d+)"
DATA_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".npy"})
MATCH_ON = ("stem", "name", "path")
UNMATCHED = ("reject", "skip")
DEPTH16 = ("float32", "shift8")
#: meta keys written by the decoder; a pattern group of the same name would overwrite them
RESERVED_GROUPS = frozenset({"format", "mode", "was_colour", "bit_depth", "dn_divisor", "converted", "npy_dtype"})
_NPY_MAGIC = b"\x93NUMPY"
_MODES_16 = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
_COMMON = {"sensor": "SARSim", "band": "X", "pol": "unknown"}


@dataclass(frozen=True)
class SARSimOptions:
    #: class names in label-id order; empty = unlabelled run
    classes: tuple[str, ...] = ()
    #: regex with named groups, fully matched; ``none`` disables name parsing
    pattern: str | None = DEFAULT_PATTERN
    #: what the pattern is matched against: ``stem`` (name without extension), ``name``, ``path`` (relative, ``/``)
    match: str = "stem"
    #: a data file whose name does not match: ``reject`` or ``skip``
    unmatched: str = "reject"
    #: 16-bit pixels: ``float32`` (v / 65535) or ``shift8`` (uint8 v >> 8)
    depth16: str = "float32"

    def __post_init__(self) -> None:
        for name, value, allowed in (
            ("match", self.match, MATCH_ON),
            ("unmatched", self.unmatched, UNMATCHED),
            ("depth16", self.depth16, DEPTH16),
        ):
            if value not in allowed:
                raise ConfigError(f"sarsim: option {name}={value!r}; choose one of {list(allowed)}")
        lowered = [c.lower() for c in self.classes]
        if len(set(lowered)) != len(lowered):
            raise ConfigError(f"sarsim: classes {list(self.classes)} repeat a name (names are case-insensitive)")
        groups = compile_pattern(self.pattern).groupindex if self.pattern is not None else {}
        if "class" in groups and not self.classes:
            raise ConfigError(
                "sarsim: the pattern has a `class` group but no classes are configured; pass -o classes=a,b,... "
                "(label ids follow that order) or drop the group for an unlabelled run"
            )
        clash = sorted(RESERVED_GROUPS & set(groups))
        if clash:
            raise ConfigError(f"sarsim: pattern groups {clash} are reserved for decoder metadata; rename them")


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """Compile a name pattern; a bad regex is a :class:`ConfigError` that quotes it and the position."""
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"sarsim: pattern {pattern!r} is not a valid regex: {exc}") from exc


class SARSim(Source):
    id = "sarsim"
    version = "1.0.0"
    description = "SARSim simulated X-band vehicle chips (layout unverified): configurable folder of PNG/JPEG/TIFF/.npy"
    classes = ()
    Options = SARSimOptions

    def class_names(self) -> list[str]:
        return list(self.options.classes)

    @cached_property
    def _regex(self) -> re.Pattern[str] | None:
        return compile_pattern(self.options.pattern) if self.options.pattern is not None else None

    def read(self, unit: FileUnit) -> list[Sample]:
        data = unit.data()
        kind = "npy" if data.startswith(_NPY_MAGIC) else sniff(data[:600])
        if kind not in ("png", "jpeg", "tiff", "npy"):
            suffix = Path(unit.rel).suffix.lower()
            what = f"content is {kind or 'unrecognised bytes'}, expected PNG/JPEG/TIFF/.npy"
            if suffix in DATA_SUFFIXES:
                raise RejectFile("bad_format", what)
            raise SkipFile("not_data", f"{suffix or 'no extension'}: {what}")
        groups = self._parse_name(unit)
        label = self._label(unit, groups.pop("class", None))
        columns: dict[str, Any] = dict(_COMMON)
        for group, column in (("depression", "depression_deg"), ("azimuth", "azimuth_deg")):
            if group in groups:
                columns[column] = _angle(group, groups.pop(group))
        img, meta, radiometry = decode_sarsim_npy(data, self.options.depth16) if kind == "npy" else self._image(data)
        columns.update(radiometry)
        return [
            Sample(
                arrays={"img": img},
                split="unlabelled" if label is None else "pool",
                label_name=label,
                columns=columns,
                meta={**meta, **groups},
            )
        ]

    def _parse_name(self, unit: FileUnit) -> dict[str, str]:
        """Named groups of the pattern (unset optional groups left out); ``{}`` when no pattern is configured."""
        if self._regex is None:
            return {}
        rel = Path(unit.rel)
        subject = {"stem": rel.stem, "name": rel.name, "path": rel.as_posix()}[self.options.match]
        found = self._regex.fullmatch(subject)
        if found is None:
            signal = SkipFile if self.options.unmatched == "skip" else RejectFile
            raise signal(
                "name_mismatch",
                f"file {self.options.match} {subject!r} does not match pattern {self.options.pattern!r}; "
                "pass -o pattern=... (or pattern=none), -o match=stem|name|path",
            )
        return {k: v for k, v in found.groupdict().items() if v is not None}

    def _label(self, unit: FileUnit, named: str | None) -> str | None:
        """Class from the ``class`` group or the nearest ancestor class folder; None for an unlabelled run."""
        lookup = {c.lower(): c for c in self.class_names()}
        if not lookup:
            return None
        folder = next((lookup[p.lower()] for p in reversed(unit.parts[:-1]) if p.lower() in lookup), None)
        if named is None:
            if folder is None:
                raise RejectFile(
                    "unknown_class",
                    f"no folder of {'/'.join(unit.parts[:-1]) or '(root)'} is a configured class "
                    f"{list(lookup.values())}",
                )
            return folder
        label = lookup.get(named.lower())
        if label is None:
            raise RejectFile("unknown_class", f"class {named!r} from the name is not in {list(lookup.values())}")
        if folder is not None and folder != label:
            raise RejectFile("class_conflict", f"the name says {label!r} but the folder says {folder!r}")
        return label

    def _image(self, data: bytes) -> tuple[np.ndarray, dict[str, Any], dict[str, str]]:
        """Decode PNG/JPEG/TIFF; 8-bit through the shared decoder, 16-bit and float greyscale here."""
        from PIL import Image

        arr: np.ndarray | None = None
        try:
            with warnings.catch_warnings(), strict_pil():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(data)) as im:
                    mode, fmt = im.mode, (im.format or "").lower()
                    if mode in _MODES_16 or mode in ("I", "F"):
                        from sardata.sources._image import check_pil_budget

                        check_pil_budget(im, f"{fmt} image")  # before decoding the declared pixels
                        im.load()
                        arr = np.asarray(im)
        except RejectFile:
            raise
        except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError... for corrupt files
            raise RejectFile("undecodable", f"image decoder failed: {exc}") from exc
        if arr is None:
            img, meta = decode_image(data)
            return img, meta, {"radiometry": "display8", "scale": "uint8"}
        if arr.ndim != 2:
            raise RejectFile("bad_shape", f"{mode} image decoded to shape {arr.shape}")
        meta = {"format": fmt, "mode": mode, "was_colour": False}
        if mode == "F":
            img, extra, radiometry = _float_image(arr)
        elif mode == "I" and (arr.min() < 0 or arr.max() > 65535):
            raise RejectFile("bad_dtype", f"32-bit integer pixels (range {arr.min()}..{arr.max()}) are not 16-bit")
        else:
            img, extra, radiometry = from_uint16(arr.astype(np.uint16), self.options.depth16)
        return img, {**meta, **extra}, radiometry


def from_uint16(arr: np.ndarray, depth16: str) -> tuple[np.ndarray, dict[str, Any], dict[str, str]]:
    """``(H, W)`` uint16 → ``(1, H, W)`` image, meta and radiometry columns per the ``depth16`` policy."""
    if depth16 == "shift8":
        img = (arr >> 8).astype(np.uint8)
        return img[None], {"bit_depth": 16, "converted": "uint16 >> 8"}, {"radiometry": "display8", "scale": "uint8"}
    img = arr.astype(np.float32) / np.float32(65535)
    return img[None], {"bit_depth": 16, "dn_divisor": 65535}, {"radiometry": "display16", "scale": "unit"}


def _float_image(arr: np.ndarray) -> tuple[np.ndarray, dict[str, Any], dict[str, str]]:
    return arr.astype(np.float32)[None], {}, {"radiometry": "unknown", "scale": "unknown"}


def decode_sarsim_npy(data: bytes, depth16: str) -> tuple[np.ndarray, dict[str, Any], dict[str, str]]:
    """Load a greyscale SARSim input ``.npy`` (``(H, W)``, ``(1, H, W)`` or ``(H, W, 1)``) without unpickling.

    An ingest input, unlike the shard members :func:`sardata.shards.codecs.decode_npy` reads back.

    Raises:
        RejectFile: ``undecodable`` (corrupt, object array), ``bad_shape``, ``bad_dtype``.
    """
    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as exc:  # ValueError for object arrays, EOFError/OSError for truncation
        raise RejectFile("undecodable", f".npy load failed: {exc}") from exc
    if arr.ndim == 3 and 1 in (arr.shape[0], arr.shape[-1]):
        arr = arr[0] if arr.shape[0] == 1 else arr[..., 0]
    if arr.ndim != 2 or 0 in arr.shape:
        raise RejectFile("bad_shape", f"array shape {arr.shape}; expected one greyscale image (H, W)")
    meta = {"format": "npy", "npy_dtype": arr.dtype.str}
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)[None], meta, {"radiometry": "display8", "scale": "uint8"}
    if arr.dtype.kind == "u" and arr.dtype.itemsize == 2:
        img, extra, radiometry = from_uint16(arr.astype(np.uint16), depth16)
        return img, {**meta, **extra}, radiometry
    if arr.dtype.kind == "f":
        img, _, radiometry = _float_image(arr)
        return img, meta, radiometry
    raise RejectFile("bad_dtype", f".npy dtype {arr.dtype} is not uint8, uint16 or float")


def _angle(group: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise RejectFile("bad_name_value", f"{group} {value!r} from the file name is not a number") from None
