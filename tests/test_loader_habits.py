"""Issue 20 points 1, 3 and 4: the README's loader snippet runs as written (and resumes right), the DataLoader habits
of webdataset / MDS / LitData users are refused with the fix instead of silently batching batches, and one key
naming (stored member names, or torchgeo's with ``crs`` / ``bounds``) holds with and without a transform."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import FIXTURES, REPO
from torch.utils.data import DataLoader

from sardata.errors import ConfigError
from sardata.ingest import ingest
from sardata.manifest.io import read_table
from sardata.shards.build import BuildConfig, build_shards
from sardata.sim.sar_targets import write_demo_dataset
from sardata.stream.dataset import ShardDataset, ShardIterable
from sardata.stream.keys import torchgeo_name
from sardata.stream.loader import ShardLoader
from sardata.stream.transforms import JointAugment


@pytest.fixture(scope="module")
def ds(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("habits")
    write_demo_dataset(base / "data", per_class=7, size=32)  # 28 train + 28 test chips
    ingest("mstar", base / "data" / "jpeg", base / "ingest")
    build_shards([base / "ingest"], base / "ds", BuildConfig(targets=("gr",), max_shard_samples=5))
    return base / "ds"


@pytest.fixture(scope="module")
def geo_ds(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("geo")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rasterio's NotGeoreferencedWarning for the fixture's odd files
        ingest("geotiff", FIXTURES / "geotiff" / "GeoTIFF" / "scene", base / "ingest", {"tile": "32", "stride": "32"})
    build_shards([base / "ingest"], base / "ds", BuildConfig())
    return base / "ds"


def keys_of(batches) -> list[list[str]]:
    return [list(b["__key__"]) for b in batches]


# ---------------------------------------------------------------- point 1: the README snippet itself


def readme_loop(resume: bool) -> str:
    """The README's streaming snippet up to the end of its training loop, made runnable on a small dataset: 8
    samples a step, 2 workers, the loop body records the batch. ``resume``: the commented resume line uncommented."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text.split("## Streaming a built dataset", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    lines = block.splitlines()
    end = next(i for i, line in enumerate(lines) if 'ckpt["loader"] = ds.state_dict(step + 1)' in line)
    code = "\n".join(lines[: end + 1])
    for old, new in [("global_batch=256", "global_batch=8"), ("num_workers=4", "num_workers=2"),
                     ("\n        ...\n", "\n        record(epoch, step, batch)\n")]:  # fmt: skip
        assert old in code, f"the README snippet changed shape: {old!r}"
        code = code.replace(old, new)
    first = re.search(r"first = 0 +# resuming: (.*)\n +# +(first = .*)\n", code)
    assert first is not None, "the README snippet no longer shows how to resume"
    return code.replace(first.group(0), f"{first.group(1)}\n{first.group(2)}\n" if resume else "first = 0\n")


class Killed(Exception):
    pass


def run_readme(ds: Path, ckpt: dict, resume: bool, kill_at: tuple[int, int] | None) -> list:
    got: list = []

    def record(epoch: int, step: int, batch: dict) -> None:
        got.append((epoch, step, list(batch["__key__"])))
        if (epoch, step) == kill_at:
            raise Killed  # before this step's state was saved: the resumed run must deliver it again

    code = readme_loop(resume).replace('"DS"', repr(str(ds)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # the README shows no deprecated form
        try:
            exec(compile(code, "README.md", "exec"), {"E": 3, "ckpt": ckpt, "record": record})
        except Killed:
            pass
    return got


def test_readme_snippet_runs_and_resumes_like_an_uninterrupted_run(ds: Path) -> None:
    ref = run_readme(ds, {}, resume=False, kill_at=None)
    assert [e for e, _, _ in ref].count(0) == 4 and len(ref) == 12  # 28 samples / 8 = 4 steps, 3 epochs
    ckpt: dict = {}
    head = run_readme(ds, ckpt, resume=False, kill_at=(1, 2))
    assert ckpt["loader"]["epoch"] == 1 and ckpt["loader"]["step"] == 2
    tail = run_readme(ds, ckpt, resume=True, kill_at=None)
    assert head[:-1] + tail == ref


# ---------------------------------------------------------------- point 3: DataLoader habits


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("batch_size", [32, 1])
def test_dataloader_batching_the_batches_is_refused_with_the_fix(ds: Path, workers: int, batch_size: int) -> None:
    """``DataLoader(ds, batch_size=32)`` gave (32, 32, ...) batches with len 3; torch's default batch_size=1 gave
    (1, 8, ...) ones. Both now fail at the first batch, naming the fix (in a worker, torch re-raises it here)."""
    it = ShardIterable(ds, 8, num_workers=workers)
    loader = DataLoader(it, batch_size=batch_size, num_workers=workers)
    with pytest.raises(ConfigError, match=rf"DataLoader\(ds, batch_size={batch_size}\) would collate whole batches"):
        next(iter(loader))
    with pytest.raises(ConfigError) as err:
        list(DataLoader(ShardIterable(ds, 8), batch_size=32))
    assert "\n" not in str(err.value) and "batch_size=None" in str(err.value) and "global_batch=32" in str(err.value)


@pytest.mark.parametrize("workers", [0, 2])
def test_shard_loader_equals_the_plain_batch_size_none_loader(ds: Path, workers: int) -> None:
    plain = keys_of(DataLoader(ShardIterable(ds, 8, num_workers=workers, seed=3), batch_size=None,
                               num_workers=workers))  # fmt: skip
    ours = ShardLoader(ShardIterable(ds, 8, num_workers=workers, seed=3))
    assert ours.num_workers == workers and len(ours) == 4
    assert keys_of(ours) == plain
    habit = ShardLoader(ShardIterable(ds, 8, num_workers=workers, seed=3), batch_size=8)  # = the per-rank batch
    assert keys_of(habit) == plain and all(len(b) == 8 for b in plain)


def test_shard_loader_refuses_a_mismatch_when_it_is_built(ds: Path) -> None:
    it = ShardIterable(ds, 8, num_workers=2)
    with pytest.raises(ConfigError, match=r"batch_size=32\).*per-rank batches of 8.*global_batch=32\)"):
        ShardLoader(it, batch_size=32)
    with pytest.raises(ConfigError, match=r"num_workers=3\).*built with num_workers=2"):
        ShardLoader(it, num_workers=3)
    two_ranks = ShardIterable(ds, 8, world_size=2, rank=0)
    with pytest.raises(ConfigError, match=r"global_batch=8 x 2 ranks"):
        ShardLoader(two_ranks, batch_size=8)
    assert len(ShardLoader(two_ranks, batch_size=4)) == 4


def test_plain_dataloader_with_other_workers_fails_before_any_batch(ds: Path) -> None:
    loader = DataLoader(ShardIterable(ds, 8, num_workers=2), batch_size=None, num_workers=1)
    with pytest.raises(ConfigError, match="DataLoader has 1 workers but the dataset was built for num_workers=2"):
        next(iter(loader))


def test_iterating_in_this_process_serves_every_step_whatever_num_workers(ds: Path) -> None:
    """A dataset planned for 2 workers, read by a DataLoader without workers (or ``for b in ds``), used to serve
    worker 0's steps only: half the epoch, silently."""
    ref = keys_of(DataLoader(ShardIterable(ds, 8, num_workers=2, seed=4), batch_size=None, num_workers=2))
    assert len(ref) == 4
    assert keys_of(DataLoader(ShardIterable(ds, 8, num_workers=2, seed=4), batch_size=None)) == ref
    assert keys_of(ShardIterable(ds, 8, num_workers=2, seed=4)) == ref
    assert keys_of(ShardLoader(ShardIterable(ds, 8, num_workers=2, seed=4), num_workers=0)) == ref


def test_shard_loader_over_the_map_style_dataset_batches_samples(ds: Path) -> None:
    loader = ShardLoader(ShardDataset(ds, split="test"), batch_size=8, shuffle=False)
    batches = list(loader)
    assert [len(b["__key__"]) for b in batches] == [8, 8, 8, 4]
    assert batches[0]["cls"].shape == (8,) and isinstance(batches[0]["meta.json"], list)  # collate: no KeyError


# ---------------------------------------------------------------- point 4: one naming


def test_torchgeo_keys_are_the_same_with_and_without_the_transform(ds: Path) -> None:
    plain = next(iter(ShardIterable(ds, 4, shuffle=False, keys="torchgeo")))
    aug = next(iter(ShardIterable(ds, 4, shuffle=False, keys="torchgeo",
                                  transform=JointAugment(size=1024, resize=False, hflip=False))))  # fmt: skip
    stored = next(iter(ShardIterable(ds, 4, shuffle=False)))
    assert {"image", "gr", "label", "meta"} <= set(plain) and not any("." in k for k in plain)
    assert set(aug) - set(plain) == {"aug"} and set(plain) - set(aug) == set()
    assert set(plain) == {torchgeo_name(k) for k in stored}
    assert torch.equal(plain["image"], stored["img.npy"]) and torch.equal(plain["label"], stored["cls"])
    assert torch.equal(aug["image"], stored["img.npy"].float() / 255) and torch.equal(aug["gr"], stored["gr.npy"])
    one = ShardDataset(ds, split="test", keys="torchgeo", transform=JointAugment(size=16, resize=False))[0]
    assert set(one) == {"__key__", "__shard__", "image", "gr", "label", "meta", "aug"}


def test_joint_augment_under_field_names_is_deprecated_or_keeps_the_names(ds: Path) -> None:
    with pytest.warns(DeprecationWarning, match="keys='torchgeo'"):
        legacy = ShardIterable(ds, 4, transform=JointAugment(size=16, resize=False))
    assert {"image", "gr", "cls"} <= set(next(iter(legacy)))  # unchanged until the rename goes
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        kept = ShardIterable(ds, 4, transform=JointAugment(size=16, resize=False, keep_names=True))
        ShardIterable(ds, 4, keys="torchgeo", transform=JointAugment(size=16, resize=False))
    batch = next(iter(kept))
    assert {"img.npy", "gr.npy", "cls"} <= set(batch) and "image" not in batch
    assert batch["img.npy"].shape == (4, 1, 16, 16) and batch["img.npy"].dtype == torch.float32
    with pytest.raises(ConfigError, match="keys='webdataset'"):
        ShardDataset(ds, keys="webdataset")


def test_fields_accepts_either_naming(ds: Path) -> None:
    a = next(iter(ShardIterable(ds, 4, fields={"image", "label"}, keys="torchgeo", shuffle=False)))
    b = next(iter(ShardIterable(ds, 4, fields={"img.npy", "cls"}, shuffle=False)))
    assert set(a) - {"__key__", "__shard__", "valid", "__index__", "__epoch__"} == {"image", "label"}
    assert torch.equal(a["image"], b["img.npy"])


def test_georeferenced_samples_carry_crs_and_bounds(geo_ds: Path) -> None:
    table = read_table(geo_ds / "samples.parquet", "samples").to_pandas().set_index("key")
    rows = ShardDataset(geo_ds, split=None, keys="torchgeo")
    assert len(rows) == 5
    for i in range(len(rows)):
        s = rows[i]
        left, bottom, right, top = table.loc[s["__key__"], "bbox"]
        assert s["crs"] == table.loc[s["__key__"], "crs"] == "EPSG:32633"
        assert s["bounds"].dtype == np.float64 and s["bounds"].tolist() == [left, right, bottom, top]
        assert s["bounds"][1] - s["bounds"][0] == 32 * 10.0  # 32 px at 10 m
    assert "crs" not in ShardDataset(geo_ds, split=None)[0]  # keys="fields": the stored members only
    batch = next(iter(ShardIterable(geo_ds, 5, split=None, shuffle=False, keys="torchgeo")))
    assert batch["bounds"].shape == (5, 4) and batch["crs"] == ["EPSG:32633"] * 5
    assert [b.tolist() for b in batch["bounds"]] == [rows[i]["bounds"].tolist() for i in range(5)]


def test_joint_augment_moves_the_bounds_with_its_crop(geo_ds: Path) -> None:
    whole = ShardDataset(geo_ds, split=None, keys="torchgeo")[0]
    aug = JointAugment(size=16, resize=False, hflip=False, mode="online", seed=3)
    crop = ShardDataset(geo_ds, split=None, keys="torchgeo", transform=aug)[0]
    p, (minx, _, miny, maxy) = crop["aug"], whole["bounds"]
    assert crop["image"].shape[-2:] == (16, 16)
    assert crop["bounds"].tolist() == [minx + 10.0 * p["left"], minx + 10.0 * (p["left"] + 16),
                                       maxy - 10.0 * (p["top"] + 16), maxy - 10.0 * p["top"]]  # fmt: skip
    assert miny <= crop["bounds"][2] < crop["bounds"][3] <= maxy


def test_manifest_bbox_is_rasterio_order(geo_ds: Path) -> None:
    """The loader's reorder rests on this: the manifest's ``bbox`` is (left, bottom, right, top)."""
    table = read_table(geo_ds / "samples.parquet", "samples").to_pandas()
    left, bottom, right, top = np.stack(table["bbox"].to_numpy()).T
    assert (left < right).all() and (bottom < top).all()
