"""Crash safety: a killed or damaged ingest resumes to the same manifest as an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import FIXTURES, shared

from sardata.ingest import ingest
from sardata.manifest.schema import SOURCES
from sardata.store import list_packs, pack_path, read_pack_sources


def committed_inputs(out: Path) -> list[str]:
    """The input files recorded in the committed packs of ``out`` (one entry per record)."""
    rels = []
    for pack in list_packs(out):
        got = read_pack_sources(out, pack, SOURCES)
        if got is not None:
            rels += [r["src_path"] for r in got[1].to_pylist() if r["src_member"] is None]
    return sorted(rels)


def assert_same_manifest(a: Path, b: Path) -> None:
    for name in ("samples.parquet", "sources.parquet"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    card_a, card_b = (json.loads((d / "dataset.json").read_text()) for d in (a, b))
    card_a.pop("created_at"), card_b.pop("created_at")
    assert card_a == card_b
    assert not [p for p in b.rglob(".tmp-*")]
    assert committed_inputs(b) == committed_inputs(a)  # each input once: no duplicate, no stale copy kept


def test_damaged_run_resumes_identically(tmp_path: Path) -> None:
    root = FIXTURES / "mstar" / "raw"
    ingest("mstar", root, tmp_path / "a")
    b = tmp_path / "b"
    ingest("mstar", root, b)
    parts = [pack_path(b, p) for p in list_packs(b)]
    assert len(parts) >= 3
    for p in parts[::2]:
        p.unlink()  # packs never finished
    parts[1].write_text('{"truncated": ')  # a torn pack is redone
    (b / "dataset.json").unlink()
    (b / "samples.parquet").unlink()
    (parts[1].parent / ".tmp-999-leftover.zip").write_text("x")  # temp of a killed writer
    result = ingest("mstar", root, b)
    assert 0 < result.resumed_units < sum(result.files.values())
    assert_same_manifest(tmp_path / "a", b)


def test_changed_input_file_is_redone(tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "acd"
    shutil.copytree(FIXTURES / "sar-acd" / "SAR-ACD", root)
    out = tmp_path / "out"
    ingest("sar-acd", root, out)
    shutil.copy(root / "images" / "A330" / "001.jpg", root / "images" / "A220" / "001.jpg")
    result = ingest("sar-acd", root, out)
    assert result.resumed_units == result.files["ok"] + result.files["skipped"] - 1


@pytest.mark.real_data
@pytest.mark.slow
def _committed_units(out: Path) -> list[str]:
    """Inputs of the packs renamed into place: a worker's in-flight temp (``.tmp-…``) is not a pack yet."""
    try:
        return committed_inputs(out)
    except OSError:  # a pack replaced while it was read
        return []


def test_kill_9_during_ingest_then_rerun(tmp_path: Path) -> None:
    root = shared("sar-acd")
    ingest("sar-acd", root, tmp_path / "clean", workers=2)
    out = tmp_path / "killed"
    cmd = [
        sys.executable,
        "-c",
        "from sardata.cli import main; main()",
        "ingest",
        "sar-acd",
        str(root),
        "--out",
        str(out),
        "--workers",
        "2",
    ]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if len(_committed_units(out)) >= 600:
            break
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its worker processes, mid-run
    proc.wait()
    assert not (out / "dataset.json").exists(), "killed too late: the run had finished"
    done = len(_committed_units(out))
    assert 600 <= done < 3032
    result = ingest("sar-acd", root, out, workers=2)
    assert result.resumed_units >= 600 and result.files["ok"] == 3032
    assert_same_manifest(tmp_path / "clean", out)


def test_edited_companion_label_is_not_served_from_a_stale_unit(tmp_path: Path) -> None:
    """sar-ship reads each image's YOLO .txt: editing only the .txt must change the resumed result."""
    import shutil

    from sardata.ingest import load_ingest

    root = tmp_path / "ships"
    shutil.copytree(FIXTURES / "sar-ship" / "ship_dataset_v0", root)
    out = tmp_path / "out"
    ingest("sar-ship", root, out)
    label = next(p for p in sorted(root.glob("*.txt")) if p.read_text().strip())
    before = {r["src_path"]: r["content_sha256"] for r in load_ingest(out)[0].to_pylist()}
    label.write_text("0 0.5 0.5 0.25 0.25\n")
    result = ingest("sar-ship", root, out)
    after = {r["src_path"]: r["content_sha256"] for r in load_ingest(out)[0].to_pylist()}
    image = next(k for k in after if k.startswith(label.stem))
    assert result.resumed_units == 0 and after[image] != before[image]
    assert ingest("sar-ship", root, out).resumed_units == len(list(root.iterdir()))  # unchanged: all reused


def test_damaged_row_table_in_a_unit_is_redone_on_rerun(tmp_path: Path) -> None:
    """A unit whose part.json reads but whose samples.parquet is damaged: merge names it and removes it, and the
    rerun redoes that unit (instead of trusting it forever) and gives the clean tables."""
    import shutil
    import zipfile

    from sardata.errors import ConfigError
    from sardata.ingest import ingest, load_ingest
    from sardata.sim.sar_targets import write_demo_dataset

    write_demo_dataset(tmp_path / "data", per_class=2, size=16)
    ref = ingest("mstar", tmp_path / "data" / "jpeg", tmp_path / "ref")
    out = tmp_path / "out"
    shutil.copytree(tmp_path / "ref", out)
    unit = pack_path(out, list_packs(out)[0])
    with zipfile.ZipFile(unit) as zf:
        info = zf.getinfo("samples.parquet")
    with open(unit, "r+b") as fh:  # flip bytes inside the member's data (after its local header)
        fh.seek(info.header_offset + 26)
        skip = int.from_bytes(fh.read(2), "little") + int.from_bytes(fh.read(2), "little")
        fh.seek(info.header_offset + 30 + skip + 64)
        fh.write(b"\xff" * 16)
    (out / "dataset.json").unlink()
    with pytest.raises(ConfigError, match=unit.name):
        ingest("mstar", tmp_path / "data" / "jpeg", out)
    assert not unit.exists()
    r = ingest("mstar", tmp_path / "data" / "jpeg", out)
    assert r.samples == ref.samples and load_ingest(out)[0].equals(load_ingest(tmp_path / "ref")[0])


def test_pack_writer_cleans_up_even_when_closing_the_spool_fails(tmp_path: Path, monkeypatch) -> None:
    import pyarrow.parquet as pq

    import sardata.store as store
    from sardata.manifest.schema import SAMPLES, SOURCES

    monkeypatch.setattr(store, "ROW_BLOCK", 2)
    close = pq.ParquetWriter.close

    def full_disk(self) -> None:
        close(self)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pq.ParquetWriter, "close", full_disk)
    row = {k: None for k in SAMPLES.names} | {
        "key": "k",
        "source": "s",
        "source_version": "1",
        "split": "train",
        "src_path": "p",
        "src_sha256": "x",
        "modality": "sar",
    }
    with pytest.raises(RuntimeError, match="adapter died"), store.PackWriter(tmp_path, "fp", SAMPLES, SOURCES) as w:
        w.begin_input()
        for _ in range(3):
            w.add_arrays([(b"x" * 10,)])
            w.add_row(row)
        raise RuntimeError("adapter died")
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_build_killed_after_its_card_finishes_the_cleanup(tmp_path: Path) -> None:
    """kill -9 between the card (commit point) and the work-dir removal: the rerun leaves exactly what an
    uninterrupted build leaves (found by benchmarks/reliability.py: 1 of 10 kills landed in that window)."""
    import shutil

    from sardata.shards.build import WORK, BuildConfig, build_shards

    ing = tmp_path / "ing"
    ingest("sar-acd", FIXTURES / "sar-acd" / "SAR-ACD", ing)
    cfg = BuildConfig(max_shard_samples=4)
    build_shards([ing], tmp_path / "a", cfg)
    b = tmp_path / "b"
    build_shards([ing], b, cfg)
    (b / WORK).mkdir()
    (b / WORK / "train-000000.tar.json").write_text("{}")  # a sidecar the killed run had not removed yet
    (b / "shards" / ".tmp-999-train-000001.tar").write_bytes(b"x")
    build_shards([ing], b, cfg)
    files = lambda d: sorted(str(p.relative_to(d)) for p in d.rglob("*"))  # noqa: E731
    assert files(b) == files(tmp_path / "a")
    shutil.rmtree(b)
