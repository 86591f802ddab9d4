"""Training views for SAR-JEPA: geometry applied **jointly** to the image and its precomputed GR maps, photometry
to the image only (``gr-targets.md`` §5), or an ``online`` mode that returns images only for GR on the device.

Exactness: GR commutes with flips, transposes and rot90 bit-for-bit, so those are exact joint transforms. A crop
without resize is exact for every pixel at least ``max(GR_RADII)`` = 17 px away from a crop edge (windows there
lie inside the crop; nearer to the new border the reference's reflect padding would see different pixels). A crop
*with* resize resamples the GR maps (bilinear) and is only allowed with ``allow_approx_joint=True`` — recorded as
approximate. Randomness is drawn from ``SeedSequence([seed, epoch, global_position])`` of each sample, so views do
not depend on worker count or order.

Names: a transform receives the stored member names (``img.npy``, ``gr.npy``); the loader's ``keys`` names what it
delivers (:mod:`sardata.stream.keys`). With ``keys="torchgeo"`` the view is ``image`` / ``gr`` / ``label``, as
without a transform. Under ``keys="fields"`` :class:`JointAugment` still writes ``image`` / ``gr`` (deprecated, the
loaders warn); ``keep_names=True`` writes ``img.npy`` / ``gr.npy`` back under their own names. A georeferenced
sample's ``bounds`` follow the crop; a flip mirrors the pixels inside the same bounds (``aug["flip"]``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from sardata.errors import ConfigError
from sardata.stream.keys import crop_bounds


@dataclass(frozen=True)
class JointAugment:
    """RandomResizedCrop-style crop, horizontal flip and contrast jitter for (img, gr) pairs or images alone."""

    size: int = 224
    scale: tuple[float, float] = (0.2, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    resize: bool = True
    hflip: bool = True
    contrast: float = 0.0
    mode: str = "precomputed"  # precomputed | online
    allow_approx_joint: bool = False
    seed: int = 0
    keep_names: bool = False  # write img.npy / gr.npy back under their names (the loader's keys decide the rest)

    def __post_init__(self) -> None:
        if self.mode not in ("precomputed", "online"):
            raise ConfigError(f"augment mode {self.mode!r}; choose precomputed or online")
        if self.mode == "precomputed" and self.resize and not self.allow_approx_joint:
            raise ConfigError(
                "crop + resize of precomputed GR maps is approximate; set allow_approx_joint=True, use resize=False, "
                "or mode='online' (GR computed after augmentation)"
            )

    @property
    def fields(self) -> frozenset[str]:
        """The shard members this view reads (``ShardIterable(fields=...)``): online mode skips the GR bytes."""
        return frozenset({"img.npy", "cls"} | ({"gr.npy"} if self.mode == "precomputed" else set()))

    @property
    def renames_fields(self) -> bool:
        """Whether the view renames ``img.npy`` / ``gr.npy`` to ``image`` / ``gr`` itself (the deprecated habit)."""
        return not self.keep_names

    def params(self, sample: dict[str, Any], h: int, w: int) -> dict[str, Any]:
        """The random draw for one sample: crop box, flip, contrast factor."""
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, int(sample.get("__epoch__", 0)),
                                                            int(sample.get("__index__", 0))]))  # fmt: skip
        area = h * w
        for _ in range(10):
            target = area * rng.uniform(*self.scale)
            aspect = math.exp(rng.uniform(math.log(self.ratio[0]), math.log(self.ratio[1])))
            cw, ch = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
            if not self.resize:
                cw, ch = min(self.size, w), min(self.size, h)
            if 0 < cw <= w and 0 < ch <= h:
                break
        else:
            cw, ch = min(h, w), min(h, w)
        top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        flip = bool(self.hflip and rng.random() < 0.5)
        factor = float(rng.uniform(1 - self.contrast, 1 + self.contrast)) if self.contrast else 1.0
        return {"top": top, "left": left, "h": ch, "w": cw, "flip": flip, "contrast": factor}

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        img = _unit_image(sample["img.npy"])  # (C, H, W) float32 in [0, 1]
        p = self.params(sample, img.shape[-2], img.shape[-1])
        img = self._geometry(img, p, "bicubic")
        if p["contrast"] != 1.0:
            mean = img.mean()
            img = np.clip(mean + p["contrast"] * (img - mean), 0.0, 1.0).astype(np.float32)
        # other arrays (cplx.npy, mask.npy...) are not transformed, so they would no longer line up: dropped
        out = {k: v for k, v in sample.items() if not k.endswith(".npy")}
        image, gr = ("img.npy", "gr.npy") if self.keep_names else ("image", "gr")
        out[image] = img
        out["aug"] = p
        if out.get("bounds") is not None:  # keys="torchgeo", georeferenced: where the crop lies
            h, w = sample["img.npy"].shape[-2:]
            out["bounds"] = crop_bounds(out["bounds"], h, w, p["top"], p["left"], p["h"], p["w"])
        if self.mode == "precomputed":
            if "gr.npy" not in sample:
                raise ConfigError(
                    f"{sample.get('__key__')}: no gr.npy in the shards; build with --targets gr or use mode='online'"
                )
            out[gr] = self._geometry(np.asarray(sample["gr.npy"], dtype=np.float32), p, "bilinear")
        return out

    def _geometry(self, x: np.ndarray, p: dict[str, Any], interp: str) -> np.ndarray:
        x = x[:, p["top"] : p["top"] + p["h"], p["left"] : p["left"] + p["w"]]
        if self.resize and (p["h"], p["w"]) != (self.size, self.size):
            t = torch.from_numpy(np.ascontiguousarray(x))[None]
            t = F.interpolate(t, size=(self.size, self.size), mode=interp, align_corners=False)
            x = t[0].clamp_(float(x.min()), float(x.max())).numpy()  # no values outside the input range
        if p["flip"]:
            x = x[:, :, ::-1]
        return np.ascontiguousarray(x, dtype=np.float32)


def _unit_image(img: np.ndarray) -> np.ndarray:
    """8-bit images / 255; float images are taken as already in [0, 1] (built with --normalise)."""
    return img.astype(np.float32) / 255.0 if img.dtype == np.uint8 else img.astype(np.float32)
