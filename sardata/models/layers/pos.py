"""Fixed 2-D sin-cos absolute positions (MAE layout), shared by MAE pretraining and the downstream ViT that keeps
them when fine-tuning an MAE checkpoint (issue 17: an MAE encoder fine-tuned without the positions it was
pretrained with is not a fair arm)."""

from __future__ import annotations

import torch

from sardata.errors import ConfigError


def sincos_pos_embed_2d(dim: int, grid: int, cls_token: bool = True) -> torch.Tensor:
    """``(grid² + cls, dim)`` float32 fixed 2-D sin-cos positions (MAE layout: first half of the channels encode
    the column, second half the row; each half is [sin | cos] over geometric frequencies 1/10000^(2i/(dim/2)));
    the cls row is zeros."""
    if dim % 4:
        raise ConfigError(f"sin-cos positions need an embed dim divisible by 4, got {dim}")
    omega = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim / 4))  # (D/4,)
    coords = torch.arange(grid, dtype=torch.float64)
    rows, cols = torch.meshgrid(coords, coords, indexing="ij")

    def embed(pos: torch.Tensor) -> torch.Tensor:
        out = pos.reshape(-1)[:, None] * omega[None]  # (G², D/4)
        return torch.cat([out.sin(), out.cos()], dim=1)  # (G², D/2)

    table = torch.cat([embed(cols), embed(rows)], dim=1)  # (G², D)
    if cls_token:
        table = torch.cat([torch.zeros(1, dim, dtype=table.dtype), table], dim=0)
    return table.float()
