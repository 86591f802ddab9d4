"""Multi-scale gradient-by-ratio (GR) targets — the only GR implementation (``gr-targets.md``).

For radius k: over the reflect-padded image plus ε = 0.01, the half-box sums L, R, T, B (side 2k+1, each
including the centre line), ``gx = ln L − ln R``, ``gy = ln T − ln B``, ``GR_k = sqrt(gx² + gy²)``.

How it is computed (O(1) per pixel per scale, torch on CPU or CUDA):

1. Reflect-pad once by ``max(radii)``; quantise ``q = round(x · 2^b)``; integral image of q in float64. q is
   integer-valued and every prefix sum stays below 2^53, so the sums are **exact and order-independent** on any
   device. ``b = 32`` (the spec's fixed point) unless the image is so large that 2^b · padded pixels would pass
   2^53 (> ≈1,400² px); then ``b = floor(53 − log2(padded pixels))`` (28 at 4096²; per-pixel error 2^-(b+1),
   still < 2e-7 relative on a half-sum).
2. A half-box is one window of (2k+1) × (k+1) pixels, and **R at column j is the same window as L at column
   j + k** (T/B likewise along rows). So each scale needs one log plane per direction of H × (W + k) windows, and
   ``gx`` is a difference of two shifted views of it — 8 logs per pixel for four scales instead of 16.
3. Window means of x + ε are rounded to float32 once and ``log2`` is taken in float32; the difference of logs
   is exactly antisymmetric, so flips and transposes commute **bit-for-bit**, a constant image gives exactly 0
   and corners are exactly 0. Error against the float64 definition ≈2e-7, well inside the 1e-5 tolerance.

Inputs must be finite, in [0, 1] (8-bit images / 255) and at least ``max(radii) + 1`` px on each side.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from sardata.errors import GRInputError
from sardata.features.grcodec import (  # noqa: F401 - re-exported: constants and codecs live in one place
    GR_CODECS,
    GR_EPS,
    GR_MAX,
    GR_RADII,
    GR_VERSION,
    decode_gr,
    encode_gr,
)

_LN2 = math.log(2.0)
#: images per internal chunk on CPU: keeps the working planes of one chunk inside the core's cache
_CPU_CHUNK_PIXELS = 1 << 17


def check_images(images: torch.Tensor, radii: Sequence[int] = GR_RADII, keys: Sequence[str] | None = None) -> None:
    """Raise :class:`GRInputError` (naming the sample key and its min/max) if GR is undefined for ``images``."""
    if images.ndim != 4 or images.shape[1] != 1:
        raise GRInputError(f"GR needs (N, 1, H, W) images, got shape {tuple(images.shape)}")
    h, w = images.shape[-2:]
    if min(h, w) <= max(radii):
        where = f"sample {keys[0]}: " if keys else ""
        raise GRInputError(
            f"{where}GR with radius {max(radii)} needs images larger than {max(radii)} px, got {h}x{w} "
            "(build with --size-policy resize/resize-crop --size N)"
        )
    if not images.is_floating_point():
        raise GRInputError(f"GR needs float images in [0, 1], got {images.dtype} (divide 8-bit images by 255)")
    lo, hi = torch.aminmax(images.reshape(images.shape[0], -1), dim=1)
    bad = ~((lo >= 0) & (hi <= 1))  # NaN fails both comparisons and ±Inf fails one: no separate isfinite pass
    if bool(bad.any()):
        i = int(bad.nonzero()[0])
        key = keys[i] if keys is not None else f"#{i}"
        raise GRInputError(
            f"sample {key}: GR needs finite values in [0, 1], got min {float(lo[i]):.4g} max {float(hi[i]):.4g} "
            "(compute GR before mean/std normalisation; scale 8-bit data by 1/255)"
        )


def quant_bits(height: int, width: int, pad: int) -> int:
    """Fixed-point bits for an image: 32, or fewer when the integral image of (x + ε) would exceed 2^53."""
    padded = (height + 2 * pad) * (width + 2 * pad) * (1 + GR_EPS)
    return min(32, int(math.floor(53 - math.log2(padded))))


def gr_maps(
    images: torch.Tensor, radii: Sequence[int] = GR_RADII, *, keys: Sequence[str] | None = None
) -> torch.Tensor:
    """GR maps of a batch: ``(N, 1, H, W)`` in [0, 1] → ``(N, len(radii), H, W)`` float32, channel s = radii[s].

    Raises:
        GRInputError: wrong shape/dtype, too small, non-finite or outside [0, 1].
    """
    check_images(images, radii, keys)
    n, _, h, w = images.shape
    out = torch.empty((n, len(radii), h, w), dtype=torch.float32, device=images.device)
    per = n if images.is_cuda else max(1, _CPU_CHUNK_PIXELS // (h * w))
    for start in range(0, n, per):
        _gr_chunk(images[start : start + per, 0], tuple(radii), out[start : start + per])
    return out


def _gr_chunk(x: torch.Tensor, radii: tuple[int, ...], out: torch.Tensor) -> None:
    """Fill ``out`` (n, S, H, W) with the GR maps of ``x`` (n, H, W)."""
    n, h, w = x.shape
    pad = max(radii)
    bits = quant_bits(h, w, pad)
    q = F.pad(x[:, None].to(torch.float64), (pad, pad, pad, pad), mode="reflect")[:, 0]  # (n, H+2P, W+2P)
    q.add_(GR_EPS).mul_(2.0**bits).round_()  # (x + ε) in fixed point: ε enters every half-sum as count·ε
    s = F.pad(q.cumsum_(1).cumsum_(2), (1, 0, 1, 0))  # (n, H+2P+1, W+2P+1) exact integral image
    del q
    for ch, k in enumerate(radii):
        scale = 1.0 / ((k + 1) * (2 * k + 1) * 2.0**bits)  # window sum → window mean of (x + ε), in [0.01, 1.01]
        # horizontal: row band i-k..i+k, windows of columns c..c+k for c = j+P-k .. j+P  (W + k of them)
        band = s[:, pad + k + 1 : pad + k + 1 + h, :] - s[:, pad - k : pad - k + h, :]  # (n, H, W+2P+1)
        lw = _log_windows(band[:, :, pad + 1 : pad + 1 + w + k], band[:, :, pad - k : pad + w], scale)
        del band
        gx = lw[:, :, :w] - lw[:, :, k : k + w]  # log2 L − log2 R   (n, H, W)
        del lw
        # vertical: column band j-k..j+k, windows of rows r..r+k
        band = s[:, :, pad + k + 1 : pad + k + 1 + w] - s[:, :, pad - k : pad - k + w]  # (n, H+2P+1, W)
        lv = _log_windows(band[:, pad + 1 : pad + 1 + h + k, :], band[:, pad - k : pad + h, :], scale)
        del band
        gy = lv[:, :h] - lv[:, k : k + h]  # log2 T − log2 B
        del lv
        # square separately, then add (IEEE addition commutes: exact under transpose; a fused multiply-add such as
        # addcmul would not). torch.hypot is symmetric too but ~5x slower on CPU.
        out[:, ch] = gx.mul_(gx).add_(gy.mul_(gy)).sqrt_()
        del gx, gy
    out.mul_(_LN2)  # log2 → natural log units


def _log_windows(upper: torch.Tensor, lower: torch.Tensor, scale: float) -> torch.Tensor:
    """log2 of the window means ``(upper − lower) · scale`` in float32.

    The difference of exact float64 prefix sums is itself exact; it is rounded to float32 in the same pass.
    Taking means first keeps log2's arguments in [0.01, 1.01], where float32 log2 is accurate to ~1e-7 absolute.
    """
    window = torch.empty(upper.shape, dtype=torch.float32, device=upper.device)
    return torch.sub(upper, lower, out=window).mul_(scale).log2_()


def patchify(maps: torch.Tensor, patch_size: int) -> torch.Tensor:
    """``(N, C, H, W)`` → ``(N, (H/p)(W/p), C·p²)``; patch index row-major, features scale-major then pixels."""
    n, c, h, w = maps.shape
    p = patch_size
    if h % p or w % p:
        raise GRInputError(f"image {h}x{w} is not a multiple of patch size {p}")
    x = maps.reshape(n, c, h // p, p, w // p, p)  # (N, C, Hp, p, Wp, p)
    return x.permute(0, 2, 4, 1, 3, 5).reshape(n, (h // p) * (w // p), c * p * p)


def gr_patch_targets(images: torch.Tensor, patch_size: int = 16, radii: Sequence[int] = GR_RADII) -> torch.Tensor:
    """Per-patch GR targets ``(N, num_patches, len(radii)·p²)`` — e.g. (N, 196, 1024) for 224 px, p = 16."""
    return patchify(gr_maps(images, radii), patch_size)


# ----------------------------------------------------------------------------------------------- baseline
def half_box_kernels(k: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The four dense (2k+1)² half-box kernels L, R, T, B as a conv weight ``(4, 1, 2k+1, 2k+1)``."""
    wgt = torch.zeros(4, 1, 2 * k + 1, 2 * k + 1, dtype=dtype)
    wgt[0, :, :, : k + 1] = 1
    wgt[1, :, :, k:] = 1
    wgt[2, :, : k + 1, :] = 1
    wgt[3, :, k:, :] = 1
    return wgt


def gr_maps_dense(
    images: torch.Tensor, radii: Sequence[int] = GR_RADII, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """The reference's formulation, as the benchmark baseline and a test cross-check: per scale, four separate
    single-output dense conv2d calls with the (2k+1)² half-box kernels on the padded image + ε, then
    ``ln(L/R)``, ``ln(T/B)`` and their 2-norm. O(k²) per pixel; never used for targets."""
    x = images.to(dtype)
    outs = []
    for k in radii:
        xp = F.pad(x, (k, k, k, k), mode="reflect") + GR_EPS
        left, right, top, bottom = (F.conv2d(xp, w[None].to(x.device)) for w in half_box_kernels(k, dtype))
        gx, gy = torch.log(left / right), torch.log(top / bottom)
        outs.append(torch.stack([gx, gy], dim=-1).norm(dim=-1))
    return torch.cat(outs, 1).to(torch.float32)
