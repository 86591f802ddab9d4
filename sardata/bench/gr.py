"""``sardata bench gr``: GR throughput, integral-image path vs the dense conv2d formulation, same run.

Both sides compute the full target (four scales, logs, magnitude) for the same random speckle images; the
baseline is :func:`sardata.features.gr.gr_maps_dense` in float32 (what the reference does). Timings are the best
of ``repeat`` runs after one warm-up. CUDA rows appear when a GPU is present.
"""

from __future__ import annotations

import os
import time
from typing import Any

import torch

from sardata.features.gr import gr_maps, gr_maps_dense


def _images(n: int, size: int, device: str) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x = torch.rand((n, 1, size, size), generator=g).pow_(2)  # speckle-like skew, values in [0, 1]
    return x.to(device)


def _rate(fn, x: torch.Tensor, repeat: int) -> float:
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    fn(x)
    sync()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(x)
        sync()
        best = min(best, time.perf_counter() - t0)
    return x.shape[0] / best


def bench_gr(size: int = 224, batch: int = 64, dense_batch: int = 4, repeat: int = 3) -> list[dict[str, Any]]:
    """Rows of {device, threads, gr_img_s, dense_img_s, ratio}."""
    rows = []
    saved = torch.get_num_threads()
    try:
        for threads in sorted({1, os.cpu_count() or 1}):
            torch.set_num_threads(threads)
            fast = _rate(gr_maps, _images(batch, size, "cpu"), repeat)
            dense = _rate(gr_maps_dense, _images(dense_batch * threads, size, "cpu"), repeat)
            rows.append({"device": "cpu", "threads": threads, "size": size, "gr_img_s": fast, "dense_img_s": dense,
                         "ratio": fast / dense})  # fmt: skip
    finally:
        torch.set_num_threads(saved)
    if torch.cuda.is_available():
        torch.backends.cudnn.allow_tf32 = False  # the baseline in full float32, as on CPU
        fast = _rate(gr_maps, _images(batch * 4, size, "cuda"), repeat)
        dense = _rate(gr_maps_dense, _images(batch, size, "cuda"), repeat)
        rows.append({"device": torch.cuda.get_device_name(), "threads": None, "size": size, "gr_img_s": fast,
                     "dense_img_s": dense, "ratio": fast / dense})  # fmt: skip
    return rows
