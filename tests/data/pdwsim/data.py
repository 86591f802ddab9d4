#!/usr/bin/env python3
"""Write the tiny ``pdwsim`` fixture into ``PDWSim/`` with the library itself (``radar.md`` §2).

``pool/``: 2 types × 3 modes × 2 trains (the earlier stop rule, ``stop="detections"``, at 32 emitter pulses each
so the files stay tiny; gzip-compressed); ``downstream/``: the
7-emitter cross-mode layout with train counts 2, 1, 1, 1, 1, 1, 1 and 7 test trains per mode (one per class,
uncompressed; separate bands, so the RF-only rule solves it and the cross-mode test sees the degenerate-set
refusal); ``*-types.json``: the recipes (skipped by ingest); ``bad/``: a truncated copy of a pool file and an HDF5 file without the sardata-pdwsim
attributes (both rejected). Seeded: every train regenerates from its key.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SEED = 7
N_PULSES = 32
COUNTS = (2, 1, 1, 1, 1, 1, 1)


def generate(root: Path) -> list[Path]:
    import h5py

    from sardata.sim.pdw import write_dataset

    root.mkdir(parents=True, exist_ok=True)
    write_dataset(root, kind="pool", global_seed=SEED, n_types=2, per_type_mode=2, types_per_file=2,
                  n_pulses=N_PULSES, stop="detections", compression="gzip", workers=1)  # fmt: skip
    write_dataset(
        root,
        kind="downstream",
        global_seed=SEED,
        counts=COUNTS,
        test_total=7,
        n_pulses=N_PULSES,
        stop="detections",
        confusable=False,
        workers=1,
    )  # fmt: skip  (separate bands: degenerate on purpose)
    (root / "bad").mkdir(exist_ok=True)
    pool = (root / "pool" / "pdw-pool-t000000.h5").read_bytes()
    (root / "bad" / "truncated.h5").write_bytes(pool[: len(pool) // 3])
    with h5py.File(root / "bad" / "not_pdwsim.h5", "w", libver=("earliest", "v108"), track_order=False) as f:
        f.create_dataset("pulses", data=np.zeros(4, np.float32), track_times=False)
    return sorted(p for p in root.rglob("*") if p.is_file())


def main() -> None:
    shutil.rmtree(HERE / "PDWSim", ignore_errors=True)
    for path in generate(HERE / "PDWSim"):
        print(hashlib.sha256(path.read_bytes()).hexdigest(), path.relative_to(HERE))


if __name__ == "__main__":
    main()
