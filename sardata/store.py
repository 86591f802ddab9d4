"""The ingest sample store: decoded arrays, written once at ingest, read by the shard builder.

Layout (inside an ingest output directory)::

    store/<uid[:2]>/<uid>.npz     one uncompressed .npz per input file (work unit), members "<i>.<field>.npy"
    parts/<uid[:2]>/<uid>.json    the unit's sources row and sample rows (its existence = unit committed)

``uid`` = first 32 hex digits of sha256(source-relative path). A sample's ``store_path`` column reads
``store/ab/abcd….npz#<i>``. Why npz: numpy-native, no pickle (loaded with ``allow_pickle=False``), random access
per member, and one file per unit keeps the unit the atomic step of ingest (temp + rename).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from sardata._atomic import atomic_path
from sardata.errors import ShardIntegrityError


def unit_id(rel: str) -> str:
    return hashlib.sha256(rel.encode("utf-8", "surrogateescape")).hexdigest()[:32]


def store_file(uid: str) -> str:
    return f"store/{uid[:2]}/{uid}.npz"


def part_file(uid: str) -> str:
    return f"parts/{uid[:2]}/{uid}.json"


def write_unit_arrays(out: Path, uid: str, samples: list[dict[str, np.ndarray]]) -> str | None:
    """Write all arrays of one unit; return the relative store file, or None when there is nothing to store."""
    if not samples:
        return None
    rel = store_file(uid)
    members = {f"{i}.{field}": arr for i, arrays in enumerate(samples) for field, arr in arrays.items()}
    with atomic_path(out / rel) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **members)
    return rel


def load_arrays(root: str | os.PathLike[str], store_path: str) -> dict[str, np.ndarray]:
    """Arrays of one sample from ``store_path`` (``store/…npz#i``) under an ingest root."""
    rel, _, idx = store_path.partition("#")
    path = Path(root) / rel
    try:
        with np.load(path, allow_pickle=False) as z:
            prefix = f"{idx}."
            return {name[len(prefix) :]: z[name] for name in z.files if name.startswith(prefix)}
    except (OSError, ValueError) as exc:
        raise ShardIntegrityError(f"{path}: cannot read sample store ({exc}); rerun `sardata ingest`") from exc
