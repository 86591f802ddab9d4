"""The ingest engine: source files → sample store + ``samples.parquet`` / ``sources.parquet`` + ``dataset.json``.

Work unit = one input file (``data-contract.md`` §4). A worker reads the file once, hashes it, decodes it with
the source adapter and writes one unit file (``units/…npz``: the arrays plus the unit's rows, see
:mod:`sardata.store`) via temp + rename. A rerun after a crash or ``kill -9`` skips units whose file records the
same input sha256, adapter version and options, redoes the rest, and the final merge builds identical tables.

Every visited file ends in ``sources.parquet`` exactly once as ``ok``, ``rejected`` (with ``reason``,
``detail``, ``error_type``) or ``skipped``. Nothing is silently dropped (unlistable directories are rejected rows,
:mod:`sardata.discovery`).

Only content errors become ``rejected``: an environment failure (the output cannot be written, a transient errno
such as ``EIO``/``ENOSPC``/``EMFILE``, ``MemoryError``, an input that vanished after listing) aborts the run with
:class:`~sardata.errors.IngestEnvironmentError` naming the file, which stays pending — the rule is spelled out in
:mod:`sardata.faults`. One run at a time writes an output directory (:mod:`sardata.outlock`); stale temps are only
removed under that lock. ``retry_rejected`` redoes committed rejections; ``overwrite`` starts from an empty store.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import multiprocessing as mp
import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

import sardata
from sardata.atomic import atomic_path, remove_stale_temps, sha256_file
from sardata.config import canonical_json, config_sha256
from sardata.discovery import InputFile, discover
from sardata.engines import check_engine
from sardata.errors import ConfigError, RejectFile, SkipFile, SourceNotFoundError, TooManyErrorsError
from sardata.faults import OutputFailure, environment_error, environment_problem
from sardata.manifest.io import read_table, write_card, write_table
from sardata.manifest.keys import hashed_key, make_key
from sardata.manifest.schema import SAMPLES, SCHEMA_VERSION, SOURCES
from sardata.outlock import output_lock
from sardata.shards.codecs import check_array, encode_npy
from sardata.sources import FileUnit, MemberStatus, Sample, Source, get_source
from sardata.store import UnitWriter, read_part, read_unit, unit_file, unit_id

LOCK_NAME = "ingest-config.json"
_COLUMNS = set(SAMPLES.names)


@dataclass
class IngestResult:
    out: Path
    files: Counter = field(default_factory=Counter)  # status -> count, one per input file
    members: Counter = field(default_factory=Counter)  # status -> count, members of container files
    samples: int = 0
    rejected: list[tuple[str, str, str]] = field(default_factory=list)  # (src_path, reason, detail)
    resumed_units: int = 0

    @property
    def n_rejected(self) -> int:
        return self.files.get("rejected", 0)


# ----------------------------------------------------------------------------------------------- one unit
@dataclass(frozen=True)
class _Task:
    rel: str
    path: str
    size: int
    problem: tuple[str, str] | None
    skip: str | None
    retry_rejected: bool = False  # redo a unit committed as rejected instead of resuming it


_WORKER: dict[str, Any] = {}


def _init_worker(source_id: str, root: str, options: Any, out: str, fingerprint: str) -> None:
    cls = get_source(source_id)
    _WORKER.update(source=cls(root, options), out=Path(out), fingerprint=fingerprint)


def _run_task(task: _Task) -> dict[str, Any]:
    return process_unit(_WORKER["source"], _WORKER["out"], _WORKER["fingerprint"], task)


def process_unit(source: Source, out: Path, fingerprint: str, task: _Task) -> dict[str, Any]:
    """Process one file (or recognise it as done) and return its ``sources`` row plus ``resumed``."""
    uid = unit_id(task.rel)
    data, sha = _read_and_hash(task, source.reads_whole_file) if task.problem is None else (None, None)
    done = read_part(out, uid)
    if (
        done is not None
        and done["fingerprint"] == fingerprint
        and done["source_row"]["sha256"] == sha
        and not (task.retry_rejected and done["source_row"]["status"] == "rejected")
    ):
        return {**done["source_row"], "member_rows": done.get("member_rows", []), "resumed": True}
    row: dict[str, Any] = {
        "source": source.id, "src_path": task.rel, "src_member": None, "bytes": task.size, "sha256": sha,
        "adapter": source.id, "adapter_version": source.version, "status": "ok", "reason": None,
        "detail": None, "error_type": None, "n_samples": 0,
    }  # fmt: skip
    if task.problem is not None:
        row.update(status="rejected", reason=task.problem[0], detail=task.problem[1], error_type="InputError")
    elif task.skip is not None:
        reason, _, detail = task.skip.partition(": ")
        row.update(status="skipped", reason=reason, detail=detail or None)
    elif task.size == 0:
        row.update(status="rejected", reason="empty_file", detail="zero-byte file", error_type="RejectFile")
    else:
        try:
            with _open_writer(out, uid) as writer:
                row["n_samples"], member_rows = _decode_into(source, task, sha or "", data, writer, uid, row)
                _guard(writer.commit, {"fingerprint": fingerprint, "source_row": row, "member_rows": member_rows})
            return {**row, "member_rows": member_rows, "resumed": False}
        except SkipFile as exc:
            row.update(status="skipped", reason=exc.reason, detail=exc.detail or None)
        except Exception as exc:  # noqa: BLE001 - adapter failures (RejectFile too) become rejected rows, not a crash
            why = environment_problem(exc, task.path, out)
            if why is not None:  # not the file's fault: commit nothing, the file stays pending
                raise environment_error(task.rel, task.path, why) from exc
            if isinstance(exc, RejectFile):
                row.update(status="rejected", reason=exc.reason, detail=exc.detail or None, error_type="RejectFile")
            else:
                row.update(status="rejected", reason="error", detail=f"{exc}"[:500], error_type=type(exc).__name__)
    try:
        with UnitWriter(out, uid, SAMPLES) as writer:  # a unit without samples still commits its row
            writer.commit({"fingerprint": fingerprint, "source_row": row, "member_rows": []})
    except OSError as exc:
        raise environment_error(task.rel, task.path, f"writing the output failed: {exc}") from exc
    return {**row, "member_rows": [], "resumed": False}


def _open_writer(out: Path, uid: str) -> UnitWriter:
    return _guard(UnitWriter, out, uid, SAMPLES)


def _guard(fn: Callable[..., Any], *args: Any) -> Any:
    """Call an output-writing step; its ``OSError`` is the environment's fault, never the input's."""
    try:
        return fn(*args)
    except OSError as exc:
        raise OutputFailure(str(exc)) from exc


def _decode_into(
    source: Source, task: _Task, sha: str, data: bytes | None, writer: Any, uid: str, file_row: dict[str, Any]
) -> tuple[int, list[dict[str, Any]]]:
    """Run the adapter, streaming each sample's arrays and row into ``writer``; return the sample count and the
    member rows."""
    n = 0
    ok: Counter[str] = Counter()  # samples per container member
    others: list[MemberStatus] = []
    for item in source.read(FileUnit(task.rel, task.path, task.size, data)):
        if isinstance(item, MemberStatus):
            others.append(item)
            continue
        members: dict[str, bytes] = {}
        row = _sample_row(source, task, sha, item, members, n, uid)
        for name, blob in members.items():
            _guard(writer.add, name, blob)
        _guard(writer.add_row, row)
        n += 1
        if row["src_member"] is not None:
            ok[row["src_member"]] += 1
    return n, _member_rows(file_row, ok, others)


def _member_rows(file_row: dict[str, Any], ok: Counter[str], others: list[MemberStatus]) -> list[dict[str, Any]]:
    """``sources`` rows for the members of a container: ok per member that gave samples (``ok``: their sample
    counts), plus the adapter's other members (companions, rejected, skipped). Plain files get none."""
    base = {**file_row, "bytes": None, "sha256": None, "error_type": None, "detail": None, "reason": None}
    out = [{**base, "src_member": m, "status": "ok", "n_samples": n} for m, n in sorted(ok.items())]
    for o in others:
        out.append({**base, "src_member": o.src_member, "status": o.status, "reason": o.reason,
                    "detail": o.detail or None, "error_type": "RejectFile" if o.status == "rejected" else None,
                    "n_samples": 0})  # fmt: skip
    return out


#: files up to this size are read once into memory and hashed from there; larger ones are hashed by streaming
#: and left for the adapter to read piecewise (large scenes, HDF5).
READ_ONCE_BYTES = 256 << 20


def _read_and_hash(task: _Task, whole: bool = True) -> tuple[bytes | None, str | None]:
    """The input's bytes (small files) and sha256. A vanished input or a transient error stops the run (the file
    stays pending); other read errors are left for the adapter to report as a rejection."""
    try:
        if whole and task.size <= READ_ONCE_BYTES:
            with open(task.path, "rb") as fh:
                data = fh.read()
            return data, hashlib.sha256(data).hexdigest()
        return None, sha256_file(task.path)
    except OSError as exc:
        why = environment_problem(exc, task.path, Path(os.devnull))
        if why is not None:
            raise environment_error(task.rel, task.path, why) from exc
        return None, None


def _sample_row(
    source: Source, task: _Task, sha: str, s: Sample, members: dict[str, bytes], i: int, uid: str
) -> dict[str, Any]:
    """Validate one sample, add its encoded arrays to ``members`` and return its ``samples`` row."""
    bad_cols = set(s.columns) - _COLUMNS
    if bad_cols:
        raise ValueError(f"adapter {source.id} set unknown columns {sorted(bad_cols)}")
    for name, value in s.columns.items():  # list columns (bbox, pixel_spacing_m): unknown is None, never NaN
        if isinstance(value, (list, tuple)) and not all(np.isfinite(v) for v in value if isinstance(v, float)):
            raise RejectFile("bad_values", f"column {name} has NaN or Inf values {list(value)}")
    h = hashlib.sha256()
    for name in sorted(s.arrays):
        arr = s.arrays[name]
        check_array(name, arr)
        if arr.dtype.kind in "fc" and not np.isfinite(arr).all():
            raise RejectFile("bad_values", f"{name} has NaN or Inf values")
        members[f"{i}.{name}"] = encoded = encode_npy(arr)
        h.update(name.encode())
        h.update(encoded)
    classes = source.class_names()
    label = None
    if s.label_name is not None:
        if s.label_name not in classes:
            raise RejectFile("unknown_class", f"class {s.label_name!r} not in {classes}")
        label = classes.index(s.label_name)
    main = s.arrays.get("img", s.arrays.get("cplx"))
    image = main is not None and main.ndim == 3
    return {
        **s.columns,
        "key": make_key(source.id, task.rel, s.key_token, s.sub_index),
        "source": source.id,
        "source_version": source.version,
        "split": s.split,
        "label": label,
        "label_name": s.label_name,
        "fields": sorted(s.arrays),
        "content_sha256": h.hexdigest(),
        "src_path": task.rel,
        "src_member": s.src_member,
        "sub_index": s.sub_index,
        "src_sha256": sha,
        "modality": source.modality,
        "height": int(main.shape[1]) if image else None,
        "width": int(main.shape[2]) if image else None,
        "channels": int(main.shape[0]) if image else None,
        "dtype": str(main.dtype) if main is not None else None,
        "meta": canonical_json(s.meta),
        "store_path": f"{unit_file(uid)}#{i}",
    } | {k: None for k, v in s.columns.items() if isinstance(v, float) and not np.isfinite(v)}


# ----------------------------------------------------------------------------------------------- the run
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
        tasks = [_Task(f.rel, f.path, f.size, f.problem, skips.get(f.rel), retry_rejected) for f in files]
        return _ingest_locked(tasks, cls.id, base, opts, out, unit_fp, workers, progress, engine, max_errors,
                              source, config, cfg_sha, str(root))  # fmt: skip


def _ingest_locked(
    tasks: list[_Task], source_id: str, base: Path, opts: Any, out: Path, unit_fp: str, workers: int,
    progress: Callable[[int, int], None] | None, engine: str, max_errors: int | None, source: Source,
    config: dict, cfg_sha: str, root: str,
) -> IngestResult:  # fmt: skip
    """Run the units and merge, while the caller holds the output lock."""

    result = IngestResult(out)
    rows: list[dict[str, Any]] = []
    for row in _run(tasks, source_id, base, opts, out, unit_fp, workers, progress, engine):
        rows.append(row)
        result.files[row["status"]] += 1
        result.resumed_units += bool(row.pop("resumed"))
        result.members.update(m["status"] for m in row.pop("member_rows"))
        if row["status"] == "rejected" and max_errors is not None and result.n_rejected >= max_errors:
            raise TooManyErrorsError(
                f"{out}: stopped after {result.n_rejected} rejected files (--max-errors {max_errors}); first: "
                f"{row['src_path']}: {row['reason']} {row['detail'] or ''}. Fix the input or raise --max-errors; "
                "a rerun resumes where this stopped"
            )
    merge(out, [t.rel for t in tasks], source, config, cfg_sha, root, result)
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


def _run(
    tasks: list[_Task],
    source_id: str,
    root: Path,
    opts: Any,
    out: Path,
    fingerprint: str,
    workers: int,
    progress: Callable[[int, int], None] | None,
    engine: str = "local",
) -> Iterator[dict[str, Any]]:
    if engine == "ray":
        from sardata.engines.ray import map_units

        init_args = (source_id, str(root), opts, str(out), fingerprint)
        yield from map_units(_init_worker, init_args, _run_task, tasks, workers, progress)
        return
    total = len(tasks)
    if workers <= 1:
        _init_worker(source_id, str(root), opts, str(out), fingerprint)
        results: Iterator[dict[str, Any]] = map(_run_task, tasks)
        pool = None
    else:
        # fork where the OS has it: works from scripts without a __main__ guard; the pool starts before this
        # process has used pyarrow's thread pools. Elsewhere spawn.
        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        pool = ctx.Pool(workers, initializer=_init_worker, initargs=(source_id, str(root), opts, str(out), fingerprint))
        results = pool.imap_unordered(_run_task, tasks, chunksize=max(1, min(32, total // (workers * 8) or 1)))
    try:
        for done, row in enumerate(results, 1):
            if progress:
                progress(done, total)
            yield row
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()


# ----------------------------------------------------------------------------------------------- merge
def merge(
    out: Path, rels: list[str], source: Source, config: dict, cfg_sha: str, root: str, result: IngestResult
) -> None:
    """Build the final tables from the part files of ``rels`` and write ``dataset.json`` last."""
    tables, source_rows = [], []
    for rel in rels:
        uid = unit_id(rel)
        unit = read_unit(out, uid, SAMPLES)
        if unit is None:
            (out / unit_file(uid)).unlink(missing_ok=True)  # so that the rerun redoes it instead of trusting it
            raise ConfigError(f"{out / unit_file(uid)}: unit missing or damaged; rerun the same ingest command")
        part, rows = unit
        tables.append(rows)
        source_rows.append(part["source_row"])
        source_rows.extend(part.get("member_rows", []))
    samples = pa.concat_tables(tables) if tables else SAMPLES.empty_table()
    samples = _resolve_key_collisions(samples, source.id)  # sorted by key while written, a row group at a time
    sources = pa.Table.from_pylist(
        sorted(source_rows, key=lambda r: (r["src_path"], r["src_member"] or "")), schema=SOURCES
    )
    write_table(samples, out / "samples.parquet", "samples", cfg_sha, sort_by="key")
    write_table(sources, out / "sources.parquet", "sources", cfg_sha)
    result.samples = samples.num_rows
    result.rejected = [
        (r["src_path"], r["reason"], r["detail"] or "") for r in sources.to_pylist() if r["status"] == "rejected"
    ]
    write_card(out, _card(out, samples, sources, source, config, cfg_sha, root))


def _resolve_key_collisions(samples: pa.Table, source_id: str) -> pa.Table:
    """Give every key that occurs more than once its hash-suffixed form (``data-contract.md`` §1.3)."""
    import pyarrow.compute as pc

    if pc.count_distinct(samples.column("key")).as_py() == samples.num_rows:
        return samples  # the usual case, checked without a Python string per row
    keys = samples.column("key").to_pylist()
    counts = Counter(keys)
    rels = samples.column("src_path").to_pylist()
    subs = samples.column("sub_index").to_pylist()
    fixed = [hashed_key(k, source_id, r, s) if counts[k] > 1 else k for k, r, s in zip(keys, rels, subs, strict=True)]
    dup = [k for k, c in Counter(fixed).items() if c > 1]
    if dup:
        raise ValueError(f"key collision cannot be resolved for {dup[:3]}")
    return samples.set_column(samples.schema.get_field_index("key"), "key", pa.array(fixed, pa.string()))


def _card(
    out: Path, samples: pa.Table, sources: pa.Table, source: Source, config: dict, cfg_sha: str, root: str
) -> dict:
    df = samples.select(["split", "label_name"]).to_pandas()
    status = Counter(sources.column("status").to_pylist())
    return {
        "kind": "ingest",
        "schema_version": SCHEMA_VERSION,
        "sardata_version": sardata.__version__,
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "config": config,
        "config_sha256": cfg_sha,
        "input_root": root,
        "sources": [{"id": source.id, "version": source.version}],
        "class_maps": {source.id: source.class_names()},
        "counts": {
            "files": {s: status.get(s, 0) for s in ("ok", "rejected", "skipped")},
            "samples": int(samples.num_rows),
            "per_split": {k: int(v) for k, v in sorted(df["split"].value_counts().items())},
            "per_class": {str(k): int(v) for k, v in sorted(df["label_name"].dropna().value_counts().items())},
        },
        "tables": {
            name: {"rows": int(t.num_rows), "sha256": sha256_file(out / f"{name}.parquet")}
            for name, t in (("samples", samples), ("sources", sources))
        },
    }


def load_ingest(out: str | os.PathLike[str]) -> tuple[pa.Table, pa.Table]:
    """Read and validate an ingest output's ``samples`` and ``sources`` tables."""
    out = Path(out)
    return read_table(out / "samples.parquet", "samples"), read_table(out / "sources.parquet", "sources")
