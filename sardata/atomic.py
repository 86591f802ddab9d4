"""Crash-safe file writing: write to a temp name beside the target, optionally fsync, then ``os.replace``.

A reader (or a resumed run) therefore sees either the complete old file, the complete new file or nothing —
never a torn one. Temp names start with ``.tmp-`` so :func:`remove_stale_temps` can clear them on restart.
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


def hash_file(path: str | os.PathLike[str], *hashers: Any, mapped: bool = False, chunk: int = 1 << 20
              ) -> tuple[Any, ...]:  # fmt: skip
    """Update every hasher (``hashlib``/``xxhash`` objects) with the file's bytes in one pass and return them.

    Default: reads through one reused buffer (no allocation per chunk). ``mapped=True`` hashes a read-only
    ``mmap`` of the file instead, 64 MiB per call (≈17 vs 7.5 GB/s for XXH3 from the page cache here): the
    loaders' shard check uses it. The price: a file truncated while mapped kills the process with SIGBUS where a
    read just comes up short, so everything else (tables, inputs, downloads) reads."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if mapped and size:
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                view = memoryview(mm)
                try:
                    for lo in range(0, size, 64 << 20):  # long GIL-free stretches in one update call
                        for h in hashers:
                            h.update(view[lo : lo + (64 << 20)])
                finally:
                    view.release()
            return hashers
        buf = bytearray(chunk)
        view = memoryview(buf)
        while n := fh.readinto(buf):
            for h in hashers:
                h.update(view[:n])
    return hashers


def file_digests(path: str | os.PathLike[str]) -> tuple[str, str]:
    """(sha256, XXH3-128) hex digests of a file in one read pass: the content address and the fast loader check
    (``sardata.stream.verify``) of a shard."""
    import xxhash

    sha, fast = hash_file(path, hashlib.sha256(), xxhash.xxh3_128())
    return sha.hexdigest(), fast.hexdigest()


def xxh3_file(path: str | os.PathLike[str]) -> str:
    """XXH3-128 hex digest of a file (the loaders' shard check)."""
    import xxhash

    return hash_file(path, xxhash.xxh3_128())[0].hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Streaming sha256 hex digest of a file."""
    return hash_file(path, hashlib.sha256())[0].hexdigest()
