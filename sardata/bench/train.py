"""``sardata bench train``: images/s and peak memory of one pretraining step, GR targets ``online`` (computed on the
device from the augmented batch, inside the step) vs ``precomputed`` (decoded from the shards, handed to the step),
measured in the same run on the same model, batch and device.

Each configuration runs in a fresh interpreter so its peak memory is its own (CPU: ``VmHWM`` of the process; GPU:
``torch.cuda.max_memory_allocated``). The batch is synthetic speckle (gamma-distributed intensity, clipped to
[0, 1]): the step's cost does not depend on image content. The first ``warmup`` steps are not timed.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def _hwm_mb() -> float:
    text = Path("/proc/self/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", text).group(1)) / 1024


def _child(mode: str, recipe: str, device: str, steps: int, warmup: int, batch: int | None) -> None:
    """One configuration; prints a JSON line (executed in a fresh interpreter)."""
    import torch

    from sardata.features.gr import gr_maps
    from sardata.models import create_model
    from sardata.recipes import load_yaml
    from sardata.train.common import param_groups, pick_device, seeded, step_generator

    cfg = load_yaml(recipe)
    dev = pick_device(device)
    n = batch or cfg.global_batch
    with seeded(0, 0):
        model = create_model(cfg.model, **cfg.model_kwargs).to(dev)
    opt = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=1e-4)
    gen = torch.Generator().manual_seed(0)
    images = (torch.empty(n, 1, cfg.image_size, cfg.image_size).exponential_(generator=gen) * 0.25).clamp_(0, 1)
    gr = gr_maps(images, model.gr_radii) if mode == "precomputed" else None  # the model's own radii
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    times = []
    for step in range(warmup + steps):
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        t0 = time.perf_counter()
        batch_in = {"image": images.to(dev, non_blocking=True)}
        if gr is not None:
            batch_in["gr"] = gr.to(dev, non_blocking=True)
        out = model.forward_loss(batch_in, step_generator(0, step, 0, dev))
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        if step >= warmup:
            times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else _hwm_mb()
    print(json.dumps({"mode": mode, "device": dev.type, "batch": n, "img_per_s": n * len(times) / sum(times),
                      "peak_mb": peak, "threads": torch.get_num_threads()}))  # fmt: skip


def bench_train(recipe: str | Path, devices: tuple[str, ...] = ("cpu",), steps: int = 10, warmup: int = 2,
                batch: int | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """Run online and precomputed GR on each device; return one row per configuration with the ratio
    precomputed / online."""
    rows = []
    for device in devices:
        pair = {}
        for mode in ("online", "precomputed"):
            code = (f"from sardata.bench.train import _child; _child({mode!r}, {str(recipe)!r}, {device!r}, "
                    f"{steps}, {warmup}, {batch!r})")  # fmt: skip
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
            pair[mode] = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(pair[mode])
        pair["precomputed"]["vs_online"] = pair["precomputed"]["img_per_s"] / pair["online"]["img_per_s"]
        pair["online"]["vs_online"] = 1.0
    return rows
