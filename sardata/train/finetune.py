"""Few-shot fine-tuning and linear probing (sar-jepa.md §3) over the few-shot views of a shard set.

For every ``K`` in ``shots`` and seed ``S`` in ``seeds`` the train set is the ``split_fewshot_k<K>_s<S> == train``
view written by ``build-shards`` (never re-drawn here, so every machine trains on the same samples), the test set
is the ``test`` split, the model is the downstream ViT (random init = the supervised-from-scratch baseline, or a
pretraining checkpoint loaded non-strictly), trained 40 epochs (or more: ``min_steps``) with the protocol's AdamW
and schedule, then the
last-epoch model is evaluated once on the full test split (no selection). Results: one JSON row per
(dataset, protocol, K, seed) in ``results.jsonl``, the aggregate (mean ± std with ddof 0 and 1, 95 % interval) in
``summary.csv`` / ``summary.md``, and ``fewshot.png``. Every row records the final training accuracy (does the
run fit its shots?), and the tables carry the pixel 1-NN and nearest-centroid reference rows computed on the same
splits and views (``references: false`` drops them).

Decisions where the spec is silent:

* Linear probe: the encoder is frozen and in eval mode with no augmentation, so its features are computed once
  per (checkpoint, seed of a random encoder) and the BatchNorm + Linear head trains on them: identical to running
  the frozen encoder every step, at a fraction of the cost.
* Input (§3.4): images are scaled to [0, 1] first, then centre-cropped / zero-padded and resized bicubic with
  antialiasing (so small CPU recipes that shrink 128 → 64 px do not alias); the reference resizes 8-bit PIL
  images, which differs only by rounding.
* A fair MAE arm (issue 17): MAE is pretrained with fixed sin-cos absolute positions, so by default
  (``abs_pos: null``) a classifier built from an MAE checkpoint keeps them (``VisionTransformerIRPE(abs_pos=True)``,
  the buffer loaded from the checkpoint) on top of the iRPE attention; ``abs_pos: false`` reproduces the paper's
  downstream (no absolute positions), ``true`` forces them for any checkpoint.
* Inputs are standardised per image inside the encoder (``input_norm="image"``, :mod:`sardata.models.layers.inputs`),
  and a classifier takes the setting of its checkpoint (``"none"`` for checkpoints written before it existed).
* ``min_steps`` (0 in the paper recipes, 400 in the ``*-cpu-small`` ones) stretches the epochs so that a run takes
  at least that many optimiser steps: at K = 10 × 10 classes, batch 50, the paper's 40 epochs are 80 steps, and a
  ViT from scratch then ended at 22–45 % training accuracy on the MSTAR chips (issue 17).
* Shuffling and head initialisation use generators seeded from ``SeedSequence([seed, K, …])``; seed 0 is a seed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from sardata.config import canonical_json, config_sha256
from sardata.errors import ConfigError
from sardata.train.common import load_checkpoint, pick_device, save_checkpoint, seed_int, seeded
from sardata.train.fewshot_reference import REFERENCE_PROTOCOLS
from sardata.train.fewshot_reference import predict as reference_predict
from sardata.train.metrics import aggregate, scores
from sardata.train.schedule import fewshot_lr

#: encoder hyper-parameters a classifier inherits from a pretraining checkpoint
ENCODER_KEYS = ("patch_size", "embed_dim", "depth", "num_heads", "mlp_ratio")


@dataclass(frozen=True)
class FinetuneConfig:
    """``kind: finetune`` recipes (``pipelines/fewshot-*.yaml``); defaults = sar-jepa.md §3."""

    kind: str
    name: str
    data: str
    protocol: str = "finetune"  # finetune | linear
    model: str = "vit_irpe_base_patch16_1ch"
    model_overrides: dict[str, Any] = field(default_factory=dict)
    checkpoint: str | None = None  # pretraining checkpoint; None → random init (supervised from scratch)
    description: str = ""
    shots: list[int] = field(default_factory=lambda: [10, 20, 40])
    seeds: list[int] = field(default_factory=lambda: list(range(10)))
    preset: str = "paper"  # paper: crop 128 everywhere; native: recipe's own crop (recorded in reports)
    crop: int | None = 128
    image_size: int = 224
    epochs: int = 40
    batch_size: int = 50
    lr: float = 1e-3
    warmup_lr: float = 1e-5
    warmup_epochs: int = 2
    weight_decay: float = 5e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    test_split: str = "test"
    eval_batch: int = 256
    device: str = "auto"
    save_models: bool = False
    abs_pos: bool | None = None  # keep MAE's sin-cos positions in the downstream ViT; None: on for MAE checkpoints
    min_steps: int = 0  # at least this many optimiser steps: epochs grow when K·classes / batch is small
    references: bool = True  # pixel 1-NN and nearest-centroid rows on the same splits (fewshot_reference)

    def __post_init__(self) -> None:
        if self.kind != "finetune":
            raise ConfigError(f"recipe kind {self.kind!r} is not a finetune recipe")
        if self.protocol not in ("finetune", "linear"):
            raise ConfigError(f"protocol {self.protocol!r}; choose finetune or linear")
        if not self.shots or not self.seeds:
            raise ConfigError("finetune recipe needs at least one shot count and one seed")


@dataclass
class FewShotResult:
    out: Path
    rows: list[dict[str, Any]]
    summary: list[dict[str, Any]]


# ---------------------------------------------------------------------------------------------------- inputs
def eval_view(img: np.ndarray, crop: int | None, size: int) -> torch.Tensor:
    """§3.4 input: [0, 1] scale → centre crop ``crop`` (zero pad if smaller; ``None`` = pad to square) → bicubic
    resize to ``size`` → ``(1, size, size)`` float32. 8-bit images are divided by 255; float images are taken as
    already in [0, 1] (shards built with ``--normalise``)."""
    x = torch.from_numpy(np.asarray(img, dtype=np.float32) / (255.0 if img.dtype == np.uint8 else 1.0))
    if x.ndim == 2:
        x = x[None]
    if x.shape[0] != 1:
        raise ConfigError(f"few-shot input has {x.shape[0]} channels; build the shards with --channel for 1")
    h, w = x.shape[-2:]
    side = crop if crop is not None else max(h, w)
    ph, pw = max(0, side - h), max(0, side - w)
    x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
    top, left = (x.shape[-2] - side) // 2, (x.shape[-1] - side) // 2
    x = x[:, top : top + side, left : left + side]
    if side != size:
        x = F.interpolate(x[None], size=(size, size), mode="bicubic", align_corners=False, antialias=True)[0]
    return x.clamp_(0.0, 1.0).contiguous()


def load_view(root: str, split: str | None, view: str | None, crop: int | None, size: int
              ) -> tuple[torch.Tensor, torch.Tensor, list[str]]:  # fmt: skip
    """All samples of one view as tensors (few-shot sets and test splits are small enough to hold in memory)."""
    from sardata.stream.dataset import ShardDataset

    ds = ShardDataset(root, split=split, view=view)
    if len(ds) == 0:
        raise ConfigError(f"{root}: view split={split} {view or ''} is empty; build the shards with these views")
    xs, ys, keys = [], [], []
    for i in range(len(ds)):
        s = ds[i]
        if "cls" not in s:
            raise ConfigError(f"{root}: sample {s['__key__']} has no label; few-shot needs labelled shards")
        xs.append(eval_view(s["img.npy"], crop, size))
        ys.append(int(s["cls"]))
        keys.append(s["__key__"])
    ds.index.close()
    return torch.stack(xs), torch.tensor(ys), keys


def num_classes(root: str) -> tuple[str, int]:
    """(source id, class count) from the dataset card; few-shot runs on one source's class map."""
    from sardata.manifest.io import read_card

    maps = read_card(Path(root)).get("class_maps", {})
    if len(maps) != 1:
        raise ConfigError(f"{root}: few-shot needs shards of exactly one labelled source, found {sorted(maps)}")
    (source, names), = maps.items()  # fmt: skip
    return source, len(names)


# ---------------------------------------------------------------------------------------------------- training
def classifier_spec(cfg: FinetuneConfig) -> tuple[dict[str, Any], dict[str, torch.Tensor] | None]:
    """Constructor overrides of the downstream model (encoder sizes inherited from the pretraining checkpoint,
    then the recipe's) and the pretrained weights — read once per recipe, shared by every (K, seed) run."""
    overrides: dict[str, Any] = {"img_size": cfg.image_size}
    state = None
    if cfg.checkpoint:
        ckpt = load_checkpoint(cfg.checkpoint)
        overrides.update({k2: v for k2, v in ckpt.get("model_overrides", {}).items() if k2 in ENCODER_KEYS})
        state = ckpt["model"]
        # the encoder's input normalisation travels with it; checkpoints from before it existed saw raw inputs
        overrides["input_norm"] = ckpt.get("input_norm") or ckpt.get("model_overrides", {}).get("input_norm", "none")
        is_mae = "mae" in str(ckpt.get("model_name", "")) and "pos_embed" in state
        if is_mae if cfg.abs_pos is None else cfg.abs_pos:
            overrides["abs_pos"] = True
    elif cfg.abs_pos:
        overrides["abs_pos"] = True
    overrides.update(cfg.model_overrides)
    return overrides, state


def build_classifier(cfg: FinetuneConfig, n_classes: int, seed: int, k: int, overrides: dict[str, Any],
                     state: dict[str, torch.Tensor] | None) -> torch.nn.Module:  # fmt: skip
    """The downstream model with pretrained encoder weights (if any) and a fresh, seeded head."""
    from sardata.models import create_model
    from sardata.models.vit_irpe import load_pretrained

    with seeded(seed, k, 1):
        model = create_model(cfg.model, **overrides)
        if state is not None:
            load_pretrained(model, state, allow_missing=("blocks.*.attn.rpe_k.*",))
        model.reset_classifier(n_classes, cfg.protocol)
    return model


def epochs_for(cfg: FinetuneConfig, n_train: int) -> int:
    """``cfg.epochs``, raised so that the run takes at least ``cfg.min_steps`` optimiser steps.

    Why: at K = 10 on 10 classes the protocol's 40 epochs of batch 50 are 80 steps, too few for an encoder to fit
    its training shots from scratch (issue 17); the warm-up and cosine stretch with the epochs."""
    per_epoch = max(n_train // cfg.batch_size, 1) if n_train >= cfg.batch_size else 1
    return max(cfg.epochs, -(-cfg.min_steps // per_epoch))


def _batches(n: int, batch: int, gen: torch.Generator) -> list[torch.Tensor]:
    """One epoch of shuffled index batches; ``drop_last`` only when at least one full batch exists (§3.7)."""
    perm = torch.randperm(n, generator=gen)
    stop = (n // batch) * batch if n >= batch else n
    return [perm[i : i + batch] for i in range(0, stop, batch)]


def _fit(module: torch.nn.Module, params: list[torch.nn.Parameter], x: torch.Tensor, y: torch.Tensor,
         cfg: FinetuneConfig, gen: torch.Generator, device: torch.device) -> list[float]:  # fmt: skip
    """The protocol's epochs of AdamW + cross-entropy (:func:`epochs_for`); returns the mean loss per epoch."""
    opt = torch.optim.AdamW(params, lr=cfg.warmup_lr, betas=tuple(cfg.betas), eps=cfg.eps,
                            weight_decay=cfg.weight_decay)  # fmt: skip
    losses = []
    epochs = epochs_for(cfg, len(x))
    for epoch in range(epochs):
        lr = fewshot_lr(epoch, cfg.lr, cfg.warmup_lr, cfg.warmup_epochs, epochs)
        for group in opt.param_groups:
            group["lr"] = lr
        total = 0.0
        idx_batches = _batches(len(x), cfg.batch_size, gen)
        for idx in idx_batches:
            loss = F.cross_entropy(module(x[idx].to(device)), y[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach())
        losses.append(total / max(len(idx_batches), 1))
    return losses


@torch.no_grad()
def _predict(fn: Any, x: torch.Tensor, batch: int, device: torch.device) -> torch.Tensor:
    return torch.cat([fn(x[i : i + batch].to(device)).float().cpu() for i in range(0, len(x), batch)])


def run_one(cfg: FinetuneConfig, k: int, seed: int, data: dict[str, Any], device: torch.device,
            feature_cache: dict[Any, torch.Tensor]) -> tuple[dict[str, Any], torch.nn.Module]:  # fmt: skip
    """Train and evaluate one (K, seed) run."""
    xtr, ytr = data["train"][(k, seed)]
    xte, yte = data["test"]
    model = build_classifier(cfg, data["n_classes"], seed, k, *data["spec"])
    model.to(device)
    gen = torch.Generator().manual_seed(seed_int(seed, k, 2))
    if cfg.protocol == "linear":
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        cache_key = "pretrained" if cfg.checkpoint else ("random", seed, k)
        if cache_key not in feature_cache:
            feature_cache.clear()
            feature_cache[cache_key] = _predict(model.forward_features, xte, cfg.eval_batch, device)
        ftr = _predict(model.forward_features, xtr, cfg.eval_batch, device)
        head = model.head
        for p in head.parameters():
            p.requires_grad_(True)
        head.train()
        losses = _fit(head, list(head.parameters()), ftr, ytr, cfg, gen, device)
        head.eval()
        logits = _predict(head, feature_cache[cache_key], cfg.eval_batch, device)
        fitted = _predict(head, ftr, cfg.eval_batch, device)
    else:
        model.train()
        losses = _fit(model, list(model.parameters()), xtr, ytr, cfg, gen, device)
        model.eval()
        logits = _predict(model, xte, cfg.eval_batch, device)
        fitted = _predict(model, xtr, cfg.eval_batch, device)
    row = {"dataset": data["dataset"], "protocol": cfg.protocol, "shots": k, "seed": seed, "n_train": len(xtr),
           "n_test": len(xte), "preset": cfg.preset, "crop": cfg.crop, "image_size": cfg.image_size,
           "checkpoint": cfg.checkpoint, "final_train_loss": losses[-1], "epochs": len(losses),
           "train_accuracy": float(100.0 * (fitted.argmax(1) == ytr).float().mean()),
           **scores(logits.argmax(1).numpy(), yte.numpy(), data["n_classes"])}  # fmt: skip
    return row, model


def reference_rows(cfg: FinetuneConfig, k: int, seed: int, data: dict[str, Any]) -> list[dict[str, Any]]:
    """The trivial baselines of one (K, seed) split (:mod:`sardata.train.fewshot_reference`), as result rows."""
    xtr, ytr = data["train"][(k, seed)]
    xte, yte = data["test"]
    rows = []
    for name in REFERENCE_PROTOCOLS:
        fitted = reference_predict(name, xtr, ytr, xtr)
        rows.append({"dataset": data["dataset"], "protocol": name, "shots": k, "seed": seed, "n_train": len(xtr),
                     "n_test": len(xte), "preset": cfg.preset, "crop": cfg.crop, "image_size": cfg.image_size,
                     "checkpoint": None, "final_train_loss": None, "reference": True,
                     "train_accuracy": float(100.0 * (fitted == ytr).float().mean()),
                     **scores(reference_predict(name, xtr, ytr, xte).numpy(), yte.numpy(), data["n_classes"])})  # fmt: skip
    return rows


def run_fewshot(cfg: FinetuneConfig, out: str | Path, progress: Any = None) -> FewShotResult:
    """All (K, seed) runs of the recipe, written under ``out``; see the module docstring."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    device = pick_device(cfg.device)
    dataset, n_classes = num_classes(cfg.data)
    data: dict[str, Any] = {"dataset": dataset, "n_classes": n_classes, "train": {}, "spec": classifier_spec(cfg)}
    xte, yte, test_keys = load_view(cfg.data, cfg.test_split, None, cfg.crop, cfg.image_size)
    data["test"] = (xte, yte)
    for k in cfg.shots:
        for seed in cfg.seeds:
            col = f"split_fewshot_k{k}_s{seed}"
            x, y, keys = load_view(cfg.data, None, col, cfg.crop, cfg.image_size)
            if set(keys) & set(test_keys):  # sar-jepa.md §5.3: never train on the test split
                raise ConfigError(f"{cfg.data}: view {col} overlaps the test split; rebuild the shards")
            data["train"][(k, seed)] = (x, y)
    (out / "config.json").write_text(json.dumps({"config": json.loads(canonical_json(cfg)),
                                                 "config_sha256": config_sha256(cfg)}, indent=1))  # fmt: skip
    rows: list[dict[str, Any]] = []
    cache: dict[Any, torch.Tensor] = {}
    runs = [(k, s) for k in cfg.shots for s in cfg.seeds]
    with open(out / "results.jsonl", "w", encoding="utf-8") as fh:
        for i, (k, seed) in enumerate(runs):
            row, model = run_one(cfg, k, seed, data, device, cache)
            rows.append(row)
            fh.write(json.dumps(row, sort_keys=True) + "\n")
            fh.flush()
            if cfg.save_models:
                save_checkpoint(out / "models" / f"k{k}-s{seed}.pt", {
                    "kind": "classifier", "model_name": cfg.model, "model_overrides": data["spec"][0],
                    "num_classes": n_classes, "head_kind": cfg.protocol, "crop": cfg.crop,
                    "image_size": cfg.image_size, "model": model.state_dict()})  # fmt: skip
            if progress:
                progress(i + 1, len(runs), {"K": k, "seed": seed, "acc": row["accuracy"]})
        if cfg.references:
            for k, seed in runs:
                refs = reference_rows(cfg, k, seed, data)
                rows += refs
                fh.writelines(json.dumps(r, sort_keys=True) + "\n" for r in refs)
    summary = with_train_accuracy(aggregate(rows), rows)
    write_summary(out, summary, cfg)
    return FewShotResult(out, rows, summary)


def with_train_accuracy(summary: list[dict[str, Any]], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each summary row plus the mean and minimum final training accuracy of its runs (does every run fit its
    training shots?)."""
    out = []
    for r in summary:
        fit = [x["train_accuracy"] for x in rows if x.get("train_accuracy") is not None
               and (x["dataset"], x["protocol"], x["shots"]) == (r["dataset"], r["protocol"], r["shots"])]  # fmt: skip
        out.append({**r, "train_accuracy_mean": float(np.mean(fit)) if fit else float("nan"),
                    "train_accuracy_min": float(np.min(fit)) if fit else float("nan")})  # fmt: skip
    return out


def write_summary(out: Path, summary: list[dict[str, Any]], cfg: FinetuneConfig | None = None) -> None:
    """``summary.csv``, ``summary.md`` (a Markdown table) and ``fewshot.png`` (accuracy vs shots)."""
    import pandas as pd

    df = pd.DataFrame(summary)
    df.to_csv(out / "summary.csv", index=False)
    lines = ["| dataset | protocol | K | runs | accuracy % (mean ± std, ddof 0) | ddof 1 | 95% CI ± | macro-F1 | "
             "train acc % (mean / min) |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for r in summary:
        ref = " (reference)" if r["protocol"] in REFERENCE_PROTOCOLS else ""
        lines.append(f"| {r['dataset']} | {r['protocol']}{ref} | {r['shots']} | {r['runs']} | "
                     f"{r['accuracy_mean']:.2f} ± {r['accuracy_std']:.2f} | {r['accuracy_std_ddof1']:.2f} | "
                     f"{r['accuracy_ci95']:.2f} | {r['macro_f1_mean']:.4f} ± {r['macro_f1_std']:.4f} | "
                     f"{r.get('train_accuracy_mean', float('nan')):.1f} / {r.get('train_accuracy_min', float('nan')):.1f} |")  # fmt: skip
    if cfg is not None:
        lines.append(f"\npreset {cfg.preset}, crop {cfg.crop}, image {cfg.image_size}, checkpoint {cfg.checkpoint}")
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    for (dataset, protocol), g in df.groupby(["dataset", "protocol"]):
        ax.errorbar(g["shots"], g["accuracy_mean"], yerr=g["accuracy_std"], marker="o", capsize=3,
                    label=f"{dataset} {protocol}")  # fmt: skip
    ax.set_xlabel("shots per class (K)")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "fewshot.png", dpi=120)
    plt.close(fig)


def evaluate(checkpoint: str | Path, data: str, split: str = "test", device: str = "auto") -> dict[str, Any]:
    """Accuracy and macro-F1 of a classifier checkpoint (``save_models: true``) on one split of a shard set."""
    from sardata.models import create_model

    ckpt = load_checkpoint(checkpoint)
    if ckpt.get("kind") != "classifier":
        raise ConfigError(f"{checkpoint}: a {ckpt.get('kind')} checkpoint; `train eval` needs a fine-tuned classifier")
    dev = pick_device(device)
    model = create_model(ckpt["model_name"], **ckpt["model_overrides"])
    model.reset_classifier(int(ckpt["num_classes"]), ckpt["head_kind"])
    model.load_state_dict(ckpt["model"])
    model.to(dev).eval()
    x, y, _ = load_view(data, split, None, ckpt["crop"], int(ckpt["image_size"]))
    logits = _predict(model, x, 256, dev)
    return {"checkpoint": str(checkpoint), "split": split, "n": len(y),
            **scores(logits.argmax(1).numpy(), y.numpy(), int(ckpt["num_classes"]))}  # fmt: skip
