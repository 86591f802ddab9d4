"""``sardata bench ingest``: ingest throughput against pure decode of the same files, same run.

Baseline = the adapter's decode alone (read bytes + decode to arrays) over the same files in one process: the
least work any ingest must do. sardata's ingest adds hashing, validation, the sample store, part files and the
merge, and can use several worker processes. A no-op rerun (resume) is timed too.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from sardata.discovery import discover
from sardata.ingest import ingest
from sardata.sources import FileUnit, get_source


def bench_ingest(source_id: str, root: str | os.PathLike[str], workers: int = 2, repeat: int = 1) -> dict[str, Any]:
    """Time pure decode vs full ingest (fresh and resumed) on the same files; return figures and ratios."""
    cls = get_source(source_id)
    src = cls(root, cls.Options())
    files = discover(Path(root))
    skips = src.skip_reasons([f.rel for f in files if f.problem is None])
    todo = [f for f in files if f.problem is None and f.size and f.rel not in skips]

    def decode_all() -> None:
        for f in todo:
            try:
                src.read(FileUnit(f.rel, f.path, f.size))
            except Exception:  # noqa: BLE001,S110 - rejected files cost what they cost
                pass

    decode_all()  # warm the page cache so both sides read from memory
    t_decode = _best(decode_all, repeat)
    tmp = Path(tempfile.mkdtemp(prefix="sardata-bench-"))
    try:

        def fresh() -> None:
            shutil.rmtree(tmp / "out", ignore_errors=True)
            ingest(source_id, root, tmp / "out", workers=workers)

        t_ingest = _best(fresh, repeat)
        t_resume = _best(lambda: ingest(source_id, root, tmp / "out", workers=workers), repeat)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    n = len(todo)
    return {
        "source": source_id,
        "files": n,
        "workers": workers,
        "decode_files_per_s": n / t_decode,
        "ingest_files_per_s": n / t_ingest,
        "resume_files_per_s": n / t_resume,
        "ingest_vs_decode": t_decode / t_ingest,
        "resume_vs_decode": t_decode / t_resume,
    }


def _best(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best
