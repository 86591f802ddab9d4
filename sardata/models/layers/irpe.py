"""iRPE on keys (contextual, product method, shared across heads) — ``sar-jepa.md`` §1.1.

For a query token at grid position (r_q, c_q) and a key at (r_k, c_k) the per-axis offsets are
``d = query − key`` (microsoft/Cream iRPE builds ``diff = pos1 − pos2`` with ``pos1`` indexing the query rows of
the L × L bucket matrix; we keep that sign so released SAR-JEPA tables mean the same thing here). Each offset goes
through the piecewise index function (α = 1.9, β = 3.8, γ = 15.2): 0 → 0, ±1 → ±1, ±2 and ±3 → ±2,
|d| ≥ 4 → ±3. Bucket = ``(row + 3)·7 + (col + 3)`` ∈ 0…48; every pair that involves one of the leading
``skip = L − side²`` tokens (the cls token) uses bucket 49 → 50 buckets.

The contextual term for attention logits is ``q · W[:, bucket(i, j)]`` with one table ``W`` of shape
``(head_dim, 50)`` per block, shared by all heads. Upstream stores it as ``(1, head_dim, 50)`` (``num_heads = 1``
when heads share the table); :func:`normalise_lookup_table` squeezes that leading 1 so released checkpoints load.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import nn

IRPE_ALPHA = 1.9
IRPE_BETA = 3.8
IRPE_GAMMA = 15.2
#: per-axis bucket values run over -3…3 → 7 per axis
IRPE_AXIS_BUCKETS = 2 * int(IRPE_BETA) + 1
#: bucket shared by every pair that involves a skip (cls) token
CLS_BUCKET = IRPE_AXIS_BUCKETS**2
NUM_BUCKETS = CLS_BUCKET + 1


def piecewise_index(d: torch.Tensor) -> torch.Tensor:
    """Per-axis offset → signed bucket in -3…3 (Cream iRPE's piecewise index function, truncated to int).

    ``|d| ≤ α → round(d)``; else ``sign(d)·min(β, round(α + ln(|d|/α)/ln(γ/α)·(β − α)))``, then truncation
    toward zero (β = 3.8 clips to 3).
    """
    d = d.to(torch.float64)
    a = d.abs()
    far = IRPE_ALPHA + torch.log(a.clamp_min(IRPE_ALPHA) / IRPE_ALPHA) / math.log(IRPE_GAMMA / IRPE_ALPHA) * (
        IRPE_BETA - IRPE_ALPHA
    )
    far = torch.sign(d) * far.round().clamp_max(IRPE_BETA)
    return torch.where(a <= IRPE_ALPHA, d.round(), far).trunc().to(torch.long)


def bucket_ids(length: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``(L, L)`` long bucket table for a sequence of ``L`` tokens (``skip`` leading tokens, then a square grid).

    ``side = floor(sqrt(L))``, ``skip = L − side²``; row index = query, column index = key.
    """
    side = math.isqrt(length)
    skip = length - side * side
    pos = torch.arange(side * side, device=device)
    rows, cols = pos // side, pos % side
    dr = piecewise_index(rows[:, None] - rows[None, :])  # query − key
    dc = piecewise_index(cols[:, None] - cols[None, :])
    half = IRPE_AXIS_BUCKETS // 2
    grid = (dr + half) * IRPE_AXIS_BUCKETS + (dc + half)
    out = torch.full((length, length), CLS_BUCKET, dtype=torch.long, device=device)
    out[skip:, skip:] = grid
    return out


#: the bias row stride is padded to a multiple of this (what CUDA's memory-efficient SDPA kernel needs)
_ALIGN = 16


def _padded(length: int) -> int:
    return -(-length // _ALIGN) * _ALIGN


@functools.lru_cache(maxsize=64)
def _flat_bucket_index(length: int, device: torch.device) -> torch.Tensor:
    """Index into a ``(L·NUM_BUCKETS)`` row-flattened table: entry (i, j) → ``i·NUM_BUCKETS + bucket(i, j)``, with
    each row padded to :func:`_padded` columns (pad entries repeat bucket 0 and are sliced away).

    The padding lets the bias be a strided view whose rows are 16-aligned, so fused SDPA uses it as is instead of
    copying it into an aligned buffer in every block. Cached per (L, device): pretraining sees L = 50 and
    fine-tuning L = 197, so the cache stays tiny.
    """
    ids = bucket_ids(length, device)
    ids = torch.cat([ids, ids.new_zeros(length, _padded(length) - length)], dim=1)  # (L, L_pad)
    offset = torch.arange(length, device=device)[:, None] * NUM_BUCKETS
    return (ids + offset).reshape(-1)


def normalise_lookup_table(t: torch.Tensor) -> torch.Tensor:
    """Upstream's ``(1, head_dim, 50)`` shared-head table → our ``(head_dim, 50)``; other shapes pass through."""
    return t[0] if t.ndim == 3 and t.shape[0] == 1 else t


class RPEKeys(nn.Module):
    """Contextual iRPE on keys: ``bias[b, h, i, j] = q[b, h, i] · W[:, bucket(i, j)]`` (W zero-initialised)."""

    def __init__(self, head_dim: int) -> None:
        super().__init__()
        self.head_dim = head_dim
        self.lookup_table_weight = nn.Parameter(torch.zeros(head_dim, NUM_BUCKETS))

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        """``q`` (B, H, L, head_dim), unscaled → attention bias (B, H, L, L) in q's dtype (a strided view)."""
        b, h, length, _ = q.shape
        table = torch.matmul(q, self.lookup_table_weight.to(q.dtype))  # (B, H, L, 50)
        flat = _flat_bucket_index(length, q.device)
        bias = table.reshape(b, h, length * NUM_BUCKETS).index_select(-1, flat)  # (B, H, L·L_pad)
        return bias.view(b, h, length, _padded(length))[..., :length]  # (B, H, L, L), 16-aligned row stride

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[no-untyped-def]
        key = prefix + "lookup_table_weight"
        if key in state_dict:
            state_dict[key] = normalise_lookup_table(state_dict[key])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return f"head_dim={self.head_dim}, num_buckets={NUM_BUCKETS}"
