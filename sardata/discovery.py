"""Finding the input files of an ingest, so that nothing under the root vanishes without a row.

``os.walk`` silently skips a directory it cannot list (permissions, I/O error, a folder removed mid-walk);
:func:`walk` reports each such directory instead, and :func:`discover` turns it into an input with the problem
``unreadable_dir`` — a rejected row in ``sources.parquet`` and a non-zero CLI exit, never a smaller dataset.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sardata.errors import SourceNotFoundError


@dataclass(frozen=True)
class InputFile:
    """A file found under the root. ``problem`` is set for files that cannot even be opened."""

    rel: str
    path: str
    size: int
    problem: tuple[str, str] | None = None  # (reason, detail)


def walk(root: str | os.PathLike[str], errors: list[OSError]) -> Iterator[tuple[str, list[str], list[str]]]:
    """``os.walk(root, followlinks=True)`` in sorted order, visiting each real directory once (symlink loops),
    and appending every directory that cannot be listed or stat'ed to ``errors`` instead of skipping it."""
    seen: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(root, onerror=errors.append, followlinks=True):
        try:
            st = os.stat(dirpath)
        except OSError as exc:
            errors.append(exc)
            dirnames[:] = []
            continue
        if (st.st_dev, st.st_ino) in seen:
            dirnames[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        dirnames.sort()
        filenames.sort()
        yield dirpath, dirnames, filenames


def discover(root: Path) -> list[InputFile]:
    """List every file under ``root`` (or ``root`` itself), following directory symlinks once.

    Files with non-UTF-8 names, dangling links and symlink loops are returned with a ``problem`` so they end
    as rejected rows instead of vanishing; so are directories that cannot be listed (``unreadable_dir``).
    """
    if not root.exists() and not root.is_symlink():
        raise SourceNotFoundError(f"{root}: input path does not exist; check the path argument")
    if root.is_file():
        return [_input(root.parent, root.name)]
    found: list[InputFile] = []
    errors: list[OSError] = []
    for dirpath, _dirnames, filenames in walk(root, errors):
        for name in filenames:
            found.append(_input(root, os.path.relpath(os.path.join(dirpath, name), root)))
    for exc in errors:
        path = os.fsdecode(exc.filename) if exc.filename is not None else str(root)
        rel = os.fsencode(os.path.relpath(path, root)).decode("utf-8", "backslashreplace")
        detail = f"directory cannot be listed ({exc.strerror}); the files inside it are not in this ingest"
        found.append(InputFile(rel, path, 0, ("unreadable_dir", detail)))
    return found


def _input(root: Path, rel: str) -> InputFile:
    path = os.path.join(root, rel)
    display = os.fsencode(rel).decode("utf-8", "backslashreplace")
    if display != rel:
        return InputFile(
            display,
            path,
            _lsize(path),
            ("bad_filename", "file name is not valid UTF-8; rename it (e.g. `convmv -f latin1 -t utf8`)"),
        )
    try:
        st = os.stat(path)
    except OSError as exc:
        return InputFile(rel, path, _lsize(path), ("unreadable", f"{exc.strerror} (broken or looping symlink?)"))
    if not stat.S_ISREG(st.st_mode):
        return InputFile(rel, path, st.st_size, ("not_regular", "not a regular file"))
    return InputFile(rel, path, st.st_size)


def _lsize(path: str) -> int:
    try:
        return os.lstat(path).st_size
    except OSError:
        return 0
