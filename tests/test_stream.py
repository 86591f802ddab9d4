"""Loader guarantees (data-contract.md §5): order, exact length, equal per-rank batches, workers, resume, epochs."""

from __future__ import annotations

import collections
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from sardata.errors import ConfigError, LoaderStateError
from sardata.ingest import ingest
from sardata.shards.build import BuildConfig, build_shards
from sardata.shards.reader import read_sample
from sardata.sim.sar_targets import write_demo_dataset
from sardata.stream.dataset import ShardDataset, ShardIterable


@pytest.fixture(scope="module")
def ds(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("stream")
    write_demo_dataset(base / "data", per_class=7, size=32)  # 28 train + 28 test chips
    ingest("mstar", base / "data" / "jpeg", base / "ingest")
    build_shards([base / "ingest"], base / "ds", BuildConfig(max_shard_samples=3, shots=(2,), seeds=(0,)))
    return base / "ds"


def keys_of(loader) -> list[list[str]]:
    return [list(b["__key__"]) for b in loader]


def test_stream_order_is_identical_for_any_world_size(ds: Path, sardata_cmd) -> None:
    orders = []
    for w in (1, 2, 4):
        out = subprocess.run([*sardata_cmd, "stream", "order", str(ds), "--world-size", str(w), "--workers", "2",
                              "--batch-size", "8", "--seed", "3"], capture_output=True, text=True, check=True)  # fmt: skip
        rows = sorted((int(line.split("\t")[0]), line.split("\t")[3]) for line in out.stdout.splitlines())
        orders.append([k for _, k in rows])
        ranks = collections.Counter(line.split("\t")[1] for line in out.stdout.splitlines())
        assert set(ranks.values()) == {32 // w}  # 4 steps x 8 positions, equal per rank
    assert orders[0] == orders[1] == orders[2] and len(set(orders[0][:28])) == 28
    assert orders[0][28:] == orders[0][:4]  # wrap-around padding repeats the start of π_e


@pytest.mark.parametrize("world", [1, 2, 3])
@pytest.mark.parametrize("workers", [0, 1, 3])
def test_no_duplicates_no_losses_equal_lengths(ds: Path, world: int, workers: int) -> None:
    seen, lengths = [], set()
    for rank in range(world):
        it = ShardIterable(ds, 6, world_size=world, rank=rank, num_workers=workers, seed=1)
        batches = keys_of(DataLoader(it, batch_size=None, num_workers=workers))
        assert len(batches) == len(it) == it.plan.steps
        lengths.update(len(b) for b in batches)
        seen += [k for b in batches for k in b]
    assert len(lengths) == 1  # every rank, every step: the same per-rank batch size
    counts = collections.Counter(seen)
    assert len(counts) == 28 and sum(counts.values()) - 28 == (-28) % 6  # each once, plus the wrap padding


def test_global_sequence_equals_single_process_for_any_world_and_workers(ds: Path) -> None:
    def sequence(world: int, workers: int) -> list[str]:
        per_rank = [keys_of(DataLoader(ShardIterable(ds, 8, world_size=world, rank=r, num_workers=workers, seed=5),
                                       batch_size=None, num_workers=workers)) for r in range(world)]  # fmt: skip
        return [k for step in zip(*per_rank, strict=True) for batch in step for k in batch]

    ref = sequence(1, 0)
    assert sequence(2, 2) == ref and sequence(4, 1) == ref and sequence(2, 0) == ref


def test_mask_padding_scores_every_sample_once(ds: Path) -> None:
    valid = []
    for rank in range(2):
        for b in ShardIterable(ds, 8, split="test", world_size=2, rank=rank, pad="mask", shuffle=False):
            valid += [k for k, v in zip(b["__key__"], b["valid"].tolist(), strict=True) if v]
    assert sorted(valid) == sorted(set(valid)) and len(valid) == 28


def test_drop_last_and_construction_errors(ds: Path) -> None:
    assert len(ShardIterable(ds, 8, pad="drop")) == 3
    with pytest.raises(ConfigError, match="not divisible"):
        ShardIterable(ds, 6, world_size=4, rank=0)
    with pytest.raises(ConfigError, match="some workers would get no batch"):
        ShardIterable(ds, 8, num_workers=8)
    with pytest.raises(ConfigError, match="no full global batch"):
        ShardIterable(ds, 64, pad="drop")


def test_epochs_differ_and_persistent_workers_follow(ds: Path) -> None:
    it = ShardIterable(ds, 4, num_workers=2, seed=2)
    loader = DataLoader(it, batch_size=None, num_workers=2, persistent_workers=True)
    e0, e1 = keys_of(loader), keys_of(loader)
    fresh = ShardIterable(ds, 4, seed=2)
    assert e0 == keys_of(fresh) and e1 == keys_of(fresh) and e0 != e1  # fresh.iter() advanced its own epoch too
    fresh.set_epoch(1)
    assert keys_of(fresh) == e1


RESUME = """
import json, sys
from torch.utils.data import DataLoader
from sardata.stream.dataset import ShardIterable
root, state, world, rank, workers = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
ds = ShardIterable(root, 4, world_size=world, rank=rank, num_workers=workers, seed=9)
ds.load_state_dict(state)
print(json.dumps([list(b["__key__"]) for b in DataLoader(ds, batch_size=None, num_workers=workers)]))
"""


@pytest.mark.parametrize("world,new_world", [(1, 1), (2, 2), (2, 1)])
def test_resume_in_a_new_process_is_sample_exact(ds: Path, world: int, new_world: int) -> None:
    full = [[k for rank_batch in step for k in rank_batch] for step in zip(*[
        keys_of(ShardIterable(ds, 4, world_size=world, rank=r, seed=9)) for r in range(world)], strict=True)]  # fmt: skip
    half = len(full) // 2
    it = ShardIterable(ds, 4, world_size=world, rank=0, seed=9)
    state = it.state_dict(step=half)
    rest = [
        json.loads(
            subprocess.run(
                [sys.executable, "-c", RESUME, str(ds), json.dumps(state), str(new_world), str(r), "2"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )  # fmt: skip
        for r in range(new_world)
    ]
    resumed = [[k for rank_batches in step for k in rank_batches] for step in zip(*rest, strict=True)]
    assert resumed == full[half:]  # same samples, same order, after a save at N/2 (and for W 2 -> 1)


def test_load_state_dict_refuses_a_foreign_state(ds: Path) -> None:
    state = ShardIterable(ds, 4, seed=9).state_dict(step=2)
    with pytest.raises(LoaderStateError, match="seed"):
        ShardIterable(ds, 4, seed=10).load_state_dict(state)
    with pytest.raises(LoaderStateError, match="global_batch"):
        ShardIterable(ds, 8, seed=9).load_state_dict(state)


def test_map_style_access_and_views(ds: Path) -> None:
    from sardata.manifest.io import read_table

    m = ShardDataset(ds, split="test")
    rows = {r["key"]: r for r in read_table(ds / "samples.parquet", "samples").to_pylist()}
    assert len(m) == 28
    sample = m[5]
    ref = read_sample(ds, rows[sample["__key__"]])
    assert torch.equal(torch.from_numpy(sample["img.npy"]), torch.from_numpy(ref["img.npy"]))
    view = ShardDataset(ds, view="split_fewshot_k2_s0")
    assert len(view) == 8 and len({view[i]["cls"] for i in range(8)}) == 4  # 2 shots x 4 classes


DDP = """
import json, os, sys
import torch.distributed as dist
from torch.utils.data import DataLoader
from sardata.stream.dataset import ShardIterable
dist.init_process_group("gloo")
rank, out = dist.get_rank(), sys.argv[2]
ds = ShardIterable(sys.argv[1], 6, num_workers=2, seed=4)
loader = DataLoader(ds, batch_size=None, num_workers=2)
epochs = []
for epoch in range(3):
    ds.set_epoch(epoch)
    epochs.append([list(b["__key__"]) for b in loader])
    dist.barrier()
json.dump({"rank": rank, "len": len(loader), "epochs": epochs}, open(os.path.join(out, f"rank{rank}.json"), "w"))
dist.destroy_process_group()
"""


@pytest.mark.distributed
def test_torchrun_gloo_two_ranks_two_workers_three_epochs(ds: Path, tmp_path: Path) -> None:
    script = tmp_path / "ddp.py"
    script.write_text(DDP)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={port}",
                    str(script), str(ds), str(tmp_path)], check=True, timeout=240, env=env, capture_output=True)  # fmt: skip
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert ranks[0]["len"] == ranks[1]["len"] == 5  # ceil(28 / 6)
    for e in range(3):
        per_rank = [r["epochs"][e] for r in ranks]
        assert [len(b) for b in per_rank[0]] == [len(b) for b in per_rank[1]] == [3] * 5
        keys = [k for rb in per_rank for b in rb for k in b]
        counts = collections.Counter(keys)
        assert len(counts) == 28 and sum(counts.values()) == 30  # every sample once, plus 2 wrap padding
        single = keys_of(ShardIterable(ds, 6, seed=4, epoch=e))
        assert [a + b for a, b in zip(per_rank[0], per_rank[1], strict=True)] == single
    assert ranks[0]["epochs"][0] != ranks[0]["epochs"][1]


def test_order_quotas_and_interleave() -> None:
    from sardata.stream.order import mixed_sequence, quotas

    assert quotas([0.5, 0.3, 0.2], 10) == [5, 3, 2] and quotas([1, 1, 1], 10) == [4, 3, 3]
    assert quotas([2, 1], 7) == [5, 2]  # 4.67 / 2.33: the larger remainder gets the extra one
    seq = mixed_sequence([3, 1], epoch=2)
    assert seq == [(0, 6), (0, 7), (1, 2), (0, 8)]  # (j + 0.5) / n_s: 1/6, 1/2 (tie: source 0 first), 5/6
    with pytest.raises(ConfigError):
        quotas([0, 0], 4)


def test_weighted_mixing_follows_quotas_streams_and_resume(ds: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    build_shards([ds.parent / "ingest"], other, BuildConfig(where="label_name == 't72'", max_shard_samples=2))
    mix = ShardIterable([ds, other], 5, weights=[0.6, 0.4], epoch_size=20, seed=7)
    assert mix.quota == [12, 8] and len(mix) == 4
    epochs = []
    for e in range(3):
        mix.set_epoch(e)
        epochs.append([k for b in mix for k in b["__key__"]])
    for keys in epochs:
        assert len(keys) == 20 and sum("t72" in k for k in keys) >= 8
    # the small source (7 train t72 chips) restarts its own stream: over 3 epochs its 24 draws cover it > 3 times
    t72 = collections.Counter(k for keys in epochs for k in keys[:20] if k in {r.key for r in mix.indexes[1].rows})
    assert set(t72) == {r.key for r in mix.indexes[1].rows}
    mix.set_epoch(1)
    state = mix.state_dict(step=2)
    again = ShardIterable([ds, other], 5, weights=[0.6, 0.4], epoch_size=20, seed=7)
    again.load_state_dict(state)
    assert [k for b in again for k in b["__key__"]] == epochs[1][10:]
    with pytest.raises(LoaderStateError, match="weights"):
        ShardIterable([ds, other], 5, weights=[0.5, 0.5], epoch_size=20, seed=7).load_state_dict(state)


# ------------------------------------------------------------------ direct batch reads (bench-driven fast path)
@pytest.fixture(scope="module")
def ds_gr(tmp_path_factory) -> Path:
    """Square chips with GR maps: every array field stacks, so the direct path reads whole batches."""
    base = tmp_path_factory.mktemp("stream-gr")
    write_demo_dataset(base / "data", per_class=4, size=24, nonsquare=False)
    ingest("mstar", base / "data" / "jpeg", base / "ingest")
    build_shards([base / "ingest"], base / "ds", BuildConfig(targets=("gr",), max_shard_samples=5))
    return base / "ds"


def _assert_same_batches(got: list[dict], ref: list[dict]) -> None:
    assert len(got) == len(ref)
    for a, b in zip(got, ref, strict=True):
        assert a.keys() == b.keys()
        for k in a:
            if isinstance(b[k], torch.Tensor):
                assert isinstance(a[k], torch.Tensor) and a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]), k
            elif k.endswith(".npy"):  # ragged arrays stay lists of arrays
                assert all(np.array_equal(x, y) for x, y in zip(a[k], b[k], strict=True)), k
            else:
                assert a[k] == b[k], k


@pytest.mark.parametrize("root,keys", [("ds", "fields"), ("ds_gr", "fields"), ("ds_gr", "torchgeo")])
@pytest.mark.parametrize("workers", [0, 2])
def test_direct_batches_equal_per_sample_batches(root: str, keys: str, workers: int, request) -> None:
    """The direct path (arrays read straight into batch tensors, shared memory in workers) gives exactly the
    batches of read-decode-collate, also where shapes are ragged (``ds`` has odd widths), for padding, and
    with either key naming."""
    path = request.getfixturevalue(root)

    def batches(transform) -> list[dict]:
        it = ShardIterable(path, 5, split=None, num_workers=workers, seed=2, pad="mask", transform=transform,
                           keys=keys)  # fmt: skip
        return list(DataLoader(it, batch_size=None, num_workers=workers))

    direct, per_sample = batches(None), batches(lambda s: s)
    _assert_same_batches(direct, per_sample)
    gr, label = ("gr.npy", "cls") if keys == "fields" else ("gr", "label")
    if root == "ds_gr":
        assert all(isinstance(b[gr], torch.Tensor) and b[gr].shape[1:] == (4, 24, 24) for b in direct)
    if workers:  # labels and bookkeeping travel as views of one storage (one file-descriptor handover, not four)
        b = direct[0]
        ptrs = {b[k].untyped_storage().data_ptr() for k in (label, "valid", "__index__", "__epoch__")}
        assert len(ptrs) == 1


def test_read_stacked_falls_back_for_ragged_and_foreign_arrays(ds: Path) -> None:
    from sardata.stream.dataset import ShardIndex, collate, read_stacked

    index = ShardIndex(ds, split=None)
    shapes = [index.read(i)["img.npy"].shape for i in range(len(index))]
    mixed = [i for i in range(len(index)) if shapes[i] != shapes[0]][:2] + [0, 1]
    assert len({shapes[i] for i in mixed}) == 2  # one batch with two chip widths
    got = read_stacked([(index, i) for i in mixed])
    assert isinstance(got["img.npy"], list)  # ragged: a list of arrays, as collate makes it
    _assert_same_batches([got], [collate([index.read(i) for i in mixed])])


def test_fields_reads_only_the_named_members(ds_gr: Path) -> None:
    it = ShardIterable(ds_gr, 4, split=None, fields={"img.npy", "cls"})
    b = next(iter(it))
    assert "gr.npy" not in b and "meta.json" not in b and b["img.npy"].shape == (4, 1, 24, 24)
    full = next(iter(ShardIterable(ds_gr, 4, split=None)))
    assert torch.equal(b["img.npy"], full["img.npy"]) and torch.equal(b["cls"], full["cls"])
    with pytest.raises(ConfigError, match="none of fields"):
        ShardIterable(ds_gr, 4, fields={"nope.npy"})


def test_online_augment_skips_the_gr_bytes() -> None:
    from sardata.stream.transforms import JointAugment

    assert JointAugment(size=16, mode="online").fields == {"img.npy", "cls"}
    assert "gr.npy" in JointAugment(size=16, resize=False).fields


@pytest.mark.parametrize("victim", [0, 2])  # the batch's first sample (header parsed) or a later one (compared)
def test_damaged_local_member_is_an_integrity_error_naming_shard_and_key(ds_gr: Path, tmp_path: Path,
                                                                          victim: int) -> None:  # fmt: skip
    import shutil

    from sardata.errors import ShardIntegrityError
    from sardata.stream.dataset import ShardIndex

    root = tmp_path / "ds"
    shutil.copytree(ds_gr, root)
    index = ShardIndex(root, split=None)
    row = index.rows[victim]
    member = next(m for m in row.members if m["field"] == "gr.npy")
    with open(root / "shards" / row.shard, "r+b") as fh:  # overwrite the dtype in the .npy header
        fh.seek(member["offset"] + 10)
        fh.write(b"{'descr': '|O', ")
    it = ShardIterable(root, 4, split=None, shuffle=False)
    with pytest.raises(ShardIntegrityError, match=f"{row.shard}:{row.key}"):
        list(it)


def test_collate_promotes_mixed_dtypes_like_numpy() -> None:
    """Datasets built with different GR codecs can meet in one mixed batch: numpy's promotion, never a cast
    down to the first sample's dtype."""
    from sardata.stream.dataset import collate

    a, b = np.full((2, 3), 1.5, np.float32), np.full((2, 3), 2.0, np.float16)
    for shared in (False, True):
        for pair in ((a, b), (b, a)):
            out = collate([{"gr.npy": pair[0]}, {"gr.npy": pair[1]}], shared=shared)["gr.npy"]
            assert out.dtype == torch.float32 and np.array_equal(out.numpy(), np.stack(pair).astype(np.float32))
    u = collate([{"img.npy": np.ones(2, np.uint8)}, {"img.npy": np.ones(2, np.float32)}], shared=True)["img.npy"]
    assert u.dtype == torch.float32


def test_workers_forked_after_the_parent_read_get_their_own_file_handles(ds_gr: Path) -> None:
    """A DataLoader forked while the parent holds open shard files must not share their file positions."""
    it = ShardIterable(ds_gr, 4, split=None, num_workers=2, seed=3)
    ref = list(DataLoader(ShardIterable(ds_gr, 4, split=None, seed=3), batch_size=None))
    parent = iter(it)
    next(parent)  # the parent now holds open handles, positioned mid-shard
    it.set_epoch(0)  # (starting an iteration advanced the epoch counter)
    got = list(DataLoader(it, batch_size=None, num_workers=2))
    _assert_same_batches(got, ref)


@pytest.mark.parametrize("workers", [0, 2])
def test_readme_resume_loop_matches_an_uninterrupted_run(ds: Path, workers: int) -> None:
    """The README's training loop, verbatim in shape: killed after step 2 of epoch 1, resumed from the saved
    state, it delivers exactly the batches (and saves exactly the states) of an uninterrupted run — with
    num_workers=0, where iterating advances ``ds.epoch`` in this process, too (issue 20)."""
    from torch.utils.data import DataLoader

    def run(first: int, state: dict | None, stop: tuple[int, int] | None) -> tuple[list, list]:
        ds_ = ShardIterable(ds, 8, split="train", seed=5, num_workers=workers)
        if state is not None:
            ds_.load_state_dict(state)
        loader = DataLoader(ds_, batch_size=None, num_workers=workers)
        got, states = [], []
        for epoch in range(first, 3):
            ds_.set_epoch(epoch)
            for step, batch in enumerate(loader, start=ds_.start_step):
                got.append((epoch, step, list(batch["__key__"])))
                states.append(ds_.state_dict(step + 1))
                if (epoch, step) == stop:
                    return got, states
        return got, states

    ref, ref_states = run(0, None, None)
    head, head_states = run(0, None, (1, 2))
    assert head_states[-1]["epoch"] == 1 and head_states[-1]["step"] == 3
    tail, tail_states = run(head_states[-1]["epoch"], head_states[-1], None)
    assert head + tail == ref and head_states + tail_states == ref_states
