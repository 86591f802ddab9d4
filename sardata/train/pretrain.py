"""Self-supervised pretraining on streaming shards (SAR-JEPA / LoMaR-SAR, MAE, LoMaR-pixel, RadarPos...).

One loop for every registered ``task="pretrain"`` model: AdamW with the decay rule of sar-jepa.md §2, per-step
warm-up + cosine computed from the global step and the loader's exact length, gradient accumulation, optional
autocast and ``torch.compile``, DDP under ``torchrun`` (gloo on CPU, NCCL on GPU), checkpoints holding model,
optimiser, step and loader state (**exact resume**: a killed run continued from its last checkpoint produces the
same losses as an uninterrupted one), a non-finite-loss guard, ``metrics.jsonl`` + TensorBoard.

Design decisions where the spec is silent:

* The loader yields one per-rank batch per optimiser step; ``accum_steps`` splits it into equal micro-batches
  (so accumulation never changes which samples form a step, only the memory per forward).
* ``stop_at_step`` ends a run early **without** changing the schedule (budgeted runs, resume tests); the schedule
  always spans ``epochs``.
* The output directory belongs to one configuration: resuming with a different ``config_sha256`` is refused.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from sardata.config import canonical_json, config_sha256
from sardata.errors import ConfigError, NonFiniteLossError
from sardata.train.common import (
    Dist,
    MetricLog,
    ProgressFn,
    autocast,
    init_distributed,
    load_checkpoint,
    model_state,
    param_groups,
    save_checkpoint,
    seeded,
    step_generator,
    to_device,
)
from sardata.train.schedule import warmup_cosine


@dataclass(frozen=True)
class PretrainConfig:
    """``kind: pretrain`` recipes (``pipelines/*-pretrain*.yaml``). Paper defaults: sar-jepa.md §2."""

    kind: str
    name: str
    model: str
    data: list[str]
    model_overrides: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    weights: list[float] | None = None
    epoch_size: int | None = None
    split: str | None = None  # comma list of split values, e.g. "train,pool,unlabelled"; None = every sample
    view: str | None = None
    image_size: int = 224
    gr_mode: str = "online"  # online | precomputed (sar-jepa.md §2, gr-targets.md §5)
    gr_radii: list[int] | None = None  # GR target radii for a GR model; None = the model's default (scaled to size)
    crop_scale: list[float] = field(default_factory=lambda: [0.2, 1.0])
    crop_ratio: list[float] = field(default_factory=lambda: [3 / 4, 4 / 3])
    hflip: bool = True
    contrast: float = 0.5
    radar_view: dict[str, Any] = field(default_factory=dict)
    global_batch: int = 300
    accum_steps: int = 1
    epochs: int = 300
    warmup_epochs: float = 20
    blr: float = 1e-3
    lr: float | None = None  # absolute peak lr; default blr · global_batch / 256
    min_lr: float = 0.0
    weight_decay: float = 0.05
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    eps: float = 1e-8
    precision: str = "fp32"
    compile: bool = False
    seed: int = 0
    num_workers: int = 0
    device: str = "auto"
    checkpoint_every_epochs: int = 50
    checkpoint_every_steps: int | None = None
    stop_at_step: int | None = None
    log_every_steps: int = 1

    def __post_init__(self) -> None:
        if self.kind != "pretrain":
            raise ConfigError(f"recipe kind {self.kind!r} is not a pretrain recipe")
        if self.gr_mode not in ("online", "precomputed"):
            raise ConfigError(f"gr_mode {self.gr_mode!r}; choose online or precomputed")
        if self.global_batch < 1 or self.accum_steps < 1 or self.epochs < 1:
            raise ConfigError("global_batch, accum_steps and epochs must be positive")
        if not self.data:
            raise ConfigError("pretrain recipe has no data (list shard directories under `data:`)")

    @property
    def model_kwargs(self) -> dict[str, Any]:
        """Constructor arguments of the recipe's model: ``model_overrides`` plus ``gr_radii`` when set."""
        return {**self.model_overrides, **({"gr_radii": list(self.gr_radii)} if self.gr_radii is not None else {})}

    @property
    def peak_lr(self) -> float:
        return self.lr if self.lr is not None else self.blr * self.global_batch / 256


@dataclass
class PretrainResult:
    out: Path
    steps: int
    epochs_done: float
    last_loss: float
    images_per_s: float
    resumed_from: int | None
    config_sha256: str


class _LossModule(torch.nn.Module):
    """Routes ``forward`` to ``forward_loss`` so DDP's gradient hooks and ``torch.compile`` see the real step."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, Any], generator: torch.Generator) -> dict[str, Any]:
        return self.model.forward_loss(batch, generator)


def build_transform(cfg: PretrainConfig, modality: str, train: bool = True) -> Any:
    """The sample transform of the recipe's modality: joint SAR views or radar 2×512 views."""
    if modality == "sar_image":
        from sardata.stream.transforms import JointAugment

        return JointAugment(size=cfg.image_size, scale=tuple(cfg.crop_scale), ratio=tuple(cfg.crop_ratio),
                            hflip=cfg.hflip, contrast=cfg.contrast, mode=cfg.gr_mode,
                            allow_approx_joint=cfg.gr_mode == "precomputed", seed=cfg.seed)  # fmt: skip
    if modality == "radar":
        from sardata.stream.radar import RadarView

        return RadarView(**{"train": train, "seed": cfg.seed, **cfg.radar_view})
    raise ConfigError(f"no training view for modality {modality!r}")


def check_gr_radii(model: torch.nn.Module, indexes: list[Any], gr_mode: str) -> list[int] | None:
    """The model's GR radii (``None`` for models without GR targets); with ``gr_mode="precomputed"`` every
    dataset's card must record the same radii (``features.gr.radii``), else a ConfigError says how to fix it:
    a target at other radii is another target (issue 17), never silently trained on."""
    radii = getattr(model, "gr_radii", None)
    if radii is None or getattr(model, "target", "gr") != "gr":
        return None
    if gr_mode == "precomputed":
        for index in indexes:
            stored = index.card.get("features", {}).get("gr", {}).get("radii")
            if stored is not None and [int(r) for r in stored] != list(radii):
                raise ConfigError(
                    f"{index.root}: precomputed GR targets use radii {list(stored)}, the model uses {list(radii)}; "
                    f"rebuild the shards with --gr-radii {','.join(map(str, radii))}, or set gr_radii: "
                    f"{list(stored)} in the recipe, or use gr_mode: online"
                )
    return list(radii)


def _split_micro(batch: dict[str, Any], parts: int) -> list[dict[str, Any]]:
    n = next(len(v) for v in batch.values() if isinstance(v, (torch.Tensor, list)))
    if n % parts:
        raise ConfigError(f"per-rank batch {n} is not divisible by accum_steps {parts}")
    size = n // parts
    return [
        {k: v[i * size : (i + 1) * size] if isinstance(v, (torch.Tensor, list)) else v for k, v in batch.items()}
        for i in range(parts)
    ]


def _check_channels(batch: dict[str, Any], where: str) -> None:
    img = batch.get("image")
    if img is not None and img.shape[1] != 1:
        raise ConfigError(
            f"{where}: images have {img.shape[1]} channels; SAR models take 1 — rebuild the shards with "
            "`--channel VV` (or an index)"
        )


def _train_step(module: torch.nn.Module, opt: torch.optim.Optimizer, batch: dict[str, Any], cfg: PretrainConfig,
                dist: Dist, step: int, scaler: torch.amp.GradScaler) -> dict[str, float]:  # fmt: skip
    """One optimiser step over ``accum_steps`` micro-batches; returns the mean loss and diagnostics."""
    opt.zero_grad(set_to_none=True)
    stats: dict[str, float] = {}
    micro = _split_micro(batch, cfg.accum_steps)
    for m, mb in enumerate(micro):
        gen = step_generator(cfg.seed, step, dist.rank * cfg.accum_steps + m, dist.device)
        sync = module.no_sync() if dist.ddp and m < len(micro) - 1 else contextlib.nullcontext()
        with sync:
            with autocast(cfg.precision, dist.device):
                out = module(mb, gen)
            loss = out["loss"].float()
            _guard_finite(loss, dist, step, mb)
            scaler.scale(loss / len(micro)).backward()
        for k, v in out.items():
            if (isinstance(v, torch.Tensor) and v.numel() == 1) or isinstance(v, (int, float)):
                stats[k] = stats.get(k, 0.0) + float(v.detach() if isinstance(v, torch.Tensor) else v) / len(micro)
    scaler.step(opt)
    scaler.update()
    return stats


def _guard_finite(loss: torch.Tensor, dist: Dist, step: int, batch: dict[str, Any]) -> None:
    """Every rank learns whether any rank's loss is non-finite (so none hangs in the all-reduce), then the bad
    rank raises with its sample keys."""
    bad = torch.tensor([0.0 if torch.isfinite(loss) else 1.0], device=loss.device)
    if dist.ddp:
        torch.distributed.all_reduce(bad, op=torch.distributed.ReduceOp.MAX)
    if bad.item():
        keys = batch.get("__key__", [])
        raise NonFiniteLossError(
            f"non-finite loss {float(loss)} at step {step} on rank {dist.rank} (samples {list(keys)[:8]}); "
            "check the inputs with `sardata preview samples`, lower the lr or use precision=fp32"
        )


def _prepare_out(out: Path, cfg: PretrainConfig, sha: str, dist: Dist) -> None:
    card = out / "config.json"
    if card.exists():
        saved = json.loads(card.read_text())
        if saved.get("config_sha256") != sha:
            raise ConfigError(
                f"{out} holds a run with another configuration ({saved.get('config_sha256', '?')[:12]}); "
                "use a new --out or delete it"
            )
    elif dist.is_main:
        out.mkdir(parents=True, exist_ok=True)
        card.write_text(json.dumps({"config": json.loads(canonical_json(cfg)), "config_sha256": sha}, indent=1))


def pretrain(cfg: PretrainConfig, out: str | Path, *, resume: bool = True,
             progress: ProgressFn | None = None) -> PretrainResult:  # fmt: skip
    """Run (or continue) the pretraining recipe ``cfg`` into ``out``; see the module docstring."""
    from torch.utils.data import DataLoader

    from sardata.models import create_model
    from sardata.stream.dataset import ShardIterable

    dist = init_distributed(cfg.device)
    out = Path(out)
    sha = config_sha256(replace(cfg, stop_at_step=None, num_workers=0, device="auto"))
    _prepare_out(out, cfg, sha, dist)
    if dist.ddp:
        torch.distributed.barrier()
    overrides = cfg.model_kwargs
    with seeded(cfg.seed, 0):
        model = create_model(cfg.model, **overrides)
    if getattr(model, "task", None) != "pretrain":
        raise ConfigError(f"model {cfg.model!r} is not a pretraining model (task={getattr(model, 'task', None)})")
    model.to(dist.device)
    opt = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=0.0, betas=tuple(cfg.betas), eps=cfg.eps)
    transform = build_transform(cfg, model.modality)
    ds = ShardIterable(cfg.data, cfg.global_batch, split=cfg.split, view=cfg.view, seed=cfg.seed,
                       world_size=dist.world_size, rank=dist.rank, num_workers=cfg.num_workers,
                       transform=transform, weights=cfg.weights, epoch_size=cfg.epoch_size,
                       fields=getattr(transform, "fields", None))  # fmt: skip
    radii = check_gr_radii(model, ds.indexes, cfg.gr_mode)
    spe = len(ds)
    total, warmup = cfg.epochs * spe, round(cfg.warmup_epochs * spe)
    step, loader_state, resumed = 0, None, None
    last = out / "checkpoints" / "last.pt"
    if resume and last.exists():
        ckpt = load_checkpoint(last, dist.device)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        step, loader_state, resumed = int(ckpt["step"]), ckpt["loader"], int(ckpt["step"])
    module: torch.nn.Module = _LossModule(model)
    if dist.ddp:
        ids = [dist.device.index] if dist.device.type == "cuda" else None
        module = torch.nn.parallel.DistributedDataParallel(module, device_ids=ids)
    if cfg.compile:
        module = torch.compile(module)
    scaler = torch.amp.GradScaler(dist.device.type, enabled=cfg.precision == "fp16")
    loader = DataLoader(ds, batch_size=None, num_workers=cfg.num_workers, pin_memory=dist.device.type == "cuda")
    log = MetricLog(out, enabled=dist.is_main)
    stop = min(total, cfg.stop_at_step or total)
    stats: dict[str, float] = {"loss": math.nan}
    rates: list[float] = []

    def checkpoint(path: Path) -> None:
        if dist.is_main:
            state = ds.state_dict(step % spe)
            state["epoch"] = step // spe
            save_checkpoint(path, {"kind": "pretrain", "model_name": cfg.model,
                                   "model_overrides": overrides, "gr_radii": radii,
                                   "input_norm": getattr(model, "input_norm", None), "model": model_state(model),
                                   "optimizer": opt.state_dict(), "step": step, "loader": state,
                                   "config": json.loads(canonical_json(cfg)), "config_sha256": sha,
                                   "metrics": dict(stats)})  # fmt: skip

    try:
        model.train()
        while step < stop:
            epoch = step // spe
            if loader_state is not None:
                ds.load_state_dict(loader_state)
                loader_state = None
            else:
                ds.set_epoch(epoch)
            t0 = time.perf_counter()
            for batch in loader:
                batch = to_device(batch, dist.device)
                _check_channels(batch, cfg.name)
                lr = warmup_cosine(step, total, warmup, cfg.peak_lr, cfg.min_lr)
                for group in opt.param_groups:
                    group["lr"] = lr
                stats = _train_step(module, opt, batch, cfg, dist, step, scaler)
                if dist.ddp:
                    t = torch.tensor([stats["loss"]], device=dist.device)
                    torch.distributed.all_reduce(t)
                    stats["loss"] = float(t) / dist.world_size
                step += 1
                now = time.perf_counter()
                rate = cfg.global_batch / max(now - t0, 1e-9)
                rates.append(rate)
                t0 = now
                if step % cfg.log_every_steps == 0 or step == stop:
                    log.log(step, {**stats, "lr": lr, "epoch": step / spe, "img_per_s": rate})
                if progress:
                    progress(step, stop, {"loss": stats["loss"], "img/s": rate})
                if cfg.checkpoint_every_steps and step % cfg.checkpoint_every_steps == 0:
                    checkpoint(last)
                if step % spe == 0 and (step // spe) % cfg.checkpoint_every_epochs == 0:
                    checkpoint(out / "checkpoints" / f"epoch-{step // spe:04d}.pt")
                if step >= stop:
                    break
        checkpoint(last)
    finally:
        log.close()
    window = rates[1:] or rates
    return PretrainResult(out, step, step / spe, stats["loss"], sum(window) / max(len(window), 1), resumed, sha)
