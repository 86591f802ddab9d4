"""Finding the input files of an ingest, so that nothing under the root vanishes without a row.

``os.walk`` silently skips a directory it cannot list (permissions, I/O error, a folder removed mid-walk);
:func:`walk` reports each such directory instead, and :func:`discover` turns it into an input with the problem
``unreadable_dir`` — a rejected row in ``sources.parquet`` and a non-zero CLI exit, never a smaller dataset.

Inputs that are not on local disk (:func:`remote_inputs`): a URL, or a local ``*.urls`` list file of them, for
sources that read remote objects in windows (GeoTIFF through GDAL's ``/vsicurl/``, ``/vsis3/``). Each location
passes the allow-list of :mod:`sardata.location`; a refused or unreachable one is an input with a problem.
"""

from __future__ import annotations

import os
import stat
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sardata.errors import ConfigError, SourceNotFoundError
from sardata.location import check_location, from_vsi, url_scheme

URL_LIST_SUFFIX = ".urls"  # a local text file: one remote location per line, blank lines and # comments ignored


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


def remote_inputs(root: str | os.PathLike[str], size_of: Callable[[str], int]) -> list[InputFile] | None:
    """The inputs of a root that is not local data: a URL (or GDAL path, ``/vsicurl/https://…``, ``/vsis3/b/k``) is
    one input, a local ``*.urls`` file one input per listed location; None for any other root (:func:`discover`).

    ``size_of(url)`` gives an object's size (the caller's transport, e.g. a HEAD request). Each input's ``path`` is
    the URL, its ``rel`` the object's path (with the bucket for object stores), used for keys. A location the
    allow-list refuses (``pipe:``, an untrusted scheme, shell syntax), a repeated name or an unreachable object is
    an input with a problem (``refused_location``, ``duplicate``, ``unreachable``): a rejected row, never a
    request to it or a silent loss.
    """
    text = os.fspath(root)
    if text.startswith("/vsi") or ("://" in text and url_scheme(text) not in (None, "file")):
        lines = [text]
    elif text.endswith(URL_LIST_SUFFIX) and os.path.isfile(text):
        with open(text, encoding="utf-8") as fh:
            lines = [line.strip() for line in fh if line.strip() and not line.lstrip().startswith("#")]
    else:
        return None
    found: list[InputFile] = []
    seen: set[str] = set()
    for line in lines:
        found.append(_remote_input(line, size_of, seen))
    return found


def _remote_input(location: str, size_of: Callable[[str], int], seen: set[str]) -> InputFile:
    """One listed location as an input (see :func:`remote_inputs`)."""
    try:
        url = from_vsi(location)
        check_location(url)
        if url_scheme(url) in (None, "file"):
            raise ConfigError(f"location {location!r} is not a remote URL (list local files by their folder)")
    except ConfigError as exc:
        return InputFile(location[:300], location, 0, ("refused_location", str(exc)))
    parts = urllib.parse.urlsplit(url)
    rel = urllib.parse.unquote(
        parts.path.lstrip("/") if url_scheme(url) in ("http", "https") else parts.netloc + parts.path
    )
    if not rel or rel.endswith("/") or any(part in (".", "..") for part in rel.split("/")):
        return InputFile(rel or url, url, 0, ("refused_location", f"{url!r} names no object, or uses . or .."))
    if rel in seen:
        return InputFile(rel, url, 0, ("duplicate", "an earlier location has the same object path"))
    seen.add(rel)
    try:
        size = size_of(url)
    except Exception as exc:  # noqa: BLE001 - whatever the transport raises, this object becomes a rejected row
        return InputFile(rel, url, 0, ("unreachable", f"{type(exc).__name__}: {exc}"[:500]))
    return InputFile(rel, url, size)
