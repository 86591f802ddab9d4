"""Crash-safe file writing: write to a temp name beside the target, optionally fsync, then ``os.replace``.

A reader (or a resumed run) therefore sees either the complete old file, the complete new file or nothing —
never a torn one. Temp names start with ``.tmp-`` so :func:`remove_stale_temps` can clear them on restart.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

TMP_PREFIX = ".tmp-"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], fsync: bool = False) -> Iterator[Path]:
    """Yield a temp path; on clean exit rename it onto ``path`` (on error, delete it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{TMP_PREFIX}{os.getpid()}-{path.name}")
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
        if fsync:
            fsync_dir(path.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, fsync: bool = False) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path, fsync=fsync) as tmp:
        tmp.write_bytes(data)


def fsync_dir(path: Path) -> None:
    """fsync a directory (a rename inside it is durable only then); best effort: some file systems refuse."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def remove_stale_temps(root: str | os.PathLike[str]) -> int:
    """Delete ``.tmp-*`` files left under ``root`` by a killed run; return how many."""
    n = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            if name.startswith(TMP_PREFIX):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(dirpath, name))
                    n += 1
    return n


def file_digests(path: str | os.PathLike[str], chunk: int = 1 << 20) -> tuple[str, str]:
    """(sha256, XXH3-128) hex digests of a file in one read pass: the content address and the fast loader check
    (``sardata.stream.verify``) of a shard."""
    import xxhash

    h, x = hashlib.sha256(), xxhash.xxh3_128()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
            x.update(block)
    return h.hexdigest(), x.hexdigest()


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Streaming sha256 hex digest of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
