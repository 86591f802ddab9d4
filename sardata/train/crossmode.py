"""Cross-mode radar recognition (radar.md §4.3, §5): train on the long-tailed set of mode A, test on mode B.

One recipe (``kind: crossmode``) lists *arms* — RadarPos + LoRA, the supervised transformer from scratch, the
masked-reconstruction baseline, the no-TOA-PE ablation, ResNet1D... — and one command trains every arm on every
source mode for every seed and evaluates it on every target mode, writing ``results.jsonl`` (one row per arm,
source, target, seed), ``summary.csv`` and ``summary.md`` with the paper's Table 3 layout (6 transfers, accuracy /
macro-F1 mean ± std, and their mean) plus the in-mode diagonal as a sanity check, the two reference rows (RF-only
nearest centroid, majority class) and the collapse diagnostics (:mod:`sardata.train.crossmode_table`). Before any
arm trains, a set the RF-only rule solves (> 65 % mean transfer accuracy) stops the command as degenerate unless
``allow_degenerate: true``. The fine-tuning loss is a recipe flag, per arm if needed (``loss: ce | balanced |
logit_adjusted``, :mod:`sardata.train.crossmode_loss`).

Decisions where the spec is silent:

* Modes are selected with the manifest's ``mode`` column (``--where``-style filter of :class:`ShardDataset`), the
  sides with ``split`` (``train`` = the long-tailed 206, ``test`` = the 200 per mode).
* Training views are re-drawn by the recipe's ``radar_view`` (``train=True``) per (seed, epoch, sample);
  evaluation views use ``train=False`` (§3.4).
* The reference rules read the raw ``pdw.npy`` trains of the very samples the arms use (collected while the sides
  load), never the model inputs, so a change of input view cannot move them.
* Dropout (LoRA dropout) draws from the global RNG, so each run executes inside a forked, seeded RNG context:
  runs are reproducible and the caller's RNG state is untouched.
* ``input_norm="robust"`` standardises every input with the median/MAD of the source mode's training set
  (:mod:`sardata.train.radar_norm`; the test side of a transfer uses the *source* statistics). Pretrained
  encoders saw the spec's fixed ranges during pretraining, so for them this is a shift of input scale that only
  the head and LoRA adapt to; the default stays ``"fixed"``.
* Pretrained encoders load non-strictly; only ``head.*`` may be missing. RadarPos's pretraining-only entries
  (``mask_pos_token``, ``decoder.*``, ``projector.*``) are stripped before loading (``encoder_state``), other
  pretext heads (MAE-1D's ``mask_token`` / ``decoder_pred``) are ignored as unexpected keys: the classifier never
  builds a decoder, so fine-tuning never sees one (§4.2.4).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sardata.config import canonical_json, config_sha256
from sardata.errors import ConfigError
from sardata.train.common import load_checkpoint, pick_device, seed_int, seeded
from sardata.train.crossmode_loss import LOSSES, class_counts, make_loss
from sardata.train.crossmode_table import (
    DEGENERATE_ABOVE,
    DegenerateBenchmarkError,
    RawSide,
    check_degenerate,
    classes_summary,
    reference_summary,
    write_crossmode_summary,
)
from sardata.train.metrics import aggregate, scores
from sardata.train.radar_norm import INPUT_NORMS, robust_stats, standardise
from sardata.train.schedule import warmup_step_decay


@dataclass(frozen=True)
class Arm:
    """One method of the comparison table."""

    name: str
    model: str
    checkpoint: str | None = None
    finetune: str = "lora"  # lora | full | linear
    model_overrides: dict[str, Any] = field(default_factory=dict)
    lr: float | None = None
    loss: str | None = None  # ce | balanced | logit_adjusted; None = the recipe's

    def __post_init__(self) -> None:
        if self.finetune not in ("lora", "full", "linear"):
            raise ConfigError(f"arm {self.name}: finetune {self.finetune!r}; choose lora, full or linear")
        if self.loss is not None and self.loss not in LOSSES:
            raise ConfigError(f"arm {self.name}: loss {self.loss!r}; choose one of {', '.join(LOSSES)}")


@dataclass(frozen=True)
class CrossModeConfig:
    """``kind: crossmode`` recipes (``pipelines/radarpos-lora*.yaml``); schedule defaults = radar.md §4.3."""

    kind: str
    name: str
    data: str
    arms: list[Arm]
    description: str = ""
    modes: list[str] = field(default_factory=lambda: ["VS", "TAS", "STT"])
    mode_column: str = "mode"
    seeds: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 5])
    epochs: int = 50
    warmup_epochs: int = 10
    milestones: list[int] = field(default_factory=lambda: [25, 40])
    gamma: float = 0.1
    batch_size: int = 32
    lr: float = 2.5e-5
    weight_decay: float = 0.05
    lora: dict[str, Any] = field(default_factory=lambda: {"r": 8, "alpha": 16, "dropout": 0.1, "targets": "attn"})
    radar_view: dict[str, Any] = field(default_factory=dict)
    eval_batch: int = 256
    device: str = "auto"
    loss: str = "ce"  # every arm's loss unless the arm sets its own (crossmode_loss)
    logit_tau: float = 1.0  # τ of logit_adjusted (Menon et al. 2021)
    balanced_beta: float = 0.999  # β of the effective-number weights of balanced
    allow_degenerate: bool = False  # run even when the RF-only reference solves the set
    degenerate_above: float = DEGENERATE_ABOVE  # % mean transfer accuracy of the RF-only rule (spec: 65)
    input_norm: str = "fixed"  # fixed (spec ranges) | robust (source train set's median/MAD: train.radar_norm)

    def __post_init__(self) -> None:
        if self.kind != "crossmode":
            raise ConfigError(f"recipe kind {self.kind!r} is not a crossmode recipe")
        if not self.arms or len(self.modes) < 2:
            raise ConfigError("a crossmode recipe needs at least one arm and two modes")
        if self.loss not in LOSSES:
            raise ConfigError(f"loss {self.loss!r}; choose one of {', '.join(LOSSES)}")
        if self.input_norm not in INPUT_NORMS:
            raise ConfigError(f"input_norm {self.input_norm!r}; choose one of {', '.join(INPUT_NORMS)}")
        if len({a.name for a in self.arms}) != len(self.arms):
            raise ConfigError(f"arm names must be unique: {[a.name for a in self.arms]}")

    def arm_loss(self, arm: Arm) -> str:
        """The loss one arm trains with."""
        return arm.loss or self.loss


@dataclass
class CrossModeResult:
    out: Path
    rows: list[dict[str, Any]]
    summary: list[dict[str, Any]]


def _load_side(cfg: CrossModeConfig, split: str, mode: str, train: bool) -> tuple[list[dict], Any]:
    """Raw samples of one (split, mode) side plus its view (re-applied per epoch for training)."""
    from sardata.stream.dataset import ShardDataset

    ds = ShardDataset(cfg.data, split=split, where=f"{cfg.mode_column} == {mode!r}")
    if len(ds) == 0:
        raise ConfigError(f"{cfg.data}: no {split} samples with {cfg.mode_column} == {mode!r}")
    samples = [ds[i] for i in range(len(ds))]
    ds.index.close()
    return samples, _load_side_view(cfg, train)


def _load_side_view(cfg: CrossModeConfig, train: bool) -> Any:
    """The recipe's radar view: re-drawn per epoch for training (``train=True``), deterministic otherwise."""
    from sardata.stream.radar import RadarView

    return RadarView(**{"train": train, "seed": 0, **cfg.radar_view})


def _tensors(samples: list[dict], view: Any, epoch: int, seed: int) -> dict[str, torch.Tensor]:
    """Apply the view (window drawn from (seed, epoch, position)) and stack the model inputs."""
    from sardata.stream.dataset import collate

    out = [view({**s, "__epoch__": epoch * 1000 + seed, "__index__": i}) for i, s in enumerate(samples)]
    b = collate(out)
    return {k: b[k] for k in ("x", "tau", "valid", "label")}


def _pick(batch: dict[str, torch.Tensor], idx: torch.Tensor, device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v[idx].to(device) for k, v in batch.items() if k != "label"}


def arm_spec(arm: Arm) -> tuple[dict[str, Any], dict[str, torch.Tensor] | None]:
    """Constructor overrides (encoder sizes from the pretraining checkpoint, then the arm's) and the pretrained
    weights of one arm — read once per arm, shared by every seed and source mode."""
    if not arm.checkpoint:
        return dict(arm.model_overrides), None
    from sardata.models.radarpos import encoder_overrides

    ckpt = load_checkpoint(arm.checkpoint)
    return {**encoder_overrides(ckpt.get("model_overrides", {})), **arm.model_overrides}, ckpt["model"]


def build_arm_model(arm: Arm, n_classes: int, cfg: CrossModeConfig, seed: int, overrides: dict[str, Any],
                    state: dict[str, torch.Tensor] | None) -> torch.nn.Module:  # fmt: skip
    """Classifier of one arm: pretrained encoder (if any), fresh head, LoRA / frozen encoder as configured."""
    from sardata.models import create_model

    model = create_model(arm.model, **overrides)
    if state is not None:
        from sardata.models.radarpos import encoder_state

        missing, _ = model.load_state_dict(encoder_state(state), strict=False)
        bad = [k for k in missing if not k.startswith("head")]
        if bad:
            raise ConfigError(f"{arm.checkpoint}: encoder keys missing for {arm.model}: {bad[:6]}")
    model.reset_classifier(n_classes, "linear" if arm.finetune == "linear" else "finetune")
    if arm.finetune == "lora":
        from sardata.models.layers.lora import apply_lora

        model = apply_lora(model, **{"seed": seed_int(seed, 3), **cfg.lora})
    elif arm.finetune == "linear":
        model.freeze_encoder()
    return model


def train_arm(arm: Arm, spec: tuple[dict[str, Any], Any], samples: list[dict], view: Any, n_classes: int,
              cfg: CrossModeConfig, seed: int, device: torch.device,
              stats: Any = None) -> tuple[torch.nn.Module, int]:  # fmt: skip
    """Fine-tune one arm on one source mode (inputs standardised with ``stats`` when given); returns the model
    and its trainable parameter count."""
    from sardata.models.layers.lora import trainable_parameter_count

    model = build_arm_model(arm, n_classes, cfg, seed, *spec).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    lr = arm.lr or cfg.lr
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay)
    counts = class_counts([int(s["cls"]) for s in samples], n_classes)  # the source train set's own counts
    criterion = make_loss(cfg.arm_loss(arm), counts, tau=cfg.logit_tau, beta=cfg.balanced_beta)
    gen = torch.Generator().manual_seed(seed_int(seed, 4))
    model.train()
    for epoch in range(cfg.epochs):
        for group in opt.param_groups:
            group["lr"] = warmup_step_decay(epoch, lr, cfg.warmup_epochs, tuple(cfg.milestones), cfg.gamma)
        batch = standardise(_tensors(samples, view, epoch, seed), stats)
        perm = torch.randperm(len(samples), generator=gen)
        for i in range(0, len(perm), cfg.batch_size):
            idx = perm[i : i + cfg.batch_size]
            loss = criterion(model(_pick(batch, idx, device)), batch["label"][idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.eval()
    return model, trainable_parameter_count(model)


@torch.no_grad()
def _evaluate(model: torch.nn.Module, batch: dict[str, torch.Tensor], n_classes: int, cfg: CrossModeConfig,
              device: torch.device) -> dict[str, float]:  # fmt: skip
    """Accuracy, macro-F1 and the number of distinct classes predicted (plain argmax: no logit adjustment)."""
    idx = torch.arange(len(batch["label"]))
    logits = torch.cat([model(_pick(batch, idx[i : i + cfg.eval_batch], device)).float().cpu()
                        for i in range(0, len(idx), cfg.eval_batch)])  # fmt: skip
    pred = logits.argmax(1).numpy()
    return {**scores(pred, batch["label"].numpy(), n_classes), "classes_predicted": int(len(np.unique(pred)))}


def references(cfg: CrossModeConfig, out: Path, raw: dict[str, dict[str, RawSide | None]],
               n_classes: int) -> tuple[list[dict[str, Any]], str]:  # fmt: skip
    """The reference rows and the table's verdict line; a degenerate set (and no override) writes the reference
    table alone, then raises :class:`~sardata.train.crossmode_table.DegenerateBenchmarkError` before training."""
    if any(side is None for split in raw.values() for side in split.values()):
        return [], "reference rows omitted: these samples carry no pdw.npy (RF-only rule undefined)"
    refs = reference_summary(raw["train"], raw["test"], cfg.modes, n_classes)  # type: ignore[arg-type]
    try:
        verdict = check_degenerate(refs, cfg.modes, cfg.degenerate_above, cfg.allow_degenerate)
    except DegenerateBenchmarkError as exc:
        write_crossmode_summary(out, refs, [], cfg.modes, cfg.seeds, n_classes, f"NOT RUN: {exc}")
        raise
    return refs, verdict


def run_crossmode(cfg: CrossModeConfig, out: str | Path, progress: Any = None) -> CrossModeResult:
    """Every arm × source mode × seed, evaluated on every target mode; see the module docstring."""
    from sardata.manifest.io import read_card

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    device = pick_device(cfg.device)
    maps = read_card(Path(cfg.data)).get("class_maps", {})
    n_classes = max((len(v) for v in maps.values()), default=0)
    if n_classes < 2:
        raise ConfigError(f"{cfg.data}: cross-mode evaluation needs labelled shards (class_maps: {maps})")
    train = {m: _load_side(cfg, "train", m, True) for m in cfg.modes}
    fit = {m: _tensors(train[m][0], _load_side_view(cfg, False), 0, 0) for m in cfg.modes}  # the fit check's inputs
    test, raw = {}, {"train": {m: RawSide.from_samples(train[m][0]) for m in cfg.modes}, "test": {}}
    for m in cfg.modes:
        samples, view = _load_side(cfg, "test", m, False)
        raw["test"][m] = RawSide.from_samples(samples)
        test[m] = _tensors(samples, view, 0, 0)
    (out / "config.json").write_text(json.dumps({"config": json.loads(canonical_json(cfg)),
                                                 "config_sha256": config_sha256(cfg)}, indent=1))  # fmt: skip
    refs, verdict = references(cfg, out, raw, n_classes)
    rows: list[dict[str, Any]] = []
    specs = {id(arm): arm_spec(arm) for arm in cfg.arms}
    stats = {m: robust_stats(fit[m]["x"], fit[m]["valid"]) if cfg.input_norm == "robust" else None for m in cfg.modes}
    runs = [(a, s, m) for a in cfg.arms for s in cfg.seeds for m in cfg.modes]
    with open(out / "results.jsonl", "w", encoding="utf-8") as fh:
        for i, (arm, seed, src) in enumerate(runs):
            with seeded(seed, 5, cfg.modes.index(src)):
                model, trainable = train_arm(arm, specs[id(arm)], *train[src], n_classes, cfg, seed, device, stats[src])
            fitted = _evaluate(model, standardise(fit[src], stats[src]), n_classes, cfg, device)["accuracy"]
            for dst in cfg.modes:
                row = {"arm": arm.name, "src": src, "dst": dst, "transfer": src != dst, "seed": seed,
                       "finetune": arm.finetune, "loss": cfg.arm_loss(arm), "trainable_params": trainable,
                       "n_train": len(train[src][0]), "n_test": len(test[dst]["label"]), "train_accuracy": fitted,
                       **_evaluate(model, standardise(test[dst], stats[src]), n_classes, cfg, device)}  # fmt: skip
                rows.append(row)
                fh.write(json.dumps(row, sort_keys=True) + "\n")
            fh.flush()
            if progress:
                progress(i + 1, len(runs), {"arm": arm.name, "src": src})
    classes = classes_summary(rows)
    loss = {a.name: cfg.arm_loss(a) for a in cfg.arms}
    fits: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        if r["src"] == r["dst"]:
            fits.setdefault((r["arm"], r["src"]), []).append(r["train_accuracy"])
    summary = [{**r, "kind": "arm", "loss": loss[r["arm"]], "classes_predicted_min": classes[key][0],
                "classes_predicted_mean": classes[key][1],
                "train_accuracy_mean": float(np.mean(fits[(r["arm"], r["src"])]))}
               for r in aggregate(rows, by=("arm", "src", "dst")) for key in [(r["arm"], r["src"], r["dst"])]]  # fmt: skip
    summary += refs
    write_crossmode_summary(out, summary, [a.name for a in cfg.arms], cfg.modes, cfg.seeds, n_classes, verdict)
    return CrossModeResult(out, rows, summary)
