"""Temp files of cache downloads: how they are named, and which may be deleted.

Why names carry pid and host: several processes (and machines, on a shared file system) may download into one
cache without locks, so a temp file can only be judged dead by whoever can tell its writer is gone — the same host
with no such pid — or by its age.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import socket
import time
from pathlib import Path

from sardata.atomic import TMP_PREFIX

STALE_TEMP_S = 3600.0  # a temp file untouched this long is dead even if we cannot tell whose it was

_HOST = re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname()) or "host"


def temp_path(cache_dir: Path, sha: str) -> Path:
    """A fresh temp name for a download of ``sha``: ``.tmp-<pid>-<token>-<sha256>@<host>``."""
    return cache_dir / f"{TMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}-{sha}@{_HOST}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # another user's process, or a number no process can have: keep the file
        return True
    return True


def _temp_is_stale(name: str, mtime: float, now: float) -> bool:
    """Temp names are ``.tmp-<pid>-<token>-<sha256>@<host>``: dead if the same host has no such pid, or old."""
    if now - mtime > STALE_TEMP_S:
        return True
    body, _, host = name[len(TMP_PREFIX) :].rpartition("@")
    pid = body.split("-", 1)[0]
    return host == _HOST and pid.isdigit() and not _pid_alive(int(pid))


def remove_dead_temps(cache_dir: Path) -> int:
    """Delete temp files left by dead downloads in ``cache_dir`` (not those of live processes); return count."""
    removed, now = 0, time.time()
    for entry in os.scandir(cache_dir):
        if not entry.name.startswith(TMP_PREFIX):
            continue
        with contextlib.suppress(FileNotFoundError):
            if _temp_is_stale(entry.name, entry.stat().st_mtime, now):
                os.unlink(entry.path)
                removed += 1
    return removed


__all__ = ["STALE_TEMP_S", "remove_dead_temps", "temp_path"]
