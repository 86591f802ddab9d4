"""Which failures reject an input file and which stop the run with the file left pending.

A ``rejected`` row is committed and resumed by every rerun, so it must only record a property of the input's
content. The rule (applied by :func:`sardata.ingest.process_unit`):

* **content error → rejected**: anything the adapter raises while decoding the input's bytes, including
  ``OSError`` without an errno (PIL's "image file is truncated", a damaged archive) and errno errors on the
  input itself that are not transient (``EACCES`` reading an input file).
* **environment error → abort, file stays pending** (no unit committed; :class:`IngestEnvironmentError` names the
  file; a rerun redoes it):

  - any ``OSError`` raised while writing the output (our temp and unit files: ``ENOENT`` when a concurrent run
    deleted a temp, ``ENOSPC``, ``EACCES``/``EPERM`` on ``--out``) — detected by where it was raised
    (:class:`OutputFailure` around every write) or by a file name inside the output directory;
  - ``OSError`` with a transient errno wherever it comes from: ``EIO``, ``ENOSPC``, ``EDQUOT``, ``EMFILE``,
    ``ENFILE``, ``ENOMEM``, ``EROFS``;
  - ``MemoryError``;
  - the input file vanished between discovery and reading (whatever the adapter turned that into).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from sardata.errors import IngestEnvironmentError

TRANSIENT_ERRNOS = frozenset(
    {errno.EIO, errno.ENOSPC, errno.EDQUOT, errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.EROFS}
)


class OutputFailure(Exception):  # noqa: N818 - an internal signal, always converted to IngestEnvironmentError
    """An ``OSError`` raised while writing the output; the original is ``__cause__``."""


def _inside(name: object, out: Path) -> bool:
    if not isinstance(name, (str, bytes, os.PathLike)):
        return False
    try:
        path = Path(os.path.abspath(os.fsdecode(name)))
        return path.is_relative_to(Path(os.path.abspath(out)))
    except (TypeError, ValueError):
        return False


def environment_problem(exc: BaseException, input_path: str, out: Path) -> str | None:
    """Why ``exc`` (raised while processing ``input_path``) is an environment error, or None for a content
    error (see the module docstring)."""
    if isinstance(exc, MemoryError):
        return "out of memory"
    if isinstance(exc, OutputFailure):
        cause = exc.__cause__
        return f"writing the output failed: {cause}"
    if not os.path.lexists(input_path):
        return "the input file vanished after it was listed"
    if isinstance(exc, OSError):
        if exc.errno in TRANSIENT_ERRNOS:
            return f"{exc.strerror or exc} (errno {errno.errorcode.get(exc.errno, exc.errno)})"
        if _inside(exc.filename, out) or _inside(exc.filename2, out):
            return f"output file error: {exc}"
    return None


def environment_error(rel: str, input_path: str, why: str) -> IngestEnvironmentError:
    """The error that aborts the run for one file (which stays pending)."""
    return IngestEnvironmentError(
        f"{input_path}: stopped, not rejected: {why}. Nothing was recorded for {rel!r}; fix the cause and rerun "
        "the same command (finished files are resumed)"
    )
