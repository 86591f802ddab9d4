"""Cost of the loader's shard check (README *Integrity policy*, BENCHMARKS.md *Cost of the integrity check*).

Interleaved in-process timing, 0 DataLoader workers: ``verify="off"``, ``"shard"`` cold (empty marker directory and
in-process memory: every shard hashed once in the timed run) and warm (the markers the cold run left); ``ROUNDS``
rounds, best of each, ``EPOCHS`` epochs of the dataset per run.

    .venv/bin/python benchmarks/loader_verify.py [--per-class 64] [--rounds 7] [--epochs 3] [--inline]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path


def run(ds: Path, verify: str, epochs: int) -> tuple[int, float]:
    from sardata.stream.dataset import ShardIterable

    it = ShardIterable(ds, 32, split=None, fields=("img.npy", "gr.npy", "cls"), verify=verify)
    n, t0 = 0, time.perf_counter()
    for _ in range(epochs):
        for batch in it:
            n += len(batch["__key__"])
    return n, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-class", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--inline", action="store_true", help="no background hashing: the check before this change")
    args = ap.parse_args()
    if args.inline:
        from sardata.stream.dataset import ShardIndex

        ShardIndex.prefetch = lambda self, shard: None  # type: ignore[method-assign]
    from sardata.bench.stream import make_data
    from sardata.stream import verify as verify_mod

    tmp = Path(tempfile.mkdtemp(prefix="sardata-loader-verify-"))
    try:
        ds = make_data(tmp, args.per_class) / "ds"
        old = time.time() - 60
        for path in (ds / "shards").iterdir():
            os.utime(path, (old, old))  # outside the racy window, as on any dataset not written this second
        shards = sum(1 for _ in (ds / "shards").iterdir())
        size = sum(p.stat().st_size for p in (ds / "shards").iterdir())
        marks = tmp / "verified"
        os.environ["SARDATA_VERIFIED_DIR"] = str(marks)
        best: dict[str, float] = {}
        for _ in range(args.rounds):
            for kind in ("off", "warm", "cold"):
                if kind == "cold":
                    shutil.rmtree(marks, ignore_errors=True)
                    verify_mod._VERIFIED.clear()
                else:
                    run(ds, "shard", 1) if kind == "warm" and not marks.exists() else None
                n, secs = run(ds, "off" if kind == "off" else "shard", args.epochs)
                best[kind] = max(best.get(kind, 0.0), n / secs)
        print(f"{shards} shards, {size / 2**20:.0f} MiB; {args.epochs} epochs of {n // args.epochs} samples; "
              f"best of {args.rounds} interleaved rounds, 0 workers{', inline check' if args.inline else ''}")  # fmt: skip
        for kind in ("off", "warm", "cold"):
            print(f"{kind:5s} {best[kind]:8,.0f} samples/s  {best[kind] / best['off']:.2f}x verify=off")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
