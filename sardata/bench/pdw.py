"""``sardata bench pdw``: PDW simulator throughput (trains/min written as an ingestable dataset).

Trains follow the simulator's default stop rule (one whole intercept, ≤ ``MAX_PULSES`` detections; the row
header reports the median train length). The figure of merit is sequences per minute against the issue's target of 50,000/min on 2 cores. Each timing
writes a real pretraining pool (simulation + HDF5 files, one type per file so the worker count is never starved)
into a temp directory; the in-run baseline is the same simulation in one process without writing.

Wall-clock rates depend on what else runs on the machine, so every row also reports CPU seconds (this process plus
its finished worker processes, from ``getrusage``) and ``cpu_seq_per_min`` = trains per CPU-minute × workers: the
rate the same work reaches on ``workers`` idle cores.
"""

from __future__ import annotations

import resource
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from sardata.sim.pdw import simulate, write_dataset
from sardata.sim.pdw.intercept import MAX_PULSES

TARGET_PER_MIN = 50_000


def bench_pdw(
    n_types: int = 8, per_type_mode: int = 100, workers: tuple[int, ...] = (1, 2), seed: int = 0
) -> dict[str, Any]:
    """Time pure simulation (1 process) and full pool writes with each worker count; return rates and ratios."""
    n = n_types * 3 * per_type_mode
    for t in range(n_types):  # warm the type cache and imports so every timing measures the same work
        simulate(seed, t, 0, 0)
    t0, c0 = time.perf_counter(), _cpu()
    lengths = [len(simulate(seed, t, m, i)[0]) for t in range(n_types) for m in range(3) for i in range(per_type_mode)]
    rows = [{"what": "simulate only", "workers": 1, "seconds": time.perf_counter() - t0, "cpu_s": _cpu() - c0}]
    tmp = Path(tempfile.mkdtemp(prefix="sardata-bench-pdw-"))
    try:
        for w in workers:
            out = tmp / f"w{w}"
            t0, c0 = time.perf_counter(), _cpu()
            write_dataset(out, kind="pool", global_seed=seed, n_types=n_types, per_type_mode=per_type_mode,
                          types_per_file=1, workers=w)  # fmt: skip
            rows.append({"what": "sim pdw (write HDF5)", "workers": w, "seconds": time.perf_counter() - t0,
                         "cpu_s": _cpu() - c0})  # fmt: skip
            shutil.rmtree(out, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for r in rows:
        r["seq_per_min"] = n / r["seconds"] * 60
        r["vs_target"] = r["seq_per_min"] / TARGET_PER_MIN
        r["cpu_seq_per_min"] = n / r["cpu_s"] * 60 * r["workers"]
        r["cpu_vs_target"] = r["cpu_seq_per_min"] / TARGET_PER_MIN
    return {"sequences": n, "n_types": n_types, "per_type_mode": per_type_mode, "target_per_min": TARGET_PER_MIN,
            "stop": "intercept", "max_pulses": MAX_PULSES, "median_pulses": float(np.median(lengths)),
            "rows": rows}  # fmt: skip


def _cpu() -> float:
    """CPU seconds of this process and of its terminated children (the pool's workers once joined)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
