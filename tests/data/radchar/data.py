#!/usr/bin/env python3
"""Write the tiny RadChar fixture (``sources.md`` §10 recipe) — synthetic frames, not RadChar data.

``RadChar/RadChar-Tiny.h5``: 10 frames (two per class, SNR −20 and +20 dB) from
:mod:`sardata.sim.radchar_fixture`, complex128 ``iq`` and the exact ``labels`` dtype; ``RadChar-Tiny-c64.h5``: the
same frames as complex64; ``RadChar-NoLabels.h5``: ``iq`` only (rejected: ``missing_dataset``).
``bad/RadChar-Bad.h5``: 5 frames — a NaN frame, an Inf frame, ``signal_type`` 7, a PRI of 16 µs (out of the
nominal range: warned, kept) and one clean frame.

Run ``python tests/data/radchar/data.py``; prints the sha256 of every file. Seeded and deterministic.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np

from sardata.sim.radchar_fixture import frames, write_radchar

HERE = Path(__file__).resolve().parent
SEED = 20240
TYPES = [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
SNRS = [-20, 20] * 5


def tiny() -> tuple[np.ndarray, np.ndarray]:
    """The 10 frames and labels of ``RadChar-Tiny.h5``."""
    return frames(10, SEED, TYPES, SNRS)


def bad() -> tuple[np.ndarray, np.ndarray]:
    """The 5 frames and labels of ``bad/RadChar-Bad.h5`` (rows 0–1 non-finite, 2 unknown class, 3 PRI 16 µs)."""
    iq, labels = frames(5, SEED + 1, [0, 1, 2, 3, 4], [20] * 5)
    iq[0, 100] = np.nan
    iq[1, 7] = complex(np.inf, 0)
    labels["signal_type"][2] = 7
    labels["pulse_repetition_interval"][3] = 16e-6
    return iq, labels


def generate(root: Path) -> list[Path]:
    root.mkdir(parents=True, exist_ok=True)
    (root / "RadChar").mkdir(exist_ok=True)
    (root / "bad").mkdir(exist_ok=True)
    iq, labels = tiny()
    write_radchar(root / "RadChar" / "RadChar-Tiny.h5", (iq, labels))
    write_radchar(root / "RadChar" / "RadChar-Tiny-c64.h5", (iq, labels), iq_dtype="complex64")
    write_radchar(root / "RadChar" / "RadChar-NoLabels.h5", (iq, labels), labels=False)
    write_radchar(root / "bad" / "RadChar-Bad.h5", bad())
    return sorted(p for p in root.rglob("*.h5"))


def main() -> None:
    for sub in ("RadChar", "bad"):
        shutil.rmtree(HERE / sub, ignore_errors=True)
    for path in generate(HERE):
        print(hashlib.sha256(path.read_bytes()).hexdigest(), path.relative_to(HERE))


if __name__ == "__main__":
    main()
