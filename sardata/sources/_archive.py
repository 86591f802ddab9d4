"""Safe reading of archive members in place (``data-contract.md`` §4.3): nothing is extracted to disk.

:func:`read_member` turns a damaged member (bad CRC, corrupt deflate stream, truncated data) into a
:class:`~sardata.errors.RejectFile` for that member alone, so an adapter can reject it and keep the others.

A member is refused (and reported) when its name is absolute or climbs out with ``..``, when it is larger than
``MAX_MEMBER_BYTES`` uncompressed, or when its compression ratio exceeds ``MAX_RATIO`` (zip bombs).
"""

from __future__ import annotations

import io
import zipfile
import zlib
from pathlib import PurePosixPath

from sardata.errors import RejectFile

MAX_MEMBER_BYTES = 1 << 30
MAX_RATIO = 200


def open_zip(data: bytes | None, path: str) -> zipfile.ZipFile:
    """Open a zip from bytes already read (small files) or from its path (large ones)."""
    return zipfile.ZipFile(io.BytesIO(data) if data is not None else path)


def member_problem(info: zipfile.ZipInfo) -> str | None:
    """Why a member must not be read, or None."""
    name = PurePosixPath(info.filename)
    if name.is_absolute() or ".." in name.parts:
        return f"unsafe member name {info.filename!r}"
    if info.file_size > MAX_MEMBER_BYTES:
        return f"member of {info.file_size} bytes exceeds the {MAX_MEMBER_BYTES} byte limit"
    if info.compress_size and info.file_size / info.compress_size > MAX_RATIO:
        return f"compression ratio {info.file_size / info.compress_size:.0f} exceeds {MAX_RATIO} (zip bomb?)"
    return None


def read_member(zf: zipfile.ZipFile, name: str) -> bytes:
    """All bytes of member ``name``, CRC-checked.

    Raises:
        RejectFile: ``damaged_member`` when the member's bytes are corrupt (only this member is affected).
    """
    try:
        return zf.read(name)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise RejectFile("damaged_member", f"{name}: {exc}") from exc
