"""Detect file types from magic bytes (``sources.md`` §0.1): extensions lie, bytes do not."""

from __future__ import annotations


def sniff(head: bytes) -> str | None:
    """Return ``jpeg``, ``png``, ``tiff``, ``hdf5``, ``mat5``, ``phoenix``, ``zip`` or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG"):
        return "png"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if head.startswith(b"\x89HDF") or head[512:516] == b"\x89HDF":
        return "hdf5"
    if head.startswith(b"MATLAB 5.0 MAT-file"):
        return "mat5"
    if b"[PhoenixHeaderVer" in head[:64]:
        return "phoenix"
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    return None
