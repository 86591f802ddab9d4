"""Multi-head self-attention with iRPE on keys, and the pre-norm ViT block built on it (timm parameter names).

Logits are ``q·kᵀ·head_dim^-0.5 + q·W[:, bucket]`` where the iRPE term uses the **unscaled** q (as the SAR-JEPA
reference does; upstream iRPE scales q first). The iRPE term is computed as a float additive bias and handed to
``torch.nn.functional.scaled_dot_product_attention``, which applies the ``head_dim^-0.5`` scale to q·kᵀ only —
so the fused kernels (memory-efficient on CUDA, the CPU kernels otherwise) run without a custom CUDA op.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from timm.layers import DropPath, Mlp
from torch import nn

from sardata.models.layers.irpe import RPEKeys

#: LayerNorm of every SAR ViT block (``sar-jepa.md`` §1)
norm_layer = partial(nn.LayerNorm, eps=1e-6)


class Attention(nn.Module):
    """Self-attention; ``rpe=False`` drops the iRPE table (plain ViT attention through the same fused path)."""

    def __init__(self, dim: int, num_heads: int, *, qkv_bias: bool = True, rpe: bool = True) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"embed dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.rpe_k = RPEKeys(self.head_dim) if rpe else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L, C) → (B, L, C); L = skip + side² tokens (see :func:`~sardata.models.layers.irpe.bucket_ids`)."""
        b, length, c = x.shape
        qkv = self.qkv(x).reshape(b, length, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # each (B, H, L, hd)
        bias = self.rpe_k(q) if self.rpe_k is not None else None  # (B, H, L, L), unscaled q
        x = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)  # (B, H, L, hd)
        return self.proj(x.transpose(1, 2).reshape(b, length, c))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))`` (GELU MLP, qkv bias).

    ``drop_path > 0`` uses timm's ``DropPath``, which draws from torch's default RNG; every SAR-JEPA recipe uses
    0 (``sar-jepa.md`` §1, §3.5), so no step of the paper protocol touches the global RNG.
    """

    def __init__(
        self, dim: int, num_heads: int, *, mlp_ratio: float = 4.0, drop_path: float = 0.0, rpe: bool = True
    ) -> None:
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = Attention(dim, num_heads, qkv_bias=True, rpe=rpe)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=nn.GELU)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


def init_weights_xavier(module: nn.Module) -> None:
    """MAE/SAR-JEPA init for ``Module.apply``: Linear Xavier-uniform with bias 0, LayerNorm 1/0."""
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
