"""Shared test fixtures: paths to the committed fixtures and to ``../shared/data`` (real files)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "data"
SHARED_DATA = Path(os.environ.get("SARDATA_SHARED_DATA", REPO.parent / "shared" / "data"))


def shared(name: str) -> Path:
    """A folder of real data under ``../shared/data``; skip the test when it is absent."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"real data {path} not present")
    return path


def load_generator(source: str):
    """Import ``tests/data/<source>/data.py`` (folder names may hold hyphens)."""
    path = FIXTURES / source / "data.py"
    spec = importlib.util.spec_from_file_location(f"fixture_{source.replace('-', '_')}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def sardata_cmd() -> list[str]:
    """The console script as a subprocess command (same interpreter as the tests)."""
    return [sys.executable, "-c", "from sardata.cli import main; main()"]


def build_acd_dataset(work: Path) -> Path:
    """One ingest of the SAR-ACD fixture (12 chips, 6 classes) into ``work/ingest`` and a dataset of 3-sample
    shards with a test split into ``work/ds``: the shared starting point of the sharing and clean-error tests."""
    from sardata.ingest import ingest
    from sardata.shards.build import BuildConfig, build_shards

    ingest("sar-acd", FIXTURES / "sar-acd" / "SAR-ACD", work / "ingest")
    build_shards([work / "ingest"], work / "ds", BuildConfig(max_shard_samples=3, test_ratio=0.25))
    return work
