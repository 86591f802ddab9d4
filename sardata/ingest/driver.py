"""The public ingest API: :func:`ingest` lists the input files, runs one unit per file on an engine
(:mod:`sardata.ingest.unit` via :mod:`sardata.engines`) and merges the units into the tables
(:mod:`sardata.ingest.tables`), all under the output lock.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from sardata.atomic import atomic_path, remove_stale_temps
from sardata.config import config_sha256
from sardata.discovery import InputFile, discover
from sardata.engines import check_engine, map_units
from sardata.engines.local import small_unit_chunksize
from sardata.errors import ConfigError, SourceNotFoundError, TooManyErrorsError
from sardata.ingest.tables import merge_units
from sardata.ingest.unit import UnitTask, init_worker, run_unit
from sardata.outlock import output_lock
from sardata.sources import get_source

LOCK_NAME = "ingest-config.json"


@dataclass
class IngestResult:
    """What :func:`ingest` did: file and member statuses, samples, rejections, units resumed from a past run."""

    out: Path
    files: Counter = field(default_factory=Counter)  # status -> count, one per input file
    members: Counter = field(default_factory=Counter)  # status -> count, members of container files
    samples: int = 0
    rejected: list[tuple[str, str, str]] = field(default_factory=list)  # (src_path, reason, detail)
    resumed_units: int = 0

    @property
    def n_rejected(self) -> int:
        return self.files.get("rejected", 0)

    def add_tables(self, samples: pa.Table, sources: pa.Table) -> None:
        """Record the merged tables: the sample count and every rejected file."""
        self.samples = samples.num_rows
        self.rejected = [
            (r["src_path"], r["reason"], r["detail"] or "") for r in sources.to_pylist() if r["status"] == "rejected"
        ]


def ingest(
    source_id: str,
    root: str | os.PathLike[str],
    out: str | os.PathLike[str],
    options: Mapping[str, str] | None = None,
    workers: int = 1,
    max_errors: int | None = None,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
    engine: str = "local",
    retry_rejected: bool = False,
) -> IngestResult:
    """Ingest every file under ``root`` with adapter ``source_id`` into ``out`` (resumable).

    ``engine``: ``local`` (process pool) or ``ray`` (same per-file function as Ray Data tasks,
    :mod:`sardata.engines.ray`); the output is byte-identical either way. ``retry_rejected`` redoes files a
    previous run committed as rejected (resumed otherwise); ``overwrite`` discards everything in ``out`` first.

    Raises:
        SourceNotFoundError: unknown source, missing or empty root.
        ConfigError: ``out`` holds an ingest with another configuration (pass ``overwrite``).
        TooManyErrorsError: ``max_errors`` files were rejected (finished units are kept; a rerun resumes).
        OutputLockedError: another process is writing ``out``.
        IngestEnvironmentError: an environment failure (see :mod:`sardata.faults`); the file stays pending.
        DependencyNotFoundError: ``engine="ray"`` without Ray installed (``pip install 'sardata[ray]'``).
    """
    check_engine(engine)
    cls = get_source(source_id)
    opts = cls.parse_options(dict(options or {}))
    root = Path(root)
    source = cls(root, opts)
    files = discover(root)
    if not files:
        raise SourceNotFoundError(f"{root}: no files found; point the command at the dataset's root folder")
    base = root if root.is_dir() else root.parent
    config = {
        "source": cls.id,
        "adapter_version": cls.version,
        "options": source.options_dict(),
        "modality": cls.modality,
    }
    cfg_sha = config_sha256(config)
    out = Path(out)
    with output_lock(out, "ingest"):
        _prepare_out(out, config, cfg_sha, overwrite)
        unit_fp = f"{cfg_sha}:{_listing_digest(files)}" if cls.companion_files else cfg_sha
        skips = source.skip_reasons([f.rel for f in files if f.problem is None])
        tasks = [UnitTask(f.rel, f.path, f.size, f.problem, skips.get(f.rel), retry_rejected) for f in files]
        init_args = (cls.id, str(base), opts, str(out), unit_fp)
        result = _run_units(tasks, init_args, out, workers, progress, engine, max_errors)
        result.add_tables(*merge_units(out, [t.rel for t in tasks], source, config, cfg_sha, str(root)))
        return result


def _run_units(
    tasks: list[UnitTask],
    init_args: tuple,
    out: Path,
    workers: int,
    progress: Callable[[int, int], None] | None,
    engine: str,
    max_errors: int | None,
) -> IngestResult:
    """Run every unit on the engine (the caller holds the output lock) and count their rows; stop with
    :class:`TooManyErrorsError` at ``max_errors`` rejected files (finished units are kept, a rerun resumes)."""
    result = IngestResult(out)
    chunksize = small_unit_chunksize(len(tasks), workers)
    units = map_units(init_worker, init_args, run_unit, tasks, workers, progress, engine=engine, chunksize=chunksize)
    for row in units:
        result.files[row["status"]] += 1
        result.resumed_units += bool(row.pop("resumed"))
        result.members.update(m["status"] for m in row.pop("member_rows"))
        if row["status"] == "rejected" and max_errors is not None and result.n_rejected >= max_errors:
            raise TooManyErrorsError(
                f"{out}: stopped after {result.n_rejected} rejected files (--max-errors {max_errors}); first: "
                f"{row['src_path']}: {row['reason']} {row['detail'] or ''}. Fix the input or raise --max-errors; "
                "a rerun resumes where this stopped"
            )
    return result


def _listing_digest(files: list[InputFile]) -> str:
    """sha256 over every input's (path, size, mtime): changes when any file of the dataset is edited."""
    h = hashlib.sha256()
    for f in files:
        try:
            mtime = os.stat(f.path).st_mtime_ns
        except OSError:
            mtime = -1
        h.update(f"{f.rel}\0{f.size}\0{mtime}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def _prepare_out(out: Path, config: dict, cfg_sha: str, overwrite: bool) -> None:
    """Check (or with ``overwrite`` discard) what ``out`` holds and clear dead runs' temps; needs the lock."""
    lock = out / LOCK_NAME
    if overwrite:  # start clean: no unit of an earlier run (rejections included) is resumed
        shutil.rmtree(out / "units", ignore_errors=True)
        for name in ("samples.parquet", "sources.parquet", "dataset.json", LOCK_NAME):
            (out / name).unlink(missing_ok=True)
    elif lock.exists():
        previous = json.loads(lock.read_text())
        if previous.get("config_sha256") != cfg_sha:
            raise ConfigError(
                f"{out} holds an ingest of {previous.get('config', {}).get('source')} with another "
                "configuration; choose a new --out or pass --overwrite"
            )
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out)
    with atomic_path(lock) as tmp:
        tmp.write_text(json.dumps({"config": config, "config_sha256": cfg_sha}, sort_keys=True, indent=2))


__all__ = ["LOCK_NAME", "IngestResult", "ingest"]
