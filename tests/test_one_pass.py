"""``build-shards --from-source`` (issue 19): a source straight to shards, byte-identical to ingest + build-shards,
with no sample store left behind and resumable."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import FIXTURES

from sardata.ingest import ingest
from sardata.ingest.onepass import build_from_source
from sardata.shards.build import WORK, BuildConfig, build_shards
from sardata.store import PackWriter

CASES = {
    "sar-acd": (FIXTURES / "sar-acd" / "SAR-ACD", {}),
    "mstar": (FIXTURES / "mstar" / "raw", {}),
    "radchar": (FIXTURES / "radchar" / "RadChar", {"pdw": "false"}),
    "sar-ship": (FIXTURES / "sar-ship" / "ship_dataset_v0", {}),
}
IMAGE_CONFIGS = [
    BuildConfig(max_shard_samples=3, test_ratio=0.5, shots=(1,), seeds=(0,)),
    BuildConfig(size_policy="resize", size=32, targets=("gr",), max_shard_bytes=1 << 16),
    BuildConfig(normalise="unit-magnitude", channel="0", size_policy="center-crop", size=24),
]


def files(root: Path) -> dict[str, bytes]:
    """Every file under ``root``; ``dataset.json`` without its wall-clock ``created_at``."""
    out = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if path.name == "dataset.json":
            card = json.loads(data)
            card.pop("created_at")
            data = json.dumps(card, sort_keys=True).encode()
        out[str(path.relative_to(root))] = data
    return out


def _configs(source: str) -> list[BuildConfig]:
    if source == "radchar":
        return [BuildConfig(max_shard_samples=7, where="snr_db > 0", test_ratio=0.3)]
    if source == "sar-ship":  # boxes follow only the keep policy
        return [IMAGE_CONFIGS[0], BuildConfig(targets=("gr",))]
    return IMAGE_CONFIGS


@pytest.mark.parametrize("source", sorted(CASES))
def test_one_pass_equals_ingest_then_build(source: str, tmp_path: Path) -> None:
    root, options = CASES[source]
    ingest(source, root, tmp_path / "ingest", options=options)
    for i, cfg in enumerate(_configs(source)):
        two = build_shards([tmp_path / "ingest"], tmp_path / f"two{i}", cfg)
        one, first = build_from_source(source, root, tmp_path / f"one{i}", cfg, options=options, workers=2)
        assert (one.samples, one.shards) == (two.samples, two.shards) and sum(first.files.values()) > 0
        want, got = files(tmp_path / f"two{i}"), files(tmp_path / f"one{i}")
        assert sorted(got) == sorted(want) and [k for k in want if want[k] != got[k]] == [], (source, cfg)
        assert not (tmp_path / f"one{i}" / WORK).exists()


def test_pass_one_keeps_rows_but_no_arrays(tmp_path: Path, monkeypatch) -> None:
    """No decoded copy of the data on disk: the rows-only store's packs hold no array bytes."""
    written: list[int] = []
    commit = PackWriter.commit

    def spy(self: PackWriter) -> str:
        written.append(len(self._buf))
        return commit(self)

    monkeypatch.setattr(PackWriter, "commit", spy)
    build_from_source("sar-acd", CASES["sar-acd"][0], tmp_path / "one", BuildConfig())
    assert written and set(written) == {0}


def test_one_pass_resumes_after_a_crash_in_pass_two(tmp_path: Path, monkeypatch) -> None:
    """A run that dies while finishing shards: the rerun resumes pass 1 from its rows, keeps the shards already
    finished and ends identical to an uninterrupted run."""
    import importlib

    onepass = importlib.import_module("sardata.ingest.onepass")
    root, _ = CASES["sar-acd"]
    cfg = BuildConfig(max_shard_samples=2)
    build_from_source("sar-acd", root, tmp_path / "ref", cfg)
    finish, calls = onepass._finish_shard, []

    def dies_on_the_third(item):  # noqa: ANN001, ANN202
        calls.append(item)
        if len(calls) == 3:
            raise RuntimeError("killed")
        return finish(item)

    monkeypatch.setattr(onepass, "_finish_shard", dies_on_the_third)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="killed"):
        build_from_source("sar-acd", root, out, cfg)
    monkeypatch.setattr(onepass, "_finish_shard", finish)
    result, first = build_from_source("sar-acd", root, out, cfg)
    assert first.resumed_units == sum(first.files.values())  # pass 1 resumed from its rows
    assert result.reused_shards == 2 and files(out) == files(tmp_path / "ref")


def test_one_pass_refuses_another_configuration_and_overwrites(tmp_path: Path) -> None:
    from sardata.errors import ConfigError

    root, _ = CASES["sar-acd"]
    build_from_source("sar-acd", root, tmp_path / "out", BuildConfig(max_shard_samples=2))
    with pytest.raises(ConfigError, match="another configuration"):
        build_from_source("sar-acd", root, tmp_path / "out", BuildConfig(max_shard_samples=3))
    build_from_source("sar-acd", root, tmp_path / "out", BuildConfig(max_shard_samples=3), overwrite=True)
    shutil.rmtree(tmp_path / "out" / "shards")
    assert not (tmp_path / "out" / WORK).exists()


def test_cli_from_source(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from sardata.cli import app

    root, options = CASES["radchar"]
    ingest("radchar", root, tmp_path / "ingest", options=options)
    build_shards([tmp_path / "ingest"], tmp_path / "two", BuildConfig(test_ratio=0.5))
    args = ["build-shards", "--from-source", "radchar", str(root), "--out", str(tmp_path / "one"), "-o", "pdw=false"]
    result = CliRunner().invoke(app, [*args, "--test-ratio", "0.5", "-j", "2"])
    assert result.exit_code == 0, result.output
    assert files(tmp_path / "one") == files(tmp_path / "two")
    bad = CliRunner().invoke(app, ["build-shards", str(tmp_path / "ingest"), "--out", str(tmp_path / "x"), "-o", "a=b"])
    assert bad.exit_code == 2 and "--from-source" in bad.output
