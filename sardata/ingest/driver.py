"""The public ingest API: :func:`ingest` lists the input files, cuts the list into chunks of consecutive inputs,
runs the chunks on an engine (:mod:`sardata.ingest.unit` via :mod:`sardata.engines`), each committing its inputs
in packs of the sample store, and merges the packs into the tables (:mod:`sardata.ingest.tables`), all under the
output lock.

Chunks depend on the listing alone (never on the number of workers), so the same inputs give the same packs,
byte for byte, with any worker count and either engine: :data:`~sardata.ingest.unit.PACK_INPUTS` inputs, fewer when
the listing is short (at least :data:`MIN_CHUNKS` chunks, so that workers share small inputs) or when
:data:`CHUNK_BYTES` of input files are reached. After a successful merge the packs holding no input of this run
(all their inputs redone elsewhere, or written under another fingerprint) are deleted, so reruns do not pile up
files: the store holds ≤ inputs / 256 + :data:`MIN_CHUNKS` packs, plus one per 64 MB of arrays.
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
from sardata.errors import ConfigError, SourceNotFoundError, TooManyErrorsError
from sardata.ingest.tables import merge_units
from sardata.ingest.unit import PACK_INPUTS, UnitTask, init_worker, run_chunk
from sardata.manifest.schema import SOURCES
from sardata.outlock import output_lock
from sardata.sources import Source, get_source
from sardata.store import INDEX, UNITS, list_packs, pack_path, read_pack_sources

LOCK_NAME = "ingest-config.json"
MIN_CHUNKS = 8  # a short listing is still cut into this many chunks (load balance over workers)
CHUNK_BYTES = 64 << 20  # input bytes per chunk at most (large scenes: one or a few per chunk)


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

    def add_tables(self, samples: int, sources: pa.Table) -> None:
        """Record the merge: the sample count, the container members' statuses and every rejected file."""
        import pyarrow.compute as pc

        self.samples = samples
        members = sources.filter(pc.is_valid(sources.column("src_member")))
        self.members = Counter(members.column("status").to_pylist())
        bad = sources.filter(pc.equal(sources.column("status"), "rejected")).select(["src_path", "reason", "detail"])
        self.rejected = [(r["src_path"], r["reason"], r["detail"] or "") for r in bad.to_pylist()]


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
    store_arrays: bool = True,
) -> IngestResult:
    """Ingest every file under ``root`` with adapter ``source_id`` into ``out`` (resumable).

    ``engine``: ``local`` (process pool) or ``ray`` (same per-file function as Ray Data tasks,
    :mod:`sardata.engines.ray`); the output is byte-identical either way. ``retry_rejected`` redoes files a
    previous run committed as rejected (resumed otherwise); ``overwrite`` discards everything in ``out`` first.
    ``store_arrays=False`` keeps the rows (sizes, hashes) but not the arrays: the first pass of a one-pass build
    (:mod:`sardata.ingest.onepass`).

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
        unit_fp += "" if store_arrays else ":rows-only"
        tasks = _tasks(source, files, _committed(out, unit_fp), retry_rejected)
        init_args = (cls.id, str(base), opts, str(out), unit_fp, store_arrays)
        result, live = _run_units(tasks, init_args, out, workers, progress, engine, max_errors)
        del files, tasks  # ≈ 0.5 KB per input, no longer needed: the merge works from the packs
        merged = merge_units(out, live, source, config, cfg_sha, str(root))
        result.add_tables(merged.samples, merged.sources)
        _collect_garbage(out, set(live))
        return result


def _tasks(source: Source, files: list[InputFile], done: dict, retry_rejected: bool) -> list[UnitTask]:
    """One task per listed file, with the adapter's skip reason and its records in committed packs."""
    skips = source.skip_reasons([f.rel for f in files if f.problem is None])
    return [UnitTask(f.rel, f.path, f.size, f.problem, skips.get(f.rel), retry_rejected, done.get(f.rel, ()))
            for f in files]  # fmt: skip


def plan_chunks(tasks: list[UnitTask]) -> list[list[UnitTask]]:
    """Consecutive inputs per chunk: :data:`PACK_INPUTS` (fewer for a short listing) or :data:`CHUNK_BYTES`."""
    per = max(1, min(PACK_INPUTS, -(-len(tasks) // MIN_CHUNKS)))
    chunks: list[list[UnitTask]] = []
    current: list[UnitTask] = []
    nbytes = 0
    for task in tasks:
        if current and (len(current) >= per or nbytes + task.size > CHUNK_BYTES):
            chunks.append(current)
            current, nbytes = [], 0
        current.append(task)
        nbytes += task.size
    return [*chunks, current] if current else chunks


def _committed(out: Path, fingerprint: str) -> dict[str, tuple[tuple[str | None, str, str], ...]]:
    """Every input's records in the committed packs written under ``fingerprint``: (sha256, status, pack).
    A pack that cannot be read is deleted (its inputs are redone)."""
    import pyarrow.compute as pc

    done: dict[str, tuple[tuple[str | None, str, str], ...]] = {}
    for pack in list_packs(out):
        got = read_pack_sources(out, pack, SOURCES)
        if got is None:
            pack_path(out, pack).unlink(missing_ok=True)
            continue
        if got[0] != fingerprint:
            continue
        files = got[1].filter(pc.is_null(got[1].column("src_member")))
        for rel, sha, status in zip(
            *(files.column(c).to_pylist() for c in ("src_path", "sha256", "status")), strict=True
        ):
            done[rel] = (*done.get(rel, ()), (sha, status, pack))
    return done


def _collect_garbage(out: Path, live: set[str]) -> None:
    """Delete every file of the store that no input of the finished run refers to (needs the lock)."""
    keep = {pack_path(out, p) for p in live} | {out / INDEX}
    units = out / UNITS
    for path in sorted(units.rglob("*")) if units.is_dir() else []:
        if path.is_file() and path not in keep:
            path.unlink()
    for path in sorted((p for p in units.rglob("*") if p.is_dir()), reverse=True) if units.is_dir() else []:
        if not any(path.iterdir()):
            path.rmdir()


def _run_units(
    tasks: list[UnitTask],
    init_args: tuple,
    out: Path,
    workers: int,
    progress: Callable[[int, int], None] | None,
    engine: str,
    max_errors: int | None,
) -> tuple[IngestResult, dict[str, list[str]]]:
    """Run every chunk on the engine (the caller holds the output lock) and count the inputs' statuses; return
    them with each pack's inputs, packs in listing order; stop with :class:`TooManyErrorsError` once ``max_errors`` files are rejected
    (committed packs are kept, a rerun resumes)."""
    result = IngestResult(out)
    live: dict[str, list[str]] = {}
    first: dict[str, tuple[int, int]] = {}  # pack -> place of its first input in the listing
    chunks = plan_chunks(tasks)
    pa.array([], pa.string())  # pyarrow imports pandas on its first array (≈ 0.2 s): once here, not in every worker
    chunk_of = {c[0].rel: i for i, c in enumerate(chunks)}
    done = 0
    for records in map_units(init_worker, init_args, run_chunk, chunks, workers, None, engine=engine):
        at = chunk_of[records[0]["src_path"]]
        for j, rec in enumerate(records):
            result.files[rec["status"]] += 1
            result.resumed_units += bool(rec["resumed"])
            live.setdefault(rec["pack"], []).append(rec["src_path"])
            first[rec["pack"]] = min(first.get(rec["pack"], (at, j)), (at, j))
            if rec["status"] == "rejected" and max_errors is not None and result.n_rejected >= max_errors:
                raise TooManyErrorsError(
                    f"{out}: stopped after {result.n_rejected} rejected files (--max-errors {max_errors}); first: "
                    f"{rec['src_path']}: {rec['reason'] or ''} {rec['detail'] or ''}. Fix the input or raise "
                    "--max-errors; a rerun resumes where this stopped"
                )
        done += len(records)
        if progress:
            progress(done, len(tasks))
    return result, {pack: live[pack] for pack in sorted(live, key=first.__getitem__)}


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
    if overwrite:  # start clean: no pack of an earlier run (rejections included) is resumed
        shutil.rmtree(out / UNITS, ignore_errors=True)
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


__all__ = ["CHUNK_BYTES", "LOCK_NAME", "MIN_CHUNKS", "IngestResult", "ingest", "plan_chunks"]
