"""Encoder input normalisation shared by every SAR image encoder (pretraining and downstream alike).

Why (issue 17): SAR chips scaled to [0, 1] are dark and low-contrast (the MSTAR JPEG chips: mean 0.097, std 0.082),
and a ViT from scratch fed them directly did not fit 100 training chips (training accuracy 22–45 % after the
protocol's 80 steps, 24–34 % after 400), while the same model on per-image standardised inputs fits them (100 %).
``"image"`` standardises each image over its pixels (zero mean, unit standard deviation; a flat image maps to 0),
which also removes the calibration offsets between sensors and products that a dataset-wide mean would keep.
It is an encoder property: a checkpoint records it (``input_norm``) and a classifier built from the checkpoint
inherits it, so pretraining and fine-tuning always see the same inputs. Targets (GR maps, MAE pixels) are computed
from the raw images, never from the normalised ones.
"""

from __future__ import annotations

import torch

from sardata.errors import ConfigError

INPUT_NORMS = ("image", "none")


def check_input_norm(mode: str) -> str:
    """``mode`` if it is one of :data:`INPUT_NORMS`, else a ConfigError naming them."""
    if mode not in INPUT_NORMS:
        raise ConfigError(f"input_norm {mode!r}; choose one of {', '.join(INPUT_NORMS)}")
    return mode


def normalise_input(images: torch.Tensor, mode: str) -> torch.Tensor:
    """``(N, C, H, W)`` → the encoder's input under ``mode`` (see the module docstring)."""
    if mode == "none":
        return images
    x = images.double()  # statistics in float64: a flat image's mean is its value exactly, so it maps to 0
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    std = x.std(dim=(1, 2, 3), keepdim=True, unbiased=False)
    return torch.where(std > 1e-6, (x - mean) / std.clamp_min(1e-6), 0.0).to(images.dtype)


# ----------------------------------------------------------------------------------------------- radar inputs
#: radar encoders: ``fixed`` feeds the view's fixed-range channels as they are; ``robust`` rescales each channel
#: by a median/MAD calibrated on the first training batch the encoder sees (issue 16, RESULTS §2.3)
RADAR_INPUT_NORMS = ("fixed", "robust")
CLIP_MADS = 5.0
MAD_TO_STD = 1.4826  # MAD of a normal distribution × this = its std


def robust_stats(x: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel median and scaled MAD of ``x`` (N, C, L) over valid positions ``valid`` (N, L), as (C,)."""
    med, scale = [], []
    for c in range(x.shape[1]):
        v = x[:, c][valid].float()
        m = v.median() if v.numel() else v.new_tensor(0.0)
        s = (v - m).abs().median() * MAD_TO_STD if v.numel() else v.new_tensor(1.0)
        med.append(m)
        scale.append(s.clamp_min(1e-6))
    return torch.stack(med), torch.stack(scale)


def robust_scale(x: torch.Tensor, valid: torch.Tensor, med: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``(x − median) / scale`` per channel, clipped to ±:data:`CLIP_MADS`; padded positions stay 0."""
    y = ((x - med.view(1, -1, 1).to(x.dtype)) / scale.view(1, -1, 1).to(x.dtype)).clamp(-CLIP_MADS, CLIP_MADS)
    return torch.where(valid.unsqueeze(1), y, torch.zeros_like(y))


class RobustInputScale(torch.nn.Module):
    """Radar encoder input scaling with calibrated buffers (``input_norm="robust"``).

    Why buffers: the statistics travel with the checkpoint, so a classifier fine-tuned from a pretrained encoder
    sees its inputs on the scale the encoder was pretrained on, and a scratch model calibrates on its own data.
    Calibration: the first batch the module sees (training or not) sets ``median``/``scale`` once; a loaded
    state_dict carries ``calibrated`` = True and is never recalibrated. Under DDP each rank calibrates on its own
    first batch; from the second step on, DDP's buffer broadcast makes rank 0's statistics everyone's.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("median", torch.zeros(channels))
        self.register_buffer("scale", torch.ones(channels))
        self.register_buffer("calibrated", torch.tensor(False))

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        if not bool(self.calibrated):
            with torch.no_grad():
                med, scale = robust_stats(x.detach(), valid)
                self.median.copy_(med)
                self.scale.copy_(scale)
                self.calibrated.fill_(True)
        return robust_scale(x, valid, self.median, self.scale)


def check_radar_input_norm(mode: str) -> str:
    """``mode`` if it is one of :data:`RADAR_INPUT_NORMS`, else a ConfigError naming them."""
    if mode not in RADAR_INPUT_NORMS:
        raise ConfigError(f"input_norm {mode!r}; choose one of {', '.join(RADAR_INPUT_NORMS)}")
    return mode
