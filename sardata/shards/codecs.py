"""Field registry and safe codecs (``data-contract.md`` §1).

Only the fields listed here are ever written or decoded; ``.npy`` members are little-endian, C-contiguous,
format 1.0, ``allow_pickle=False``. Nothing here can unpickle: object arrays are refused on write and on read.
"""

from __future__ import annotations

import io
import math
import tokenize
from dataclasses import dataclass

import numpy as np

from sardata.errors import ShardIntegrityError


@dataclass(frozen=True)
class FieldSpec:
    name: str
    encoding: str  # "npy" | "json" | "cls"
    dtypes: tuple[str, ...]  # allowed numpy dtype strings for npy fields
    meaning: str


FIELDS: dict[str, FieldSpec] = {
    f.name: f
    for f in [
        FieldSpec("img", "npy", ("uint8", "float32"), "image, channel-first (C, H, W)"),
        FieldSpec("cplx", "npy", ("complex64",), "complex image (C, H, W)"),
        FieldSpec(
            "gr",
            "npy",
            ("float32", "float16", "uint16"),
            "GR targets (4, H, W), radii 5, 9, 13, 17 (codecs: features.gr)",
        ),
        FieldSpec("boxes", "npy", ("float32",), "detection boxes (N, 5): class, x0, y0, x1, y1 in pixels"),
        FieldSpec("mask", "npy", ("uint8",), "valid/segmentation mask (H, W)"),
        FieldSpec(
            "inst",
            "npy",
            ("uint8", "uint16"),
            "instance-id map (H, W): 0 background, i = row i-1 of boxes.npy (uint16 past 255 instances)",
        ),
        FieldSpec("iq", "npy", ("float32",), "IQ frame (2, 512), I then Q"),
        FieldSpec("iqc", "npy", ("complex128", "complex64"), "original complex IQ (512,)"),
        FieldSpec("pdw", "npy", ("structured",), "pulse train (L,) structured: toa, rf, pw, pa, src"),
        FieldSpec("toa", "npy", ("float64", "float32"), "time of arrival per token"),
        FieldSpec("meta", "json", (), "per-sample metadata object"),
        FieldSpec("cls", "cls", (), "integer label"),
    ]
}


def check_array(field: str, arr: np.ndarray) -> None:
    """Raise ``ValueError`` if ``arr`` may not be stored as ``field``."""
    spec = FIELDS.get(field)
    if spec is None or spec.encoding != "npy":
        raise ValueError(
            f"{field!r} is not an array field; registry: {sorted(k for k, v in FIELDS.items() if v.encoding == 'npy')}"
        )
    if arr.dtype.hasobject:
        raise ValueError(f"{field}: object arrays are never stored")
    kind = (
        "structured"
        if arr.dtype.names
        else arr.dtype.newbyteorder("<").name
        if arr.dtype.byteorder == ">"
        else arr.dtype.name
    )
    if kind not in spec.dtypes:
        raise ValueError(f"{field}: dtype {arr.dtype} not allowed (allowed: {spec.dtypes})")


def encode_npy(arr: np.ndarray) -> bytes:
    """``.npy`` v1.0 bytes of ``arr`` as little-endian and C-contiguous (deterministic)."""
    if arr.dtype.hasobject:
        raise ValueError("object arrays are never stored")
    arr = np.ascontiguousarray(arr.astype(arr.dtype.newbyteorder("<"), copy=False))
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, version=(1, 0), allow_pickle=False)
    return buf.getvalue()


_HEADERS: dict[bytes, tuple[tuple[int, ...], np.dtype]] = {}  # raw .npy header → (shape, dtype); see decode_npy
_HEADER_CACHE_MAX = 1024


def _npy_header(data: bytes | bytearray | memoryview) -> tuple[int, tuple[int, ...], np.dtype] | None:
    """(data offset, shape, dtype) of a plain C-order ``.npy`` v1/v2 header, or None for anything else.

    Parsing a header with numpy costs ~100 µs (``ast.literal_eval``), more than reading a 256 KB member, and every
    sample of a field repeats the same header bytes, so parses are memoised on the exact header bytes."""
    if len(data) < 10 or bytes(data[:6]) != b"\x93NUMPY" or data[6] not in (1, 2) or data[7] != 0:
        return None  # numpy's reader decides (and refuses versions it does not know)
    size = 2 if data[6] == 1 else 4
    offset = 8 + size + int.from_bytes(data[8 : 8 + size], "little")
    raw = bytes(data[:offset])
    hit = _HEADERS.get(raw)
    if hit is None:
        fh = io.BytesIO(raw)
        read = np.lib.format.read_array_header_1_0 if data[6] == 1 else np.lib.format.read_array_header_2_0
        np.lib.format.read_magic(fh)
        try:
            shape, fortran, dtype = read(fh)
        except (SyntaxError, TypeError, RecursionError, MemoryError, OverflowError, tokenize.TokenError) as exc:
            # numpy parses the header dict with ast/tokenize: a damaged one raises any of these
            raise ValueError(f"malformed .npy header ({type(exc).__name__}: {exc})") from exc
        if dtype.hasobject:
            raise ValueError("object arrays are never decoded")
        if any(d < 0 for d in shape):
            raise ValueError(f"negative dimension in shape {shape}")
        if fortran:
            return None
        if dtype.names:  # structured dtypes are mutable (``a.dtype.names = …``): never shared through the cache
            return offset, tuple(shape), dtype
        if len(_HEADERS) >= _HEADER_CACHE_MAX:
            _HEADERS.clear()
        hit = _HEADERS[raw] = (tuple(shape), dtype)
    return offset, *hit


def plain_npy_layout(head: bytes | bytearray | memoryview, size: int) -> tuple[int, tuple[int, ...], np.dtype] | None:
    """(data offset, shape, dtype) when a ``.npy`` member of ``size`` bytes starting with ``head`` is a plain
    C-order array whose data fill the rest of the member exactly (so it can be viewed or read in place); None
    otherwise. Raises ``ValueError`` for refused headers (object dtype, negative dimension)."""
    header = _npy_header(head)
    if header is None:
        return None
    offset, shape, dtype = header
    count = math.prod(shape)  # Python ints: a damaged huge shape cannot overflow into a match
    return header if size - offset == count * dtype.itemsize else None


def decode_npy(data: bytes | bytearray | memoryview, where: str = "") -> np.ndarray:
    """Decode ``.npy`` bytes without ever unpickling.

    Plain (non-object, C-order) arrays are a zero-copy view of ``data`` — writable when ``data`` is a
    ``bytearray`` (the loader reads members with ``readinto``), read-only for ``bytes``; everything else goes
    through numpy's reader. Object dtypes are refused either way."""
    try:
        layout = plain_npy_layout(data, len(data))
        if layout is not None:
            offset, shape, dtype = layout
            return np.frombuffer(data, dtype=dtype, count=math.prod(shape), offset=offset).reshape(shape)
        arr = np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)
        if arr.dtype.hasobject:
            raise ValueError("object arrays are never decoded")
        return arr
    except ValueError as exc:
        raise ShardIntegrityError(f"{where}: not a plain .npy member ({exc})") from exc


def npy_nbytes(shape: tuple[int, ...], dtype: np.dtype | str) -> int:
    """Exact size of :func:`encode_npy` output for an array of ``shape``/``dtype``, without the data."""
    dt = np.dtype(dtype).newbyteorder("<") if np.dtype(dtype).byteorder == ">" else np.dtype(dtype)
    header = {"descr": np.lib.format.dtype_to_descr(dt), "fortran_order": False, "shape": tuple(int(s) for s in shape)}
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.tell() + int(np.prod(shape, dtype=np.int64)) * dt.itemsize


def encode_json(obj: object) -> bytes:
    """Canonical ``meta.json`` bytes: sorted keys, compact separators, UTF-8, no NaN."""
    import json

    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
