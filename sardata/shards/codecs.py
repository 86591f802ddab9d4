"""Field registry and safe codecs (``data-contract.md`` §1).

Only the fields listed here are ever written or decoded; ``.npy`` members are little-endian, C-contiguous,
format 1.0, ``allow_pickle=False``. Nothing here can unpickle: object arrays are refused on write and on read.
"""

from __future__ import annotations

import io
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


def decode_npy(data: bytes | bytearray | memoryview, where: str = "") -> np.ndarray:
    """Decode ``.npy`` bytes without ever unpickling.

    Plain (non-object, C-order) arrays are a zero-copy view of ``data`` — writable when ``data`` is a
    ``bytearray`` (the loader reads members with ``readinto``), read-only for ``bytes``; everything else goes
    through numpy's reader. Object dtypes are refused either way."""
    try:
        fh = io.BytesIO(data)
        version = np.lib.format.read_magic(fh)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        if version not in read_header:
            return np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)
        shape, fortran, dtype = read_header[version](fh)
        if dtype.hasobject:
            raise ValueError("object arrays are never decoded")
        count = int(np.prod(shape, dtype=np.int64))
        if fortran or len(data) - fh.tell() != count * dtype.itemsize:
            return np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)
        return np.frombuffer(data, dtype=dtype, count=count, offset=fh.tell()).reshape(shape)
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
