"""MAE baseline with pixel target, 1 channel (``sar-jepa.md`` §6): random 75% masking per image, visible tokens
only in the encoder, fixed 2-D sin-cos absolute positions, 8-block 512-d decoder, MSE on masked patches.

``norm_pix_loss`` (default on) normalises each target patch by its own mean and variance (+1e-6), as MAE does.
Positions are persistent buffers ``pos_embed`` / ``decoder_pos_embed`` (cls slot = zeros), so they are in the
state_dict under MAE's names but never trained. Encoder names (``patch_embed.proj``, ``cls_token``, ``blocks.*``,
``norm``) match :class:`~sardata.models.vit_irpe.VisionTransformerIRPE`; load with
``load_pretrained(model, sd, allow_missing=MAE_ALLOW_MISSING)`` (the iRPE tables keep their zero init). The
few-shot protocol builds the downstream backbone with ``abs_pos=True`` for an MAE checkpoint (``abs_pos`` in the
recipe; default on for MAE), so ``pos_embed`` is loaded and the encoder sees the positions it was pretrained
with; with ``abs_pos: false`` it is ignored (the paper's downstream has no absolute position).

All randomness comes from the ``torch.Generator`` passed to :meth:`MaskedAutoencoder.forward_loss`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from timm.layers import PatchEmbed
from timm.models.vision_transformer import Block
from torch import nn

from sardata.errors import ConfigError
from sardata.features.gr import patchify_2d
from sardata.models._registry import register_model
from sardata.models.layers.attention import init_weights_xavier, norm_layer
from sardata.models.layers.inputs import check_input_norm, normalise_input
from sardata.models.layers.pos import sincos_pos_embed_2d


class MaskedAutoencoder(nn.Module):
    """MAE ViT over ``(N, 1, H, W)`` images in [0, 1] with timm ``Block`` (no iRPE)."""

    task = "pretrain"
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
        decoder_embed_dim: int = 512,
        decoder_depth: int = 8,
        decoder_num_heads: int = 16,
        mask_ratio: float = 0.75,
        norm_pix_loss: bool = True,
        input_norm: str = "image",
    ) -> None:
        super().__init__()
        if img_size % patch_size:
            raise ConfigError(f"img_size {img_size} is not a multiple of patch_size {patch_size}")
        self.img_size, self.patch_size = img_size, patch_size
        self.input_norm = check_input_norm(input_norm)  # encoder input only; the pixel target stays raw
        self.grid = img_size // patch_size
        self.num_patches = self.grid**2
        self.num_mask = int(self.num_patches * mask_ratio)
        if not 1 <= self.num_mask < self.num_patches:
            raise ConfigError(f"mask_ratio {mask_ratio} must mask at least one and keep at least one patch")
        self.mask_ratio, self.norm_pix_loss = mask_ratio, norm_pix_loss
        self.num_features = self.embed_dim = embed_dim

        def block(dim: int, heads: int) -> Block:
            return Block(dim, heads, mlp_ratio=mlp_ratio, qkv_bias=True, norm_layer=norm_layer)

        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans=1, embed_dim=embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.register_buffer("pos_embed", sincos_pos_embed_2d(embed_dim, self.grid)[None])  # (1, 1 + L, D)
        self.blocks = nn.ModuleList(block(embed_dim, num_heads) for _ in range(depth))
        self.norm = norm_layer(embed_dim)

        self.decoder_embed = nn.Linear(embed_dim, decoder_embed_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_embed_dim))
        self.register_buffer("decoder_pos_embed", sincos_pos_embed_2d(decoder_embed_dim, self.grid)[None])
        self.decoder_blocks = nn.ModuleList(block(decoder_embed_dim, decoder_num_heads) for _ in range(decoder_depth))
        self.decoder_norm = norm_layer(decoder_embed_dim)
        self.decoder_pred = nn.Linear(decoder_embed_dim, patch_size * patch_size)
        self._init_weights()

    def _init_weights(self) -> None:
        """MAE init: patch-embed weight Xavier-uniform on its flattened view, cls/mask token N(0, 0.02), Linear
        Xavier-uniform / bias 0, LayerNorm 1/0."""
        w = self.patch_embed.proj.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.normal_(self.cls_token, std=0.02)
        nn.init.normal_(self.mask_token, std=0.02)
        self.apply(init_weights_xavier)

    def random_masking(self, n: int, generator: torch.Generator, device: torch.device) -> tuple[torch.Tensor, ...]:
        """Per-image uniform shuffle: ``(ids_keep (N, L_keep), ids_restore (N, L), mask (N, L) bool)``."""
        noise = torch.rand((n, self.num_patches), generator=generator, device=device)
        ids_shuffle = noise.argsort(dim=1)  # first L_keep are kept
        ids_restore = ids_shuffle.argsort(dim=1)
        keep = self.num_patches - self.num_mask
        mask = ids_restore >= keep  # (N, L) True = masked
        return ids_shuffle[:, :keep], ids_restore, mask

    def forward_encoder(self, images: torch.Tensor, ids_keep: torch.Tensor) -> torch.Tensor:
        """``(N, 1, H, W)`` → encoded visible tokens with cls ``(N, 1 + L_keep, D)``."""
        x = self.patch_embed(normalise_input(images, self.input_norm)) + self.pos_embed[:, 1:]  # (N, L, D)
        x = torch.gather(x, 1, ids_keep[..., None].expand(-1, -1, x.shape[-1]))  # (N, L_keep, D)
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(x.shape[0], -1, -1)
        x = torch.cat([cls.to(x.dtype), x], dim=1)  # (N, 1 + L_keep, D)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)

    def forward_decoder(self, x: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        """Encoded ``(N, 1 + L_keep, D)`` → pixel predictions ``(N, L, p²)`` in raster patch order."""
        x = self.decoder_embed(x)  # (N, 1 + L_keep, Dd)
        n, _, d = x.shape
        fill = self.mask_token.to(x.dtype).expand(n, self.num_mask, -1)  # (N, L_mask, Dd)
        seq = torch.cat([x[:, 1:], fill], dim=1)  # (N, L, Dd) in shuffled order
        seq = torch.gather(seq, 1, ids_restore[..., None].expand(-1, -1, d))  # unshuffle
        x = torch.cat([x[:, :1], seq], dim=1) + self.decoder_pos_embed  # (N, 1 + L, Dd)
        for blk in self.decoder_blocks:
            x = blk(x)
        return self.decoder_pred(self.decoder_norm(x))[:, 1:]  # (N, L, p²)

    def patch_targets(self, images: torch.Tensor) -> torch.Tensor:
        """``(N, L, p²)`` float32 pixel targets, per-patch normalised when ``norm_pix_loss``."""
        target = patchify_2d(images.float(), self.patch_size)
        if self.norm_pix_loss:
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, keepdim=True)
            target = (target - mean) / (var + 1e-6) ** 0.5
        return target

    def forward_loss(self, batch: Mapping[str, Any], generator: torch.Generator) -> dict[str, torch.Tensor]:
        """``{"loss", "pred" (N, L, p²), "mask" (N, L) bool}``; loss = MSE per patch, mean over masked patches."""
        images = batch["image"]  # (N, 1, H, W)
        ids_keep, ids_restore, mask = self.random_masking(images.shape[0], generator, images.device)
        pred = self.forward_decoder(self.forward_encoder(images, ids_keep), ids_restore)  # (N, L, p²)
        per_patch = (pred.float() - self.patch_targets(images)).square().mean(dim=-1)  # (N, L)
        loss = torch.where(mask, per_patch, 0.0).sum() / (mask.shape[0] * self.num_mask)
        return {"loss": loss, "pred": pred, "mask": mask}


def _build(defaults: dict[str, Any], overrides: dict[str, Any]) -> MaskedAutoencoder:
    return MaskedAutoencoder(**{**defaults, **overrides})


@register_model
def mae_vit_base_patch16_1ch(**overrides: Any) -> MaskedAutoencoder:
    """MAE ViT-B/16, 1 channel, decoder 8 × 512 (16 heads), 75% masking, norm_pix_loss on."""
    return _build(dict(embed_dim=768, depth=12, num_heads=12, decoder_embed_dim=512, decoder_depth=8,
                       decoder_num_heads=16), overrides)  # fmt: skip


@register_model
def test_mae(**overrides: Any) -> MaskedAutoencoder:
    """Tiny MAE for CPU tests (embed 64, depth 2, heads 2; decoder 32 × 1, 2 heads; real 224/16 grid)."""
    return _build(dict(embed_dim=64, depth=2, num_heads=2, decoder_embed_dim=32, decoder_depth=1,
                       decoder_num_heads=2), overrides)  # fmt: skip
