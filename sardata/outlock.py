"""One writer per output directory: an exclusive ``flock`` on ``<out>/.sardata.lock``.

Why: two runs writing the same ``--out`` (an ingest started twice, a build-shards beside it) delete each other's
in-flight temp files during stale-temp cleanup, and the victim's error used to be committed as a rejected unit.
The lock makes the second writer fail at once with :class:`~sardata.errors.OutputLockedError` naming the holder
(pid, host, command, start time, written into the lock file). ``flock`` belongs to the open file, so the kernel
releases it when the holder exits in any way (``kill -9`` included): a stale lock file is harmless and is simply
locked again by the next run. A clean exit deletes the file (outputs then hold only data, so byte comparisons of
two output directories are unaffected); because of that deletion a run re-checks after locking that the file it
locked is still the one at the path. Forked children (pool workers) close their inherited copy at fork: a worker
orphaned by a ``kill -9`` of its parent must not keep the lock alive.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from sardata.errors import OutputLockedError

LOCK_FILE = ".sardata.lock"
_HELD: set[int] = set()  # lock descriptors of this process


def _close_in_child() -> None:
    for fd in _HELD:
        with contextlib.suppress(OSError):
            os.close(fd)  # drops the child's reference only; the parent keeps the lock
    _HELD.clear()


os.register_at_fork(after_in_child=_close_in_child)


def _holder_text(out: Path, fd: int, wait_s: float = 1.0) -> str:
    """The holder's record, read through our own descriptor. The holder writes it right after taking the lock, so
    a record still empty or half-written is read again for up to ``wait_s`` before giving up on naming it."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            info = json.loads(os.pread(fd, 65536, 0).decode("utf-8", "replace"))
            return f"pid {info.get('pid')} on {info.get('host')}, started {info.get('started')}: {info.get('command')}"
        except (OSError, ValueError):
            if time.monotonic() >= deadline:
                return "another process (its record is not readable yet)"
            time.sleep(0.02)


@contextlib.contextmanager
def output_lock(out: str | os.PathLike[str], what: str = "write") -> Iterator[Path]:
    """Hold the exclusive lock on ``out`` (created if needed) for the ``with`` block.

    Raises:
        OutputLockedError: another live process holds it; the message names that process.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / LOCK_FILE
    fd = _acquire(out, path)
    _HELD.add(fd)
    try:
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": " ".join(sys.argv) or what,
            "what": what,
            "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record, sort_keys=True).encode(), 0)
        yield path
    finally:
        with contextlib.suppress(OSError):
            path.unlink()  # still holding the lock: nobody else can have locked this inode
        _HELD.discard(fd)
        os.close(fd)  # releases the flock


def _acquire(out: Path, path: Path) -> int:
    """Open and lock ``path``; retry when the file was deleted by its previous holder between open and lock."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _holder_text(out, fd)
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise OutputLockedError(
                f"{out}: in use by {holder}; wait for it to finish or choose another --out "
                f"(lock file {path}; it is released automatically when that process exits)"
            ) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)
