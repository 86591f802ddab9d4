"""The pretraining-only parts of RadarPos (``radar.md`` §4.2): the light decoder, soft targets, cls weights, loss.

Kept apart from :mod:`sardata.models.radarpos` so the classifier module holds only what fine-tuning keeps (the
trunk and the head): nothing here is ever built by ``RadarPosClassifier``, and the loss helpers are importable
without the model classes. :mod:`sardata.models.radarpos` re-exports every public name for callers that used it.

Decoder decisions (the paper says only "Transformer encoder-decoder blocks … during fine-tuning, only the
Transformer encoder is adapted", §2.1; the spec fixes depth 2 and the encoder's width):

* The blocks are the encoder's own :class:`~sardata.models.layers.seq.MaskedBlock` (pre-LN, explicit ``nn.Linear``
  named ``decoder.blocks.{i}.attn.qkv|proj`` / ``mlp.fc1|fc2``), same heads and MLP ratio, no input embedding
  (same width) and no final norm: the projector's LayerNorm follows directly (§4.2.4), as MAE's ``decoder_norm``
  would duplicate it.
* No positional embedding is added in the decoder: positions are the prediction target, and a PE here would hand
  the dropped positions back to the head.
* The decoder attends with the same key mask as the encoder (valid tokens, minus the MP3 content-removed ones),
  cls included, so removed context stays removed all the way to the logits.
* The cls weights C come from the encoder output z (§4.2.6 names "the final LayerNorm output"), not from the
  decoder: the decoder is a pretext head, the representation that fine-tuning keeps is z.
* ``depth = 0`` is the identity (the earlier projector-on-encoder layout, an ablation).

Peft's string ``target_modules`` is ``re.fullmatch``-ed against qualified names, so the LoRA regex
``blocks\\.\\d+\\.attn\\.(qkv|proj)`` never matches ``decoder.blocks.…``; fine-tuning drops the decoder anyway.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sardata.errors import ConfigError
from sardata.models.layers.seq import MaskedBlock

#: state_dict prefixes that only the pretraining model holds; a classifier ignores them when loading
PRETRAIN_ONLY_PREFIXES = ("mask_pos_token", "projector.", "decoder.")


class PositionDecoder(nn.Module):
    """``depth`` pre-LN blocks of the encoder's width between the encoder output and the position projector."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, depth: int = 2, *, fused_qkv: bool = True) -> None:
        super().__init__()
        if depth < 0:
            raise ConfigError(f"decoder_depth must be >= 0, got {depth}")
        self.depth = depth
        self.blocks = nn.ModuleList(MaskedBlock(dim, num_heads, mlp_ratio, fused_qkv=fused_qkv) for _ in range(depth))

    def forward(self, z: torch.Tensor, key_valid: torch.Tensor) -> torch.Tensor:
        """(N, 1 + P, D) encoder output, cls first → same shape; ``key_valid`` (N, P) patch keys (cls always)."""
        keys = torch.cat([key_valid.new_ones(z.shape[0], 1), key_valid], dim=1)
        for block in self.blocks:
            z = block(z, keys)
        return z


def smoothing_matrix(num_patches: int, sigma: float, device: torch.device | str | None = None) -> torch.Tensor:
    """(P, P) soft targets ``q[i, j] = w(i, j) / Σ_j' w(i, j')``, ``w = exp(−(i − j)² / σ²)``.

    Row i is the target distribution of the token whose true patch index is i; every row sums to 1 (true row
    normalisation, ``radar.md`` §4.2.5). ``sigma = 0`` gives the identity (hard targets).
    """
    idx = torch.arange(num_patches, device=device, dtype=torch.float32)
    if sigma <= 0:
        return torch.eye(num_patches, device=device)
    logw = -((idx[:, None] - idx[None, :]) ** 2) / sigma**2  # (P, P)
    return torch.softmax(logw, dim=1)  # exp / row sum, computed stably


def cls_weights(z: torch.Tensor, valid: torch.Tensor, temperature: float) -> torch.Tensor:
    """(N, P) ``C = softmax_j(cos(z_cls, z_j) / T)`` over the valid tokens j, without gradient.

    ``z`` (N, 1 + P, D) is the final-LayerNorm output with cls first; invalid tokens get weight 0 (a sample with no
    valid token gets an all-zero row).
    """
    z = z.detach()
    cos = F.cosine_similarity(z[:, :1], z[:, 1:], dim=-1)  # (N, P)
    c = (cos / temperature).masked_fill(~valid, float("-inf")).softmax(dim=1)
    return torch.where(valid, c, torch.zeros_like(c))


def tau_targets(tau: torch.Tensor, sigma: float) -> torch.Tensor:
    """(N, P, P) soft targets of ``smooth_dist="tau"``: ``w(i, j) = exp(−(τ_i − j)² / σ²)``, row-normalised.

    The target of token i is centred on its (window-normalised, real-valued) τ_i instead of its index i, so a
    warped pulse train gets warped targets; ``sigma = 0`` puts all mass on the patch index nearest to τ_i.
    """
    idx = torch.arange(tau.shape[-1], device=tau.device, dtype=torch.float32)
    d2 = (tau.float()[..., :, None] - idx) ** 2  # (N, P, P)
    if sigma <= 0:
        return F.one_hot(d2.argmin(dim=-1), tau.shape[-1]).float()
    return torch.softmax(-d2 / sigma**2, dim=-1)


def position_loss(
    logits: torch.Tensor, targets: torch.Tensor, masked: torch.Tensor, weights: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``L = Σ_{j∈M} C_j·CE(q_j, softmax ℓ_j) / Σ_{j∈M} C_j`` per sample, averaged over samples with M > 0.

    Args:
        logits: (N, P, P) position logits ℓ, token j's row over the P patch indices.
        targets: (P, P) smoothing matrix q (row j = target of the token at index j), or (N, P, P) per sample.
        masked: (N, P) bool, the position-dropped set M.
        weights: (N, P) C (no gradient); renormalised over M here.

    Returns the scalar loss and the per-token cross-entropy (N, P).
    """
    logp = logits.float().log_softmax(dim=-1)  # (N, P, P)
    q = targets if targets.ndim == 3 else targets[None]  # (N | 1, P, P)
    ce = -(q * logp).sum(dim=-1)  # (N, P)
    cm = weights * masked  # (N, P) C restricted to M
    denom = cm.sum(dim=1)  # (N,)
    has = masked.any(dim=1)
    per_sample = (cm * ce).sum(dim=1) / denom.clamp_min(torch.finfo(denom.dtype).tiny)  # 0 where M is empty
    # no host sync: a batch without any M gives 0 with the graph intact (DDP sees every parameter used)
    return (per_sample * has).sum() / has.sum().clamp_min(1), ce


def encoder_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A pretraining state_dict without its pretraining-only entries (``mask_pos_token``, ``projector.*``,
    ``decoder.*``): what a classifier loads, so a decoder never reaches a fine-tuned model."""
    return {k: v for k, v in state.items() if not k.startswith(PRETRAIN_ONLY_PREFIXES)}
