"""Issue 16 ablation table: can a patch's index be told from its content, per radar input design?

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/radar_probe.py [--trains 400] [--long-trains 150] [--seed 0]

Rows: PDW pretraining-pool trains (the simulator's default stop rule, 576 detections) under each resampling rule
(``window``, ``intercept_index``, ``intercept_toa``) and channel pair; the same for full 2-s intercepts
(``n_pulses`` 200,000: the whole train is the intercept); RadChar-format IQ frames (IQ-only data); and the ramp
control (content encodes position). Columns (``sardata.train.probes``): the index-from-content probe's held-out
top-1 and ±1 (one hidden layer, 300 steps; chance 1/64 = 0.0156), the masked top-1 and final loss of a
150-step ``test_radarpos`` pretraining at lr 1e-3 (held-out views), and the mean cosine between the TOA and
index PEs (≥ 0.9: a "without TOA PE" ablation is uninformative). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from sardata.sim.pdw import simulate
from sardata.stream.radar import RadarView
from sardata.train import probes as P


def pool(n: int, seed: int, n_pulses: int) -> list[dict]:
    """``n`` pool trains, (type, mode) drawn uniformly from 300 × 3, as loader-style samples."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        type_id, mode = int(rng.integers(300)), int(rng.integers(3))
        pdw, _ = simulate(0, type_id, mode, i, n_pulses=n_pulses)
        out.append({"pdw.npy": pdw, "__key__": f"k{i}", "__index__": i, "__epoch__": 0, "valid": True})
    return out


def row(name: str, views: list[dict], seed: int) -> str:
    t0 = time.perf_counter()
    probe = P.position_probe(views, steps=300, seed=seed)
    cut = int(len(views) * 0.8)
    pre = P.pretext_top1(views[:cut], views[cut:], steps=150, lr=1e-3, seed=seed)
    cos = P.toa_index_cosine(views)
    flag = " (uninformative w/o-TOA ablation)" if cos >= 0.9 else ""
    return (f"| {name} | {probe.top1:.4f} / {probe.top1_pm1:.3f} | {pre.top1:.4f} / {pre.top1_pm1:.3f} | "
            f"{pre.loss:.3f} | {cos:.3f}{flag} | {time.perf_counter() - t0:.0f} s |")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trains", type=int, default=400)
    ap.add_argument("--long-trains", type=int, default=150)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print("| input | probe top-1 / ±1 | pretext top-1 / ±1 | pretext loss | TOA·index PE cosine | time |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    short = pool(args.trains, args.seed, 576)
    for rule in ("window", "intercept_index", "intercept_toa"):
        for ch in (("dtoa", "rf"), ("dtoa", "pa"), ("rf", "pw")):
            views = P.apply_view(RadarView(train=False, resample=rule, channels=ch), short)
            print(row(f"PDW pool, 576 detections, {rule}, {'/'.join(ch)}", views, args.seed), flush=True)
    long = pool(args.long_trains, args.seed, 200_000)
    for rule in ("intercept_index", "intercept_toa"):
        views = P.apply_view(RadarView(train=False, resample=rule), long)
        print(
            row(f"PDW pool, whole 2-s intercepts ({args.long_trains}), {rule}, dtoa/rf", views, args.seed), flush=True
        )
    iq = P.apply_view(RadarView(train=False), P.radchar_samples(args.trains, seed=args.seed))
    print(row("RadChar-format IQ frames (IQ only)", iq, args.seed), flush=True)
    print(row("ramp control (content encodes position)", P.ramp_views(args.trains, seed=args.seed), args.seed))


if __name__ == "__main__":
    main()
