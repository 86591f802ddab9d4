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


@dataclass
class _Run:
    """One pretraining run's moving parts and counters, shared by the setup, the step and the checkpoint code."""

    cfg: PretrainConfig
    dist: Dist
    out: Path
    sha: str
    model: torch.nn.Module
    opt: torch.optim.Optimizer
    ds: Any
    radii: list[int] | None
    spe: int  # steps per epoch: the loader's exact length
    step: int = 0
    resumed_from: int | None = None
    stats: dict[str, float] = field(default_factory=lambda: {"loss": math.nan})
    rates: list[float] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.cfg.epochs * self.spe

    @property
    def stop(self) -> int:
        return min(self.total, self.cfg.stop_at_step or self.total)

    @property
    def last(self) -> Path:
        return self.out / "checkpoints" / "last.pt"

    def checkpoint(self, path: Path) -> None:
        """Model, optimiser, step and loader position (main rank only): what exact resume needs."""
        if not self.dist.is_main:
            return
        state = self.ds.state_dict(self.step % self.spe)
        state["epoch"] = self.step // self.spe
        save_checkpoint(path, {"kind": "pretrain", "model_name": self.cfg.model,
                               "model_overrides": self.cfg.model_kwargs, "gr_radii": self.radii,
                               "input_norm": getattr(self.model, "input_norm", None), "model": model_state(self.model),
                               "optimizer": self.opt.state_dict(), "step": self.step, "loader": state,
                               "config": json.loads(canonical_json(self.cfg)), "config_sha256": self.sha,
                               "metrics": dict(self.stats)})  # fmt: skip


def pretrain(cfg: PretrainConfig, out: str | Path, *, resume: bool = True,
             progress: ProgressFn | None = None) -> PretrainResult:  # fmt: skip
    """Run (or continue) the pretraining recipe ``cfg`` into ``out``; see the module docstring."""
    from torch.utils.data import DataLoader

    dist = init_distributed(cfg.device)
    out = Path(out)
    sha = config_sha256(replace(cfg, stop_at_step=None, num_workers=0, device="auto"))
    _prepare_out(out, cfg, sha, dist)
    if dist.ddp:
        torch.distributed.barrier()
    run = _setup(cfg, dist, out, sha)
    loader_state = _resume(run) if resume and run.last.exists() else None
    module = _wrap(run.model, cfg, dist)
    scaler = torch.amp.GradScaler(dist.device.type, enabled=cfg.precision == "fp16")
    loader = DataLoader(run.ds, batch_size=None, num_workers=cfg.num_workers, pin_memory=dist.device.type == "cuda")
    log = MetricLog(out, enabled=dist.is_main)
    try:
        _train_epochs(run, module, scaler, loader, log, loader_state, progress)
        run.checkpoint(run.last)
    finally:
        log.close()
    window = run.rates[1:] or run.rates
    return PretrainResult(out, run.step, run.step / run.spe, run.stats["loss"], sum(window) / max(len(window), 1),
                          run.resumed_from, sha)  # fmt: skip


def _setup(cfg: PretrainConfig, dist: Dist, out: Path, sha: str) -> _Run:
    """The seeded model, its optimiser and the shard stream of the recipe (GR radii checked against the shards)."""
    from sardata.models import create_model
    from sardata.stream.dataset import ShardIterable

    with seeded(cfg.seed, 0):
        model = create_model(cfg.model, **cfg.model_kwargs)
    if getattr(model, "task", None) != "pretrain":
        raise ConfigError(f"model {cfg.model!r} is not a pretraining model (task={getattr(model, 'task', None)})")
    model.to(dist.device)
    opt = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=0.0, betas=tuple(cfg.betas), eps=cfg.eps)
    transform = build_transform(cfg, model.modality)
    ds = ShardIterable(cfg.data, cfg.global_batch, split=cfg.split, view=cfg.view, seed=cfg.seed,
                       world_size=dist.world_size, rank=dist.rank, num_workers=cfg.num_workers,
                       transform=transform, weights=cfg.weights, epoch_size=cfg.epoch_size,
                       fields=getattr(transform, "fields", None), keys="torchgeo")  # fmt: skip
    radii = check_gr_radii(model, ds.indexes, cfg.gr_mode)
    return _Run(cfg, dist, out, sha, model, opt, ds, radii, spe=len(ds))


def _resume(run: _Run) -> dict[str, Any]:
    """Load ``last.pt`` into the model and optimiser; returns the loader state to continue from."""
    ckpt = load_checkpoint(run.last, run.dist.device)
    run.model.load_state_dict(ckpt["model"])
    run.opt.load_state_dict(ckpt["optimizer"])
    run.step = run.resumed_from = int(ckpt["step"])
    return ckpt["loader"]


def _wrap(model: torch.nn.Module, cfg: PretrainConfig, dist: Dist) -> torch.nn.Module:
    """The module the loop calls: ``forward_loss`` as ``forward``, under DDP and ``torch.compile`` when asked."""
    module: torch.nn.Module = _LossModule(model)
    if dist.ddp:
        ids = [dist.device.index] if dist.device.type == "cuda" else None
        module = torch.nn.parallel.DistributedDataParallel(module, device_ids=ids)
    if cfg.compile:
        module = torch.compile(module)
    return module


def _train_epochs(run: _Run, module: torch.nn.Module, scaler: torch.amp.GradScaler, loader: Any, log: MetricLog,
                  loader_state: dict[str, Any] | None, progress: ProgressFn | None) -> None:  # fmt: skip
    """Epochs until ``stop``; a resumed run first restores the loader to the saved step."""
    run.model.train()
    while run.step < run.stop:
        if loader_state is not None:
            run.ds.load_state_dict(loader_state)
            loader_state = None
        else:
            run.ds.set_epoch(run.step // run.spe)
        t0 = time.perf_counter()
        for batch in loader:
            lr = _optimiser_step(run, module, scaler, batch)
            now = time.perf_counter()
            rate = run.cfg.global_batch / max(now - t0, 1e-9)
            run.rates.append(rate)
            t0 = now
            _after_step(run, log, lr, rate, progress)
            if run.step >= run.stop:
                break


def _optimiser_step(run: _Run, module: torch.nn.Module, scaler: torch.amp.GradScaler, batch: dict[str, Any]) -> float:
    """Schedule the lr, take one step (loss averaged over ranks) and count it; returns the lr used."""
    cfg, dist = run.cfg, run.dist
    batch = to_device(batch, dist.device)
    _check_channels(batch, cfg.name)
    lr = warmup_cosine(run.step, run.total, round(cfg.warmup_epochs * run.spe), cfg.peak_lr, cfg.min_lr)
    for group in run.opt.param_groups:
        group["lr"] = lr
    run.stats = _train_step(module, run.opt, batch, cfg, dist, run.step, scaler)
    if dist.ddp:
        t = torch.tensor([run.stats["loss"]], device=dist.device)
        torch.distributed.all_reduce(t)
        run.stats["loss"] = float(t) / dist.world_size
    run.step += 1
    return lr


def _after_step(run: _Run, log: MetricLog, lr: float, rate: float, progress: ProgressFn | None) -> None:
    """Metrics, progress and the step / epoch checkpoints due at ``run.step``."""
    cfg, step, spe = run.cfg, run.step, run.spe
    if step % cfg.log_every_steps == 0 or step == run.stop:
        log.log(step, {**run.stats, "lr": lr, "epoch": step / spe, "img_per_s": rate})
    if progress:
        progress(step, run.stop, {"loss": run.stats["loss"], "img/s": rate})
    if cfg.checkpoint_every_steps and step % cfg.checkpoint_every_steps == 0:
        run.checkpoint(run.last)
    if step % spe == 0 and (step // spe) % cfg.checkpoint_every_epochs == 0:
        run.checkpoint(run.out / "checkpoints" / f"epoch-{step // spe:04d}.pt")
