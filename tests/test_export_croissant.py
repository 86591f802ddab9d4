"""The Croissant export (issue 20 point 10): ``mlcroissant validate`` passes with no warning and no error, offline;
license, citeAs, datePublished and a semver version come from the source cards and the dataset card; the tar
members are reachable as Croissant records, and a record's ``.npy`` bytes decode to the stored array.

Offline is enforced, not assumed: in process every socket connection raises; the CLI and the record reader run
with HTTP(S) proxies pointing at a closed port, so any fetch would fail the run."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import socket
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import FIXTURES, REPO
from typer.testing import CliRunner

from sardata.cli import app
from sardata.dataset.export_croissant import croissant
from sardata.manifest.io import read_card

mlc = pytest.importorskip("mlcroissant")

pytestmark = pytest.mark.timeout(300)

SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(\+[0-9a-zA-Z-]+(\.[0-9a-zA-Z-]+)*)?$")
OFFLINE = {"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": "",
           "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9", "no_proxy": ""}  # fmt: skip


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SAR-ACD fixture built at 32 x 32 with GR targets, train and test splits, 3-sample shards, and its
    Croissant document written next to it by the CLI."""
    from sardata.ingest import ingest
    from sardata.shards.build import BuildConfig, build_shards

    work = tmp_path_factory.mktemp("export-croissant")
    ingest("sar-acd", FIXTURES / "sar-acd" / "SAR-ACD", work / "ingest")
    cfg = BuildConfig(size_policy="resize", size=32, targets=("gr",), max_shard_samples=3, test_ratio=0.5)
    build_shards([work / "ingest"], work / "ds", cfg)
    out = work / "ds" / "croissant.json"
    result = CliRunner().invoke(
        app, ["manifest", "export", str(work / "ds"), "--format", "croissant", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    return work / "ds"


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError(f"network access during an offline test: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_mlcroissant_validates_with_no_warning(ds: Path, no_network: None, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        dataset = mlc.Dataset(jsonld=str(ds / "croissant.json"))
    issues = dataset.metadata.issues
    assert not issues.errors and not issues.warnings, issues.report()
    assert [
        r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING
    ] == []  # e.g. a non-standard @context
    # the document built in memory is the one written by the CLI
    assert json.loads((ds / "croissant.json").read_text()) == croissant(ds)


def test_mlcroissant_validate_cli_prints_no_warning(ds: Path, tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "mlcroissant"
    if not exe.exists():
        pytest.skip("the mlcroissant console script is not installed next to this Python")
    env = {**os.environ, **OFFLINE, "CROISSANT_CACHE": str(tmp_path / "croissant-cache")}
    run = subprocess.run([str(exe), "validate", "--jsonld", str(ds / "croissant.json")], env=env,
                         capture_output=True, text=True, timeout=240)  # fmt: skip
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "Done." in output and not re.search(r"warning|error", output, re.IGNORECASE), output


def test_license_citation_date_and_version(ds: Path, tmp_path: Path) -> None:
    doc = json.loads((ds / "croissant.json").read_text())
    source_card = yaml.safe_load((REPO / "manifests" / "sources" / "sar-acd.yaml").read_text())
    assert doc["license"] == [" ".join(source_card["licence"].split())]
    assert doc["citeAs"] == " ".join(source_card["citation"].split())
    card = read_card(ds)
    assert doc["datePublished"] == card["created_at"]
    assert SEMVER.match(doc["version"]) and doc["version"] == f"{card['schema_version']}+{card['config_sha256'][:12]}"
    # a source without a card is listed as unknown with the reason, never dropped; the document stays valid
    bare = croissant(ds, cards_dir=tmp_path / "no-cards")
    assert bare["license"] == bare["citeAs"].split("\n") and bare["license"][0].startswith("unknown: no source card")
    assert not mlc.Dataset(jsonld=bare).metadata.issues.warnings


def test_tar_members_are_described_as_file_sets_and_record_sets(ds: Path) -> None:
    doc = croissant(ds)
    tars = sorted(f["@id"] for f in doc["distribution"] if f.get("encodingFormat") == "application/x-tar")
    sets = {f["@id"]: f for f in doc["distribution"] if f["@type"] == "cr:FileSet"}
    assert sorted(sets) == ["gr-members", "img-members"]
    for field in ("img", "gr"):
        fs = sets[f"{field}-members"]
        assert sorted(c["@id"] for c in fs["containedIn"]) == tars and fs["includes"] == f"*.{field}.npy"
        rs = next(r for r in doc["recordSet"] if r["@id"] == field)
        assert [f["@id"] for f in rs["field"]] == [f"{field}/key", f"{field}/npy"]


def _read_records_offline(ds: Path, cache: Path) -> dict[str, dict[str, tuple]]:
    """Records of ``img`` and ``gr`` read by mlcroissant in a child process (its cache folder is fixed at import),
    with the network refused: record set -> key -> (shape, dtype, sha256 of the decoded array)."""
    script = """
import hashlib, io, json, socket, sys
import numpy as np
def refuse(*a, **k):
    raise OSError("network access")
socket.socket.connect = refuse
import mlcroissant as mlc
dataset = mlc.Dataset(jsonld=sys.argv[1])
out = {}
for rs in ("img", "gr"):
    for r in dataset.records(rs):
        a = np.load(io.BytesIO(r[rs + "/npy"]), allow_pickle=False)
        out.setdefault(rs, {})[r[rs + "/key"].decode()] = [list(a.shape), a.dtype.str, hashlib.sha256(a.tobytes()).hexdigest()]
print(json.dumps(out))
"""
    env = {**os.environ, **OFFLINE, "CROISSANT_CACHE": str(cache)}
    run = subprocess.run([sys.executable, "-c", script, str(ds / "croissant.json")], env=env, capture_output=True,
                         text=True, timeout=240)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_pixels_and_gr_maps_are_reachable_through_croissant_records(ds: Path, tmp_path: Path) -> None:
    import hashlib

    got = _read_records_offline(ds, tmp_path / "croissant-cache")
    want: dict[str, dict[str, list]] = {"img": {}, "gr": {}}
    for shard in sorted((ds / "shards").glob("*.tar")):
        with tarfile.open(shard) as tar:
            for member in tar.getmembers():
                key, field = member.name.split(".", 1)
                if field in ("img.npy", "gr.npy"):
                    a = np.load(io.BytesIO(tar.extractfile(member).read()))
                    want[field[:-4]][key] = [list(a.shape), a.dtype.str, hashlib.sha256(a.tobytes()).hexdigest()]
    assert got == want and len(got["img"]) == read_card(ds)["tables"]["samples"]["rows"] == 12
    assert {tuple(v[0]) for v in got["gr"].values()} == {(4, 32, 32)}
