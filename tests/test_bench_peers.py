"""``sardata bench loader``'s peer rows (LitData, MDS): without the peers installed (the main venv, CI) they are
skipped with a one-line reason and the rest of the bench still runs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sardata.bench import peers
from sardata.cli import app


@pytest.fixture
def no_peers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither peer importable, whatever this environment has installed."""
    for module in peers.PEERS.values():
        monkeypatch.setitem(sys.modules, module, None)  # `import x` raises ImportError


def test_missing_peers_have_one_line_reasons(no_peers: None) -> None:
    status = peers.peer_status()
    assert set(status) == {"litdata", "mds"}
    for name, reason in status.items():
        assert reason and "\n" not in reason and "cannot be imported" in reason, (name, reason)
    assert "make bench-peers-env" in status["litdata"]
    assert "numpy<2.2" in status["mds"]


def test_peer_rows_skip_missing_peers_and_keep_the_rest(no_peers: None, tmp_path: Path) -> None:
    (tmp_path / "ds" / "shards").mkdir(parents=True)
    (tmp_path / "ds" / "shards" / "a.tar").write_bytes(b"x" * 3000)
    (tmp_path / "ds" / "samples.parquet").write_bytes(b"x" * 1000)
    calls: list[tuple[str, int]] = []

    def measure(kind: str, data: Path, workers: int, marks: Path | None = None) -> dict[str, Any]:
        calls.append((kind, workers))
        return {"kind": kind, "workers": workers}

    rows: list[dict[str, Any]] = []
    side = peers.peer_rows(rows, tmp_path, (0, 2), lambda w: tmp_path / f"v{w}", measure, 1 << 20)
    assert calls == [("webdataset-shuffled", 0), ("sardata-shuffled", 0), ("webdataset-shuffled", 2),
                     ("sardata-shuffled", 2), ("sardata-random", 0)]  # fmt: skip
    assert len(rows) == len(calls)
    assert set(side["skipped"]) == {"litdata", "mds"}
    assert side["footprint_mb"] == {"sardata": 0.004, "webdataset": 0.003}
    assert not (tmp_path / "litdata").exists() and not (tmp_path / "mds").exists()


def test_cli_prints_the_skip_reasons(monkeypatch: pytest.MonkeyPatch) -> None:
    row = {"samples": 100, "samples_per_s": 1000.0, "peak_rss_mb": 500.0}
    result = {
        "rows": [{**row, "kind": k, "workers": 0} for k in ("raw", "webdataset", "sardata", "sardata-random")],
        "grown": None,
        "grow": 0,
        "remote": "",
        "peers": {"skipped": {"mds": "streaming cannot be imported (why)"}, "footprint_mb": {"sardata": 1.5}},
    }
    monkeypatch.setattr("sardata.bench.stream.bench_loader", lambda **kw: result)
    out = CliRunner().invoke(app, ["bench", "loader", "--workers", "0", "--grow", "0"])
    assert out.exit_code == 0, out.output
    assert "mds rows skipped: streaming cannot be imported (why)" in out.output
    assert "random access, sardata" in out.output and "disk footprint, sardata" in out.output


def test_shuffled_and_random_rows_count_the_same_samples(tmp_path: Path) -> None:
    from sardata.bench.stream import _measure, make_data

    root = make_data(tmp_path, per_class=2)  # 16 samples
    rows = [_measure(kind, root, 0, batch=4) for kind in ("webdataset-shuffled", "sardata-shuffled")]
    assert [r["samples"] for r in rows] == [44, 44]  # 3 epochs x 16, minus the warm-up batch of 4
    random = _measure("sardata-random", root, 0)
    assert random["samples"] == 15 and random["samples_per_s"] > 0  # one pass of random indices, one untimed
