"""``sardata bench build-shards``: build throughput against a plain sequential tar write, same run.

Baseline: the exact member bytes of every sample (read from the built dataset beforehand, held in memory) written
sequentially with ``tarfile`` into one archive — no planning, hashing, fsync, index or splits, no decoding. sardata's
build does everything: reads the sample store, encodes, plans, writes reproducible shards with offsets and
sha256 (fsynced, atomic), and the index, with ``workers`` processes.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

from sardata.manifest.io import read_table
from sardata.shards.build import BuildConfig, build_shards
from sardata.shards.writer import read_member


def bench_build_shards(ingest_dirs: list[str | os.PathLike[str]], workers: int = 2, repeat: int = 1,
                       cfg: BuildConfig | None = None) -> dict[str, Any]:  # fmt: skip
    """Time a full build and the sequential-tar baseline on the same payload; return figures and ratios."""
    cfg = cfg or BuildConfig()
    tmp = Path(tempfile.mkdtemp(prefix="sardata-bench-"))
    try:
        best = float("inf")
        for _ in range(max(1, repeat)):
            shutil.rmtree(tmp / "ds", ignore_errors=True)
            t0 = time.perf_counter()
            result = build_shards(ingest_dirs, tmp / "ds", cfg, workers=workers)
            best = min(best, time.perf_counter() - t0)
        payload = _payload(tmp / "ds")
        nbytes = sum(len(d) for _, d in payload)
        base = float("inf")
        for _ in range(max(1, repeat)):
            t0 = time.perf_counter()
            with tarfile.open(tmp / "plain.tar", "w") as tf:
                for name, data in payload:
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    tf.addfile(info, io.BytesIO(data))
            base = min(base, time.perf_counter() - t0)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "samples": result.samples, "shards": result.shards, "payload_mb": nbytes / 1e6, "workers": workers,
        "build_samples_per_s": result.samples / best, "build_mb_per_s": nbytes / 1e6 / best,
        "tar_samples_per_s": result.samples / base, "tar_mb_per_s": nbytes / 1e6 / base,
        "build_vs_tar": base / best,
    }  # fmt: skip


def _payload(root: Path) -> list[tuple[str, bytes]]:
    out = []
    for row in read_table(root / "samples.parquet", "samples").select(["key", "shard", "members"]).to_pylist():
        path = root / "shards" / row["shard"]
        out += [(f"{row['key']}.{m['field']}", read_member(path, m["offset"], m["size"])) for m in row["members"]]
    return out
