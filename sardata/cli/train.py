"""``sardata train``: pretraining, few-shot fine-tuning / linear probing and evaluation, over streaming shards."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from sardata.cli._options import LegacyOut, out_or_legacy, step_progress

app = typer.Typer(help="Streaming trainers: SAR-JEPA / MAE / LoMaR pretraining, few-shot fine-tune and probe, eval.")

Recipe = Annotated[Path, typer.Option("--recipe", "-r", help="pipelines/<name>.yaml", exists=True, dir_okay=False)]
Set = Annotated[list[str] | None, typer.Option("--set", "-s", help="override a recipe key: key=value or a.b=value")]


@app.command("pretrain")
def pretrain_cmd(
    recipe: Recipe,
    out: Annotated[
        Path | None, typer.Option("--out", "-O", help="run directory (checkpoints, metrics.jsonl, tb/); required")
    ] = None,
    set_: Set = None,
    resume: Annotated[bool, typer.Option(help="continue from OUT/checkpoints/last.pt when it exists")] = True,
    legacy_out: LegacyOut = None,
) -> None:
    """Self-supervised pretraining (`kind: pretrain` recipe); run under torchrun for DDP."""
    out = out_or_legacy(out, legacy_out)
    from sardata.recipes import load_yaml
    from sardata.train.pretrain import pretrain

    cfg = load_yaml(recipe, set_)
    res = pretrain(cfg, out, resume=resume, progress=step_progress(f"pretrain {cfg.name}"))
    typer.echo(f"{res.out}: {res.steps} steps ({res.epochs_done:.2f} epochs), last loss {res.last_loss:.5f}, "
               f"{res.images_per_s:.1f} img/s" + (f", resumed from step {res.resumed_from}" if res.resumed_from else ""))  # fmt: skip


@app.command("finetune")
def finetune_cmd(
    recipe: Recipe,
    out: Annotated[Path | None, typer.Option("--out", "-O", help="results directory; required")] = None,
    set_: Set = None,
    checkpoint: Annotated[Path | None, typer.Option(help="pretraining checkpoint (overrides the recipe's)")] = None,
    legacy_out: LegacyOut = None,
) -> None:
    """Few-shot fine-tuning or linear probing over the few-shot views (`kind: finetune` recipe, or a radar
    `kind: crossmode` recipe for the cross-mode LoRA table)."""
    out = out_or_legacy(out, legacy_out)
    from sardata.recipes import load_yaml

    extra = list(set_ or []) + ([f"checkpoint={checkpoint}"] if checkpoint else [])
    cfg = load_yaml(recipe, extra)
    if cfg.kind == "crossmode":
        from sardata.train.crossmode import run_crossmode

        res = run_crossmode(cfg, out, progress=step_progress(f"crossmode {cfg.name}", unit="run"))
    else:
        from sardata.train.finetune import run_fewshot

        res = run_fewshot(cfg, out, progress=step_progress(f"{cfg.protocol} {cfg.name}", unit="run"))
    typer.echo((Path(out) / "summary.md").read_text())
    typer.echo(f"{len(res.rows)} runs → {Path(out) / 'results.jsonl'}")


@app.command("eval")
def eval_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="classifier checkpoint (finetune with save_models=true)")],
    data: Annotated[Path, typer.Option("--data", "-d", help="shard directory")],
    split: Annotated[str, typer.Option(help="split to evaluate")] = "test",
) -> None:
    """Accuracy and macro-F1 of a fine-tuned checkpoint on one split."""
    from sardata.train.finetune import evaluate

    typer.echo(json.dumps(evaluate(checkpoint, str(data), split), indent=1))
