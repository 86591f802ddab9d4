"""``sardata bench scale``: ingest + build-shards at growing sizes — time per sample and peak memory.

What is measured, per data kind and size: a fresh process runs ``ingest`` (and another one ``build-shards`` with
the default configuration) on data generated beforehand in a third process, so generation never counts; each
reports its wall time and peak RSS (``VmHWM`` of the process; with ``workers > 1`` also the largest worker's peak,
``ru_maxrss`` of its children). The kinds are the two shapes of large inputs the mission names:

* ``images``: ``n`` small grayscale JPEG chips (64 × 64) in the MSTAR-10 folder layout, one file per sample
  (many inputs: listing, packs, merge);
* ``radchar``: one RadChar-format HDF5 file of ``n`` IQ frames (``sardata.sim.radchar_fixture``, gzip, frames
  cycling through a few seeded ones so that the file is written fast): one input, ``n`` samples (a container: the
  rows of a single input, the sort, the index).

The claims it checks (issue 19): peak RSS stays flat in ``n`` beyond the index columns (≤ 1.5 GB at 10⁶) and time
per sample stays within 1.2× from the smallest to the largest size. Also reported: the sample store's files and
bytes against the encoded arrays it holds.
"""

from __future__ import annotations

import json
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

KINDS = ("images", "radchar")
CHIP = 64  # px, images kind
SPLITS = ("train", "test")


def bench_scale(sizes: tuple[int, ...] = (10_000, 100_000), kinds: tuple[str, ...] = KINDS, workers: int = 1,
                tmp: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Time and peak RSS of ingest and build-shards for every (kind, size); per-kind ratio of the time per sample
    at the largest size to that at the smallest."""
    base = Path(tempfile.mkdtemp(prefix="sardata-scale-", dir=tmp))
    rows = []
    try:
        for kind in kinds:
            for n in sorted(sizes):
                case = base / f"{kind}-{n}"
                _child("generate", kind, n, case, workers)
                ingest = _child("ingest", kind, n, case, workers)
                build = _child("build", kind, n, case, workers)
                rows.append({"kind": kind, "samples": n, "ingest_s": ingest["seconds"], "build_s": build["seconds"],
                             "us_per_sample": (ingest["seconds"] + build["seconds"]) / n * 1e6,
                             "ingest_rss_mb": ingest["rss_mb"], "build_rss_mb": build["rss_mb"],
                             "worker_rss_mb": max(ingest["children_mb"], build["children_mb"]) if workers > 1 else None,
                             "store_files": ingest["store_files"], "store_mb": ingest["store_mb"],
                             "arrays_mb": ingest["arrays_mb"], "shards_mb": build["shards_mb"]})  # fmt: skip
                shutil.rmtree(case, ignore_errors=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    ratios = {}
    for kind in kinds:
        mine = sorted((r for r in rows if r["kind"] == kind), key=lambda r: r["samples"])
        if len(mine) > 1:
            ratios[kind] = mine[-1]["us_per_sample"] / mine[0]["us_per_sample"]
    return {"workers": workers, "rows": rows, "time_ratio": ratios}


def _child(stage: str, kind: str, n: int, case: Path, workers: int) -> dict[str, Any]:
    """Run one stage in a fresh process (its peak RSS is its own) and return what it reports."""
    code = f"from sardata.bench.scale import run_stage; run_stage({stage!r}, {kind!r}, {n}, {str(case)!r}, {workers})"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"bench scale: {stage} {kind} {n} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_stage(stage: str, kind: str, n: int, case: str, workers: int) -> None:
    """The body of one child process: ``generate``, ``ingest`` or ``build``; prints one JSON line."""
    from sardata.ingest import ingest
    from sardata.shards.build import build_shards

    case_dir = Path(case)
    t0 = time.perf_counter()  # imports are not timed
    report: dict[str, Any] = {}
    if stage == "generate":
        (write_chips if kind == "images" else write_frames)(case_dir / "data", n)
    elif stage == "ingest":
        options = {"pdw": "false"} if kind == "radchar" else {}
        result = ingest("mstar" if kind == "images" else "radchar", case_dir / "data", case_dir / "ingest", options,
                        workers=workers)  # fmt: skip
        if result.samples != n:
            raise RuntimeError(f"ingested {result.samples} samples, expected {n}")
        report = _store(case_dir / "ingest")
    else:
        build_shards([case_dir / "ingest"], case_dir / "dataset", workers=workers)
        report = {"shards_mb": sum(p.stat().st_size for p in (case_dir / "dataset" / "shards").iterdir()) / 1e6}
    seconds = time.perf_counter() - t0
    status = Path("/proc/self/status").read_text()
    rss = int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "rss_mb": rss, "children_mb": children, **report}))


def _store(out: Path) -> dict[str, Any]:
    """Files and bytes of the sample store, and the encoded arrays it holds (from the store index)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from sardata.store import INDEX

    files = [p for p in (out / "units").rglob("*") if p.is_file()]
    sizes = pq.read_table(out / INDEX, columns=["sizes"]).column("sizes")
    return {"store_files": len(files), "store_mb": sum(p.stat().st_size for p in files) / 1e6,
            "arrays_mb": pc.sum(pc.list_flatten(sizes)).as_py() / 1e6}  # fmt: skip


def write_chips(root: Path, n: int, seed: int = 0) -> None:
    """``n`` JPEG chips in the MSTAR-10 layout (``MSTAR-10/<split>/<class>/hb<i>.jpeg``), drawn from a pool of
    256 distinct speckle images (writing files, not encoding them, is what ``n`` should cost)."""
    import io

    import numpy as np
    from PIL import Image

    from sardata.sources import get_source

    rng = np.random.default_rng(seed)
    pool = []
    for _ in range(256):
        buf = io.BytesIO()
        img = np.clip(rng.gamma(1.0, 60.0, (CHIP, CHIP)), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(buf, format="JPEG", quality=90)
        pool.append(buf.getvalue())
    classes = get_source("mstar").classes
    folders = [root / "MSTAR-10" / s / c for s in SPLITS for c in classes]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folders[i % len(folders)] / f"hb{i:07d}.jpeg").write_bytes(pool[i % len(pool)])


def write_frames(root: Path, n: int) -> None:
    """One RadChar-format file of ``n`` frames (gzip, cycling through 4 seeded frames: fast to write)."""
    from sardata.sim.radchar_fixture import repeat_blocks, write_radchar

    root.mkdir(parents=True, exist_ok=True)
    write_radchar(root / f"RadChar-{n}.h5", repeat_blocks(n, distinct=4, block=8192), n=n, iq_dtype="complex64",
                  compression="gzip")  # fmt: skip


__all__ = ["KINDS", "bench_scale", "run_stage", "write_chips", "write_frames"]
