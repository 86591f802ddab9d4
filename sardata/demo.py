"""The embedded end-to-end demo: synthetic SAR chips → MSTAR raw + JPEG layouts → ingest → summary."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sardata.ingest import IngestResult, ingest
from sardata.sim.sar_targets import write_demo_dataset


@dataclass
class DemoResult:
    out: Path
    generated: dict[str, int]
    ingests: dict[str, IngestResult] = field(default_factory=dict)


def run_demo(
    out: str | os.PathLike[str],
    per_class: int = 24,
    seed: int = 0,
    workers: int = 2,
    progress: Callable[[str], Callable[[int, int], None]] | None = None,
) -> DemoResult:
    """Generate the demo data under ``out/data`` and ingest both layouts into ``out/ingest/<layout>``."""
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
    return result
