"""Pieces every trainer shares: device and process-group setup, seeded generators, batch moves, metric logs and
checkpoint files.

Randomness rule (``architecture.md`` §5.3): model initialisation runs under ``torch.random.fork_rng`` with a seed
from the run seed, and every stochastic draw in a step (masks, windows) uses a ``torch.Generator`` seeded from
``SeedSequence([seed, global_step, micro_shard])`` where ``micro_shard = rank·accum_steps + micro_step``. One process
with ``accum_steps = 2`` therefore draws exactly what two DDP ranks with ``accum_steps = 1`` draw for the same
global batch, so their gradients are equal (tested), and a resumed run redraws exactly what it would have drawn.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sardata.atomic import atomic_path
from sardata.errors import ConfigError, LoaderStateError
from sardata.models.layers.seq import forked_rng

CHECKPOINT_FORMAT = "sardata-checkpoint/1"


@dataclass(frozen=True)
class Dist:
    """Where this process sits: rank, world size, device; ``ddp`` when a process group is running."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    ddp: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def pick_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """``auto`` → this rank's CUDA device when one exists, else CPU; ``cuda`` without a GPU is a ConfigError."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError("device cuda requested but no CUDA device is visible; use device=cpu or auto")
        return torch.device("cuda", local_rank) if name == "cuda" else torch.device(name)
    if name != "cpu":
        raise ConfigError(f"device {name!r}; choose auto, cpu or cuda")
    return torch.device("cpu")


def init_distributed(device: str = "auto") -> Dist:
    """Join the ``torchrun`` process group when ``WORLD_SIZE > 1`` (NCCL on GPU, gloo on CPU), else run alone."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    dev = pick_device(device, local)
    if world > 1 and not torch.distributed.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        torch.distributed.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return Dist(rank, world, local, dev, world > 1)


def seed_int(*parts: int) -> int:
    """A 63-bit seed from integers (never Python ``hash``)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(2, np.uint64)[0] >> np.uint64(1))


def step_generator(seed: int, step: int, micro_shard: int, device: torch.device) -> torch.Generator:
    """The generator for one micro-batch of one global step (see the module docstring)."""
    gen = torch.Generator(device=device)
    gen.manual_seed(seed_int(seed, step, micro_shard))
    return gen


@contextlib.contextmanager
def seeded(seed: int, *parts: int) -> Iterator[None]:
    """Run a block (model / head construction) with the global RNG seeded, restoring it afterwards.

    The trainers' form of :func:`~sardata.models.layers.seq.forked_rng`: the seed is derived from the run seed
    and ``parts`` (:func:`seed_int`), so each construction site draws an independent stream.
    """
    with forked_rng(seed_int(seed, *parts)):
        yield


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """Tensors to ``device`` (non-blocking); keys, metadata and other lists stay as they are."""
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """``fp32`` → no autocast; ``bf16`` on CPU or GPU; ``fp16`` on GPU only (with a GradScaler in the trainer)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError("precision fp16 needs a CUDA device; use bf16 or fp32 on CPU")
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    if dtype is None:
        raise ConfigError(f"precision {precision!r}; choose fp32, bf16 or fp16")
    return torch.autocast(device.type, dtype=dtype)


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: no decay for 1-D parameters (norms) and biases; everything else (including ``cls_token``,
    ``mask_token`` and iRPE tables, sar-jepa.md §2) decays."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 or name.endswith(".bias") else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


class MetricLog:
    """Appends one JSON object per line to ``metrics.jsonl`` (flushed, so a kill loses at most the line being
    written) and mirrors scalars to TensorBoard when ``tensorboard`` is installed (the ``[train]`` extra)."""

    def __init__(self, out: Path, enabled: bool = True, tensorboard: bool = True) -> None:
        self.enabled = enabled
        self.fh = open(out / "metrics.jsonl", "a", encoding="utf-8") if enabled else None  # noqa: SIM115
        self.tb = None
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is optional
                self.tb = None
            else:
                self.tb = SummaryWriter(str(out / "tb"))

    def log(self, step: int, values: dict[str, Any]) -> None:
        if not self.enabled:
            return
        row = {"step": step, "time": round(time.time(), 3), **values}
        self.fh.write(json.dumps(row, sort_keys=True) + "\n")
        self.fh.flush()
        if self.tb is not None:
            for k, v in values.items():
                if isinstance(v, (int, float)) and k not in ("epoch",):
                    self.tb.add_scalar(k, v, step)

    def close(self) -> None:
        if self.fh:
            self.fh.close()
        if self.tb is not None:
            self.tb.close()


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """``torch.save`` to a temp file, fsync, rename: a kill never leaves a torn checkpoint."""
    payload = {"format": CHECKPOINT_FORMAT, **payload}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, fsync=True) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load with ``weights_only=True`` (tensors and plain containers only: no arbitrary unpickling)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"checkpoint {path} does not exist; pass a file written by `sardata train`")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for foreign/corrupt files
        raise LoaderStateError(f"{path}: not a readable sardata checkpoint ({exc})") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise LoaderStateError(f"{path}: not a {CHECKPOINT_FORMAT} file; train it with `sardata train`")
    return ckpt


def model_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """State dict of the bare model (unwrapping DDP and ``torch.compile``)."""
    inner = getattr(model, "module", model)
    inner = getattr(inner, "_orig_mod", inner)
    return inner.state_dict()


ProgressFn = Callable[[int, int, dict[str, float]], None]
