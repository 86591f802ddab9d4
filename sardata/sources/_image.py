"""Decode 8-bit raster images (JPEG/PNG/TIFF) into channel-first uint8 arrays.

Policy (``sources.md`` §0.8): greyscale stored as RGB with R = G = B collapses to one channel; a colour image with
unequal channels becomes luma (ITU-R 601, Pillow's ``L`` conversion) and the sample is flagged ``was_colour``.

Bombs: :func:`check_pil_budget` compares the size the header declares with the per-sample budget
(:func:`sardata.config.sample_budget_bytes`) before ``load()``, like the rasterio and h5py readers; Pillow's own
``DecompressionBombWarning`` (``Image.MAX_IMAGE_PIXELS``) stays on as an error, a second, pixel-count guard.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np

from sardata.errors import RejectFile
from sardata.sources._sniff import sniff

_BAND_BYTES = {"I": 4, "F": 4, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2}


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
        with warnings.catch_warnings():
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
