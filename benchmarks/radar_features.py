"""Issue 16 reference: how far seven hand-made per-train statistics go on the confusable downstream set.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/radar_features.py

Per train (emitter pulses, src == 0): median RF, median / 10th / 90th percentile of log10 ΔTOA, median PW, RF std,
number of distinct 5-MHz RF bins. Standardised with the source train set; 1-NN and nearest centroid; every
(source → target) mode pair, train → test. A guard, not a method: if this beats the learned arms, the arms are not
using what the data holds.
"""

from __future__ import annotations

import numpy as np

from sardata.sim.pdw import FileJob, downstream_plan, simulate_key


def features(pdw: np.ndarray) -> list[float]:
    e = pdw[pdw["src"] == 0] if (pdw["src"] == 0).sum() > 8 else pdw
    d = np.diff(e["toa"])
    d = d[d > 0]
    return [float(np.median(e["rf"])), float(np.log10(np.median(d))), float(np.log10(np.percentile(d, 10))),
            float(np.log10(np.percentile(d, 90))), float(np.median(e["pw"])), float(np.std(e["rf"])),
            float(len(np.unique(np.round(e["rf"] / 5))))]  # fmt: skip


def macro_f1(y: np.ndarray, p: np.ndarray, n: int = 7) -> float:
    f = []
    for c in range(n):
        tp, fp, fn = ((p == c) & (y == c)).sum(), ((p == c) & (y != c)).sum(), ((p != c) & (y == c)).sum()
        f.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(f))


def main() -> None:
    job, data = FileJob("x", (), 0, True), {}
    for m, rows in enumerate(downstream_plan(0)):
        x = np.array([features(simulate_key(job, k)[0]) for k in rows])
        data[m] = (x, np.array([k.label for k in rows]), np.array([k.split for k in rows]))
    print("| source → target | 1-NN acc / macro-F1 | nearest centroid acc / macro-F1 |")
    print("| --- | ---: | ---: |")
    for a in range(3):
        for b in range(3):
            (xa, ya, sa), (xb, yb, sb) = data[a], data[b]
            tr, te = sa == "train", sb == "test"
            mu, sd = xa[tr].mean(0), xa[tr].std(0) + 1e-9
            xtr, xte, ytr = (xa[tr] - mu) / sd, (xb[te] - mu) / sd, ya[tr]
            nn = ytr[((xte[:, None] - xtr[None]) ** 2).sum(-1).argmin(1)]
            cs = np.unique(ytr)
            cen = cs[((xte[:, None] - np.stack([xtr[ytr == c].mean(0) for c in cs])[None]) ** 2).sum(-1).argmin(1)]
            cells = [f"{np.mean(p == yb[te]):.3f} / {macro_f1(yb[te], p):.3f}" for p in (nn, cen)]
            print(f"| {'VS TAS STT'.split()[a]} → {'VS TAS STT'.split()[b]} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
