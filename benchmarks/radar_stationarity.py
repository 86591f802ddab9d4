"""Issue 16 check: does anything in a simulated PDW train change with its position? RESULTS.md §2.1.

    .venv/bin/python benchmarks/radar_stationarity.py

Per mode, 12 pool trains (up to 2 s, 20,000 detections), each cut into eighths; printed: the spread (max − min
over the eighths) of the median PA (dB), of the median log10 ΔTOA and of the count of distinct RF values
(relative to its mean), each as the median over the trains.
"""

from __future__ import annotations

import numpy as np

from sardata.sim.pdw import simulate


def spreads(pdw: np.ndarray) -> tuple[float, float, float]:
    """(PA, log10 ΔTOA, relative distinct-RF) spread over the eighths of one train."""
    parts = np.array_split(np.arange(len(pdw)), 8)
    dtoa = np.log10(np.maximum(np.diff(pdw["toa"], prepend=pdw["toa"][0]), 1e-9))
    pa = [np.median(pdw["pa"][j]) for j in parts]
    dt = [np.median(dtoa[j]) for j in parts]
    rf = [len(np.unique(pdw["rf"][j])) for j in parts]
    return float(np.ptp(pa)), float(np.ptp(dt)), float(np.ptp(rf) / max(np.mean(rf), 1))


def main() -> None:
    rng = np.random.default_rng(1)
    for mode in range(3):
        rows = [spreads(simulate(0, int(rng.integers(300)), mode, i, n_pulses=20000, t_max=2.0)[0]) for i in range(12)]
        pa, dt, rf = np.median(np.array(rows), axis=0)
        print(f"mode {mode}: spread over eighths (median of 12 trains): PA {pa:.2f} dB, log10 ΔTOA {dt:.3f}, "
              f"distinct RF {rf:.2f} (relative)")  # fmt: skip


if __name__ == "__main__":
    main()
