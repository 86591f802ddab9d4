"""Downstream classifier of SAR-JEPA: 1-channel ViT with iRPE in every block, no absolute position
(``sar-jepa.md`` §3.5–3.6).

Feature = the cls token after the final LayerNorm. Heads (:meth:`VisionTransformerIRPE.reset_classifier`):

* ``"finetune"``: ``Linear(D, C)``, weight trunc-normal std 2e-5, bias 0; every parameter trainable.
* ``"linear"`` (linear probe): ``BatchNorm1d(D, affine=False, eps=1e-6) → Linear(D, C)``, weight trunc-normal
  std 0.01, bias 0; the encoder is frozen (``requires_grad=False``) and **stays in eval mode** even after
  ``model.train()`` — :meth:`VisionTransformerIRPE.train` re-applies eval to every submodule but ``head``, so the
  trainer calls ``model.train()`` as usual and only the head's BatchNorm updates its statistics.

Random init (the ``supervised_scratch`` baseline; the spec is silent): DeiT/timm ViT init, as the reference's
downstream backbone — Linear trunc-normal std 0.02 with bias 0, LayerNorm 1/0, cls token trunc-normal 0.02,
patch-embed Conv2d PyTorch default, iRPE tables 0.

Pretrained weights: :func:`load_pretrained` (non-strict; only head keys and explicitly allowed patterns may be
missing).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import torch
from timm.layers import PatchEmbed, trunc_normal_
from torch import nn

from sardata.errors import ConfigError
from sardata.models._registry import register_model
from sardata.models.layers.attention import Block, norm_layer
from sardata.models.layers.heads import FreezableEncoder
from sardata.models.layers.inputs import check_input_norm, normalise_input
from sardata.models.layers.irpe import normalise_lookup_table
from sardata.models.layers.pos import sincos_pos_embed_2d

HeadKind = Literal["finetune", "linear"]
#: what an MAE checkpoint lacks compared with this backbone (it has absolute positions instead of iRPE tables)
MAE_ALLOW_MISSING: tuple[str, ...] = ("blocks.*.attn.rpe_k.*",)
_PREFIXES = ("module.", "_orig_mod.")


class VisionTransformerIRPE(FreezableEncoder, nn.Module):
    """ViT-B/16-style classifier over ``(N, 1, H, W)`` images in [0, 1]; ``num_classes=0`` → identity head."""

    task = "classify"
    modality = "sar_image"

    def __init__(
        self,
        *,
        img_size: int = 224,
        patch_size: int = 16,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        num_classes: int = 0,
        drop_path_rate: float = 0.0,
        abs_pos: bool = False,
        input_norm: str = "image",
    ) -> None:
        super().__init__()
        if img_size % patch_size:
            raise ConfigError(f"img_size {img_size} is not a multiple of patch_size {patch_size}")
        self.img_size, self.patch_size = img_size, patch_size
        self.num_features = self.embed_dim = embed_dim
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans=1, embed_dim=embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.abs_pos = abs_pos
        self.input_norm = check_input_norm(input_norm)
        if abs_pos:  # MAE's fixed sin-cos positions (a buffer, loaded from an MAE checkpoint with the same values)
            self.register_buffer("pos_embed", sincos_pos_embed_2d(embed_dim, img_size // patch_size)[None])
        rates = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]  # timm's linear decay rule
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio=mlp_ratio, drop_path=r, rpe=True) for r in rates
        )
        self.norm = norm_layer(embed_dim)
        self.head: nn.Module = nn.Identity()
        self.head_kind: HeadKind | None = None
        self.encoder_frozen = False
        self._init_weights()
        if num_classes:
            self.reset_classifier(num_classes, "finetune")

    def _init_weights(self) -> None:
        trunc_normal_(self.cls_token, std=0.02)

        def init(m: nn.Module) -> None:
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

        self.apply(init)

    # ------------------------------------------------------------------------------------------ heads
    def reset_classifier(self, num_classes: int, kind: HeadKind = "finetune") -> None:
        """Install a fresh head; ``"linear"`` also freezes the encoder (see :meth:`freeze_encoder`),
        ``"finetune"`` makes every parameter trainable again.

        Raises:
            ConfigError: unknown ``kind`` or ``num_classes < 1``.
        """
        if num_classes < 1:
            raise ConfigError(f"num_classes must be >= 1, got {num_classes}")
        d = self.num_features
        if kind == "finetune":
            fc = nn.Linear(d, num_classes)
            trunc_normal_(fc.weight, std=2e-5)
            nn.init.zeros_(fc.bias)
            self.head = fc
        elif kind == "linear":
            fc = nn.Linear(d, num_classes)
            trunc_normal_(fc.weight, std=0.01)
            nn.init.zeros_(fc.bias)
            self.head = nn.Sequential(nn.BatchNorm1d(d, affine=False, eps=1e-6), fc)
        else:
            raise ConfigError(f"unknown head kind {kind!r}; use 'finetune' or 'linear'")
        self.head.to(self.cls_token.device)
        self.head_kind = kind
        if kind == "linear":
            self.freeze_encoder()
        else:
            self.unfreeze_encoder()

    # ---------------------------------------------------------------------------------------- forward
    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 1, H, W)`` → all tokens after the final norm, ``(N, 1 + H/p·W/p, D)``."""
        x = self.patch_embed(normalise_input(x, self.input_norm))  # (N, L, D)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)  # (N, 1 + L, D)
        if self.abs_pos:
            x = x + self.pos_embed  # cls row is zeros, as in MAE
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)

    def forward_features(self, batch_or_tensor: torch.Tensor | Mapping[str, Any]) -> torch.Tensor:
        """Image tensor or a loader batch with ``"image"`` → pooled feature (N, D) (the cls token)."""
        x = batch_or_tensor["image"] if isinstance(batch_or_tensor, Mapping) else batch_or_tensor
        return self.forward_tokens(x)[:, 0]

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)

    def forward(self, batch_or_tensor: torch.Tensor | Mapping[str, Any]) -> torch.Tensor:
        return self.forward_head(self.forward_features(batch_or_tensor))


def _strip_prefixes(key: str) -> str:
    changed = True
    while changed:
        changed = False
        for prefix in _PREFIXES:
            if key.startswith(prefix):
                key, changed = key[len(prefix) :], True
    return key


def load_pretrained(
    model: nn.Module, state_dict: Mapping[str, torch.Tensor], allow_missing: Sequence[str] = ()
) -> tuple[list[str], list[str]]:
    """Non-strict load of a pretraining (or classifier) checkpoint into ``model``.

    Leading ``module.`` (DDP) and ``_orig_mod.`` (torch.compile) prefixes are stripped; upstream
    ``(1, head_dim, 50)`` iRPE tables are squeezed. Extra keys (decoder, ``mask_token``, ``pos_embed``,
    ``encoder_pred``…) are ignored and returned as ``unexpected``; head keys whose shape differs from the model's
    (another class count) are skipped and count as missing.

    Args:
        allow_missing: ``fnmatch`` patterns of further keys that may be missing, e.g. :data:`MAE_ALLOW_MISSING`
            for an MAE checkpoint (no iRPE tables; those keep their zero init).

    Returns:
        ``(missing, unexpected)`` key lists.

    Raises:
        ConfigError: a key other than the head's (or an allowed pattern) is missing, or a non-head key has the
            wrong shape.
    """
    own = model.state_dict()
    clean: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        key = _strip_prefixes(key)
        clean[key] = normalise_lookup_table(value) if key.endswith("rpe_k.lookup_table_weight") else value
    wrong = [k for k in clean if k in own and tuple(clean[k].shape) != tuple(own[k].shape)]
    bad_shape = [k for k in wrong if not k.startswith("head.")]
    if bad_shape:
        detail = ", ".join(f"{k} {tuple(clean[k].shape)} vs {tuple(own[k].shape)}" for k in bad_shape[:5])
        raise ConfigError(f"pretrained weights do not fit the model ({detail}); check img/patch size and width")
    for k in wrong:
        del clean[k]
    missing = [k for k in own if k not in clean]
    unexpected = [k for k in clean if k not in own]
    patterns = ("head.*", *allow_missing)
    fatal = [k for k in missing if not any(fnmatch.fnmatchcase(k, p) for p in patterns)]
    if fatal:
        raise ConfigError(
            f"pretrained weights lack {len(fatal)} encoder keys ({', '.join(fatal[:5])}…); is this a checkpoint "
            "of a ViT with the same depth? Pass allow_missing patterns (e.g. MAE_ALLOW_MISSING) if intended"
        )
    model.load_state_dict(clean, strict=False)
    return missing, unexpected


def _build(defaults: dict[str, Any], overrides: Iterable[tuple[str, Any]]) -> VisionTransformerIRPE:
    return VisionTransformerIRPE(**{**defaults, **dict(overrides)})


@register_model
def vit_irpe_base_patch16_1ch(**overrides: Any) -> VisionTransformerIRPE:
    """ViT-B/16, 1 channel, iRPE on the 14×14 grid, no absolute position unless abs_pos (SAR-JEPA downstream)."""
    return _build(dict(img_size=224, patch_size=16, embed_dim=768, depth=12, num_heads=12), overrides.items())


@register_model
def test_vit_irpe(**overrides: Any) -> VisionTransformerIRPE:
    """Tiny variant for CPU tests (embed 64, depth 2, heads 2; real 224/16 grid)."""
    return _build(dict(img_size=224, patch_size=16, embed_dim=64, depth=2, num_heads=2), overrides.items())
