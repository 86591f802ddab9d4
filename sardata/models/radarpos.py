"""RadarPos: position-aware self-supervised pretraining for radar pulse data (``radar.md`` §4).

A 1-D ViT over 64 patches of 2×8 values. Pretraining hides the TOA positional embedding of M = round(α·n_valid)
valid tokens per sample (their PE rows become a learnable mask-position token) and asks a projector to classify
each masked token's patch index against Gaussian-smoothed targets, weighted by the stop-gradient cls attention
``C = softmax_j(cos(z_cls, z_j)/T)`` restricted to the masked set (§4.2). A light Transformer decoder
(``decoder_depth`` blocks, default 2, the encoder's width) sits between the encoder output and the projector
(§4.2.4; its decisions in :mod:`sardata.models.radarpos_pretext`, which also holds the loss helpers). Fine-tuning
drops decoder and projector and puts a LayerNorm + Linear head on the cls token (§4.3; LoRA in
:mod:`sardata.models.layers.lora`).

Both models share the trunk parameter names (``patch_embed``, ``cls_token``, ``blocks.{i}.…``, ``norm``), so a
pretraining state_dict loads into the classifier with ``mask_pos_token``, ``projector.*`` and ``decoder.*``
unexpected and ``head.*`` missing, nothing else; :func:`encoder_state` strips the first three before loading. The
classifier never builds a decoder, so a fine-tuned model holds no decoder parameter whatever it loaded.

Decisions where the spec is silent (all flags):

* M and the content-removal count use round-half-up (``floor(α·n + 0.5)``): round(0.75·6) = 5, not Python's 4.
* A sample with M = 0 (tiny n_valid, small α) contributes nothing; the batch loss is the mean over samples with
  M > 0 of the per-sample weighted loss (§4.2.7 is a per-sample formula).
* ``smooth_dist="tau"`` (spec flag) centres token i's target on τ_i instead of i (:func:`tau_targets`).
* Targets cover all 64 patch indices even for padded samples (spec: "classes = 64 patch indices"); ``sigma = 0``
  gives one-hot targets (the "σ → 0" ablation). ``sigma`` is read at every forward, so a trainer may anneal it
  (``sigma_decay="linear"``) by assigning ``model.sigma``.
* ``content_mask_ratio = η`` (MP3-style context removal): round(η·n_valid) valid tokens, drawn after the position
  mask from the same generator, are removed from the attention **keys** of every layer; they are still queries,
  so their positions are still predicted.
* ``decoder_depth`` (default 2; 0 = projector on the encoder output, the pre-2026-12-04 layout) is a
  constructor flag of the pretraining model only: it is not an :data:`ENCODER_KEYS` entry, so a classifier built
  from a checkpoint's overrides never sees it.
* ``input_norm="robust"`` (default ``"fixed"``, the spec's input) rescales each input channel by a median/MAD
  calibrated on the first batch and kept as buffers (``input_scale.*``), so a checkpoint carries the scale its
  encoder learnt on (issue 16: the fixed ranges squash confusable emitters; RESULTS.md §2.3). It is an
  :data:`ENCODER_KEYS` entry, so a classifier built from a checkpoint inherits it.
* ``weighting_pass="extra"`` computes C from a second no-grad forward with every PE present (DropPos style);
  default ``"same"`` uses the training pass.
* Parameter init is MAE's (Xavier Linear, N(0, 0.02) tokens). ``seed=None`` (default) draws from torch's global
  RNG, which the trainers seed around model construction (``sardata.train.common.seeded``); an integer ``seed``
  makes the build a pure function of it through a forked RNG (the global state is left untouched).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Literal

import torch
from torch import nn

from sardata.errors import ConfigError
from sardata.models._registry import register_model
from sardata.models.layers.heads import FreezableEncoder
from sardata.models.layers.inputs import RobustInputScale, check_radar_input_norm
from sardata.models.layers.seq import (
    LN_EPS,
    PE,
    MaskedBlock,
    forked_rng,
    init_weights,
    patch_valid,
    patchify_1d,
    positions,
    random_subset,
    round_half_up,
    unpack_batch,
)
from sardata.models.radarpos_pretext import (
    PRETRAIN_ONLY_PREFIXES,
    PositionDecoder,
    cls_weights,
    encoder_state,
    position_loss,
    smoothing_matrix,
    tau_targets,
)

__all__ = ["BASE", "ENCODER_KEYS", "PRETRAIN_ONLY_PREFIXES", "TINY", "HeadMixin", "RadarEncoder",
           "RadarPosClassifier", "RadarPosPretrain", "check_head", "cls_weights", "encoder_overrides",
           "encoder_state", "position_loss", "smoothing_matrix", "tau_targets"]  # fmt: skip

Batch = dict[str, torch.Tensor]

#: constructor keywords of the shared trunk: filter a pretraining preset's overrides with
#: :func:`encoder_overrides` to build the matching classifier
ENCODER_KEYS = ("embed_dim", "depth", "num_heads", "mlp_ratio", "num_patches", "patch_len", "in_chans", "pe",
                "qkv", "seed", "input_norm")  # fmt: skip

BASE: dict[str, Any] = {"embed_dim": 512, "depth": 6, "num_heads": 8, "mlp_ratio": 4.0}
TINY: dict[str, Any] = {"embed_dim": 64, "depth": 2, "num_heads": 2, "mlp_ratio": 2.0}


def encoder_overrides(overrides: dict[str, Any]) -> dict[str, Any]:
    """The trunk keywords of a model's overrides (pretraining-only keys dropped)."""
    return {k: v for k, v in overrides.items() if k in ENCODER_KEYS}


class RadarEncoder(nn.Module):
    """Trunk shared by the RadarPos pretraining model, its classifier and the MAE-1D baseline.

    ``patch_embed`` Linear(C·L → D), learnable ``cls_token`` (no PE), ``blocks`` (pre-LN), final ``norm``.
    ``qkv="separate"`` builds ``attn.q/k/v`` instead of the fused ``attn.qkv`` (LoRA ``q|v`` arm).
    """

    modality = "radar"

    def __init__(
        self,
        *,
        embed_dim: int = 512,
        depth: int = 6,
        num_heads: int = 8,
        mlp_ratio: float = 4.0,
        num_patches: int = 64,
        patch_len: int = 8,
        in_chans: int = 2,
        pe: PE = "toa",
        qkv: Literal["fused", "separate"] = "fused",
        seed: int | None = None,
        input_norm: str = "fixed",
    ) -> None:
        super().__init__()
        self.input_norm = check_radar_input_norm(input_norm)
        if pe not in ("toa", "index", "none"):
            raise ConfigError(f"pe must be 'toa', 'index' or 'none', got {pe!r}")
        if qkv not in ("fused", "separate"):
            raise ConfigError(f"qkv must be 'fused' or 'separate', got {qkv!r}")
        self.embed_dim = self.num_features = embed_dim
        self.num_patches, self.patch_len, self.in_chans, self.pe, self.seed = num_patches, patch_len, in_chans, pe, seed
        self.num_heads, self.mlp_ratio, self.qkv = num_heads, mlp_ratio, qkv  # a pretext decoder reuses them
        self.patch_embed = nn.Linear(in_chans * patch_len, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.blocks = nn.ModuleList(
            MaskedBlock(embed_dim, num_heads, mlp_ratio, fused_qkv=qkv == "fused") for _ in range(depth)
        )
        self.norm = nn.LayerNorm(embed_dim, eps=LN_EPS)
        if input_norm == "robust":  # calibrated buffers, saved with the checkpoint (layers.inputs)
            self.input_scale = RobustInputScale(in_chans)

    def _init_trunk(self) -> None:
        self.apply(init_weights)
        nn.init.normal_(self.cls_token, std=0.02)

    def check_batch(self, x: torch.Tensor, tau: torch.Tensor, valid: torch.Tensor) -> None:
        """Shapes against the configuration; a mismatch names the expected layout (and the likely fix)."""
        n, s = x.shape[0], self.num_patches * self.patch_len
        if x.shape != (n, self.in_chans, s):
            raise ConfigError(
                f"radar input x has shape {tuple(x.shape)}, model expects (N, {self.in_chans}, {s}); "
                "check the loader's channels= / in_chans override"
            )
        if tau.shape != (n, self.num_patches):
            raise ConfigError(f"tau has shape {tuple(tau.shape)}, model expects (N, {self.num_patches})")
        if valid.shape != (n, s):
            raise ConfigError(f"valid has shape {tuple(valid.shape)}, model expects (N, {s})")

    def embed(self, batch: Batch | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Patch tokens (N, P, D), their PE (N, P, D) and patch validity (N, P)."""
        x, tau, valid = unpack_batch(batch, self.num_patches)
        self.check_batch(x, tau, valid)
        if self.input_norm == "robust":
            x = self.input_scale(x, valid)
        tokens = self.patch_embed(patchify_1d(x, self.patch_len))  # (N, P, D)
        pe = positions(tau, self.pe, self.embed_dim).to(tokens.dtype)  # (N, P, D)
        return tokens, pe, patch_valid(valid, self.patch_len)

    def encode(self, h: torch.Tensor, key_valid: torch.Tensor) -> torch.Tensor:
        """(N, P, D) tokens with PE → (N, 1 + P, D) final-LayerNorm output, cls first; ``key_valid`` (N, P) says
        which patch tokens may be attended to (cls always may)."""
        n = h.shape[0]
        h = torch.cat([self.cls_token.expand(n, -1, -1).to(h.dtype), h], dim=1)  # (N, 1 + P, D)
        keys = torch.cat([key_valid.new_ones(n, 1), key_valid], dim=1)  # (N, 1 + P)
        for block in self.blocks:
            h = block(h, keys)
        return self.norm(h)


class RadarPosPretrain(RadarEncoder):
    """RadarPos pretraining model (``task="pretrain"``): :meth:`forward_loss` follows ``radar.md`` §4.2."""

    task = "pretrain"

    def __init__(
        self,
        *,
        alpha_pos: float = 0.75,
        sigma: float = 0.9,
        temperature: float = 0.95,
        content_mask_ratio: float = 0.0,
        weighting: Literal["attention", "uniform"] = "attention",
        weighting_pass: Literal["same", "extra"] = "same",
        smooth_dist: Literal["index", "tau"] = "index",
        projector: Literal["linear", "mlp"] = "linear",
        decoder_depth: int = 2,
        **trunk: Any,
    ) -> None:
        if not 0.0 < alpha_pos <= 1.0:
            raise ConfigError(f"alpha_pos must be in (0, 1], got {alpha_pos}")
        if not 0.0 <= content_mask_ratio < 1.0:
            raise ConfigError(f"content_mask_ratio must be in [0, 1), got {content_mask_ratio}")
        if sigma < 0 or temperature <= 0:
            raise ConfigError(f"need sigma >= 0 and temperature > 0, got {sigma}, {temperature}")
        if weighting not in ("attention", "uniform") or weighting_pass not in ("same", "extra"):
            raise ConfigError(f"weighting {weighting!r} / weighting_pass {weighting_pass!r} not recognised")
        if smooth_dist not in ("index", "tau"):
            raise ConfigError(f"smooth_dist must be 'index' or 'tau', got {smooth_dist!r}")
        if projector not in ("linear", "mlp"):
            raise ConfigError(f"projector must be 'linear' or 'mlp', got {projector!r}")
        with forked_rng(trunk.get("seed")):
            super().__init__(**trunk)
            d, p = self.embed_dim, self.num_patches
            self.alpha_pos, self.sigma, self.temperature = alpha_pos, sigma, temperature
            self.content_mask_ratio, self.weighting, self.weighting_pass = content_mask_ratio, weighting, weighting_pass
            self.smooth_dist = smooth_dist
            self.mask_pos_token = nn.Parameter(torch.zeros(1, 1, d))
            self.decoder = PositionDecoder(d, self.num_heads, self.mlp_ratio, decoder_depth,
                                           fused_qkv=self.qkv == "fused")  # fmt: skip
            layers: list[tuple[str, nn.Module]] = [("norm", nn.LayerNorm(d, eps=LN_EPS))]
            if projector == "mlp":
                layers += [("fc1", nn.Linear(d, d)), ("act", nn.GELU())]
            self.projector = nn.Sequential(OrderedDict([*layers, ("fc", nn.Linear(d, p))]))
            self._init_trunk()
            nn.init.normal_(self.mask_pos_token, std=0.02)

    def forward_outputs(self, batch: Batch, generator: torch.Generator | None) -> dict[str, torch.Tensor]:
        """One pretraining pass: ``logits`` (N, P, P), ``z`` (N, 1 + P, D), ``masked`` (N, P) = M,
        ``valid`` (N, P) patch validity, ``weights`` (N, P) C over valid tokens (no gradient)."""
        tokens, pe, valid = self.embed(batch)
        n_valid = valid.sum(dim=1)  # (N,)
        masked = random_subset(valid, round_half_up(self.alpha_pos * n_valid), generator)  # (N, P)
        keys = valid
        if self.content_mask_ratio > 0:
            removed = random_subset(valid, round_half_up(self.content_mask_ratio * n_valid), generator)
            keys = valid & ~removed
        pe_used = torch.where(masked[..., None], self.mask_pos_token.to(pe.dtype), pe)  # (N, P, D)
        z = self.encode(tokens + pe_used, keys)  # (N, 1 + P, D)
        logits = self.projector(self.decoder(z, keys)[:, 1:])  # (N, P, P)
        if self.weighting == "uniform":
            weights = valid.float() / n_valid.clamp_min(1)[:, None]
        elif self.weighting_pass == "extra":
            with torch.no_grad():
                weights = cls_weights(self.encode(tokens + pe, valid), valid, self.temperature)
        else:
            weights = cls_weights(z, valid, self.temperature)
        return {"logits": logits, "z": z, "masked": masked, "valid": valid, "weights": weights}

    def forward_loss(self, batch: Batch, generator: torch.Generator | None) -> dict[str, torch.Tensor]:
        """``{"loss", "top1", "top1_pm1", "c_entropy"}``; accuracies on M, entropy of C over valid tokens
        (diagnostics are detached 0-d tensors)."""
        out = self.forward_outputs(batch, generator)
        logits, masked, weights = out["logits"], out["masked"], out["weights"]
        if self.smooth_dist == "tau":
            _, tau, _ = unpack_batch(batch, self.num_patches)
            q = tau_targets(tau, self.sigma)  # (N, P, P)
        else:
            q = smoothing_matrix(self.num_patches, self.sigma, logits.device)  # (P, P)
        loss, _ = position_loss(logits, q, masked, weights)
        with torch.no_grad():
            true = torch.arange(self.num_patches, device=logits.device)
            err = (logits.argmax(dim=-1) - true).abs()  # (N, P)
            n_m = masked.sum().clamp_min(1)
            ent = -(weights * weights.clamp_min(1e-12).log()).sum(dim=1).mean()
            stats = {
                "top1": ((err == 0) & masked).sum() / n_m,
                "top1_pm1": ((err <= 1) & masked).sum() / n_m,
                "c_entropy": ent,
            }
        return {"loss": loss, **{k: v.float() for k, v in stats.items()}}

    def forward(self, batch: Batch, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Same as :meth:`forward_loss` (so DDP wrappers can call the module)."""
        return self.forward_loss(batch, generator)


class HeadMixin(FreezableEncoder):
    """Classifier head protocol shared with the SAR family (``vit_irpe``): ``"linear"`` freezes the encoder and
    keeps it in eval mode, ``"finetune"`` makes everything trainable again. Subclasses build ``self.head``."""

    def _install_head(self, norm: nn.Module, num_classes: int, kind: str, device: torch.device) -> None:
        """``head = Sequential(norm, fc)``; ``fc`` trunc-normal weight (2e-5 finetune, 0.01 linear, as MAE and
        the SAR family), bias 0; then freeze/unfreeze by ``kind``."""
        d = self.num_features
        with forked_rng(self.seed, device):
            fc = nn.Linear(d, num_classes)
            nn.init.trunc_normal_(fc.weight, std=2e-5 if kind == "finetune" else 0.01)
            nn.init.zeros_(fc.bias)
        self.head = nn.Sequential(OrderedDict([("norm", norm), ("fc", fc)])).to(device)
        self.num_classes, self.head_kind = num_classes, kind
        if kind == "linear":
            self.freeze_encoder()
        else:
            self.unfreeze_encoder()


def check_head(num_classes: int, kind: str) -> None:
    if kind not in ("finetune", "linear"):
        raise ConfigError(f"head kind must be 'finetune' or 'linear', got {kind!r}")
    if num_classes < 1:
        raise ConfigError(f"num_classes must be >= 1, got {num_classes}")


class RadarPosClassifier(HeadMixin, RadarEncoder):
    """Fine-tuning model (``task="classify"``): every PE present, no projector; ``head`` on the pooled feature.

    ``pool="cls"`` (paper) takes the cls output; ``pool="mean"`` averages the valid patch tokens.
    """

    task = "classify"

    def __init__(
        self, *, num_classes: int = 7, pool: Literal["cls", "mean"] = "cls", head: str = "finetune", **trunk: Any
    ) -> None:
        if pool not in ("cls", "mean"):
            raise ConfigError(f"pool must be 'cls' or 'mean', got {pool!r}")
        with forked_rng(trunk.get("seed")):
            super().__init__(**trunk)
            self.pool = pool
            self._init_trunk()
        self.reset_classifier(num_classes, head)

    def reset_classifier(self, num_classes: int, kind: str = "finetune") -> None:
        """Install a fresh ``head = Sequential(norm, fc)``; call it before ``layers.lora.apply_lora``.

        ``"finetune"``: LayerNorm + Linear on the pooled feature (``radar.md`` §4.3), every parameter trainable.
        ``"linear"``: BatchNorm1d without affine + Linear (MAE linear probe, as the SAR family), encoder frozen
        and kept in eval mode.
        """
        check_head(num_classes, kind)
        d, device = self.num_features, self.cls_token.device
        with forked_rng(self.seed, device):
            norm = nn.LayerNorm(d, eps=LN_EPS) if kind == "finetune" else nn.BatchNorm1d(d, affine=False, eps=1e-6)
        self._install_head(norm, num_classes, kind, device)

    def forward_features(self, batch: Batch | torch.Tensor) -> torch.Tensor:
        """(N, D) pooled feature; ``batch`` is a loader batch or a bare ``x`` (τ = index, unpadded)."""
        tokens, pe, valid = self.embed(batch)
        z = self.encode(tokens + pe, valid)  # (N, 1 + P, D)
        if self.pool == "cls":
            return z[:, 0]
        w = valid.to(z.dtype)[..., None]  # (N, P, 1)
        return (z[:, 1:] * w).sum(dim=1) / w.sum(dim=1).clamp_min(1.0)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)

    def forward(self, batch: Batch | torch.Tensor) -> torch.Tensor:
        """(N, num_classes) logits."""
        return self.forward_head(self.forward_features(batch))


@register_model
def radarpos_base(**overrides: Any) -> RadarPosPretrain:
    """RadarPos pretraining, width 512, 6 blocks, 8 heads, MLP ×4 (``radar.md`` §4.1)."""
    return RadarPosPretrain(**{**BASE, **overrides})


@register_model
def test_radarpos(**overrides: Any) -> RadarPosPretrain:
    """Tiny RadarPos for CPU tests (width 64, 2 blocks, 2 heads)."""
    return RadarPosPretrain(**{**TINY, **overrides})


@register_model
def radarpos_cls_base(**overrides: Any) -> RadarPosClassifier:
    """RadarPos classifier (fine-tuning / linear probe) on the base trunk."""
    return RadarPosClassifier(**{**BASE, **overrides})


@register_model
def test_radarpos_cls(**overrides: Any) -> RadarPosClassifier:
    """Tiny RadarPos classifier for CPU tests."""
    return RadarPosClassifier(**{**TINY, **overrides})
