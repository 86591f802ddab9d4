"""``build-shards``: ingest outputs → WebDataset shards + Parquet index + ``dataset.json`` (issue #5).

Steps: read and validate the ingest manifests → scan them a row group at a time: select (``where``), compute
each selected sample's output fields and exact sizes, keep only its index columns → refuse mixed
radiometry/scale → assign splits and views → plan shards (manifest only) → write shards in parallel (one worker
per shard, which reads its rows and arrays itself; temp + fsync + rename, then a sidecar in ``_work/`` as commit
marker) → write the index a row group at a time → ``dataset.json`` last. Memory grows with the index columns
(≈ 0.3 KB per sample), not with whole rows.

A rerun after ``kill -9`` reuses every shard whose sidecar matches its plan and whose bytes still hash to the
recorded sha256, rebuilds the rest, and ends byte-identical to an uninterrupted run (shards and tables).

Modules: :mod:`~sardata.shards.config` (what to build), :mod:`~sardata.shards.inputs` (rows, selection, splits),
:mod:`~sardata.shards.sample` (each sample's sizes and bytes; image policies, ``--channel``, ``--normalise
unit-magnitude`` via :mod:`sardata.radiometry`, GR targets), :mod:`~sardata.shards.plan`, :mod:`~sardata.shards.writer`,
:mod:`~sardata.shards.index` (tables and card), :mod:`~sardata.shards.rows` (rows by position); this module
orchestrates them and runs the shards on an engine. ``build_shards(..., from_source=...)`` builds straight from a
source without an ingest store (:mod:`sardata.shards.onepass`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from sardata.atomic import atomic_path, remove_stale_temps, sha256_file
from sardata.config import config_sha256
from sardata.engines import check_engine, map_units
from sardata.errors import ConfigError, ShardIntegrityError
from sardata.manifest.io import CARD_NAME, read_card
from sardata.manifest.schema import SAMPLES
from sardata.outlock import output_lock
from sardata.shards.config import BuildConfig
from sardata.shards.index import write_index
from sardata.shards.inputs import Inputs, add_splits, load_inputs, scan
from sardata.shards.plan import ShardPlan, plan_columns
from sardata.shards.rows import RowGroups, as_rows
from sardata.shards.sample import ROW_COLUMNS, OutputSample
from sardata.shards.writer import write_shard
from sardata.store import read_encoded

WORK = "_work"


@dataclass
class BuildResult:
    """What :func:`build_shards` produced (``reused_shards``: taken over from an interrupted run)."""

    out: Path
    samples: int = 0
    shards: int = 0
    bytes: int = 0
    reused_shards: int = 0
    splits: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_card(cls, out: Path, card: dict, reused_shards: int = 0) -> BuildResult:
        """The result a finished build's ``dataset.json`` records."""
        splits = card.get("splits", {})
        return cls(out, sum(v["samples"] for v in splits.values()), sum(v["shards"] for v in splits.values()),
                   sum(v["bytes"] for v in splits.values()), reused_shards, {s: v["samples"] for s, v in splits.items()})  # fmt: skip


# ----------------------------------------------------------------------------------------------- one shard
@dataclass(frozen=True)
class ShardTask:
    """One planned shard and where its rows live (ingest directory number and row number, in plan order)."""

    plan: ShardPlan
    dirs: np.ndarray
    rows: np.ndarray


_W: dict[str, Any] = {}  # this worker's row reader, configuration, output and configuration hash (set by _init)


def _init(dirs: list[str], cfg: BuildConfig, out: str, cfg_sha: str) -> None:
    """Set up a worker process once: it reads the rows of its shards itself (nothing but positions travel)."""
    _W.update(
        rows=RowGroups([Path(d) for d in dirs], ROW_COLUMNS, cache=2),
        dirs=dirs,
        cfg=cfg,
        out=Path(out),
        cfg_sha=cfg_sha,
    )
    if "gr" in cfg.targets:
        import torch

        torch.set_num_threads(1)  # one shard per worker process; no oversubscription


def plan_hash(plan: ShardPlan, cfg_sha: str) -> str:
    """What a shard's sidecar must record for the shard to be reused: configuration, name and keys."""
    return hashlib.sha256(f"{cfg_sha}:{plan.name}:{','.join(plan.keys)}".encode()).hexdigest()


def task_rows(task: ShardTask, block: int = 4096) -> Iterator[Any]:
    """The rows of a task's samples, in plan order (each with its ``ingest_root`` and store location), made
    ``block`` at a time (a shard of small samples can hold 10⁵ rows)."""
    for lo in range(0, len(task.rows), block):
        dirs, positions = np.asarray(task.dirs[lo : lo + block]), np.asarray(task.rows[lo : lo + block])
        out: list[Any] = [None] * len(positions)
        for d in np.unique(dirs):
            sel = np.nonzero(dirs == d)[0]
            rows = as_rows(_W["rows"].take(int(d), positions[sel]), ingest_root=_W["dirs"][int(d)])
            for i, row in zip(sel, rows, strict=True):
                out[i] = row
        if [r.key for r in out] != list(task.plan.keys[lo : lo + block]):
            raise ShardIntegrityError(f"{task.plan.name}: rows do not match the plan (an ingest output changed?)")
        yield from out


def _build_one(task: ShardTask) -> dict[str, Any]:
    """Write one planned shard (or reuse it when its sidecar and bytes match) and return its result."""
    plan, out, cfg = task.plan, _W["out"], _W["cfg"]
    sidecar, shard = out / WORK / f"{plan.name}.json", out / "shards" / plan.name
    phash = plan_hash(plan, _W["cfg_sha"])
    done = reused_shard(out, plan, _W["cfg_sha"])
    if done is not None:
        return done
    extras: dict[str, dict] = {}

    def encoded() -> Any:
        for row in task_rows(task):
            stored = read_encoded(row.ingest_root, row.store_pack, row.store_offset, row.store_sizes, row.store_xxh3)
            fields, extra = OutputSample(row, cfg).encode(stored)
            if extra:
                extras[row.key] = extra
            yield row.key, fields

    result = write_shard(shard, encoded())
    if result.nbytes != plan.nbytes:
        raise ShardIntegrityError(f"{shard}: wrote {result.nbytes} bytes, plan said {plan.nbytes} (bug: report it)")
    return commit_shard(sidecar, phash, plan, result, extras)


def reused_shard(out: Path, plan: ShardPlan, cfg_sha: str) -> dict[str, Any] | None:
    """The result of a shard an interrupted run finished (sidecar and bytes match the plan), else None."""
    sidecar, shard = out / WORK / f"{plan.name}.json", out / "shards" / plan.name
    if not (sidecar.exists() and shard.exists()):
        return None
    done = json.loads(sidecar.read_text())
    if (
        done["plan_hash"] == plan_hash(plan, cfg_sha)
        and done.get("xxh3_128")
        and done["nbytes"] == shard.stat().st_size
        and sha256_file(shard) == done["sha256"]
    ):
        return {**done, "reused": True}
    return None


def commit_shard(sidecar: Path, phash: str, plan: ShardPlan, result: Any, extras: dict[str, dict]) -> dict[str, Any]:
    """Write a finished shard's sidecar (its commit marker for a resumed build) and return its result."""
    done = {"plan_hash": phash, "name": plan.name, "sha256": result.sha256, "xxh3_128": result.xxh3_128,
            "nbytes": result.nbytes, "samples": [vars(s) for s in result.samples], "extras": extras}  # fmt: skip
    with atomic_path(sidecar) as tmp:
        tmp.write_text(json.dumps(done))
    return {**done, "reused": False}


def compact(result: dict[str, Any]) -> dict[str, Any]:
    """A shard result with its per-sample records as one Arrow table (a few hundred bytes per sample, instead of
    Python dicts that the driver would hold for every sample of the dataset)."""
    samples = result.pop("samples")
    members = SAMPLES.field("members").type
    result["table"] = pa.table({"key": pa.array([s["key"] for s in samples], pa.string()),
                                "offset": pa.array([s["offset"] for s in samples], pa.int64()),
                                "nbytes": pa.array([s["nbytes"] for s in samples], pa.int64()),
                                "members": pa.array([s["members"] for s in samples], members),
                                "sha256": pa.array([bytes.fromhex(s["sha256"]) for s in samples], pa.binary(32))})  # fmt: skip
    return result


def shard_tasks(df: pd.DataFrame, plans: list[ShardPlan], order: np.ndarray) -> list[ShardTask]:
    """Each plan with the positions of its rows (``df``: the selection's index columns; ``order``: the ``df`` row
    of every planned sample, in plan order)."""
    dirs, rows = df["dir"].to_numpy()[order], df["row"].to_numpy()[order]
    tasks, lo = [], 0
    for p in plans:
        hi = lo + len(p.keys)
        tasks.append(ShardTask(p, dirs[lo:hi], rows[lo:hi]))
        lo = hi
    return tasks


def build_shards(
    ingest_dirs: list[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    cfg: BuildConfig | None = None,
    workers: int = 1,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
    engine: str = "local",
) -> BuildResult:
    """Build a dataset directory from ingest outputs (resumable; byte-identical for any ``workers``).

    ``engine``: ``local`` (process pool) or ``ray`` (the same ``_build_one`` per shard as Ray Data tasks,
    :mod:`sardata.engines.ray`); shards, tables and card (but ``created_at``) are byte-identical either way.

    Raises:
        ConfigError: bad configuration, empty or mixed selection, ``out`` built with another configuration.
        ShardIntegrityError: a shard's bytes do not match the plan.
        DependencyNotFoundError: ``engine="ray"`` without Ray installed (``pip install 'sardata[ray]'``).
        OutputLockedError: another process is writing ``out`` (stale temps are only cleared under the lock).
    """
    check_engine(engine)  # a missing engine is refused before the output directory (and its lock) exists
    with output_lock(out, "build-shards"):
        return _build_shards(ingest_dirs, out, cfg, workers, overwrite, progress, engine)


def _build_shards(
    ingest_dirs: list[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    cfg: BuildConfig | None,
    workers: int,
    overwrite: bool,
    progress: Callable[[int, int], None] | None,
    engine: str,
) -> BuildResult:
    """:func:`build_shards` while holding the output lock."""
    check_engine(engine)
    build = open_build(ingest_dirs, out, cfg or BuildConfig(), overwrite)
    if isinstance(build, BuildResult):
        return build
    build.plan()
    tasks = shard_tasks(build.df, build.plans, build.order)
    init_args = ([str(d) for d in build.inputs.dirs], build.cfg, str(build.out), build.cfg_sha)
    return build.finish(map_units(_init, init_args, _build_one, tasks, workers, progress, engine=engine))


@dataclass
class Build:
    """A build in progress (the caller holds the output lock): its inputs and configuration, and once
    :meth:`plan` ran, the selection's index columns (``df``), the shard plan and, in plan order, the ``df`` row of
    every planned sample (``order``)."""

    out: Path
    cfg: BuildConfig
    inputs: Inputs
    config: dict
    cfg_sha: str
    df: pd.DataFrame = field(default_factory=pd.DataFrame)
    optional: set[str] = field(default_factory=set)
    plans: list[ShardPlan] = field(default_factory=list)
    order: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # df row of each planned sample

    def plan(self, extra: tuple[str, ...] = ()) -> None:
        """Select and size the rows, assign splits and views, plan the shards (``extra``: more index columns to
        keep) and delete shards of an earlier plan."""
        selection = scan(self.inputs, self.cfg, extra)
        self.df, self.optional = add_splits(selection.frame, self.cfg), selection.optional
        self.plans, self.order = plan_columns(
            self.df["key"].to_numpy(dtype=object), self.df["split"].to_numpy(dtype=object),
            self.df["payload"].to_numpy(), self.cfg.max_shard_bytes, self.cfg.max_shard_samples, self.cfg.shuffle_seed,
        )  # fmt: skip
        stale = {p.name for p in (self.out / "shards").glob("*.tar")} - {p.name for p in self.plans}
        for name in stale:
            (self.out / "shards" / name).unlink()

    def finish(self, results: Iterable[dict[str, Any]]) -> BuildResult:
        """Write the index and the card from the shard results (any order), then drop the work directory."""
        results = [compact(r) for r in results]
        card = write_index(self.out, self.df, self.order, self.optional, self.inputs, self.plans, results, self.cfg,
                           self.config, self.cfg_sha)  # fmt: skip
        shutil.rmtree(self.out / WORK, ignore_errors=True)
        return BuildResult.from_card(self.out, card, sum(bool(r["reused"]) for r in results))


def open_build(
    ingest_dirs: list[str | os.PathLike[str]], out: str | os.PathLike[str], cfg: BuildConfig, overwrite: bool
) -> Build | BuildResult:
    """Read the inputs and hash the configuration; the finished result when ``out`` already holds this build,
    else a :class:`Build` with ``out`` prepared (``overwrite``: discard a build of another configuration)."""
    out = Path(out)
    inputs = load_inputs([Path(d) for d in ingest_dirs])
    config = {"build": dataclasses.asdict(cfg), "inputs": inputs.identities}
    cfg_sha = config_sha256(config)
    if (out / CARD_NAME).exists():
        card = read_card(out)
        if card.get("config_sha256") == cfg_sha:
            # A kill -9 between writing the card (the commit point) and removing the work dir leaves sidecars
            # behind: finish that cleanup, so the resumed output equals an uninterrupted one file for file.
            shutil.rmtree(out / WORK, ignore_errors=True)
            remove_stale_temps(out)
            return BuildResult.from_card(out, card)
        if not overwrite:
            raise ConfigError(f"{out} holds a dataset built with another configuration; use a new --out or --overwrite")
    if overwrite:
        clear_build(out)
    (out / "shards").mkdir(parents=True, exist_ok=True)
    (out / WORK).mkdir(exist_ok=True)
    remove_stale_temps(out)
    return Build(out, cfg, inputs, config, cfg_sha)


def clear_build(out: Path) -> None:
    """Discard what ``out`` holds of a build: shards, work directory, card."""
    for sub in ("shards", WORK):
        shutil.rmtree(out / sub, ignore_errors=True)
    (out / CARD_NAME).unlink(missing_ok=True)


__all__ = [
    "WORK",
    "Build",
    "BuildConfig",
    "BuildResult",
    "ShardTask",
    "build_shards",
    "clear_build",
    "commit_shard",
    "compact",
    "open_build",
    "plan_hash",
    "reused_shard",
    "shard_tasks",
]
