"""Issue #15 part 2: a one-byte edit of a local dataset never reaches the user silently (README, Integrity policy).

Each corruption class — a flipped payload byte in ``img.npy``/``gr.npy``/``cls``, an edited ``.npy`` header
(``|u1``→``|i1``, ``<f4``→``<i4``), a flipped byte in ``samples.parquet`` — must raise in the loaders, and
``manifest show``/``diff``/``merge`` must refuse damaged tables or shards (``merge`` linking nothing)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from torch.utils.data import DataLoader

from sardata.dataset.inspect import summary_table
from sardata.dataset.merge import merge
from sardata.dataset.verify import diff
from sardata.errors import ChecksumError, ConfigError, SardataError, ShardIntegrityError
from sardata.ingest import ingest
from sardata.shards.build import BuildConfig, build_shards
from sardata.sim.sar_targets import write_demo_dataset
from sardata.stream.dataset import ShardDataset, ShardIndex, ShardIterable


@pytest.fixture(autouse=True)
def _markers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SARDATA_VERIFIED_DIR", str(tmp_path / "verified"))  # no marker from another test


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Square uint8 chips with float32 GR maps, 4 samples per shard (every array field stacks)."""
    base = tmp_path_factory.mktemp("integrity")
    write_demo_dataset(base / "data", per_class=2, size=24, nonsquare=False)
    ingest("mstar", base / "data" / "jpeg", base / "ingest")
    build_shards([base / "ingest"], base / "ds", BuildConfig(targets=("gr",), max_shard_samples=4))
    return base / "ds"


@pytest.fixture
def ds(built: Path, tmp_path: Path) -> Path:
    root = tmp_path / "ds"
    shutil.copytree(built, root)
    return root


def _member(root: Path, field: str, victim: int = 1) -> tuple[str, str, dict]:
    row = ShardIndex(root, split=None, verify="off").rows[victim]
    return row.shard, row.key, next(m for m in row.members if m["field"] == field)


def _patch(root: Path, shard: str, at: int, new: bytes | None = None) -> None:
    """Overwrite bytes at ``at`` of a shard (None: flip every bit of one byte)."""
    with open(root / "shards" / shard, "r+b") as fh:
        fh.seek(at)
        if new is None:
            new = bytes([fh.read(1)[0] ^ 0xFF])
            fh.seek(at)
        fh.write(new)


def _header_edit(root: Path, field: str, old: bytes, new: bytes) -> tuple[str, str]:
    shard, key, m = _member(root, field)
    with open(root / "shards" / shard, "rb") as fh:
        fh.seek(m["offset"])
        head = fh.read(128)
    assert old in head, head
    _patch(root, shard, m["offset"] + head.index(old), new)
    return shard, key


def _consume(root: Path, workers: int = 0, **kw: object) -> None:
    it = ShardIterable(root, 4, split=None, shuffle=False, num_workers=workers, **kw)
    list(DataLoader(it, batch_size=None, num_workers=workers))


@pytest.mark.parametrize("field", ["img.npy", "gr.npy"])
@pytest.mark.parametrize("workers", [0, 2])
def test_flipped_payload_byte_raises_naming_shard_and_key(ds: Path, field: str, workers: int) -> None:
    shard, key, m = _member(ds, field)
    _patch(ds, shard, m["offset"] + m["size"] - 3)  # inside the array data: the direct readinto path
    with pytest.raises(ShardIntegrityError, match=f"{shard}:{key}: member"):
        _consume(ds, workers)
    with pytest.raises(ShardIntegrityError, match=f"{shard}:{key}"):
        ShardDataset(ds, split=None)[1]
    with pytest.raises(ShardIntegrityError, match=f"{shard}:{key}: member"):
        ShardDataset(ds, split=None, verify="sample")[1]
    ShardDataset(ds, split=None, verify="sample")[0]  # other samples of the shard stay readable per sample


def test_flipped_cls_byte_names_the_member(ds: Path) -> None:
    shard, key, m = _member(ds, "cls")
    _patch(ds, shard, m["offset"], b"7")  # a label digit changed
    with pytest.raises(ShardIntegrityError, match=f"{shard}:{key}: member cls"):
        _consume(ds)
    with pytest.raises(ShardIntegrityError, match=f"{shard}:{key}: member cls"):
        ShardDataset(ds, split=None, verify="sample")[1]


@pytest.mark.parametrize(("field", "old", "new"), [("img.npy", b"|u1", b"|i1"), ("gr.npy", b"<f4", b"<i4")])
@pytest.mark.parametrize("verify", ["shard", "off"])
def test_header_dtype_edit_raises_never_another_dtype(ds: Path, field: str, old: bytes, new: bytes,
                                                      verify: str) -> None:  # fmt: skip
    shard, key = _header_edit(ds, field, old, new)
    # even with hashing off, the registry dtype check refuses it, in the direct batch path and per sample
    with pytest.raises(ShardIntegrityError, match=f"{shard}:{key}"):
        _consume(ds, verify=verify)
    with pytest.raises(ShardIntegrityError, match=f"{shard}:{key}"):
        ShardDataset(ds, split=None, verify=verify)[1]


def _flip_table(root: Path, name: str = "samples") -> None:
    path = root / f"{name}.parquet"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_flipped_byte_in_samples_parquet_is_refused_everywhere(ds: Path, built: Path, tmp_path: Path,
                                                               sardata_cmd: list[str]) -> None:  # fmt: skip
    _flip_table(ds)
    with pytest.raises(ChecksumError, match="samples.parquet: sha256"):
        ShardDataset(ds, split=None)
    with pytest.raises(ChecksumError):
        ShardIterable(ds, 4, split=None, verify="off")  # tables are checked in every mode
    with pytest.raises(ChecksumError):
        summary_table(ds)
    with pytest.raises(ChecksumError):
        diff(built, ds)
    with pytest.raises(ChecksumError):
        merge([built, ds], tmp_path / "merged")
    for args in (["show", str(ds)], ["diff", str(built), str(ds)]):
        out = subprocess.run([*sardata_cmd, "manifest", *args], capture_output=True, text=True)
        assert out.returncode != 0 and "samples.parquet" in out.stderr, out.stderr


def test_merge_of_a_corrupted_shard_fails_and_links_nothing(ds: Path, built: Path, tmp_path: Path,
                                                            sardata_cmd: list[str]) -> None:  # fmt: skip
    shard, key, m = _member(ds, "img.npy")
    _patch(ds, shard, m["offset"] + m["size"] - 1)
    with pytest.raises(ShardIntegrityError, match=f"{shard}:{key}"):
        merge([built, ds], tmp_path / "api")
    out_dir = tmp_path / "cli"
    out = subprocess.run([*sardata_cmd, "manifest", "merge", str(ds), str(built), "--out", str(out_dir)],
                         capture_output=True, text=True)  # fmt: skip
    assert out.returncode != 0 and shard in out.stderr, out.stderr
    assert not list(out_dir.rglob("*.tar")) and not (out_dir / "dataset.json").exists()


def test_clean_data_loads_with_every_mode_and_verify_off_is_a_choice(ds: Path) -> None:
    ref = [b["__key__"] for b in ShardIterable(ds, 4, split=None, shuffle=False)]
    for verify in ("sample", "off"):
        assert [b["__key__"] for b in ShardIterable(ds, 4, split=None, shuffle=False, verify=verify)] == ref
    with pytest.raises(ConfigError, match="verify="):
        ShardDataset(ds, split=None, verify="fast")
    shard, _, m = _member(ds, "gr.npy")
    _patch(ds, shard, m["offset"] + m["size"] - 3)
    ShardDataset(ds, split=None, verify="off")[1]  # knowingly unchecked: the payload flip goes through


def test_an_edit_after_verification_is_caught(ds: Path, tmp_path: Path) -> None:
    """A remembered shard is re-hashed once its mtime/ctime change (any write through the file system)."""
    old = time.time() - 60
    for path in (ds / "shards").iterdir():
        os.utime(path, (old, old))  # older than the racy window: the check is remembered
    _consume(ds)
    assert list((tmp_path / "verified").iterdir())
    _consume(ds)  # from the markers
    shard, key, m = _member(ds, "img.npy")
    _patch(ds, shard, m["offset"] + m["size"] - 3)
    with pytest.raises(ShardIntegrityError, match=f"{shard}:{key}"):
        _consume(ds)
    assert issubclass(ShardIntegrityError, SardataError)


def test_a_missing_shard_is_an_integrity_error_in_loader_and_merge(ds: Path, built: Path, tmp_path: Path) -> None:
    shard, _, _ = _member(ds, "img.npy")
    (ds / "shards" / shard).unlink()
    with pytest.raises(ShardIntegrityError, match=f"{shard}: shard file .* unreadable"):
        _consume(ds)
    with pytest.raises(ShardIntegrityError, match=shard):
        merge([built, ds], tmp_path / "merged")
    assert not list((tmp_path / "merged").rglob("*.tar"))


def test_background_check_of_a_later_shard_is_raised_when_that_shard_is_reached(
    ds: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the next shards hashed ahead (verify_ahead), a damaged second shard still raises naming it — only once
    the loader reaches it, after the first shard's batches — and clean data gives the same batches as verify=off."""
    kw = {"split": None, "shuffle": False, "block_shards": 1}
    ref = [(b["__key__"], b["img.npy"], b["gr.npy"]) for b in ShardIterable(ds, 4, verify="off", **kw)]
    got = [(b["__key__"], b["img.npy"], b["gr.npy"]) for b in ShardIterable(ds, 4, **kw)]
    assert [k for k, *_ in got] == [k for k, *_ in ref]
    assert all((a == c).all() and (b == d).all() for (_, a, b), (_, c, d) in zip(got, ref, strict=True))
    index = ShardIndex(ds, split=None, verify="off")
    second = index.shard_names[1]
    victim = next(r for r in index.rows if r.shard == second)
    m = next(m for m in victim.members if m["field"] == "img.npy")
    _patch(ds, second, m["offset"] + m["size"] - 3)
    import sardata.stream.index as dataset  # ShardIndex.prefetch looks verify_ahead up there

    ahead: list[str] = []
    real = dataset.verify_ahead
    monkeypatch.setattr(dataset, "verify_ahead", lambda path, *a: ahead.append(path.name) or real(path, *a))
    delivered = []
    with pytest.raises(ShardIntegrityError, match=f"{second}:{victim.key}: member"):
        for batch in ShardIterable(ds, 4, **kw):
            delivered.extend(batch["__shard__"])
    assert delivered and set(delivered) == {index.shard_names[0]}  # the first shard's batches, nothing of the second
    assert second in ahead  # it was hashed in the background, not inline
