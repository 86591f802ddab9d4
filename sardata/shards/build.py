"""``build-shards``: ingest outputs → WebDataset shards + Parquet index + ``dataset.json`` (issue #5).

Steps: read and validate the ingest manifests → select (``where``) → refuse mixed radiometry/scale → assign
splits and views → compute each sample's output fields and their exact sizes → plan shards (manifest only) →
write shards in parallel (one worker per shard, temp + fsync + rename, then a sidecar in ``_work/`` as commit
marker) → merge the index → ``dataset.json`` last.

A rerun after ``kill -9`` reuses every shard whose sidecar matches its plan and whose bytes still hash to the
recorded sha256, rebuilds the rest, and ends byte-identical to an uninterrupted run (shards and tables).

Modules: :mod:`~sardata.shards.config` (what to build), :mod:`~sardata.shards.inputs` (rows, selection, splits),
:mod:`~sardata.shards.sample` (each sample's sizes and bytes; image policies, ``--channel``, ``--normalise
unit-magnitude`` via :mod:`sardata.radiometry`, GR targets), :mod:`~sardata.shards.plan`, :mod:`~sardata.shards.writer`,
:mod:`~sardata.shards.index` (tables and card); this module orchestrates them and runs the shards on an engine.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from sardata.atomic import atomic_path, remove_stale_temps, sha256_file
from sardata.config import config_sha256
from sardata.engines import check_engine, map_units
from sardata.errors import ConfigError, ShardIntegrityError
from sardata.manifest.io import CARD_NAME, read_card
from sardata.outlock import output_lock
from sardata.shards.config import BuildConfig
from sardata.shards.index import write_index
from sardata.shards.inputs import add_splits, load_inputs, select
from sardata.shards.plan import ShardPlan, plan_shards
from sardata.shards.sample import OutputSample
from sardata.shards.writer import write_shard

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
_W: dict[str, Any] = {}  # this worker's rows by key, configuration, output and configuration hash (set by _init)


def _init(rows: pd.DataFrame, cfg: BuildConfig, out: str, cfg_sha: str) -> None:
    """Set up a worker process once: the rows travel to it once, not with every shard."""
    _W.update(rows={r.key: r for r in rows.itertuples(index=False)}, cfg=cfg, out=Path(out), cfg_sha=cfg_sha)
    if "gr" in cfg.targets:
        import torch

        torch.set_num_threads(1)  # one shard per worker process; no oversubscription


def _plan_hash(plan: ShardPlan, cfg_sha: str) -> str:
    """What a shard's sidecar must record for the shard to be reused: configuration, name and keys."""
    return hashlib.sha256(f"{cfg_sha}:{plan.name}:{','.join(plan.keys)}".encode()).hexdigest()


def _build_one(plan: ShardPlan) -> dict[str, Any]:
    """Write one planned shard (or reuse it when its sidecar and bytes match) and return its result."""
    out, cfg, cfg_sha = _W["out"], _W["cfg"], _W["cfg_sha"]
    sidecar = out / WORK / f"{plan.name}.json"
    shard = out / "shards" / plan.name
    phash = _plan_hash(plan, cfg_sha)
    if sidecar.exists() and shard.exists():
        done = json.loads(sidecar.read_text())
        if (
            done["plan_hash"] == phash
            and done.get("xxh3_128")
            and done["nbytes"] == shard.stat().st_size
            and sha256_file(shard) == done["sha256"]
        ):
            return {**done, "reused": True}
    rows = _W["rows"]
    built = {k: OutputSample(rows[k], cfg).encode() for k in plan.keys}
    result = write_shard(shard, [(k, built[k][0]) for k in plan.keys])
    if result.nbytes != plan.nbytes:
        raise ShardIntegrityError(f"{shard}: wrote {result.nbytes} bytes, plan said {plan.nbytes} (bug: report it)")
    done = {"plan_hash": phash, "name": plan.name, "sha256": result.sha256, "xxh3_128": result.xxh3_128,
            "nbytes": result.nbytes,
            "samples": [vars(s) for s in result.samples], "extras": {k: built[k][1] for k in plan.keys}}  # fmt: skip
    with atomic_path(sidecar) as tmp:
        tmp.write_text(json.dumps(done))
    return {**done, "reused": False}


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
    cfg = cfg or BuildConfig()
    out = Path(out)
    dirs = [Path(d) for d in ingest_dirs]
    inputs = load_inputs(dirs)
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
        for sub in ("shards", WORK):
            shutil.rmtree(out / sub, ignore_errors=True)
        (out / CARD_NAME).unlink(missing_ok=True)
    (out / "shards").mkdir(parents=True, exist_ok=True)
    (out / WORK).mkdir(exist_ok=True)
    remove_stale_temps(out)

    df = add_splits(select(inputs.samples, cfg, dirs), cfg)
    sizes = {r.key: list(OutputSample(r, cfg).sizes().values()) for r in df.itertuples()}
    plans = plan_shards([(k, s, sizes[k]) for k, s in zip(df["key"], df["split"], strict=True)],
                        cfg.max_shard_bytes, cfg.max_shard_samples, cfg.shuffle_seed)  # fmt: skip
    stale = {p.name for p in (out / "shards").glob("*.tar")} - {p.name for p in plans}
    for name in stale:
        (out / "shards" / name).unlink()

    results = list(map_units(_init, (df, cfg, str(out), cfg_sha), _build_one, plans, workers, progress, engine=engine))
    card = write_index(out, df, inputs, plans, results, cfg, config, cfg_sha)
    shutil.rmtree(out / WORK, ignore_errors=True)
    return BuildResult.from_card(out, card, sum(bool(r["reused"]) for r in results))


__all__ = ["WORK", "BuildConfig", "BuildResult", "build_shards"]
