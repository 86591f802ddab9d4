"""Sample → shard assignment, computed from the manifest alone (``data-contract.md`` §2.1–2.2).

Samples are grouped by split and sorted by key (or by sha256(seed, key) with ``shuffle_at_write``); a shard is
closed before it would exceed ``max_bytes`` or ``max_samples``; a sample larger than the limit gets a shard of its
own. Exact member sizes are known up front (see :func:`sardata.shards.codecs.npy_nbytes`), so the plan — and hence
every byte of every shard — never depends on the number of workers.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from sardata.shards.writer import archive_bytes, member_bytes


@dataclass(frozen=True)
class ShardPlan:
    name: str  # "<split>-<NNNNNN>.tar"
    split: str
    index: int
    keys: tuple[str, ...]
    nbytes: int  # exact size of the finished tar


def plan_shards(
    samples: list[tuple[str, str, list[int]]],
    max_bytes: int = 256 << 20,
    max_samples: int | None = None,
    shuffle_seed: int | None = None,
) -> list[ShardPlan]:
    """Plan shards for ``[(key, split, [member data sizes])]``."""
    payloads = [(key, split, sum(member_bytes(s) for s in sizes)) for key, split, sizes in samples]
    return plan_payloads(payloads, max_bytes, max_samples, shuffle_seed)


def plan_payloads(
    samples: list[tuple[str, str, int]],
    max_bytes: int = 256 << 20,
    max_samples: int | None = None,
    shuffle_seed: int | None = None,
) -> list[ShardPlan]:
    """Plan shards for ``[(key, split, bytes the sample's members take in a tar)]``."""
    order = sorted(range(len(samples)), key=lambda i: samples[i][0])
    keys = np.array([samples[i][0] for i in order], dtype=object)
    splits = np.array([samples[i][1] for i in order], dtype=object)
    sizes = np.array([samples[i][2] for i in order], dtype=np.int64)
    return plan_columns(keys, splits, sizes, max_bytes, max_samples, shuffle_seed)[0]


def plan_columns(
    keys: np.ndarray,
    splits: np.ndarray,
    sizes: np.ndarray,
    max_bytes: int = 256 << 20,
    max_samples: int | None = None,
    shuffle_seed: int | None = None,
) -> tuple[list[ShardPlan], np.ndarray]:
    """:func:`plan_payloads` for columns, ``keys`` sorted ascending (the selection's order), and where each
    planned sample is in those columns (plan order): no per-sample tuple is built (10⁶ of them cost ≈ 300 MB of
    transient memory) and nobody has to look keys up again."""
    plans: list[ShardPlan] = []
    order: list[np.ndarray] = []
    for split in sorted(set(splits.tolist())):
        idx = np.nonzero(splits == split)[0]
        if shuffle_seed is not None:
            digests = np.array([hashlib.sha256(f"{shuffle_seed}:{keys[i]}".encode()).hexdigest() for i in idx])
            idx = idx[np.argsort(digests, kind="stable")]
        order.append(idx)
        start, payload, index = 0, 0, 0
        for j, size in enumerate(sizes[idx].tolist()):
            full = j > start and (
                archive_bytes(payload + size) > max_bytes or (max_samples is not None and j - start >= max_samples)
            )
            if full:
                plans.append(_close(split, index, keys[idx[start:j]].tolist(), payload))
                start, payload, index = j, 0, index + 1
            payload += size
        if len(idx) > start:
            plans.append(_close(split, index, keys[idx[start:]].tolist(), payload))
    return plans, np.concatenate(order) if order else np.zeros(0, dtype=np.int64)


def _close(split: str, index: int, keys: list[str], payload: int) -> ShardPlan:
    return ShardPlan(f"{split}-{index:06d}.tar", split, index, tuple(keys), archive_bytes(payload))


__all__ = ["ShardPlan", "plan_columns", "plan_payloads", "plan_shards"]
