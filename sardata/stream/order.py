"""Epoch order and rank/worker slicing as pure arithmetic (``data-contract.md`` §5.1–5.5).

Everything here is a function of the manifest (shard list and per-shard sample keys), the seed, the epoch and the
shuffle parameters — never of the world size, the worker count, Python ``hash()`` or a global RNG:

* π_e: shards are permuted with ``default_rng(SeedSequence([seed, epoch, 0]))``, grouped into blocks of
  ``block_shards`` consecutive shards, and the samples of each block are permuted with
  ``SeedSequence([seed, epoch, 1, block])`` (shard locality: a block's samples come from few shards).
* Steps per epoch ``S = ceil(N / B)`` (``pad="wrap"`` / ``"mask"``) or ``floor(N / B)`` (``drop_last``).
* At step t, rank r reads global positions ``[t·B + r·b, t·B + (r+1)·b)`` with ``b = B / W``; positions ≥ N wrap
  to the start of π_e (``wrap``) or are padding flagged invalid (``mask``).
* Worker i of a rank serves the steps ``t ≡ i (mod n)`` as whole batches, in increasing t.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from sardata.errors import ConfigError

PADS = ("wrap", "mask", "drop")


@dataclass(frozen=True)
class Slot:
    """One position of the global sequence as a rank reads it."""

    step: int
    position: int  # global position t·B + r·b + j
    index: int  # index into π_e: the position, wrapped to the start of π_e past N
    valid: bool  # False for padding under pad="mask" (the sample is a stand-in, to be ignored by metrics)


def epoch_permutation(shard_sizes: Sequence[int], seed: int, epoch: int, block_shards: int = 4,
                      shuffle: bool = True, stream: int | None = None) -> np.ndarray:  # fmt: skip
    """π_e as an array of flat sample indices (into the concatenation of shards in manifest order). ``stream``
    separates the permutation streams of mixed sources (appended to every SeedSequence)."""
    salt = [] if stream is None else [stream]
    sizes = np.asarray(shard_sizes, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    if not shuffle:
        return np.arange(int(sizes.sum()), dtype=np.int64)
    shard_order = np.random.default_rng(np.random.SeedSequence([seed, epoch, 0, *salt])).permutation(len(sizes))
    out = []
    for block, first in enumerate(range(0, len(shard_order), block_shards)):
        members = np.concatenate(
            [np.arange(starts[s], starts[s] + sizes[s]) for s in shard_order[first : first + block_shards]]
        )
        rng = np.random.default_rng(np.random.SeedSequence([seed, epoch, 1, block, *salt]))
        out.append(members[rng.permutation(len(members))])
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


@dataclass(frozen=True)
class Plan:
    """Steps and slices for N samples, global batch B, world size W, workers per rank n."""

    n_samples: int
    global_batch: int
    world_size: int = 1
    num_workers: int = 0
    pad: str = "wrap"

    def __post_init__(self) -> None:
        if self.pad not in PADS:
            raise ConfigError(f"pad {self.pad!r}; choose from {PADS}")
        if self.global_batch < 1 or self.world_size < 1:
            raise ConfigError("global batch and world size must be positive")
        if self.global_batch % self.world_size:
            raise ConfigError(
                f"global batch {self.global_batch} is not divisible by world size {self.world_size}; "
                "choose a global batch that is a multiple of the number of ranks"
            )
        if self.n_samples < 1:
            raise ConfigError("the selected view has no samples")
        if self.steps == 0:
            raise ConfigError(
                f"{self.n_samples} samples give no full global batch of {self.global_batch} with drop_last; "
                "lower the batch size or use pad='wrap'"
            )
        if self.num_workers > self.steps:
            raise ConfigError(
                f"{self.num_workers} loader workers but only {self.steps} steps per epoch: some workers would get "
                "no batch; use at most that many workers"
            )

    @property
    def per_rank_batch(self) -> int:
        return self.global_batch // self.world_size

    @property
    def steps(self) -> int:
        full, rest = divmod(self.n_samples, self.global_batch)
        return full if self.pad == "drop" else full + (rest > 0)

    def slots(self, step: int, rank: int) -> list[Slot]:
        """The per-rank batch of ``rank`` at ``step``."""
        if not 0 <= rank < self.world_size:
            raise ConfigError(f"rank {rank} outside world size {self.world_size}")
        b = self.per_rank_batch
        out = []
        for j in range(b):
            pos = step * self.global_batch + rank * b + j
            valid = pos < self.n_samples or self.pad == "wrap"  # drop never reaches past N: its last step is full
            out.append(Slot(step, pos, pos % self.n_samples, valid))
        return out

    def worker_steps(self, worker: int, start_step: int = 0) -> Iterator[int]:
        """Steps served by ``worker``: ``start_step + worker``, then every n-th — ``t ≡ i (mod n)`` for a fresh
        epoch; after a resume at ``start_step`` the DataLoader's round robin still yields steps in order."""
        return iter(range(start_step + worker, self.steps, max(1, self.num_workers)))


def quotas(weights: Sequence[float], epoch_size: int) -> list[int]:
    """Integer per-source counts summing to ``epoch_size``, by largest remainder of ``w_s · E`` (ties: first)."""
    w = np.asarray(weights, dtype=np.float64)
    if (w < 0).any() or w.sum() <= 0:
        raise ConfigError(f"mixing weights {list(weights)} must be non-negative with a positive sum")
    exact = w / w.sum() * epoch_size
    base = np.floor(exact).astype(int)
    order = sorted(range(len(w)), key=lambda s: (-(exact[s] - base[s]), s))
    for s in order[: epoch_size - int(base.sum())]:
        base[s] += 1
    return base.tolist()


def mixed_sequence(quota: Sequence[int], epoch: int) -> list[tuple[int, int]]:
    """The mixed epoch as (source, position in that source's stream): source s contributes items
    ``epoch·q_s + j`` for j < q_s, interleaved by sorting ``(j + 0.5) / q_s`` (ties by source index)."""
    items = [((j + 0.5) / q, s, epoch * q + j) for s, q in enumerate(quota) for j in range(q)]
    items.sort(key=lambda t: (t[0], t[1]))
    return [(s, pos) for _, s, pos in items]
