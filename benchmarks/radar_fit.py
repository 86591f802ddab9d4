"""Issue 16 fit-first diagnosis: can a from-scratch encoder fit one mode's long-tailed downstream train set?

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/radar_fit.py MODE STEPS LR MODEL [fixed|std|robust]

Simulates the confusable downstream set (``downstream_plan(0)``, simulator defaults), builds the default
``RadarView`` inputs, trains ``MODEL`` (``transformer_scratch`` 64 × 4 or ``resnet1d`` widths 32–128) with plain
cross-entropy on the 206 train trains of ``MODE`` (0 VS, 1 TAS, 2 STT), batch 32, AdamW, seed 0, and prints
train and in-mode test accuracy along the way. Input scaling: ``fixed`` (spec ranges), ``std`` (train-set mean/std
per channel), ``robust`` (train-set median/MAD, clipped: ``sardata.train.radar_norm``).
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch

from sardata.models import create_model
from sardata.sim.pdw import FileJob, downstream_plan, simulate_key
from sardata.stream.radar import RadarView
from sardata.train import probes as P
from sardata.train.radar_norm import robust_stats, standardise


def main() -> None:
    mode, steps, lr, model = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    norm = sys.argv[5] if len(sys.argv) > 5 else "fixed"
    torch.set_num_threads(1)
    job = FileJob("x", (), 0, True)
    samples, labels, split = [], [], []
    for k in downstream_plan(0)[mode]:
        pdw, _ = simulate_key(job, k)
        samples.append({"pdw.npy": pdw, "__key__": str(k), "__index__": 0, "__epoch__": 0, "valid": True})
        labels.append(k.label)
        split.append(k.split)
    y, tr = torch.tensor(labels), torch.from_numpy(np.array(split) == "train")
    b = P.batch(P.apply_view(RadarView(train=False), samples))
    if norm == "robust":
        b = standardise(b, robust_stats(b["x"][tr], b["valid"][tr]))
    elif norm == "std":
        xs, vm = b["x"][tr], b["valid"][tr]
        mu = torch.stack([xs[:, c][vm].mean() for c in range(xs.shape[1])]).view(1, -1, 1)
        sd = torch.stack([xs[:, c][vm].std() for c in range(xs.shape[1])]).view(1, -1, 1)
        b = {**b, "x": torch.where(b["valid"].unsqueeze(1), (b["x"] - mu) / sd, torch.zeros_like(b["x"]))}
    kw = {"num_classes": 7, "in_chans": 2}
    kw.update({"transformer_scratch": {"embed_dim": 64, "depth": 4, "num_heads": 4},
               "resnet1d": {"widths": [32, 64, 128, 128]}}.get(model, {}))  # fmt: skip
    torch.manual_seed(0)
    net = create_model(model, **kw)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.05)
    idx, gen, t0 = torch.nonzero(tr).squeeze(1), torch.Generator().manual_seed(0), time.time()
    for s in range(steps):
        pick = idx[torch.randint(len(idx), (32,), generator=gen)]
        loss = torch.nn.functional.cross_entropy(net({k: v[pick] for k, v in b.items()}), y[pick])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if s % max(1, steps // 5) == 0 or s == steps - 1:
            net.eval()
            with torch.no_grad():
                acc = [
                    float((net({k: v[m] for k, v in b.items()}).argmax(1) == y[m]).float().mean()) for m in (tr, ~tr)
                ]
            net.train()
            print(
                f"step {s} loss {loss.item():.3f} train acc {acc[0]:.3f} test acc {acc[1]:.3f} ({time.time() - t0:.0f} s)"
            )


if __name__ == "__main__":
    main()
