"""``--engine ray``: the same per-file and per-shard functions as Ray Data tasks give byte-identical outputs.

One local Ray instance (2 CPUs, no dashboard) is started for the whole module — Ray's start-up dominates the
run time. Every output file of ``ingest`` and ``build-shards`` is compared byte for byte with the local engine;
the only field allowed to differ is the informational ``created_at`` of ``dataset.json`` (no engine is recorded).
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import FIXTURES

from sardata.errors import ConfigError, DependencyNotFoundError
from sardata.ingest import ingest
from sardata.shards.build import BuildConfig, build_shards

pytestmark = [
    pytest.mark.distributed,
    pytest.mark.timeout(300),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),  # Ray Data's own deprecated DataContext fields
]

ACD = FIXTURES / "sar-acd" / "SAR-ACD"


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[object]:
    ray = pytest.importorskip("ray", reason="Ray not installed (pip install 'sardata[ray]')")
    pytest.importorskip("ray.data")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        yield ray
    finally:
        ray.shutdown()


def files(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by relative path; ``dataset.json`` without its wall-clock ``created_at``."""
    out = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        data = path.read_bytes()
        if path.name == "dataset.json":
            card = json.loads(data)
            card.pop("created_at")
            data = json.dumps(card, sort_keys=True).encode()
        out[rel] = data
    return out


def test_ray_ingest_and_build_are_byte_identical(ray_cluster: object, tmp_path: Path) -> None:
    ingest("sar-acd", ACD, tmp_path / "local-ingest", workers=2)
    ingest("sar-acd", ACD, tmp_path / "ray-ingest", workers=2, engine="ray")
    local, remote = files(tmp_path / "local-ingest"), files(tmp_path / "ray-ingest")
    assert sorted(local) == sorted(remote) and any(k.startswith("units/") for k in local)
    assert [k for k in local if local[k] != remote[k]] == []

    # (GR targets are left out to keep the test fast: the per-shard function is the same either way, and
    # `sardata bench build-shards --engine ray --targets gr` checks byte identity with GR on real data)
    cfg = BuildConfig(max_shard_samples=2, test_ratio=0.25, size_policy="resize", size=32)
    build_shards([tmp_path / "local-ingest"], tmp_path / "local-ds", cfg, workers=2)
    build_shards([tmp_path / "ray-ingest"], tmp_path / "ray-ds", cfg, workers=1, engine="ray")  # 1 = all CPUs
    local, remote = files(tmp_path / "local-ds"), files(tmp_path / "ray-ds")
    assert sum(k.startswith("shards/") for k in local) >= 6
    assert sorted(local) == sorted(remote)
    assert [k for k in local if local[k] != remote[k]] == []


def test_unknown_engine_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="engine 'spark'"):
        ingest("sar-acd", ACD, tmp_path / "x", engine="spark")


def test_missing_ray_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real_import = builtins.__import__

    def no_ray(name: str, *args: object, **kwargs: object) -> object:
        if name == "ray" or name.startswith("ray."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(DependencyNotFoundError, match=r"pip install 'sardata\[ray\]'"):
        build_shards([tmp_path / "missing"], tmp_path / "ds", engine="ray")
    assert not (tmp_path / "ds").exists()  # refused before any work
