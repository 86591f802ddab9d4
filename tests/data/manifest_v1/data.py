#!/usr/bin/env python3
"""Write the committed schema-1.0.0 dataset fixture ``manifest_v1/ds`` (a frozen *old* manifest).

``tests/test_schema_evolution.py`` proves that later sardata versions still load, verify and stream it. It is built
from the committed SAR-ACD fixture (12 JPEG chips, 4 samples per shard, 20 % test split) and its card gets a fixed
``created_at`` and no ``git_sha`` so a rerun is byte-identical. Run ``python tests/data/manifest_v1/data.py`` only
while ``SCHEMA_VERSION`` is 1.0.x — regenerating it with a newer schema would defeat its purpose.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: a frozen old-schema fixture: regenerating it with today's schema is refused (tests/test_fixture_generators.py)
FROZEN = True
SOURCE = HERE.parent / "sar-acd" / "SAR-ACD"


def generate(out: Path) -> list[Path]:
    from sardata.ingest import ingest
    from sardata.manifest.schema import SCHEMA_VERSION
    from sardata.shards.build import BuildConfig, build_shards

    if not SCHEMA_VERSION.startswith("1.0."):
        sys.exit(f"refusing to regenerate the 1.0 fixture with schema {SCHEMA_VERSION}")
    shutil.rmtree(out, ignore_errors=True)
    with tempfile.TemporaryDirectory() as tmp:
        ingest("sar-acd", SOURCE, Path(tmp) / "ingest")
        build_shards([Path(tmp) / "ingest"], out, BuildConfig(max_shard_samples=4, test_ratio=0.2))
    card_path = out / "dataset.json"
    card = json.loads(card_path.read_text())
    card.update(created_at="2026-01-01T00:00:00+00:00", git_sha=None)
    card_path.write_text(json.dumps(card, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    return sorted(p for p in out.rglob("*") if p.is_file())


if __name__ == "__main__":
    for path in generate(HERE / "ds"):
        print(hashlib.sha256(path.read_bytes()).hexdigest(), path.relative_to(HERE))
