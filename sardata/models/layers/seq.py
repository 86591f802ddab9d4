"""1-D sequence pieces shared by the radar models: patching, patch validity, TOA positional embedding, and a
pre-norm transformer block with a key padding mask (``radar.md`` §3.5–§3.7, §4.1).

Tensor layout: a frame is ``x`` (N, C, S) with C = 2 channels and S = 512 samples (IQ) or pulses (PDW);
``valid`` (N, S) bool marks real samples (False = zero padding). Patches are S / patch_len consecutive samples;
a token holds the patch's values **channel-major** (all samples of ch0, then all of ch1), so (N, 2, 512) →
(N, 64, 16) and :func:`unpatchify_1d` inverts it exactly.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from sardata.errors import ConfigError

#: LayerNorm of every radar block (timm / MAE convention)
LN_EPS = 1e-6

PE = Literal["toa", "index", "none"]


def patchify_1d(x: torch.Tensor, patch_len: int) -> torch.Tensor:
    """(N, C, S) → (N, S / patch_len, C·patch_len), each token channel-major."""
    n, c, s = x.shape
    if s % patch_len:
        raise ConfigError(f"sequence length {s} is not a multiple of patch_len {patch_len}")
    p = s // patch_len
    return x.reshape(n, c, p, patch_len).permute(0, 2, 1, 3).reshape(n, p, c * patch_len)


def unpatchify_1d(tokens: torch.Tensor, in_chans: int) -> torch.Tensor:
    """(N, P, C·L) → (N, C, P·L); the inverse of :func:`patchify_1d`."""
    n, p, d = tokens.shape
    length = d // in_chans
    return tokens.reshape(n, p, in_chans, length).permute(0, 2, 1, 3).reshape(n, in_chans, p * length)


def patch_valid(valid: torch.Tensor, patch_len: int) -> torch.Tensor:
    """(N, S) bool sample mask → (N, S / patch_len) bool: a patch counts unless **every** sample in it is padding
    (``radar.md`` §3.5: only fully padded patches leave attention, the dropped-position set and the loss)."""
    n, s = valid.shape
    if s % patch_len:
        raise ConfigError(f"valid mask length {s} is not a multiple of patch_len {patch_len}")
    return valid.reshape(n, s // patch_len, patch_len).any(dim=-1)


def toa_pos_embed(tau: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal PE at real-valued positions: ``p(i, 2m) = sin(τ_i / 10000^{2m/D})``, ``p(i, 2m+1) = cos(…)``.

    ``tau`` (…, P) → (…, P, D). With τ_i = i this is the usual 1-D sin/cos table (interleaved, not concatenated),
    so the "index" ablation and the TOA PE differ only in τ (``radar.md`` §3.7). Computed in float32 for
    accuracy whatever the autocast dtype.
    """
    if dim % 2:
        raise ConfigError(f"TOA positional embedding needs an even embed_dim, got {dim}")
    freq = torch.pow(10000.0, -torch.arange(0, dim, 2, device=tau.device, dtype=torch.float32) / dim)  # (D/2,)
    angle = tau.to(torch.float32)[..., None] * freq  # (…, P, D/2)
    return torch.stack([angle.sin(), angle.cos()], dim=-1).flatten(-2)  # (…, P, D) interleaved sin, cos


def positions(tau: torch.Tensor, kind: PE, dim: int) -> torch.Tensor:
    """The (N, P, D) PE of a batch: TOA-warped (``toa``), patch index (``index``, ablation) or zeros (``none``)."""
    if kind == "toa":
        return toa_pos_embed(tau, dim)
    index = torch.arange(tau.shape[-1], device=tau.device, dtype=torch.float32).expand(tau.shape)
    if kind == "index":
        return toa_pos_embed(index, dim)
    if kind == "none":
        return torch.zeros(*tau.shape, dim, device=tau.device)
    raise ConfigError(f"pe must be 'toa', 'index' or 'none', got {kind!r}")


def unpack_batch(
    batch: dict[str, torch.Tensor] | torch.Tensor, num_patches: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(x, tau, valid)`` from a loader batch, or from a bare ``x`` (τ = patch index, nothing padded) so a
    classifier can also be called on a tensor."""
    if isinstance(batch, torch.Tensor):
        x = batch
        n, s = x.shape[0], x.shape[-1]
        tau = torch.arange(num_patches, device=x.device, dtype=torch.float32).expand(n, num_patches)
        return x, tau, torch.ones(n, s, dtype=torch.bool, device=x.device)
    try:
        return batch["x"], batch["tau"], batch["valid"].to(torch.bool)
    except KeyError as exc:
        raise ConfigError(f"radar batch lacks key {exc}; expected 'x' (N,2,512), 'tau' (N,64), 'valid'") from None


def round_half_up(values: torch.Tensor) -> torch.Tensor:
    """``floor(v + 0.5)`` as int64: M = round(α·n) without Python's banker's rounding (round(4.5) = 5, not 4)."""
    return torch.floor(values + 0.5).to(torch.int64)


def random_subset(candidates: torch.Tensor, counts: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """(N, P) bool mask with exactly ``counts[n]`` True entries per row, drawn uniformly among ``candidates[n]``.

    Uniform noise per token, non-candidates pushed to the end, then the first ``counts`` ranks: a per-sample
    uniform subset from the passed generator only. ``counts`` must not exceed the candidates per row.
    """
    noise = torch.rand(candidates.shape, generator=generator, device=candidates.device)  # (N, P) in [0, 1)
    noise = noise.masked_fill(~candidates, 2.0)
    rank = noise.argsort(dim=1).argsort(dim=1)  # (N, P) rank of each token
    return rank < counts[:, None]


@contextlib.contextmanager
def forked_rng(seed: int | None, device: torch.device | str | None = None) -> Iterator[None]:
    """Run parameter initialisation from ``seed`` without leaving a trace on torch's global RNG.

    ``nn.Module`` constructors and peft draw from the default generator; forking it and seeding inside makes
    model init a pure function of ``seed`` while the caller's RNG state is restored afterwards. ``seed=None``
    draws from the caller's global RNG as it stands (the trainers seed it around model construction).
    :func:`sardata.train.common.seeded` is this with the seed derived from a run seed and construction-site ids.
    """
    if seed is None:
        yield
        return
    device = torch.device(device) if device is not None else torch.device("cpu")
    cuda = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        yield


class MaskedAttention(nn.Module):
    """Multi-head self-attention through ``F.scaled_dot_product_attention`` with a boolean key mask.

    The 1-D radar attention (padding masked out); the 2-D SAR ViT's iRPE attention is
    :class:`sardata.models.layers.attention.Attention`.

    Plain Linears named ``qkv``/``proj`` (or ``q``/``k``/``v``/``proj`` with ``fused=False``, the LoRA-paper
    ``q|v`` arm) so peft can target them by name (``radar.md`` §4.3).
    """

    def __init__(self, dim: int, num_heads: int, *, fused: bool = True) -> None:
        super().__init__()
        if dim % num_heads:
            raise ConfigError(f"embed_dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads, self.head_dim, self.fused = num_heads, dim // num_heads, fused
        if fused:
            self.qkv = nn.Linear(dim, 3 * dim)
        else:
            self.q, self.k, self.v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(N, T, D) → (N, T, D); ``key_mask`` (N, T) bool, True = may be attended to (≥ 1 True per row)."""
        n, t, d = x.shape
        if self.fused:
            qkv = self.qkv(x).reshape(n, t, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
            q, k, v = qkv.unbind(0)  # each (N, H, T, hd)
        else:
            q, k, v = (
                m(x).reshape(n, t, self.num_heads, self.head_dim).transpose(1, 2) for m in (self.q, self.k, self.v)
            )
        mask = key_mask[:, None, None, :] if key_mask is not None else None  # (N, 1, 1, T) broadcast over H, queries
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (N, H, T, hd)
        return self.proj(out.transpose(1, 2).reshape(n, t, d))


class Mlp(nn.Module):
    """``fc2(GELU(fc1(x)))``; dropout 0 (``radar.md`` §4.1)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class MaskedBlock(nn.Module):
    """Pre-LN transformer block: ``x + attn(norm1(x))`` then ``x + mlp(norm2(x))``, keys masked by ``key_mask``."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, *, fused_qkv: bool = True) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = MaskedAttention(dim, num_heads, fused=fused_qkv)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), key_mask)
        return x + self.mlp(self.norm2(x))


def init_weights(module: nn.Module) -> None:
    """MAE init for ``Module.apply``: Linear Xavier-uniform with bias 0, LayerNorm 1/0."""
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm) and module.elementwise_affine:
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
