"""The embedded end-to-end demo: synthetic SAR chips → MSTAR raw + JPEG layouts → ingest → shards with GR targets
and few-shot views → verify."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sardata.ingest import IngestResult, ingest
from sardata.manifest.verify import VerifyReport, verify
from sardata.shards.build import BuildConfig, BuildResult, build_shards
from sardata.sim.sar_targets import write_demo_dataset


@dataclass
class DemoResult:
    out: Path
    generated: dict[str, int]
    ingests: dict[str, IngestResult] = field(default_factory=dict)
    build: BuildResult | None = None
    verified: VerifyReport | None = None


def run_demo(
    out: str | os.PathLike[str],
    per_class: int = 24,
    seed: int = 0,
    workers: int = 2,
    progress: Callable[[str], Callable[[int, int], None]] | None = None,
) -> DemoResult:
    """Generate the demo data under ``out/data``, ingest both layouts into ``out/ingest/<layout>``, build
    ``out/shards`` from the JPEG layout with precomputed GR targets and 5-shot views, and verify it."""
    out = Path(out)
    generated = write_demo_dataset(out / "data", per_class=per_class, seed=seed)
    result = DemoResult(out, generated)
    for layout in ("raw", "jpeg"):
        result.ingests[layout] = ingest(
            "mstar",
            out / "data" / layout,
            out / "ingest" / f"mstar-{layout}",
            workers=workers,
            progress=progress(f"ingest mstar ({layout})") if progress else None,
        )
    cfg = BuildConfig(targets=("gr",), shots=(5,), seeds=(0, 1, 2), max_shard_samples=64)
    result.build = build_shards([out / "ingest" / "mstar-jpeg"], out / "shards", cfg, workers=workers,
                                progress=progress("build-shards") if progress else None)  # fmt: skip
    result.verified = verify(out / "shards", samples=True)
    return result
