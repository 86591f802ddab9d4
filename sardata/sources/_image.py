"""Decode 8-bit raster images (JPEG/PNG/TIFF) into channel-first uint8 arrays.

Policy (``sources.md`` §0.8): greyscale stored as RGB with R = G = B collapses to one channel; a colour image with
unequal channels becomes luma (ITU-R 601, Pillow's ``L`` conversion) and the sample is flagged ``was_colour``.
:func:`decode_image` decodes with Pillow, :func:`decode_tiff` with rasterio.

Truncation: Pillow decodes a truncated file "successfully" when the process-wide ``ImageFile.LOAD_TRUNCATED_IMAGES``
is True, and some libraries set it on import (sarpy's NITF module does). :func:`strict_pil` forces it off while
we decode, so a cut file is always a rejected row, whatever else the process imported.

Bombs: :func:`check_pil_budget` compares the size the header declares with the per-sample budget
(:func:`sardata.config.sample_budget_bytes`) before ``load()``, like the rasterio and h5py readers; Pillow's own
``DecompressionBombWarning`` (``Image.MAX_IMAGE_PIXELS``) stays on as an error, a second, pixel-count guard.
"""

from __future__ import annotations

import contextlib
import io
import struct
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from sardata.errors import RejectFile
from sardata.sources._sniff import sniff

_BAND_BYTES = {"I": 4, "F": 4, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2}


@contextlib.contextmanager
def strict_pil() -> Iterator[None]:
    """Pillow refuses truncated files inside this block (``LOAD_TRUNCATED_IMAGES`` off), restored after."""
    from PIL import ImageFile

    before = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = before


def check_pil_budget(im: Any, what: str) -> int:
    """Reject (``too_large``) an opened, not yet loaded Pillow image whose decoded size exceeds the budget."""
    from sardata.sources._base import check_budget

    width, height = im.size
    return check_budget((height, width, len(im.getbands())), _BAND_BYTES.get(im.mode, 1), what)


def decode_image(data: bytes, expect: tuple[str, ...] = ("jpeg", "png", "tiff")) -> tuple[np.ndarray, dict]:
    """Decode bytes into ``(1, H, W)`` uint8 and a metadata dict (``format``, ``mode``, ``was_colour``).

    Raises:
        RejectFile: unknown magic bytes, decoder failure or truncation.
    """
    from PIL import Image

    kind = sniff(data[:600])
    if kind not in expect:
        raise RejectFile("bad_format", f"content is {kind or 'unrecognised bytes'}, expected {'/'.join(expect)}")
    try:
        with warnings.catch_warnings(), strict_pil():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                check_pil_budget(im, f"{kind} image")  # header only so far: refuse before decoding
                im.load()
                mode = im.mode
                arr = np.asarray(im)
    except RejectFile:
        raise
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError... for corrupt files
        raise RejectFile("undecodable", f"{kind} decoder failed: {exc}") from exc
    meta = {"format": kind, "mode": mode, "was_colour": False}
    if arr.ndim == 2:
        out = arr[None]
    elif arr.ndim == 3:
        rgb = arr[..., :3]
        if rgb.shape[-1] == 1 or (
            np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])
        ):
            out = rgb[None, ..., 0]
        else:
            from PIL import Image as _Image

            out = np.asarray(_Image.fromarray(np.ascontiguousarray(rgb)).convert("L"))[None]
            meta["was_colour"] = True
    else:
        raise RejectFile("bad_shape", f"decoded array has shape {arr.shape}")
    if out.dtype != np.uint8:
        raise RejectFile("bad_dtype", f"expected 8-bit pixels, decoded {out.dtype} (mode {mode})")
    return np.ascontiguousarray(out), meta


def decode_tiff(data: bytes) -> tuple[np.ndarray, dict[str, Any]]:
    """Decode an 8-bit TIFF with rasterio into ``(1, H, W)`` uint8 (RGB-equal collapsed, colour → luma).

    The rasterio counterpart of :func:`decode_image` (same §0.8 grey/colour policy); a cut-off file is named
    ``truncated`` from its header (:func:`tiff_payload_end`) before the decoder sees it.

    Raises:
        RejectFile: ``truncated`` (strips/tiles end past EOF), ``undecodable``, ``bad_dtype``, ``bad_shape``.
    """
    need = tiff_payload_end(data)
    if need is not None and need > len(data):
        raise RejectFile("truncated", f"TIFF image data ends at byte {need} but the file has {len(data)} bytes")
    from rasterio.errors import NotGeoreferencedWarning
    from rasterio.io import MemoryFile

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with MemoryFile(data) as mem, mem.open() as ds:
                from sardata.sources._base import check_raster_budget

                check_raster_budget(ds, "TIFF")  # before the declared raster is allocated
                arr = ds.read()
    except RejectFile:
        raise
    except Exception as exc:  # rasterio raises RasterioIOError, CPLE_* ...
        raise RejectFile("undecodable", f"TIFF decoder failed: {exc}") from exc
    meta: dict[str, Any] = {"format": "tiff", "bands": int(arr.shape[0]), "was_colour": False}
    if arr.dtype != np.uint8:
        raise RejectFile("bad_dtype", f"expected 8-bit pixels, decoded {arr.dtype}")
    if arr.shape[0] in (3, 4):
        rgb = arr[:3]
        if np.array_equal(rgb[0], rgb[1]) and np.array_equal(rgb[0], rgb[2]):
            arr = rgb[:1]
        else:
            from PIL import Image

            arr = np.asarray(Image.fromarray(np.ascontiguousarray(rgb.transpose(1, 2, 0))).convert("L"))[None]
            meta["was_colour"] = True
    elif arr.shape[0] != 1:
        raise RejectFile("bad_shape", f"{arr.shape[0]} bands; expected 1 (or RGB)")
    return np.ascontiguousarray(arr), meta


def tiff_payload_end(data: bytes) -> int | None:
    """Byte offset where the first image's strips or tiles end (classic TIFF), or None when it cannot be told.

    Used to name a cut-off copy ``truncated`` instead of a generic decoder failure.
    """
    if len(data) < 8 or data[:2] not in (b"II", b"MM"):
        return None
    bo = "<" if data[:2] == b"II" else ">"
    magic, ifd = struct.unpack(bo + "HI", data[2:8])
    if magic != 42 or ifd + 2 > len(data):
        return None  # BigTIFF or an unreadable directory: left to the decoder
    (n,) = struct.unpack_from(bo + "H", data, ifd)
    if ifd + 2 + 12 * n > len(data):
        return None
    tags = {}
    for i in range(n):
        tag, typ, count, raw = struct.unpack_from(bo + "HHI4s", data, ifd + 2 + 12 * i)
        tags[tag] = (typ, count, raw)

    def values(tag: int) -> tuple[int, ...] | None:
        typ, count, raw = tags[tag]
        fmt = {3: "H", 4: "I"}.get(typ)
        if fmt is None:
            return None
        size = struct.calcsize(fmt) * count
        if size <= 4:
            return struct.unpack_from(bo + fmt * count, raw)
        (offset,) = struct.unpack(bo + "I", raw)
        if offset + size > len(data):
            return None
        return struct.unpack_from(bo + fmt * count, data, offset)

    for offsets_tag, counts_tag in ((273, 279), (324, 325)):  # strips, tiles
        if offsets_tag in tags and counts_tag in tags:
            offsets, counts = values(offsets_tag), values(counts_tag)
            if offsets and counts and len(offsets) == len(counts):
                return max(o + c for o, c in zip(offsets, counts, strict=True))
    return None
