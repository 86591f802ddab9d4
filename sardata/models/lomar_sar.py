"""LoMaR-SAR (SAR-JEPA pretraining model) and its pixel-target twin LoMaR-pix — ``sar-jepa.md`` §1, §1.2, §1.3, §6.

Forward for a batch of N images on a G×G patch grid (G = img_size / patch_size; paper: 224/16 → 14):

1. Patch-embed once: ``(N, G², D)``.
2. Windows: tops and lefts are the first ``num_window`` entries of two independent random permutations of
   ``0 … G − window_size`` (drawn once per batch, or per image with ``window_sampling="per_image"``).
3. Pairing: every image with every window; sequence ``n·num_window + w`` holds the ``window_size²`` patches of
   window w of image n in raster order (one gather with an index tensor, no Python loop).
4. Masking: exactly ``int(window_size² · mask_ratio)`` positions per sequence (39 of 49 in the paper), uniform
   and independent per sequence; masked tokens are replaced by ``mask_token`` in the **encoder input**; cls is
   prepended. Nothing is dropped.
5. LoMaR-SAR: encoder → norm → ``encoder_pred`` → predictor blocks (iRPE) → ``decoder_norm`` → ``decoder_pred``
   → drop cls → ``(N·num_window, window_size², R·p²)``; target = GR patch targets (``gr-targets.md`` §3) at
   ``gr_radii`` (R radii; default the paper's (5, 9, 13, 17) scaled to ``img_size``: r·size/224 rounded, ≥ 1,
   exact at 224 — issue 17).
   LoMaR-pix: encoder → norm → ``decoder_norm`` → ``decoder_pred`` (linear decoder) → ``(…, p²)``; target =
   the raw image patches (no normalisation).
6. Loss: per-token mean of squared error over features, averaged over masked tokens only (all sequences pooled).

All randomness comes from the ``torch.Generator`` passed to :meth:`LoMaRSAR.forward_loss`. GR targets come from
``batch["gr"]`` (precomputed mode) when present, else are computed on the batch's device with
:func:`sardata.features.gr.gr_maps` (online mode, reference-faithful), always outside autocast.

Encoder parameter names equal :class:`~sardata.models.vit_irpe.VisionTransformerIRPE`'s (``patch_embed.proj``,
``cls_token``, ``blocks.{i}.*``, ``norm``), so a pretraining state_dict loads into the classifier with only the
head keys missing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch
from timm.layers import PatchEmbed
from torch import nn

from sardata.errors import ConfigError
from sardata.features.gr import gr_maps, patchify_2d
from sardata.features.grcodec import check_radii, scaled_radii
from sardata.models._registry import register_model
from sardata.models.layers.attention import Block, init_weights_xavier, norm_layer
from sardata.models.layers.inputs import check_input_norm, normalise_input

WindowSampling = Literal["per_batch", "per_image"]
Target = Literal["gr", "pixel"]


class LoMaRSAR(nn.Module):
    """Local masked reconstruction over windows of the patch grid with iRPE attention (see module docstring).

    ``target="gr"`` with the 8-block predictor is LoMaR-SAR; ``target="pixel"`` uses the linear decoder
    (LoMaR-pix), and then ``decoder_*`` sizes are unused.
    """

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
        window_size: int = 7,
        num_window: int = 4,
        mask_ratio: float = 0.8,
        window_sampling: WindowSampling = "per_batch",
        target: Target = "gr",
        gr_radii: Sequence[int] | None = None,
        input_norm: str = "image",
    ) -> None:
        super().__init__()
        self._check_config(img_size, patch_size, window_size, num_window, mask_ratio, window_sampling, target)
        self.img_size, self.patch_size = img_size, patch_size
        self.grid = img_size // patch_size
        self.window_size, self.num_window = window_size, num_window
        self.mask_ratio = mask_ratio
        self.num_mask = int(window_size * window_size * mask_ratio)
        self.window_sampling: WindowSampling = window_sampling
        self.target: Target = target
        #: GR radii of the targets; default: the paper's scaled to ``img_size`` (grcodec.scaled_radii)
        self.gr_radii = check_radii(gr_radii) if gr_radii is not None else scaled_radii(img_size)
        self.input_norm = check_input_norm(input_norm)  # encoder input only; targets use the raw images
        self.num_features = self.embed_dim = embed_dim

        # encoder (names shared with VisionTransformerIRPE)
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans=1, embed_dim=embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.mask_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.blocks = nn.ModuleList(Block(embed_dim, num_heads, mlp_ratio=mlp_ratio) for _ in range(depth))
        self.norm = norm_layer(embed_dim)

        # predictor / decoder
        if target == "gr":
            self.out_dim = len(self.gr_radii) * patch_size * patch_size
            self.encoder_pred: nn.Module = nn.Linear(embed_dim, decoder_embed_dim)
            self.decoder_blocks = nn.ModuleList(
                Block(decoder_embed_dim, decoder_num_heads, mlp_ratio=mlp_ratio) for _ in range(decoder_depth)
            )
            head_dim = decoder_embed_dim
        else:
            self.out_dim = patch_size * patch_size
            self.encoder_pred = nn.Identity()
            self.decoder_blocks = nn.ModuleList()
            head_dim = embed_dim
        self.decoder_norm = norm_layer(head_dim)
        self.decoder_pred = nn.Linear(head_dim, self.out_dim)

        self._init_weights()

    @staticmethod
    def _check_config(
        img_size: int, patch_size: int, window_size: int, num_window: int, mask_ratio: float, sampling: str, target: str
    ) -> None:
        if img_size % patch_size:
            raise ConfigError(f"img_size {img_size} is not a multiple of patch_size {patch_size}")
        grid = img_size // patch_size
        if not 1 <= window_size <= grid:
            raise ConfigError(f"window_size {window_size} must be in 1..{grid} (the {grid}x{grid} patch grid)")
        if not 1 <= num_window <= grid - window_size + 1:
            raise ConfigError(
                f"num_window {num_window} must be in 1..{grid - window_size + 1}: tops/lefts are distinct values "
                f"of 0..{grid - window_size}"
            )
        if not 1 <= int(window_size * window_size * mask_ratio) <= window_size * window_size:
            raise ConfigError(f"mask_ratio {mask_ratio} masks no patch of a {window_size}x{window_size} window")
        if sampling not in ("per_batch", "per_image"):
            raise ConfigError(f"window_sampling {sampling!r}: use 'per_batch' or 'per_image'")
        if target not in ("gr", "pixel"):
            raise ConfigError(f"target {target!r}: use 'gr' or 'pixel'")

    def _init_weights(self) -> None:
        """Spec §1 init: Linear Xavier-uniform / bias 0, LayerNorm 1/0, patch-embed weight Xavier-uniform on its
        flattened view (bias: PyTorch default), cls and mask token N(0, 0.02), iRPE tables 0."""
        w = self.patch_embed.proj.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.normal_(self.cls_token, std=0.02)
        nn.init.normal_(self.mask_token, std=0.02)
        self.apply(init_weights_xavier)

    # ------------------------------------------------------------------------------------- sampling
    def sample_windows(self, n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
        """``(n, num_window, 2)`` long (top, left) in patch units; identical rows when ``per_batch``."""
        span = self.grid - self.window_size + 1
        rows = 1 if self.window_sampling == "per_batch" else n
        noise = torch.rand((rows, 2, span), generator=generator, device=device)
        perm = noise.argsort(dim=-1)[..., : self.num_window]  # (rows, 2, W): independent permutations
        return perm.transpose(1, 2).expand(n, -1, -1)  # (n, W, 2)

    def window_index(self, windows: torch.Tensor) -> torch.Tensor:
        """``(n, W, 2)`` windows → ``(n, W, S)`` patch indices into the G×G grid, raster order in each window."""
        r = torch.arange(self.window_size, device=windows.device)
        offsets = (r[:, None] * self.grid + r[None, :]).reshape(-1)  # (S,) offsets from the top-left patch
        top_left = windows[..., 0] * self.grid + windows[..., 1]  # (n, W)
        return top_left[..., None] + offsets  # (n, W, S)

    def gather_windows(self, x: torch.Tensor, windows: torch.Tensor) -> torch.Tensor:
        """Per-patch values ``(N, G², F)`` → per-sequence ``(N·W, S, F)``; sequence ``n·W + w`` = window w of
        image n."""
        n, _, f = x.shape
        idx = self.window_index(windows).reshape(n, -1)  # (N, W·S)
        out = torch.gather(x, 1, idx[..., None].expand(-1, -1, f))  # (N, W·S, F)
        return out.reshape(n * self.num_window, self.window_size**2, f)

    def sample_mask(self, sequences: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
        """``(sequences, S)`` bool, exactly ``num_mask`` True per row, uniform and independent per row."""
        s = self.window_size**2
        noise = torch.rand((sequences, s), generator=generator, device=device)
        ids = noise.argsort(dim=1)[:, : self.num_mask]  # (B, m)
        return torch.zeros((sequences, s), dtype=torch.bool, device=device).scatter_(1, ids, True)

    # -------------------------------------------------------------------------------------- forward
    def forward_encoder(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Window tokens ``(B, S, D)`` with ``mask`` (B, S) → encoded ``(B, 1 + S, D)`` after the final norm."""
        x = torch.where(mask[..., None], self.mask_token.to(tokens.dtype), tokens)  # (B, S, D)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1).to(x.dtype), x], dim=1)  # (B, 1 + S, D)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)

    def forward_decoder(self, x: torch.Tensor) -> torch.Tensor:
        """Encoded ``(B, 1 + S, D)`` → predictions ``(B, S, out_dim)`` (cls dropped)."""
        x = self.encoder_pred(x)  # (B, 1 + S, Dd)
        for blk in self.decoder_blocks:
            x = blk(x)
        return self.decoder_pred(self.decoder_norm(x))[:, 1:]  # (B, S, out_dim)

    def patch_targets(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """``(N, G², out_dim)`` float32 targets: GR (precomputed ``batch["gr"]`` or online) or raw pixels."""
        images = batch["image"]
        with torch.no_grad(), torch.autocast(images.device.type, enabled=False):
            if self.target == "pixel":
                return patchify_2d(images.float(), self.patch_size)  # (N, G², p²)
            gr = batch.get("gr")
            if gr is None:
                gr = gr_maps(images.float(), self.gr_radii, keys=sample_keys(batch))  # (N, R, H, W)
            elif (
                gr.shape[0] != images.shape[0] or gr.shape[1] != len(self.gr_radii) or gr.shape[2:] != images.shape[2:]
            ):
                raise ConfigError(
                    f"batch['gr'] has shape {tuple(gr.shape)}, expected {(images.shape[0], len(self.gr_radii))} + "
                    f"{tuple(images.shape[2:])} (precomputed GR must match the image view; rebuild the shards)"
                )
            return patchify_2d(gr.float(), self.patch_size)  # (N, G², 4·p²), scale-major

    def forward_loss(self, batch: Mapping[str, Any], generator: torch.Generator) -> dict[str, torch.Tensor]:
        """One pretraining forward: ``{"loss", "pred" (N·W, S, F), "mask" (N·W, S) bool, "windows" (N, W, 2)}``."""
        images = batch["image"]  # (N, 1, H, W)
        n = images.shape[0]
        windows = self.sample_windows(n, generator, images.device)  # (N, W, 2)
        tokens = self.gather_windows(self.patch_embed(normalise_input(images, self.input_norm)), windows)
        mask = self.sample_mask(tokens.shape[0], generator, images.device)  # (N·W, S)
        pred = self.forward_decoder(self.forward_encoder(tokens, mask))  # (N·W, S, F)
        target = self.gather_windows(self.patch_targets(batch), windows)  # (N·W, S, F)
        per_token = (pred.float() - target).square().mean(dim=-1)  # (N·W, S)
        loss = torch.where(mask, per_token, 0.0).sum() / (mask.shape[0] * self.num_mask)
        return {"loss": loss, "pred": pred, "mask": mask, "windows": windows}


def sample_keys(batch: Mapping[str, Any]) -> list[str] | None:
    """The batch's sample keys (``__key__`` from the shards, or ``key``) for error messages, if present."""
    keys = batch.get("__key__", batch.get("key"))
    return [str(k) for k in keys] if isinstance(keys, (list, tuple)) else None


def _build(defaults: dict[str, Any], overrides: dict[str, Any]) -> LoMaRSAR:
    return LoMaRSAR(**{**defaults, **overrides})


def _build_pix(defaults: dict[str, Any], overrides: dict[str, Any]) -> LoMaRSAR:
    unused = sorted(k for k in overrides if k.startswith("decoder_") or k == "target")
    if unused:
        raise ConfigError(f"LoMaR-pix has a linear decoder; overrides {unused} do not apply")
    return LoMaRSAR(**{**defaults, **overrides, "target": "pixel"})


_BASE = dict(img_size=224, patch_size=16, embed_dim=768, depth=12, num_heads=12)
_TINY = dict(img_size=224, patch_size=16, embed_dim=64, depth=2, num_heads=2)


@register_model
def lomar_sar_vit_base_patch16(**overrides: Any) -> LoMaRSAR:
    """SAR-JEPA paper model: ViT-B/16 encoder, 8×512 predictor, 4 windows of 7×7, 80% masked, GR target."""
    return _build({**_BASE, "decoder_embed_dim": 512, "decoder_depth": 8, "decoder_num_heads": 16}, overrides)


@register_model
def lomar_pix_vit_base_patch16(**overrides: Any) -> LoMaRSAR:
    """LoMaR with pixel target (baseline): same encoder/windows/masking/iRPE, linear decoder 768 → 256."""
    return _build_pix(dict(_BASE), overrides)


@register_model
def test_lomar_sar(**overrides: Any) -> LoMaRSAR:
    """Tiny LoMaR-SAR for CPU tests (embed 64, depth 2, heads 2; predictor 32 × 2 blocks, 2 heads; real grid)."""
    return _build({**_TINY, "decoder_embed_dim": 32, "decoder_depth": 2, "decoder_num_heads": 2}, overrides)


@register_model
def test_lomar_pix(**overrides: Any) -> LoMaRSAR:
    """Tiny LoMaR-pix for CPU tests."""
    return _build_pix(dict(_TINY), overrides)
