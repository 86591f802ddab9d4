"""The batched sample store (issue 19): packs of many inputs, their footprint, resume at pack granularity, the
bounded-memory merge (external sort) and identical output for any worker count."""

from __future__ import annotations

import importlib
import random
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from sardata.ingest import ingest, load_ingest
from sardata.ingest.driver import MIN_CHUNKS
from sardata.manifest.schema import SAMPLES, SOURCES
from sardata.sim.sar_targets import write_demo_dataset
from sardata.store import INDEX, iter_pack_rows, list_packs, load_arrays, pack_path, read_pack_sources


@pytest.fixture(scope="module")
def chips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """608 JPEG chips of 64 × 64 px in the MSTAR-10 layout."""
    root = tmp_path_factory.mktemp("chips")
    write_demo_dataset(root, per_class=76, size=64, nonsquare=False)
    return root / "jpeg"


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _tables(out: Path) -> tuple[bytes, bytes]:
    return (out / "samples.parquet").read_bytes(), (out / "sources.parquet").read_bytes()


def test_footprint_and_identical_store_for_any_worker_count(chips: Path, tmp_path: Path) -> None:
    one = ingest("mstar", chips, tmp_path / "one", workers=1)
    two = ingest("mstar", chips, tmp_path / "two", workers=2)
    n = sum(one.files.values())
    assert n >= 500 and one.files == two.files
    store_one = {k: v for k, v in _files(tmp_path / "one").items() if k.startswith("units/")}
    assert store_one == {k: v for k, v in _files(tmp_path / "two").items() if k.startswith("units/")}
    assert _tables(tmp_path / "one") == _tables(tmp_path / "two")
    # files: <= inputs / 256 + workers + a constant (here: the index, MIN_CHUNKS chunks for a short listing)
    assert len(store_one) <= n / 256 + 2 + MIN_CHUNKS + 1, sorted(store_one)
    # bytes: <= 1.1 x the encoded arrays (the rows and the zip framing are the rest)
    arrays = sum(
        sum(s)
        for p in list_packs(tmp_path / "one")
        for s in pa.concat_tables(iter_pack_rows(tmp_path / "one", p, SAMPLES))["store_sizes"].to_pylist()
    )
    assert sum(len(v) for v in store_one.values()) <= 1.1 * arrays


def test_resume_at_pack_granularity(chips: Path, tmp_path: Path) -> None:
    """Packs that never committed (deleted, or a temp left by a kill) are redone, the others resumed input by
    input; the result equals an uninterrupted run and every input is stored exactly once."""
    ingest("mstar", chips, tmp_path / "ref")
    out = tmp_path / "out"
    ingest("mstar", chips, out)
    packs = list_packs(out)
    lost = packs[1::3]
    n_lost = sum(read_pack_sources(out, p, SOURCES)[1].num_rows for p in lost)
    for p in lost:
        pack_path(out, p).rename(pack_path(out, p).with_name(f".tmp-999-{p}.zip"))  # as a kill -9 leaves it
    (out / "dataset.json").unlink()
    r = ingest("mstar", chips, out, workers=2)
    assert r.resumed_units == sum(r.files.values()) - n_lost > 0
    assert _tables(out) == _tables(tmp_path / "ref")
    assert sorted(list_packs(out)) == sorted(list_packs(tmp_path / "ref"))
    assert not list(out.rglob(".tmp-*"))


def test_changed_input_is_redone_alone_and_its_stale_record_ignored(chips: Path, tmp_path: Path) -> None:
    root = tmp_path / "data"
    shutil.copytree(chips, root)
    out = tmp_path / "out"
    first = ingest("mstar", root, out)
    victim = sorted(root.rglob("*.jpeg"))[5]
    shutil.copy(sorted(root.rglob("*.jpeg"))[0], victim)
    total = sum(first.files.values())
    assert ingest("mstar", root, out).resumed_units == total - 1
    assert ingest("mstar", root, out).resumed_units == total  # the new record, not the stale one in the old pack
    ingest("mstar", root, tmp_path / "fresh")
    assert _tables(out) == _tables(tmp_path / "fresh")
    rel = str(victim.relative_to(root))
    sample = next(r for r in load_ingest(out)[0].to_pylist() if r["src_path"] == rel)
    fresh = next(r for r in load_ingest(tmp_path / "fresh")[0].to_pylist() if r["src_path"] == rel)
    assert (
        load_arrays(out, sample["store_path"])["img"] == load_arrays(tmp_path / "fresh", fresh["store_path"])["img"]
    ).all()


def test_external_sort_gives_the_in_memory_order(monkeypatch) -> None:
    sort = importlib.import_module("sardata.ingest.sort")  # sardata.ingest is the function

    monkeypatch.setattr(sort, "RUN_ROWS", 7)
    monkeypatch.setattr(sort, "BLOCK_ROWS", 3)
    rng = random.Random(0)
    keys = [f"k{rng.randrange(10**9):09d}-{i}" for i in range(200)]
    tables = [pa.table({"key": keys[i : i + 13], "v": list(range(i, min(i + 13, 200)))}) for i in range(0, 200, 13)]
    tmp = Path(__import__("tempfile").mkdtemp())
    got = list(sort.sorted_by_key(iter(tables), False, tmp, 16))
    assert [t.num_rows for t in got] == [16] * 12 + [8]
    whole = pa.concat_tables(got)
    assert whole.column("key").to_pylist() == sorted(keys)
    assert whole.column("v").to_pylist() == [keys.index(k) for k in sorted(keys)]
    assert list(tmp.iterdir()) == []  # run files removed


def test_merge_through_spilled_runs_writes_the_same_tables(chips: Path, tmp_path: Path, monkeypatch) -> None:
    sort = importlib.import_module("sardata.ingest.sort")  # sardata.ingest is the function

    tables = importlib.import_module("sardata.ingest.tables")
    ingest("mstar", chips, tmp_path / "ref")
    monkeypatch.setattr(sort, "RUN_ROWS", 50)
    monkeypatch.setattr(sort, "BLOCK_ROWS", 8)
    keys = tables._keys  # rows of this layout arrive in key order: pretend they do not, to take the spill path
    monkeypatch.setattr(tables, "_keys", lambda *a: (lambda k, _, schema: (k, False, schema))(*keys(*a)))
    ingest("mstar", chips, tmp_path / "runs")
    assert _tables(tmp_path / "runs") == _tables(tmp_path / "ref")
    index = pa.parquet.read_table(tmp_path / "runs" / INDEX)
    samples = load_ingest(tmp_path / "runs")[0]
    assert index.column("store_path").equals(samples.column("store_path"))


def test_colliding_keys_get_their_hashed_form(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_demo_dataset(tmp_path / "demo", per_class=1, size=16)
    src = sorted((tmp_path / "demo" / "jpeg").rglob("*.jpeg"))[0]
    folder = root / "MSTAR-10" / "train" / "BMP2"
    folder.mkdir(parents=True)
    shutil.copy(src, folder / "hb1.jpeg")
    shutil.copy(src, folder / "HB1.jpeg")
    ingest("mstar", root, tmp_path / "out")
    keys = load_ingest(tmp_path / "out")[0].column("key")
    assert len(keys) == 2 and pc.count_distinct(keys).as_py() == 2
    assert all(len(k.split("-")[-1]) == 10 for k in keys.to_pylist())  # both suffixed with 10 hex digits
