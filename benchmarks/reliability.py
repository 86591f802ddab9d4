"""Issue #15.1 measurement: concurrent ingests and ``kill -9`` at random times lose nothing.

    .venv/bin/python benchmarks/reliability.py [DATA] [--trials 10] [--workers 2]

1. ``--trials`` times: two ``sardata ingest mstar DATA --out X`` at once (the lock makes one fail cleanly or both
   finish one after the other), then a rerun; counts inputs that are not ``ok`` compared with an uninterrupted run
   and checks ``samples.parquet`` / ``sources.parquet`` are byte-identical.
2. ``--trials`` times each for ``ingest`` and ``build-shards``: start the command, ``SIGKILL`` its process group
   at a uniformly random time within the uninterrupted run's duration, rerun, and compare every output file
   byte for byte (``dataset.json`` without ``created_at``).
Prints one JSON document with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLI = [sys.executable, "-c", "from sardata.cli import main; main()"]


def _files(d: Path) -> dict[str, bytes]:
    """Every output file's bytes; the card without its wall-clock ``created_at``."""
    out = {}
    for p in sorted(d.rglob("*")):
        if p.is_file():
            data = p.read_bytes()
            if p.name == "dataset.json":
                card = json.loads(data)
                card.pop("created_at", None)
                data = json.dumps(card, sort_keys=True).encode()
            out[str(p.relative_to(d))] = data
    return out


def _run(cmd: list[str]) -> tuple[int, float]:
    t0 = time.monotonic()
    rc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False).returncode
    return rc, time.monotonic() - t0


def _statuses(out: Path) -> dict[str, str]:
    import pyarrow.parquet as pq

    rows = pq.read_table(out / "sources.parquet", columns=["src_path", "src_member", "status"]).to_pylist()
    return {r["src_path"]: r["status"] for r in rows if r["src_member"] is None}


def _kill_trials(cmd_for: callable, ref: Path, tmp: Path, name: str, duration: float, trials: int, rng) -> dict:
    identical = killed_mid_run = 0
    failures = []  # what differed in a trial that did not end identical, and the resumed run's rc / stderr tail
    ref_files = _files(ref)
    for i in range(trials):
        out = tmp / f"{name}-kill-{i}"
        proc = subprocess.Popen(cmd_for(out), start_new_session=True, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)  # fmt: skip
        time.sleep(rng.uniform(0.05, duration))
        finished = proc.poll() is not None
        os.killpg(proc.pid, signal.SIGKILL) if not finished else None
        proc.wait()
        killed_mid_run += not finished and not (out / "dataset.json").exists()
        resumed = subprocess.run(cmd_for(out), capture_output=True, text=True, check=False)
        got = _files(out)
        differ = sorted(set(got) ^ set(ref_files)) + sorted(k for k in got if k in ref_files and got[k] != ref_files[k])
        ok = resumed.returncode in (0, 3) and not differ
        identical += ok
        if not ok:
            failures.append({"trial": i, "rc": resumed.returncode, "differ": differ[:20],
                             "stderr": resumed.stderr[-500:]})  # fmt: skip
        shutil.rmtree(out)
    return {"trials": trials, "killed_mid_run": killed_mid_run, "identical_after_resume": identical,
            "failures": failures}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data", nargs="?", default=str(Path(__file__).resolve().parents[2] / "shared/data/mstar-jpeg"))
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="sardata-reliability-"))
    w = ["--workers", str(args.workers)]

    def ingest_cmd(out: Path) -> list[str]:
        return [*CLI, "ingest", "mstar", args.data, "--out", str(out), *w]

    def build_cmd(out: Path) -> list[str]:
        return [*CLI, "build-shards", str(tmp / "ref"), "--out", str(out), "--max-count", "20", *w]

    try:
        rc, t_ingest = _run(ingest_cmd(tmp / "ref"))
        assert rc in (0, 3), f"reference ingest failed ({rc})"
        ref_status = _statuses(tmp / "ref")
        rc, t_build = _run(build_cmd(tmp / "ref-ds"))
        assert rc == 0, f"reference build-shards failed ({rc})"

        lost = identical = both_ok = one_refused = 0
        for i in range(args.trials):
            out = tmp / f"conc-{i}"
            procs = [subprocess.Popen(ingest_cmd(out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                     for _ in range(2)]  # fmt: skip
            results = [(p.wait(), p.stderr.read()) for p in procs]
            rcs = sorted(rc for rc, _ in results)
            both_ok += rcs == [0, 0]
            one_refused += rcs[1] == 1 and "in use by pid" in next(e for rc, e in results if rc == 1)
            _run(ingest_cmd(out))
            status = _statuses(out)
            lost += sum(status.get(k) != v for k, v in ref_status.items())
            identical += all(_files(out)[n] == _files(tmp / "ref")[n] for n in ("samples.parquet", "sources.parquet"))
            shutil.rmtree(out)
        report = {
            "data": args.data,
            "inputs": len(ref_status),
            "uninterrupted_s": {"ingest": round(t_ingest, 2), "build_shards": round(t_build, 2)},
            "concurrent_ingest": {
                "trials": args.trials,
                "both_finished": both_ok,
                "second_refused_by_lock": one_refused,
                "lost_files": lost,
                "tables_identical_after_rerun": identical,
            },  # fmt: skip
            "kill9_ingest": _kill_trials(ingest_cmd, tmp / "ref", tmp, "ingest", t_ingest, args.trials, rng),
            "kill9_build_shards": _kill_trials(build_cmd, tmp / "ref-ds", tmp, "build", t_build, args.trials, rng),
        }
        print(json.dumps(report, indent=2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
