"""``build-shards --from-source``: a source's files straight to shards, without a sample store.

Why two reads of the inputs and not one: a shard's content is fixed by the plan — samples grouped by split and
sorted by key, cut at exact byte sizes — and the plan needs every row (keys, splits, sizes, class counts for the
splits) before the first shard can be written. So pass 1 is an ingest that keeps the rows but not the arrays
(:func:`sardata.ingest.ingest` with ``store_arrays=False``, resumable, in ``<out>/_work/ingest``); the plan is the
one ``build-shards`` computes from it; pass 2 decodes each input again and writes every sample's bytes straight
to its planned offset in its shard (temp files of the planned size, filled in any order by any worker, then
fsynced, hashed and renamed). No decoded copy of the data set ever lands on disk: the disk holds the inputs, the
rows (≈ 0.3 KB per sample) and the shards. The price is a second decode of each input (≈ the ingest time again;
for a container file, one decode of the whole file per pass, not per shard).

The output — shards, tables and card, except the card's ``created_at`` — is byte-identical to ``sardata ingest``
followed by ``sardata build-shards`` on the same inputs and options: both passes use the very code of those two
commands (the rows, the plan, :func:`sardata.shards.writer.sample_bytes`, the index writer), and the card records
the pass-1 ingest exactly as it records an ingest directory. An input that changed between the passes (its sha256
differs from the one pass 1 recorded) stops the run. A rerun resumes pass 1 and keeps every shard a previous run
finished; shards in flight are rewritten.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sardata.atomic import TMP_PREFIX, file_digests, fsync_dir
from sardata.engines import check_engine, map_units
from sardata.errors import IngestEnvironmentError, ShardIntegrityError
from sardata.ingest.driver import IngestResult, ingest
from sardata.ingest.unit import UnitTask, _read_and_hash, encode_arrays
from sardata.manifest.io import read_table
from sardata.outlock import output_lock
from sardata.shards.build import (
    WORK,
    Build,
    BuildConfig,
    BuildResult,
    clear_build,
    commit_shard,
    open_build,
    plan_hash,
    reused_shard,
)
from sardata.shards.rows import RowGroups, as_rows
from sardata.shards.sample import ROW_COLUMNS, OutputSample
from sardata.shards.writer import SampleRecord, ShardResult, sample_bytes
from sardata.sources import FileUnit, MemberStatus, get_source

PASS1 = "ingest"  # pass 1's rows-only ingest, under <out>/_work
INPUTS_PER_TASK = 256
MAX_OPEN = 64  # temp shards a worker keeps open


@dataclass(frozen=True)
class InputTask:
    """Inputs to decode again: per input (rel, path, bytes) and its selected samples — place in the input,
    row in the pass-1 table, shard number, offset in the shard, bytes in the shard."""

    inputs: tuple[tuple[str, str, int], ...]
    samples: tuple[tuple[np.ndarray, ...], ...]  # per input: place, row, shard, offset, planned bytes


def build_from_source(
    source_id: str,
    root: str | os.PathLike[str],
    out: str | os.PathLike[str],
    cfg: BuildConfig | None = None,
    options: Mapping[str, str] | None = None,
    workers: int = 1,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
    engine: str = "local",
    max_errors: int | None = None,
) -> tuple[BuildResult, IngestResult]:
    """Build a dataset from a source's files in their original layout (resumable; byte-identical to ingest +
    build-shards); return the build's result and pass 1's (files, rejections)."""
    check_engine(engine)
    out, cfg = Path(out), cfg or BuildConfig()
    with output_lock(out, "build-shards"):
        if overwrite:
            clear_build(out)
        work = out / WORK / PASS1
        first = ingest(source_id, root, work, options, workers, max_errors, engine=engine, store_arrays=False)
        build = open_build([work], out, cfg, overwrite=False)
        if isinstance(build, BuildResult):
            return build, first
        build.plan(extra=("src_path", "store_path"))
        results = _write_shards(build, source_id, Path(root), workers, progress, engine)
        return build.finish(results), first


def _write_shards(build: Build, source_id: str, root: Path, workers: int, progress: Callable[[int, int], None] | None,
                  engine: str) -> list[dict[str, Any]]:  # fmt: skip
    """Pass 2: every shard not finished by an earlier run, written from the decoded inputs."""
    done = {p.name: r for p in build.plans if (r := reused_shard(build.out, p, build.cfg_sha)) is not None}
    todo = [i for i, p in enumerate(build.plans) if p.name not in done]
    temps = {i: _temp(build.out, build.plans[i]) for i in todo}
    for i, tmp in temps.items():
        with open(tmp, "wb") as fh:
            fh.truncate(build.plans[i].nbytes)  # zeros: padding and the end-of-archive blocks are already there
    tasks = _tasks(build, root, todo)
    cls = get_source(source_id)
    work = build.out / WORK / PASS1
    opts = cls.parse_options(_card_options(work))
    names = [str(temps.get(i, "")) for i in range(len(build.plans))]
    init_args = (source_id, str(root if root.is_dir() else root.parent), opts, str(work), build.cfg, names)
    parts = [_records(r) for r in map_units(_init, init_args, _run, tasks, workers, progress, engine=engine)]
    records = pa.concat_tables([_RECORDS.empty_table(), *parts]).sort_by(
        [("shard", "ascending"), ("offset", "ascending")]
    )
    items = _ShardItems(build, todo, temps, records)
    return [*done.values(), *map_units(None, (), _finish_shard, items, workers, engine=engine)]


class _ShardItems(Sequence):
    """The shards to finish, each with its samples' records, made one at a time as the engine asks for them
    (records of all shards at once as Python dicts would be ≈ 1 KB per sample)."""

    def __init__(self, build: Build, todo: list[int], temps: dict[int, Path], records: pa.Table) -> None:
        shard = records.column("shard").to_numpy()
        self.build, self.todo, self.temps, self.records = build, todo, temps, records
        self.bounds = np.searchsorted(shard, np.array(todo), "left"), np.searchsorted(shard, np.array(todo), "right")

    def __len__(self) -> int:
        return len(self.todo)

    def __getitem__(self, j: int) -> tuple[Any, str, str, str, list[dict[str, Any]]]:  # type: ignore[override]
        if not 0 <= j < len(self.todo):
            raise IndexError(j)
        i, lo, hi = self.todo[j], int(self.bounds[0][j]), int(self.bounds[1][j])
        b = self.build
        return b.plans[i], str(self.temps[i]), str(b.out), b.cfg_sha, self.records.slice(lo, hi - lo).to_pylist()


def _temp(out: Path, plan: Any) -> Path:
    return out / "shards" / f"{TMP_PREFIX}onepass-{plan.name}"


def _card_options(work: Path) -> dict[str, Any]:
    import json

    return dict(json.loads((work / "dataset.json").read_text())["config"]["options"])


def _tasks(build: Build, root: Path, todo: list[int]) -> list[InputTask]:
    """Inputs in listing order, :data:`INPUTS_PER_TASK` per task, each with its samples in the shards to write."""
    df, plans = build.df, build.plans
    counts = np.array([len(plans[i].keys) for i in todo], dtype=np.int64)
    ends = np.cumsum([len(p.keys) for p in plans])
    pos = np.concatenate(
        [build.order[e - len(plans[i].keys) : e] for i, e in ((i, ends[i]) for i in todo)] or [np.zeros(0, np.int64)]
    )
    payload = df["payload"].to_numpy()[pos]
    before = np.cumsum(payload) - payload  # bytes before each sample, over all shards to write
    first = np.repeat(np.cumsum(counts) - counts, counts)  # the shard's first sample, for every sample
    sel = df.iloc[pos][["src_path", "store_path", "row"]].assign(
        shard=np.repeat(np.array(todo, dtype=np.int64), counts), offset=before - before[first], payload=payload
    )
    sel["place"] = sel["store_path"].str.rpartition("#")[2].astype(np.int64)
    sel = sel.sort_values(["src_path", "place"], ignore_index=True)
    sources = read_table(build.out / WORK / PASS1 / "sources.parquet", "sources")
    files = sources.filter(pc.is_null(sources.column("src_member")))
    sizes = dict(zip(files.column("src_path").to_pylist(), files.column("bytes").to_pylist(), strict=True))
    base = root if root.is_dir() else root.parent
    rels = sel["src_path"].to_numpy(dtype=object)
    cuts = [0, *(np.nonzero(rels[1:] != rels[:-1])[0] + 1).tolist(), len(rels)]  # one run per input
    cols = [sel[c].to_numpy(dtype=np.int64) for c in ("place", "row", "shard", "offset", "payload")]
    tasks, inputs, samples = [], [], []
    for lo, hi in itertools.pairwise(cuts if len(rels) else []):
        rel = rels[lo]
        inputs.append((rel, os.path.join(base, rel), int(sizes[rel] or 0)))
        samples.append(tuple(c[lo:hi] for c in cols))
        if len(inputs) == INPUTS_PER_TASK:
            tasks.append(InputTask(tuple(inputs), tuple(samples)))
            inputs, samples = [], []
    return [*tasks, InputTask(tuple(inputs), tuple(samples))] if inputs else tasks


_W: dict[str, Any] = {}


def _init(source_id: str, root: str, options: Any, work: str, cfg: BuildConfig, temps: list[str]) -> None:
    _W.update(source=get_source(source_id)(root, options), rows=RowGroups([Path(work)], ROW_COLUMNS + ["src_sha256"]),
              work=work, cfg=cfg, temps=temps, fds={})  # fmt: skip


def _run(task: InputTask) -> list[list[Any]]:
    """Decode each input of the task and write its selected samples; return one record per sample written:
    shard number, key, offset, bytes, members, sha256, extras."""
    out: list[list[Any]] = []
    source = _W["source"]
    every = as_rows(_W["rows"].take(0, np.concatenate([s[1] for s in task.samples])), ingest_root=_W["work"])
    at = 0
    for (rel, path, size), (place, _, shard, offset, nbytes) in zip(task.inputs, task.samples, strict=True):
        found, at = every[at : at + len(place)], at + len(place)
        wanted = dict(zip(place.tolist(), zip(found, shard.tolist(), offset.tolist(), nbytes.tolist(), strict=True),
                          strict=True))  # fmt: skip
        data, sha = _read_and_hash(UnitTask(rel, path, size, None, None), source.reads_whole_file)
        if sha != found[0].src_sha256:
            raise IngestEnvironmentError(f"{path}: changed since pass 1 of this build; rerun the same command")
        n = 0
        for item in source.read(FileUnit(rel, path, size, data)):
            if isinstance(item, MemberStatus):
                continue
            if n in wanted:
                out.append(_write_sample(item, *wanted[n]))
            n += 1
    return out


def _write_sample(item: Any, row: Any, shard: int, offset: int, nbytes: int) -> list[Any]:
    """Encode one sample as the shard builder does and write it at its planned offset."""
    fields, extras = OutputSample(row, _W["cfg"]).encode(encode_arrays(item, row.fields))
    data, rec = sample_bytes(row.key, fields, offset)
    if len(data) != nbytes:
        raise ShardIntegrityError(f"{row.key}: {len(data)} bytes, the plan said {nbytes} (an input changed?)")
    fds = _W["fds"]
    fd = fds.pop(shard, None)
    if fd is None:
        fd = os.open(_W["temps"][shard], os.O_WRONLY)
        if len(fds) >= MAX_OPEN:  # many small shards: keep a bounded number of descriptors open
            os.close(fds.pop(next(iter(fds))))
    fds[shard] = fd  # most recently used last
    view = memoryview(data)
    while view:
        view = view[os.pwrite(fd, view, offset + len(data) - len(view)) :]
    return [shard, rec.key, rec.offset, rec.nbytes, rec.members, rec.sha256, extras]


def _records(rows: list[list[Any]]) -> pa.Table:
    cols = list(zip(*rows, strict=True)) if rows else [[]] * 7
    names = ["shard", "key", "offset", "nbytes", "members", "sha256", "extras"]
    table = {n: list(c) for n, c in zip(names, cols, strict=True)}
    table["extras"] = [json.dumps(e) for e in table["extras"]]
    return pa.table(table, schema=_RECORDS)


_RECORDS = pa.schema([("shard", pa.int64()), ("key", pa.string()), ("offset", pa.int64()), ("nbytes", pa.int64()),
                      ("members", pa.list_(pa.struct([("field", pa.string()), ("offset", pa.int64()),
                                                       ("size", pa.int64())]))),
                      ("sha256", pa.string()), ("extras", pa.string())])  # fmt: skip


def _finish_shard(item: tuple[Any, str, str, str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Check that every sample of a shard was written, then fsync, hash and rename it and write its sidecar."""
    plan, tmp, out, cfg_sha, mine = item
    if [r["key"] for r in mine] != list(plan.keys):
        raise ShardIntegrityError(f"{plan.name}: {len(mine)} of {len(plan.keys)} samples written (an input changed?)")
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    sha, fast = file_digests(tmp)
    shards = Path(out) / "shards"
    os.replace(tmp, shards / plan.name)
    fsync_dir(shards)
    samples = [SampleRecord(r["key"], r["offset"], r["nbytes"], r["members"], r["sha256"]) for r in mine]
    result = ShardResult(shards / plan.name, plan.nbytes, sha, samples, fast)
    extras = {r["key"]: json.loads(r["extras"]) for r in mine if r["extras"] != "{}"}
    return commit_shard(Path(out) / WORK / f"{plan.name}.json", plan_hash(plan, cfg_sha), plan, result, extras)


__all__ = ["PASS1", "InputTask", "build_from_source"]
