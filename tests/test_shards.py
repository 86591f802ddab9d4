"""build-shards: reproducible stock-WebDataset tars, index random access, splits and views, verify, resume."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import FIXTURES, shared
from hypothesis import given, settings
from hypothesis import strategies as st

from sardata.atomic import TMP_PREFIX
from sardata.dataset.verify import verify
from sardata.errors import ConfigError
from sardata.features.gr import GR_CODECS, decode_gr, gr_maps
from sardata.ingest import ingest
from sardata.manifest.io import read_table
from sardata.shards.build import BuildConfig, build_shards
from sardata.shards.plan import plan_shards
from sardata.shards.reader import read_sample

ACD = FIXTURES / "sar-acd" / "SAR-ACD"


@pytest.fixture(scope="module")
def acd_ingest(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ingest") / "acd"
    ingest("sar-acd", ACD, out)
    return out


def shard_hashes(root: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((root / "shards").glob("*.tar"))}


def same_build(a: Path, b: Path) -> None:
    assert shard_hashes(a) == shard_hashes(b) and shard_hashes(a)
    for name in ("samples.parquet", "shards.parquet", "sources.parquet"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_worker_count_does_not_change_bytes(acd_ingest: Path, tmp_path: Path) -> None:
    cfg = BuildConfig(test_ratio=0.5, max_shard_samples=3, shots=(1,), seeds=(0, 1))
    build_shards([acd_ingest], tmp_path / "a", cfg, workers=1)
    build_shards([acd_ingest], tmp_path / "b", cfg, workers=2)
    same_build(tmp_path / "a", tmp_path / "b")
    shards = read_table(tmp_path / "a" / "shards.parquet", "shards").to_pandas()
    assert len(shards) >= 4 and shards["n_samples"].max() <= 3


def test_tar_members_are_reproducible_ustar(acd_ingest: Path, tmp_path: Path) -> None:
    build_shards([acd_ingest], tmp_path, BuildConfig())
    for path in (tmp_path / "shards").glob("*.tar"):
        assert path.stat().st_size % 10240 == 0
        with tarfile.open(path) as tf:
            members = tf.getmembers()
        assert all(m.isreg() and m.mtime == 0 and m.uid == m.gid == 0 and m.uname == m.gname == "" for m in members)
        assert all(m.mode == 0o644 and "/" not in m.name and len(m.name) <= 100 for m in members)
        keys = [m.name.split(".")[0] for m in members]
        assert keys == sorted(keys)  # samples sorted by key, members adjacent
        fields = [m.name.split(".", 1)[1] for m in members if m.name.startswith(keys[0] + ".")]
        assert fields == sorted(fields) == ["cls", "img.npy", "meta.json"]
        listing = subprocess.run(["tar", "-tf", str(path)], capture_output=True, text=True, check=True).stdout.split()
        assert listing == [m.name for m in members]


def test_index_random_access_equals_stock_webdataset(acd_ingest: Path, tmp_path: Path) -> None:
    import webdataset as wds

    build_shards([acd_ingest], tmp_path, BuildConfig(max_shard_samples=5))
    index = {r["key"]: r for r in read_table(tmp_path / "samples.parquet", "samples").to_pylist()}
    urls = [str(p) for p in sorted((tmp_path / "shards").glob("*.tar"))]
    seen = 0
    for sample in wds.WebDataset(urls, shardshuffle=False).decode():
        ours = read_sample(tmp_path, index[sample["__key__"]])
        np.testing.assert_array_equal(sample["img.npy"], ours["img.npy"])
        assert sample["cls"] == ours["cls"] == index[sample["__key__"]]["label"]
        assert sample["meta.json"] == ours["meta.json"]
        seen += 1
    assert seen == len(index) == 12


def test_gr_targets_in_shards_match_online(acd_ingest: Path, tmp_path: Path) -> None:
    cfg = BuildConfig(size_policy="resize-crop", size=48, targets=("gr",), gr_codec="uint16")
    build_shards([acd_ingest], tmp_path, cfg)
    rows = read_table(tmp_path / "samples.parquet", "samples").to_pylist()
    for row in rows[:4]:
        s = read_sample(tmp_path, row)
        img = s["img.npy"]
        assert img.shape == (1, 48, 48) and img.dtype == np.uint8 and row["gr_version"] == "gr-v1"
        online = gr_maps(torch.from_numpy(img.astype(np.float32) / 255)[None], cfg.resolved_gr_radii)[0].numpy()
        stored = decode_gr(s["gr.npy"])
        assert np.abs(stored - online).max() <= GR_CODECS["uint16"]
    float_build = tmp_path / "f32"
    build_shards([acd_ingest], float_build, BuildConfig(size_policy="resize-crop", size=48, targets=("gr",)))
    row = read_table(float_build / "samples.parquet", "samples").to_pylist()[0]
    s = read_sample(float_build, row)
    assert cfg.resolved_gr_radii == (1, 2, 3, 4)  # the paper's radii scaled to 48 px
    online = gr_maps(torch.from_numpy(s["img.npy"].astype(np.float32) / 255)[None], (1, 2, 3, 4))[0].numpy()
    assert np.array_equal(s["gr.npy"], online)  # precomputed float32 == online, bitwise


def test_verify_names_shard_and_sample(acd_ingest: Path, tmp_path: Path, sardata_cmd) -> None:
    build_shards([acd_ingest], tmp_path, BuildConfig(max_shard_samples=4))
    assert verify(tmp_path, samples=True).ok
    row = read_table(tmp_path / "samples.parquet", "samples").to_pylist()[5]
    path = tmp_path / "shards" / row["shard"]
    data = bytearray(path.read_bytes())
    data[row["members"][1]["offset"] + 3] ^= 0x01
    path.write_bytes(bytes(data))
    report = verify(tmp_path)
    assert not report.ok and any(row["shard"] in p and row["key"] in p for p in report.problems)
    out = subprocess.run([*sardata_cmd, "manifest", "verify", str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 1 and row["key"] in out.stderr and row["shard"] in out.stderr


def test_mixed_scales_refused(tmp_path: Path) -> None:
    ingest("mstar", FIXTURES / "mstar" / "raw", tmp_path / "raw")
    ingest("mstar", FIXTURES / "mstar" / "jpeg", tmp_path / "jpeg")
    with pytest.raises(ConfigError, match="mixes radiometry/scale"):
        build_shards([tmp_path / "raw", tmp_path / "jpeg"], tmp_path / "out", BuildConfig())
    # complex64 and float magnitudes of raw chips go through unchanged
    build_shards([tmp_path / "raw"], tmp_path / "rawds", BuildConfig())
    row = read_table(tmp_path / "rawds" / "samples.parquet", "samples").to_pylist()[0]
    s = read_sample(tmp_path / "rawds", row)
    assert s["cplx.npy"].dtype == np.complex64 and s["img.npy"].dtype == np.float32


def test_plan_closes_shards_before_the_limit() -> None:
    samples = [(f"k{i:03d}", "train", [1000 + 37 * i]) for i in range(60)]
    plans = plan_shards(samples, max_bytes=20480 * 2)
    assert all(p.nbytes <= 40960 for p in plans) and sum(len(p.keys) for p in plans) == 60
    assert [k for p in plans for k in p.keys] == sorted(k for k, _, _ in samples)
    big = plan_shards([("a", "train", [10**6]), ("b", "train", [10])], max_bytes=20480)
    assert [p.keys for p in big] == [("a",), ("b",)]


# ---------------------------------------------------------------------------------------------- real data
@pytest.fixture(scope="module")
def real_acd(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("real") / "acd"
    ingest("sar-acd", shared("sar-acd"), out, workers=2)
    return out


@pytest.mark.real_data
def test_real_sar_acd_build_is_reproducible_and_readable(real_acd: Path, tmp_path: Path) -> None:
    import webdataset as wds

    cfg = BuildConfig(max_shard_bytes=8 << 20)
    build_shards([real_acd], tmp_path / "a", cfg, workers=1)
    build_shards([real_acd], tmp_path / "b", cfg, workers=2)
    same_build(tmp_path / "a", tmp_path / "b")
    index = {r["key"]: r for r in read_table(tmp_path / "a" / "samples.parquet", "samples").to_pylist()}
    urls = sorted(str(p) for p in (tmp_path / "a" / "shards").glob("*.tar"))
    n = 0
    rng = np.random.default_rng(0)
    check = set(rng.choice(sorted(index), 200, replace=False))
    for sample in wds.WebDataset(urls, shardshuffle=False).decode():
        n += 1
        if sample["__key__"] in check:
            np.testing.assert_array_equal(
                sample["img.npy"], read_sample(tmp_path / "a", index[sample["__key__"]])["img.npy"]
            )
    assert n == len(index) == 3032
    listed = sum(
        len(subprocess.run(["tar", "-tf", u], capture_output=True, text=True, check=True).stdout.split()) for u in urls
    )
    assert listed == 3 * 3032


@pytest.mark.real_data
def test_real_fewshot_views_nested_balanced_disjoint(tmp_path: Path) -> None:
    src = tmp_path / "acd5"
    ingest("sar-acd", shared("sar-acd"), src, options={"classes": "5class"}, workers=2)
    cfg = BuildConfig(test_ratio=0.9, shots=(10, 20, 40), seeds=tuple(range(10)))
    build_shards([src], tmp_path / "a", cfg, workers=2)
    df = read_table(tmp_path / "a" / "samples.parquet", "samples").to_pandas()
    assert (
        df.groupby("label_name")["split"].apply(lambda s: (s == "test").sum())
        == (df.groupby("label_name").size() * 0.9).round()
    ).all()
    for s in range(10):
        prev = set()
        for k in (10, 20, 40):
            col = df[f"split_fewshot_k{k}_s{s}"]
            train = df[col == "train"]
            pool = df[df["split"] == "train"].groupby("label_name").size()
            expected = (pool - (pool * 0.2).round()).clip(upper=k)  # "all if fewer" (A220 has 37 after val)
            assert train.groupby("label_name").size().to_dict() == expected.to_dict()
            assert (train["split"] == "train").all() and (df.loc[col.notna(), "split"] == "train").all()
            assert set(df.loc[col == "val", "key"]).isdisjoint(train["key"])
            assert prev <= set(train["key"])
            prev = set(train["key"])
    assert not df["split_fewshot_k10_s0"].equals(df["split_fewshot_k10_s1"])
    card = __import__("json").loads((tmp_path / "a" / "dataset.json").read_text())
    assert card["view_warnings"]["split_fewshot_k40_s0"] == {"A220": 37}
    build_shards([src], tmp_path / "b", cfg)  # same seed -> same view, across runs
    again = read_table(tmp_path / "b" / "samples.parquet", "samples").to_pandas()
    pd.testing.assert_frame_equal(df.filter(like="split"), again.filter(like="split"))


@pytest.mark.real_data
def _sidecars(out: Path) -> list[Path]:
    """Committed shard sidecars only: pathlib's ``*.json`` also matches a ``.tmp-<pid>-…json`` still being written
    (counting one of those made this test flaky: 20 counted, 19 committed)."""
    return [p for p in (out / "_work").glob("*.json") if not p.name.startswith(TMP_PREFIX)]


@pytest.mark.slow
def test_real_kill_9_during_build_then_rerun(real_acd: Path, tmp_path: Path) -> None:
    args = ["--max-count", "24", "--targets", "gr", "--size-policy", "resize", "--size", "48", "--workers", "2"]
    build = [sys.executable, "-c", "from sardata.cli import main; main()", "build-shards", str(real_acd)]
    subprocess.run([*build, "--out", str(tmp_path / "clean"), *args], check=True, capture_output=True)
    out = tmp_path / "killed"
    proc = subprocess.Popen([*build, "--out", str(out), *args], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(_sidecars(out)) < 20:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "dataset.json").exists(), "killed too late"
    done = len(_sidecars(out))
    assert 20 <= done < 127
    result = build_shards(
        [real_acd], out, BuildConfig(max_shard_samples=24, targets=("gr",), size_policy="resize", size=48), workers=2
    )
    assert result.reused_shards >= 20
    same_build(tmp_path / "clean", out)


def test_long_tail_and_holdout_views(acd_ingest: Path, tmp_path: Path) -> None:
    cfg = BuildConfig(long_tail=(2, 1, 0, 2, 1, 5), holdout="label_name=A330")
    build_shards([acd_ingest], tmp_path, cfg)
    df = read_table(tmp_path / "samples.parquet", "samples").to_pandas()
    counts = df[df["split_longtail"] == "train"].groupby("label").size().to_dict()
    assert counts == {0: 2, 1: 1, 3: 2, 4: 1, 5: 2}  # label 5 has only 2 train samples: all of them
    assert set(df.loc[df["label_name"] == "A330", "split_holdout_label_name_a330"]) == {"test"}
    assert set(df.loc[df["label_name"] != "A330", "split_holdout_label_name_a330"]) == {"train"}
    with pytest.raises(ConfigError, match="COLUMN=VALUE"):
        build_shards([acd_ingest], tmp_path / "bad", BuildConfig(holdout="nosuchcolumn=1"))


def test_diff_reports_added_removed_changed_and_config(acd_ingest: Path, tmp_path: Path, sardata_cmd) -> None:
    from sardata.dataset.verify import diff

    build_shards([acd_ingest], tmp_path / "a", BuildConfig(where="label_name != 'A220'"))
    build_shards([acd_ingest], tmp_path / "b", BuildConfig(where="label_name != 'A330'", test_ratio=0.5))
    d = diff(tmp_path / "a", tmp_path / "b")
    assert d["added"] == ["sar-acd_images-a220-001-jpg", "sar-acd_images-a220-002-jpg"]
    assert d["removed"] == ["sar-acd_images-a330-001-jpg", "sar-acd_images-a330-002-jpg"]
    assert len(d["changed"]) + d["unchanged"] == 8 and d["changed"]  # test_ratio moved some samples to test
    assert any(line.startswith("build.test_ratio: 0.0 -> 0.5") for line in d["config"])
    out = subprocess.run(
        [*sardata_cmd, "manifest", "diff", str(tmp_path / "a"), str(tmp_path / "b")], capture_output=True, text=True
    )
    assert out.returncode == 0 and "added: 2" in out.stdout and "build.where" in out.stdout


def test_rebuilding_same_config_is_a_no_op_and_other_config_needs_overwrite(acd_ingest: Path, tmp_path: Path) -> None:
    build_shards([acd_ingest], tmp_path, BuildConfig())
    before = shard_hashes(tmp_path)
    assert build_shards([acd_ingest], tmp_path, BuildConfig()).samples == 12 and shard_hashes(tmp_path) == before
    with pytest.raises(ConfigError, match="--overwrite"):
        build_shards([acd_ingest], tmp_path, BuildConfig(max_shard_samples=2))
    assert build_shards([acd_ingest], tmp_path, BuildConfig(max_shard_samples=2), overwrite=True).shards == 6


@settings(max_examples=60, deadline=None)
@given(
    dtype=st.sampled_from(["uint8", "uint16", "float16", "float32", "float64", "complex64", "int64", ">f4"]),
    shape=st.lists(st.integers(0, 5), min_size=0, max_size=4).map(tuple),
    version=st.sampled_from([(1, 0), (2, 0)]),
    fortran=st.booleans(),
)
def test_decode_npy_equals_numpy_for_any_header(dtype: str, shape: tuple, version: tuple, fortran: bool) -> None:
    """The memoised header parse decodes exactly what numpy's reader does, twice in a row (cache hit)."""
    import io

    from sardata.shards.codecs import decode_npy

    arr = np.arange(int(np.prod(shape)), dtype=np.float64).astype(dtype).reshape(shape)
    arr = np.asfortranarray(arr) if fortran else arr
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, version=version, allow_pickle=False)
    for _ in range(2):
        got = decode_npy(bytearray(buf.getvalue()))
        assert got.dtype == arr.dtype and got.shape == arr.shape and np.array_equal(got, arr)


def test_decode_npy_refuses_objects_and_truncation() -> None:
    import io

    from sardata.errors import ShardIntegrityError
    from sardata.shards.codecs import decode_npy, encode_npy

    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.array([1, "a"], dtype=object), allow_pickle=True)
    for _ in range(2):  # the refusal is not cached away
        with pytest.raises(ShardIntegrityError, match="object arrays"):
            decode_npy(buf.getvalue(), "x.tar:k")
    data = encode_npy(np.ones((4, 4), np.float32))
    with pytest.raises(ShardIntegrityError, match="x.tar:k"):
        decode_npy(data[:-3], "x.tar:k")


def test_decode_npy_cache_is_not_poisoned_and_bad_headers_are_refused() -> None:
    """Structured dtypes are mutable, so they are not shared through the header cache; negative dimensions and
    unknown format versions are integrity errors, as numpy's own reader would refuse them."""
    import io

    from sardata.errors import ShardIntegrityError
    from sardata.shards.codecs import decode_npy, encode_npy

    blob = encode_npy(np.zeros(3, dtype=[("toa", "<f8"), ("rf", "<f4")]))
    a = decode_npy(blob)
    a.dtype.names = ("x", "y")
    assert decode_npy(blob).dtype.names == ("toa", "rf")
    neg = encode_npy(np.zeros((4, 6), np.float32)).replace(b"(4, 6)", b"(-4, -6)")
    with pytest.raises(ShardIntegrityError, match="negative dimension"):
        decode_npy(neg, "x.tar:k")
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.ones(3, np.float32), version=(1, 0))
    minor = bytearray(buf.getvalue())
    minor[7] = 1  # format 1.1 does not exist
    with pytest.raises(ShardIntegrityError):
        decode_npy(minor, "x.tar:k")


def test_build_config_refuses_bad_normalise_and_tiny_shards() -> None:
    """Both checks sat unreachable for a while (after a return in the same block): keep them pinned."""
    with pytest.raises(ConfigError, match="normalise 'db'"):
        BuildConfig(normalise="db")
    with pytest.raises(ConfigError, match="at least 10240 bytes"):
        BuildConfig(max_shard_bytes=100)
    assert BuildConfig(normalise="unit-magnitude", max_shard_bytes=10240).max_shard_bytes == 10240
