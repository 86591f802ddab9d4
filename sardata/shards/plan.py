"""Sample → shard assignment, computed from the manifest alone (``data-contract.md`` §2.1–2.2).

Samples are grouped by split and sorted by key (or by sha256(seed, key) with ``shuffle_at_write``); a shard is
closed before it would exceed ``max_bytes`` or ``max_samples``; a sample larger than the limit gets a shard of its
own. Exact member sizes are known up front (see :func:`sardata.shards.codecs.npy_nbytes`), so the plan — and hence
every byte of every shard — never depends on the number of workers.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

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
    by_split: dict[str, list[tuple[str, int]]] = {}
    for key, split, size in samples:
        by_split.setdefault(split, []).append((key, size))
    plans: list[ShardPlan] = []
    for split in sorted(by_split):
        rows = by_split[split]
        if shuffle_seed is None:
            rows.sort()
        else:
            rows.sort(key=lambda r: hashlib.sha256(f"{shuffle_seed}:{r[0]}".encode()).hexdigest())
        current: list[str] = []
        payload = index = 0
        for key, size in rows:
            full = current and (
                archive_bytes(payload + size) > max_bytes or (max_samples is not None and len(current) >= max_samples)
            )
            if full:
                plans.append(_close(split, index, current, payload))
                current, payload, index = [], 0, index + 1
            current.append(key)
            payload += size
        if current:
            plans.append(_close(split, index, current, payload))
    return plans


def _close(split: str, index: int, keys: list[str], payload: int) -> ShardPlan:
    return ShardPlan(f"{split}-{index:06d}.tar", split, index, tuple(keys), archive_bytes(payload))


__all__ = ["ShardPlan", "plan_payloads", "plan_shards"]
