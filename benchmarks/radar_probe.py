"""Issue 16 ablation table: can a patch's index be told from its content, per radar input design?

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/radar_probe.py [--trains 400] [--long-trains 150] [--seed 0]

Rows: PDW pretraining-pool trains under the earlier stop rule (576 detections); under the simulator's default
(one whole intercept, ≤ 2048 detections: ``sardata.sim.pdw.intercept``) with each resampling rule (``window``,
``intercept_index``, ``intercept_toa``) and channel pair; uncapped whole intercepts; RadChar-format IQ frames (IQ-only data); and the ramp
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


def pool(n: int, seed: int, **sim: object) -> list[dict]:
    """``n`` pool trains, (type, mode) drawn uniformly from 300 × 3, as loader-style samples."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        type_id, mode = int(rng.integers(300)), int(rng.integers(3))
        pdw, _ = simulate(0, type_id, mode, i, **sim)
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
    short = pool(args.trains, args.seed, stop="detections", n_pulses=576)
    for rule in ("window", "intercept_index"):
        views = P.apply_view(RadarView(train=False, resample=rule), short)
        print(row(f"PDW pool, old stop rule (576 detections), {rule}, dtoa/rf", views, args.seed), flush=True)
    default = pool(args.trains, args.seed)
    for rule in ("intercept_index", "intercept_toa", "window"):
        for ch in (("dtoa", "rf"), ("dtoa", "pa"), ("rf", "pw")):
            views = P.apply_view(RadarView(train=False, resample=rule, channels=ch), default)
            name = f"PDW pool, whole intercepts (default, ≤ 2048 detections), {rule}, {'/'.join(ch)}"
            print(row(name, views, args.seed), flush=True)
    long = pool(args.long_trains, args.seed, max_pulses=10**6)
    for ch in (("dtoa", "rf"), ("dtoa", "pa")):
        views = P.apply_view(RadarView(train=False, resample="intercept_index", channels=ch), long)
        name = f"PDW pool, uncapped whole intercepts ({args.long_trains}), intercept_index, {'/'.join(ch)}"
        print(row(name, views, args.seed), flush=True)
    iq = P.apply_view(RadarView(train=False), P.radchar_samples(args.trains, seed=args.seed))
    print(row("RadChar-format IQ frames (IQ only)", iq, args.seed), flush=True)
    print(row("ramp control (content encodes position)", P.ramp_views(args.trains, seed=args.seed), args.seed))


if __name__ == "__main__":
    main()
