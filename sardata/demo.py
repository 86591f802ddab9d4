"""The embedded end-to-end demo: synthetic SAR chips → MSTAR raw + JPEG layouts → ingest → shards with GR targets
and few-shot views → verify → a few minutes of small SAR-JEPA pretraining → 10-shot fine-tuning from that
checkpoint and from scratch → a results table.

Defined once: the data stages are pipeline steps (:func:`demo_steps`, run through the step table of
:mod:`sardata.recipes`), and ``pipelines/demo.yaml`` holds the same steps (a test keeps them equal), so ``make
demo``, ``sardata demo`` and ``sardata run pipelines/demo.yaml`` write the same data.

The training stage uses the ``*-cpu-small`` recipes in ``pipelines/`` (copied into the library as defaults so an
installed package runs the demo without the repository) on the demo's train split only: the test split is never
seen before evaluation.

Why 8 pretraining epochs: the demo's train split is 192 synthetic chips. Measured on the 2-core box (10-shot, 3
seeds, scratch = 24.8 ± 0.2 %): 2 epochs → 42.9 ± 6.9 %, 8 → 37.3 ± 9.6 %, 25 → 24.3 ± 1.0 % (the GR loss fell
to 0.03: the pretext is learnt by heart on so few images and the features stop helping). The demo shows the
pipeline working end to end in under two minutes; the study on real data is in ``RESULTS.md``."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sardata.recipes import parse_step

if TYPE_CHECKING:
    from sardata.dataset.verify import VerifyReport
    from sardata.ingest import IngestResult
    from sardata.shards.build import BuildResult

#: The demo, defined once. :func:`run_demo` runs these data stages; ``pipelines/demo.yaml`` spells out
#: ``demo_steps("demo-out")`` plus a ``show`` step (``tests/test_demo.py`` keeps the two equal).
PER_CLASS = 48
WORKERS = 2
#: GR targets, 5- and 10-shot views x 3 seeds, small shards (several per split even for a tiny demo)
BUILD = {"targets": ["gr"], "shots": [5, 10], "seeds": [0, 1, 2], "max_shard_samples": 64}
LAYOUTS = ("raw", "jpeg")


def demo_steps(out: str | os.PathLike[str], per_class: int = PER_CLASS, seed: int = 0,
               workers: int = WORKERS) -> list[dict[str, Any]]:  # fmt: skip
    """The demo's data stages as pipeline steps (simulate → ingest both layouts → shards → verify), the form
    ``pipelines/demo.yaml`` holds."""
    out = Path(out)
    steps: list[dict[str, Any]] = [
        {"name": "simulate", "step": "sim-sar", "out": str(out / "data"), "per_class": per_class, "seed": seed}
    ]
    for layout in LAYOUTS:
        steps.append({"name": f"ingest-{layout}", "step": "ingest", "source": "mstar",
                      "root": str(out / "data" / layout), "out": str(out / "ingest" / f"mstar-{layout}"),
                      "workers": workers})  # fmt: skip
    steps.append({"name": "build-shards", "step": "build-shards", "ingest_dirs": [str(out / "ingest" / "mstar-jpeg")],
                  "out": str(out / "shards"), "config": BUILD, "workers": workers})  # fmt: skip
    steps.append({"name": "verify", "step": "verify", "root": str(out / "shards"), "samples": True})
    return steps


@dataclass
class DemoResult:
    out: Path
    generated: dict[str, int]
    ingests: dict[str, IngestResult] = field(default_factory=dict)
    build: BuildResult | None = None
    verified: VerifyReport | None = None
    pretrain: Any = None
    fewshot: dict[str, Any] = field(default_factory=dict)


def run_demo(
    out: str | os.PathLike[str],
    per_class: int = PER_CLASS,
    seed: int = 0,
    workers: int = WORKERS,
    progress: Callable[[str], Callable[[int, int], None]] | None = None,
    train: bool = True,
    pretrain_epochs: int = 8,
    train_progress: Callable[[str], Any] | None = None,
) -> DemoResult:
    """Run :func:`demo_steps`: generate the demo data under ``out/data``, ingest both layouts into
    ``out/ingest/<layout>``, build ``out/shards`` from the JPEG layout with precomputed GR targets and 5/10-shot
    views, verify it; then (``train``) pretrain SAR-JEPA for ``pretrain_epochs`` and run the 10-shot fine-tuning
    protocol (3 seeds) from the checkpoint and from scratch."""
    out = Path(out)
    steps = [parse_step(raw, "demo") for raw in demo_steps(out, per_class, seed, workers)]
    ran = {s.name: s.run(progress(_desc(s.name)) if progress and s.step in ("ingest", "build-shards") else None)
           for s in steps}  # fmt: skip
    result = DemoResult(out, ran["simulate"], build=ran["build-shards"], verified=ran["verify"])
    result.ingests = {layout: ran[f"ingest-{layout}"] for layout in LAYOUTS}
    if train:
        _train(result, out, seed, pretrain_epochs, train_progress)
    return result


def _desc(step_name: str) -> str:
    """Progress-bar title of a step (``ingest-raw`` → ``ingest mstar (raw)``)."""
    return f"ingest mstar ({step_name.removeprefix('ingest-')})" if step_name.startswith("ingest-") else step_name


def _train(result: DemoResult, out: Path, seed: int, epochs: int, progress: Callable[[str], Any] | None) -> None:
    """Small SAR-JEPA pretraining, then 10-shot fine-tuning from it and from scratch."""
    from sardata.train.finetune import FinetuneConfig, run_fewshot
    from sardata.train.pretrain import PretrainConfig, pretrain

    small = {"img_size": 64, "patch_size": 8, "embed_dim": 128, "depth": 4, "num_heads": 4}
    pre = PretrainConfig(kind="pretrain", name="demo-sar-jepa", model="lomar_sar_vit_base_patch16",
                         model_overrides={**small, "decoder_embed_dim": 128, "decoder_depth": 2,
                                          "decoder_num_heads": 4, "window_size": 4, "num_window": 4},
                         data=[str(out / "shards")], split="train", image_size=64, global_batch=64, epochs=epochs,
                         warmup_epochs=max(1, epochs // 10), blr=1.5e-3, seed=seed, checkpoint_every_epochs=10**6,
                         checkpoint_every_steps=20)  # fmt: skip
    result.pretrain = pretrain(pre, out / "runs" / "pretrain", progress=progress("pretrain") if progress else None)
    ckpt = str(out / "runs" / "pretrain" / "checkpoints" / "last.pt")
    for name, checkpoint in (("sar-jepa", ckpt), ("scratch", None)):
        ft = FinetuneConfig(kind="finetune", name=f"demo-{name}", data=str(out / "shards"), checkpoint=checkpoint,
                            model_overrides={k: v for k, v in small.items() if k != "img_size"}, shots=[10],
                            seeds=[0, 1, 2], preset="native", crop=None, image_size=64)  # fmt: skip
        result.fewshot[name] = run_fewshot(ft, out / "runs" / f"fewshot-{name}",
                                           progress=progress(f"10-shot {name}") if progress else None)  # fmt: skip
