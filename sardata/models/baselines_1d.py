"""Radar baselines of ``radar.md`` §6: supervised transformer from scratch, a 1-D ResNet18, and MAE-1D.

* ``transformer_scratch``: exactly the RadarPos classifier (same trunk, same head, random init from the global
  RNG or ``seed``); a separate registry name only so result tables and presets say which arm they are (§6.1).
* ``resnet1d``: ResNet18 with 1-D convolutions (RadCharSSL-style backbone, §6.2): conv7/2 + maxpool, four stages of
  two BasicBlocks (64, 128, 256, 512 channels, stride 2 from stage 2), global average pool, ``head``.
* ``mae1d_base`` (alias ``mae1d``): SimMIM-1D masked-value reconstruction (§6.3) on the RadarPos trunk, so its
  state_dict fine-tunes through the RadarPos classifier (``mask_token`` / ``decoder_pred.*`` unexpected,
  ``head.*`` missing).

Decisions where the spec is silent (documented flags):

* MAE-1D follows SimMIM rather than MAE: masked tokens are **replaced** by a learnable content token (PE kept) and
  the encoder sees every valid token, because per-sample padding gives unequal visible counts that MAE's gather
  cannot batch; the decoder is one Linear(D → C·L). ``mask_ratio`` 0.75 of the *valid* patches per sample
  (round-half-up), drawn from the passed generator.
* Per-patch normalisation (``norm_target=True``) standardises each channel of each patch separately (PDW channels
  differ in scale) over its valid samples, biased variance, eps 1e-6; the MSE averages over the valid samples of
  masked patches only.
* ResNet1D zeroes padded samples (``x·valid``) and otherwise ignores the mask; its head is one Linear
  (``"linear"`` puts a parameter-free BatchNorm before it, MAE's linear-probe recipe, and freezes the backbone).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from sardata.errors import ConfigError
from sardata.models._registry import register_model
from sardata.models.layers.inputs import RobustInputScale, check_radar_input_norm
from sardata.models.layers.seq import (
    forked_rng,
    patchify_1d,
    random_subset,
    round_half_up,
    unpack_batch,
)
from sardata.models.radarpos import BASE, TINY, HeadMixin, RadarEncoder, RadarPosClassifier, check_head

Batch = dict[str, torch.Tensor]


# ---------------------------------------------------------------------------------------------- MAE-1D / SimMIM-1D


class MaskedReconstruction1D(RadarEncoder):
    """SimMIM-1D pretraining on the RadarPos trunk (``task="pretrain"``)."""

    task = "pretrain"

    def __init__(self, *, mask_ratio: float = 0.75, norm_target: bool = True, **trunk: Any) -> None:
        if not 0.0 < mask_ratio < 1.0:
            raise ConfigError(f"mask_ratio must be in (0, 1), got {mask_ratio}")
        with forked_rng(trunk.get("seed")):
            super().__init__(**trunk)
            self.mask_ratio, self.norm_target = mask_ratio, norm_target
            self.mask_token = nn.Parameter(torch.zeros(1, 1, self.embed_dim))
            self.decoder_pred = nn.Linear(self.embed_dim, self.in_chans * self.patch_len)
            self._init_trunk()
            nn.init.normal_(self.mask_token, std=0.02)

    def forward_outputs(self, batch: Batch, generator: torch.Generator | None) -> dict[str, torch.Tensor]:
        """``pred`` (N, P, C·L) reconstructed patch values and ``masked`` (N, P)."""
        tokens, pe, valid = self.embed(batch)
        masked = random_subset(valid, round_half_up(self.mask_ratio * valid.sum(dim=1)), generator)  # (N, P)
        h = torch.where(masked[..., None], self.mask_token.to(tokens.dtype), tokens) + pe  # (N, P, D)
        z = self.encode(h, valid)  # (N, 1 + P, D)
        return {"pred": self.decoder_pred(z[:, 1:]), "masked": masked}

    def targets(self, x: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Target patches (N, P, C·L), per-patch-per-channel standardised if ``norm_target``, and their sample
        weights (N, P, C·L) (1 on valid samples)."""
        n, c, _ = x.shape
        w = valid[:, None, :].expand(n, c, -1).to(x.dtype)  # (N, C, S)
        target, w = patchify_1d(x, self.patch_len), patchify_1d(w, self.patch_len)  # (N, P, C·L) each
        if not self.norm_target:
            return target, w
        shape = (*target.shape[:2], c, self.patch_len)  # (N, P, C, L)
        t, wc = target.reshape(shape), w.reshape(shape)
        cnt = wc.sum(dim=-1, keepdim=True).clamp_min(1.0)
        mean = (t * wc).sum(dim=-1, keepdim=True) / cnt
        var = ((t - mean) ** 2 * wc).sum(dim=-1, keepdim=True) / cnt
        return ((t - mean) / (var + 1e-6).sqrt()).reshape(target.shape), w

    def forward_loss(self, batch: Batch, generator: torch.Generator | None) -> dict[str, torch.Tensor]:
        """``{"loss", "mask_frac"}``: MSE over the valid samples of masked patches."""
        out = self.forward_outputs(batch, generator)
        x, _, valid = unpack_batch(batch, self.num_patches)
        target, w = self.targets(x.float(), valid)
        w = w * out["masked"][..., None]  # (N, P, C·L)
        loss = ((out["pred"].float() - target) ** 2 * w).sum() / w.sum().clamp_min(1.0)
        return {"loss": loss, "mask_frac": out["masked"].float().mean().detach()}

    def forward(self, batch: Batch, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Same as :meth:`forward_loss`."""
        return self.forward_loss(batch, generator)


# ------------------------------------------------------------------------------------------------------ ResNet1D


class BasicBlock1d(nn.Module):
    """Two 3-tap conv-BN layers with an identity (or 1×1 conv-BN) shortcut."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm1d(cout)
        self.conv2 = nn.Conv1d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm1d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = (
            nn.Sequential(nn.Conv1d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm1d(cout))
            if stride != 1 or cin != cout
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + self.downsample(x))


class ResNet1D(HeadMixin, nn.Module):
    """1-D ResNet classifier (``task="classify"``) over (N, C, S) frames."""

    task = "classify"
    modality = "radar"

    def __init__(
        self,
        *,
        in_chans: int = 2,
        widths: tuple[int, ...] = (64, 128, 256, 512),
        layers: tuple[int, ...] = (2, 2, 2, 2),
        num_classes: int = 7,
        head: str = "finetune",
        num_patches: int = 64,
        seed: int | None = None,
        input_norm: str = "fixed",
    ) -> None:
        super().__init__()
        self.input_norm = check_radar_input_norm(input_norm)
        if input_norm == "robust":  # the same calibrated input scaling as the radar transformers
            self.input_scale = RobustInputScale(in_chans)
        if len(widths) != len(layers):
            raise ConfigError(f"widths {widths} and layers {layers} must have the same length")
        self.num_patches, self.seed, self.in_chans = num_patches, seed, in_chans
        with forked_rng(seed):
            self.conv1 = nn.Conv1d(in_chans, widths[0], 7, stride=2, padding=3, bias=False)
            self.bn1 = nn.BatchNorm1d(widths[0])
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool1d(3, stride=2, padding=1)
            stages, cin = [], widths[0]
            for i, (w, n) in enumerate(zip(widths, layers, strict=True)):
                blocks = [BasicBlock1d(cin, w, stride=1 if i == 0 else 2)] + [BasicBlock1d(w, w) for _ in range(n - 1)]
                stages.append(nn.Sequential(*blocks))
                cin = w
            self.layers = nn.Sequential(*stages)
            for m in self.modules():
                if isinstance(m, nn.Conv1d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        self.num_features = widths[-1]
        self.reset_classifier(num_classes, head)

    def reset_classifier(self, num_classes: int, kind: str = "finetune") -> None:
        """``head = Sequential(norm, fc)``: ``norm`` Identity (``"finetune"``, everything trainable) or BatchNorm1d
        without affine (``"linear"``, backbone frozen and kept in eval mode)."""
        check_head(num_classes, kind)
        device = self.conv1.weight.device
        norm = nn.BatchNorm1d(self.num_features, affine=False, eps=1e-6) if kind == "linear" else nn.Identity()
        self._install_head(norm, num_classes, kind, device)

    def forward_features(self, batch: Batch | torch.Tensor) -> torch.Tensor:
        """(N, D) globally average-pooled last-stage feature."""
        x, _, valid = unpack_batch(batch, self.num_patches)
        if x.ndim != 3 or x.shape[1] != self.in_chans:
            raise ConfigError(f"radar input x has shape {tuple(x.shape)}, ResNet1D expects (N, {self.in_chans}, S)")
        x = x * valid[:, None, :].to(x.dtype)  # padding is zero whatever the loader wrote
        if self.input_norm == "robust":
            x = self.input_scale(x, valid)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layers(x).mean(dim=-1)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)

    def forward(self, batch: Batch | torch.Tensor) -> torch.Tensor:
        """(N, num_classes) logits."""
        return self.forward_head(self.forward_features(batch))


# ------------------------------------------------------------------------------------------------------ registry


@register_model
def transformer_scratch(**overrides: Any) -> RadarPosClassifier:
    """Supervised transformer from scratch: the ``radarpos_cls_base`` classifier, random init (§6.1)."""
    return RadarPosClassifier(**{**BASE, **overrides})


@register_model
def test_transformer_scratch(**overrides: Any) -> RadarPosClassifier:
    """Tiny ``transformer_scratch`` for CPU tests."""
    return RadarPosClassifier(**{**TINY, **overrides})


@register_model
def resnet1d(**overrides: Any) -> ResNet1D:
    """ResNet18-1D (RadCharSSL-style backbone), widths 64–512, two blocks per stage."""
    return ResNet1D(**overrides)


@register_model
def test_resnet1d(**overrides: Any) -> ResNet1D:
    """Tiny ResNet1D for CPU tests (widths 8–32, one block per stage)."""
    return ResNet1D(**{"widths": (8, 16, 32), "layers": (1, 1, 1), **overrides})


@register_model
def mae1d_base(**overrides: Any) -> MaskedReconstruction1D:
    """SimMIM-1D masked-value reconstruction on the base RadarPos trunk (preset ``models/mae1d_base.yaml``)."""
    return MaskedReconstruction1D(**{**BASE, **overrides})


@register_model
def mae1d(**overrides: Any) -> MaskedReconstruction1D:
    """Alias of :func:`mae1d_base` (the name the baseline tables use)."""
    return mae1d_base(**overrides)


@register_model
def test_mae1d(**overrides: Any) -> MaskedReconstruction1D:
    """Tiny MAE-1D for CPU tests."""
    return MaskedReconstruction1D(**{**TINY, **overrides})
