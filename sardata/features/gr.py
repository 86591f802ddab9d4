"""Multi-scale gradient-by-ratio (GR) targets — the only GR implementation (``gr-targets.md``).

For radius k: over the reflect-padded image plus ε = 0.01, the half-box sums L, R, T, B (side 2k+1, each
including the centre line), ``gx = ln L − ln R``, ``gy = ln T − ln B``, ``GR_k = sqrt(gx² + gy²)``.

How it is computed (O(1) per pixel per scale; one code path, torch on CPU or CUDA):

1. Fixed point: ``q = round(x · 2^b)`` plus ``round(ε · 2^b)`` per pixel, reflect-padded once by ``max(radii)``
   (which contains the padding for every smaller k), integral image in float64. Every value is an integer multiple
   of one power-of-two unit and every prefix sum stays below 2^53 units, so all window sums are **exact and
   order-independent** on any device. ``b = 32`` (the spec's fixed point) unless the image is so large that the
   prefix sums would pass 2^53 units (> ≈1,400² px); then ``b = floor(53 − log2(padded pixels))`` (28 at 4096²;
   per-pixel error 2^-(b+1), still < 2e-7 relative on a half-sum).
2. A half-box is one window of (2k+1) × (k+1) pixels, and **R at column j is the same window as L at column
   j + k** (T/B likewise along rows). So each scale needs one log plane per direction of H × (W + k) windows, and
   ``gx`` is a difference of two shifted views of it — 8 logs per pixel for four scales instead of 16.
3. Opposite halves hold the same number of pixels, so the count cancels in ``log L − log R``: window *sums* are
   used, in a power-of-two unit chosen per radius set so that they lie around 1 (float32 ``log2`` then stays
   accurate to ~5e-7 absolute, as for window means). Each exact sum is rounded to float32 once; the difference of
   logs is exactly antisymmetric, so flips and transposes commute **bit-for-bit**, a constant image gives exactly 0
   and corners are exactly 0. Error against the float64 definition ≤ 5e-7 (mostly the float32 rounding of the
   output), well inside the 1e-5 tolerance.
4. Speed (``sardata bench gr``): buffers and their views are built once per chunk shape (:class:`_Workspace`) and
   every op writes into them (slicing costs as much as a small op at these sizes); CPU batches run in chunks of
   ~2^17 px so a chunk's planes stay in cache; the CPU output comes from numpy's allocator, which asks the kernel
   for transparent huge pages for large arrays — first-touch page faults of a fresh 4 KiB-paged output cost
   about a fifth of the whole computation. The result is an ordinary CPU tensor (its storage belongs to that numpy
   array, so it cannot be resized in place). Profile at 224², one thread: float32 log2 ≈ 25 %, the float64 window
   subtractions ≈ 30 %, the rest elementwise float32 passes, two cumsums, the output's page faults and Python.

Inputs must be finite, in [0, 1] (8-bit images / 255) and at least ``max(radii) + 1`` px on each side.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence

import numpy as np
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
#: CPU workspaces up to this size are kept per thread for the next call with the same shape: allocating and slicing
#: one costs about a fifth of a single 224² image, and build-shards calls GR one image at a time
_KEEP_WORKSPACE_BYTES = 1 << 24
_kept = threading.local()


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
    lo, hi = torch.aminmax(images)  # one pass over the batch; per-sample extrema only to name a bad sample
    if bool((lo >= 0) & (hi <= 1)):  # NaN fails both comparisons and ±Inf fails one: no separate isfinite pass
        return
    lo, hi = torch.aminmax(images.reshape(images.shape[0], -1), dim=1)
    i = int((~((lo >= 0) & (hi <= 1))).nonzero()[0])
    key = keys[i] if keys is not None else f"#{i}"
    raise GRInputError(
        f"sample {key}: GR needs finite values in [0, 1], got min {float(lo[i]):.4g} max {float(hi[i]):.4g} "
        "(compute GR before mean/std normalisation; scale 8-bit data by 1/255)"
    )


def quant_bits(height: int, width: int, pad: int) -> int:
    """Fixed-point bits for an image: 32, or fewer when the integral image of (x + ε) would exceed 2^53."""
    padded = (height + 2 * pad) * (width + 2 * pad) * (1 + GR_EPS)
    return min(32, int(math.floor(53 - math.log2(padded))))


def sum_shift(radii: Sequence[int]) -> int:
    """Power of two that centres the half-box sums of (x + ε) on 1 (in log2) over all radii.

    A sum over c pixels lies in [ε·c, (1 + ε)·c]; dividing by 2^shift keeps |log2| as small as it is for window means
    ([0.01, 1.01] → |log2| ≤ 6.7), so float32 log2 loses nothing. Powers of two scale exactly.
    """
    counts = [(k + 1) * (2 * k + 1) for k in radii]
    return round((math.log2(GR_EPS * min(counts)) + math.log2((1 + GR_EPS) * max(counts))) / 2)


def gr_maps(
    images: torch.Tensor, radii: Sequence[int] = GR_RADII, *, keys: Sequence[str] | None = None
) -> torch.Tensor:
    """GR maps of a batch: ``(N, 1, H, W)`` in [0, 1] → ``(N, len(radii), H, W)`` float32, channel s = radii[s].

    Raises:
        GRInputError: wrong shape/dtype, too small, non-finite or outside [0, 1].
    """
    check_images(images, radii, keys)
    n, _, h, w = images.shape
    out = _empty_output((n, len(radii), h, w), images.device)
    per = n if images.is_cuda else max(1, _CPU_CHUNK_PIXELS // (h * w))
    with torch.no_grad():  # a regression target, never differentiated; out= ops refuse inputs that require grad
        for start in range(0, n, per):
            x = images[start : start + per]
            _workspace(x.shape[0], h, w, tuple(radii), x.dtype, x.device).run(x, out[start : start + per])
    return out


def _workspace(n: int, h: int, w: int, radii: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> _Workspace:
    """The workspace for chunks of this shape: the calling thread's kept one (small CPU ones only) or a new one."""
    key = (n, h, w, radii, dtype == torch.float64, device)
    kept: dict[tuple, _Workspace] = _kept.__dict__.setdefault("workspaces", {})
    if key in kept:
        return kept[key]
    ws = _Workspace(n, h, w, radii, dtype, device)
    if device.type == "cpu" and ws.nbytes <= _KEEP_WORKSPACE_BYTES:
        if len(kept) >= 2:  # a batch needs at most two: full chunks and the last, shorter one
            kept.pop(next(iter(kept)))
        kept[key] = ws
    return ws


def _empty_output(shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """Uninitialised float32 output; on CPU backed by numpy, whose allocator asks for transparent huge pages."""
    if device.type != "cpu":
        return torch.empty(shape, dtype=torch.float32, device=device)
    return torch.from_numpy(np.empty(shape, dtype=np.float32))


class _Workspace:
    """Buffers and precomputed views for GR of chunks of ``n`` images of one shape; :meth:`run` fills an output.

    Layout: ``s`` is the (n, H+2P+1, W+2P+1) float64 integral image (leading zero row and column) of the fixed-point
    padded image, P = max(radii). For radius k, horizontal windows (rows i−k…i+k, columns c…c+k) start at padded
    columns c = P−k … P+W−1 (W + k of them): L at j is window j, R at j is window j + k. A *band* (the row-box sum
    of all prefix columns) turns each window into one more subtraction. Vertical windows mirror this along rows.
    """

    def __init__(self, n: int, h: int, w: int, radii: tuple[int, ...], dtype: torch.dtype, device: torch.device):
        p = max(radii)
        bits = quant_bits(h, w, p)
        unit = 2.0 ** -(bits + sum_shift(radii))
        self.pad, self.to_fixed, self.unit = p, 2.0**bits, unit
        self.eps = round(GR_EPS * 2.0**bits) * unit  # ε in the same fixed point: ε·count enters every half-sum
        f64 = torch.float64
        # x·2^b and its rounding are exact in float32 (power-of-two scaling); float64 input keeps float64
        self.xq = torch.empty((n, 1, h, w), dtype=f64 if dtype == f64 else torch.float32, device=device)
        self.s = torch.zeros((n, h + 2 * p + 1, w + 2 * p + 1), dtype=f64, device=device)
        self.s_in = self.s[:, 1:, 1:]
        band = torch.empty(n * max(h * (w + 2 * p + 1), (h + 2 * p + 1) * w), dtype=f64, device=device)
        logs = torch.empty(n * max(h * (w + p), (h + p) * w), dtype=torch.float32, device=device)
        self.g = torch.empty((n, 2, h, w), dtype=torch.float32, device=device)
        self.gx, self.gy = self.g.unbind(1)
        self.scales = [(self._horizontal(k, band, logs), self._vertical(k, band, logs)) for k in radii]
        self.nbytes = sum(t.numel() * t.element_size() for t in (self.xq, self.s, band, logs, self.g))

    def _horizontal(self, k: int, band: torch.Tensor, logs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Views for gx at radius k: (band upper, band lower, band, window upper, window lower, log plane, L, R, gx)."""
        s, p = self.s, self.pad
        n, _, h, w = self.xq.shape
        cols = slice(p - k, p + w + k + 1)
        b = band[: n * h * (w + 2 * k + 1)].view(n, h, w + 2 * k + 1)
        lw = logs[: n * h * (w + k)].view(n, h, w + k)
        upper, lower = s[:, p + k + 1 : p + k + 1 + h, cols], s[:, p - k : p - k + h, cols]
        return upper, lower, b, b[:, :, k + 1 : k + 1 + w + k], b[:, :, : w + k], lw, lw[..., :w], lw[..., k:], self.gx

    def _vertical(self, k: int, band: torch.Tensor, logs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The same views for gy: windows of rows r…r+k over columns j−k…j+k."""
        s, p = self.s, self.pad
        n, _, h, w = self.xq.shape
        rows = slice(p - k, p + h + k + 1)
        b = band[: n * (h + 2 * k + 1) * w].view(n, h + 2 * k + 1, w)
        lv = logs[: n * (h + k) * w].view(n, h + k, w)
        upper, lower = s[:, rows, p + k + 1 : p + k + 1 + w], s[:, rows, p - k : p - k + w]
        return upper, lower, b, b[:, k + 1 : k + 1 + h + k], b[:, : h + k], lv, lv[:, :h], lv[:, k:], self.gy

    def run(self, x: torch.Tensor, out: torch.Tensor) -> None:
        """Fill ``out`` (n, S, H, W) with the GR maps of ``x`` (n, 1, H, W)."""
        torch.mul(x.to(self.xq.dtype), self.to_fixed, out=self.xq).round_().mul_(self.unit)
        self.s_in.copy_(F.pad(self.xq, (self.pad,) * 4, mode="reflect")[:, 0]).add_(self.eps)
        self.s.cumsum_(1).cumsum_(2)  # exact: integer multiples of one unit, below 2^53 of them
        for directions, channel in zip(self.scales, out.unbind(1), strict=True):
            for upper, lower, band, wu, wl, logs, first, second, g in directions:
                torch.sub(upper, lower, out=band)
                torch.sub(wu, wl, out=logs).log2_()  # exact float64 window sums, rounded to float32 once
                torch.sub(first, second, out=g)  # log2 L − log2 R (or T − B)
            self.g.mul_(self.g)
            # square separately, then add (IEEE addition commutes: exact under transpose; a fused multiply-add such
            # as addcmul would not). torch.hypot is symmetric too but ~5x slower on CPU.
            torch.add(self.gx, self.gy, out=channel)
        out.sqrt_().mul_(_LN2)  # log2 → natural log units


def patchify_2d(maps: torch.Tensor, patch_size: int) -> torch.Tensor:
    """``(N, C, H, W)`` → ``(N, (H/p)(W/p), C·p²)``; patch index row-major, features scale-major then pixels."""
    n, c, h, w = maps.shape
    p = patch_size
    if h % p or w % p:
        raise GRInputError(f"image {h}x{w} is not a multiple of patch size {p}")
    x = maps.reshape(n, c, h // p, p, w // p, p)  # (N, C, Hp, p, Wp, p)
    return x.permute(0, 2, 4, 1, 3, 5).reshape(n, (h // p) * (w // p), c * p * p)


def gr_patch_targets(images: torch.Tensor, patch_size: int = 16, radii: Sequence[int] = GR_RADII) -> torch.Tensor:
    """Per-patch GR targets ``(N, num_patches, len(radii)·p²)`` — e.g. (N, 196, 1024) for 224 px, p = 16."""
    return patchify_2d(gr_maps(images, radii), patch_size)


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
