"""One ingest chunk: consecutive input files, each read and hashed once, decoded by the adapter and committed
into packs of the sample store (:mod:`sardata.store`).

The per-item work of :mod:`sardata.ingest`, run by an engine (:mod:`sardata.engines`) in each worker after
:func:`init_worker`; what the rows mean and which failures are the file's fault is described there and in
:mod:`sardata.faults`. An input is the unit of accounting (its ``sources`` row, its rejection, its resume); a pack
is the unit of commit: a pack closes after :data:`PACK_INPUTS` inputs or :data:`PACK_BYTES` of arrays, and an
input whose record in a committed pack matches its sha256 is resumed without being decoded again.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sardata.atomic import sha256_file
from sardata.config import canonical_json
from sardata.errors import RejectFile, SkipFile
from sardata.faults import OutputFailure, environment_error, environment_problem
from sardata.manifest.keys import make_key
from sardata.manifest.schema import SAMPLES, SOURCES
from sardata.shards.codecs import check_array, encode_npy
from sardata.sources import FileUnit, MemberStatus, Sample, Source, get_source
from sardata.store import PackWriter, unit_file, unit_id

_COLUMNS = set(SAMPLES.names)
PACK_INPUTS = 256  # inputs per pack at most (the driver's chunks are never longer)
PACK_BYTES = 64 << 20  # a pack is committed once its arrays reach this size


@dataclass(frozen=True)
class UnitTask:
    """One input file to ingest, as listed on the driver (``problem``: listing error; ``skip``: adapter's reason;
    ``done``: its records in committed packs, ``(sha256, status, pack)``)."""

    rel: str
    path: str
    size: int
    problem: tuple[str, str] | None
    skip: str | None
    retry_rejected: bool = False  # redo an input committed as rejected instead of resuming it
    done: tuple[tuple[str | None, str, str], ...] = ()


_WORKER: dict[str, Any] = {}  # this process's source, output and fingerprint, set by init_worker


def init_worker(source_id: str, root: str, options: Any, out: str, fingerprint: str, arrays: bool = True) -> None:
    """Set up a worker process once: the adapter is built here, not pickled per chunk (``arrays=False``: store
    rows only)."""
    cls = get_source(source_id)
    _WORKER.update(source=cls(root, options), out=Path(out), fingerprint=fingerprint, arrays=arrays)


def run_chunk(tasks: list[UnitTask]) -> list[dict[str, Any]]:
    """:func:`process_chunk` with this worker's state (the per-item function handed to the engine)."""
    return process_chunk(_WORKER["source"], _WORKER["out"], _WORKER["fingerprint"], tasks, _WORKER["arrays"])


def process_unit(source: Source, out: Path, fingerprint: str, task: UnitTask) -> dict[str, Any]:
    """One input on its own (a chunk of one): its record, see :func:`process_chunk`."""
    return process_chunk(source, out, fingerprint, [task])[0]


def process_chunk(
    source: Source, out: Path, fingerprint: str, tasks: list[UnitTask], arrays: bool = True
) -> list[dict[str, Any]]:
    """Process consecutive inputs (or recognise them as done); return one record per input: ``src_path``,
    ``status``, ``reason``, ``detail``, ``resumed`` and the ``pack`` that holds it (``arrays=False``: the packs
    hold rows only)."""
    records: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []  # records of the open pack's inputs
    writer: PackWriter | None = None
    try:
        for task in tasks:
            data, sha = _read_and_hash(task, source.reads_whole_file) if task.problem is None else (None, None)
            hit = _committed(task, sha)
            if hit is not None:
                records.append({"src_path": task.rel, "status": hit[0], "reason": None, "detail": None,
                                "resumed": True, "pack": hit[1]})  # fmt: skip
                continue
            if writer is None:
                writer = _open_pack(out, fingerprint, task, arrays)
            pending.append(_process(source, out, task, sha, data, writer))
            records.append(pending[-1])
            if writer.nbytes >= PACK_BYTES or writer.n_inputs >= PACK_INPUTS:
                _commit(writer, pending)
                writer, pending = None, []
        if writer is not None:
            _commit(writer, pending)
    except BaseException as exc:
        if writer is not None:
            writer.__exit__(type(exc), exc, exc.__traceback__)
        raise
    return records


def _committed(task: UnitTask, sha: str | None) -> tuple[str, str] | None:
    """(status, pack) of a committed record of this input with the same content, unless it is to be redone."""
    for done_sha, status, pack in task.done:
        if done_sha == sha and not (task.retry_rejected and status == "rejected"):
            return status, pack
    return None


def _open_pack(out: Path, fingerprint: str, task: UnitTask, arrays: bool) -> PackWriter:
    try:
        return PackWriter(out, fingerprint, SAMPLES, SOURCES, arrays)
    except OSError as exc:
        raise environment_error(task.rel, task.path, f"writing the output failed: {exc}") from exc


def _commit(writer: PackWriter, pending: list[dict[str, Any]]) -> None:
    try:
        pack = writer.commit()
    except OSError as exc:
        first = pending[0]
        raise environment_error(first["src_path"], first["src_path"], f"writing the output failed: {exc}") from exc
    for record in pending:
        record["pack"] = pack


def _process(
    source: Source, out: Path, task: UnitTask, sha: str | None, data: bytes | None, writer: PackWriter
) -> dict[str, Any]:
    """Decode one input into the open pack (or record why not) and add its ``sources`` rows to the pack."""
    row: dict[str, Any] = {
        "source": source.id, "src_path": task.rel, "src_member": None, "bytes": task.size, "sha256": sha,
        "adapter": source.id, "adapter_version": source.version, "status": "ok", "reason": None,
        "detail": None, "error_type": None, "n_samples": 0,
    }  # fmt: skip
    member_rows: list[dict[str, Any]] = []
    if task.problem is not None:
        row.update(status="rejected", reason=task.problem[0], detail=task.problem[1], error_type="InputError")
    elif task.skip is not None:
        reason, _, detail = task.skip.partition(": ")
        row.update(status="skipped", reason=reason, detail=detail or None)
    elif task.size == 0:
        row.update(status="rejected", reason="empty_file", detail="zero-byte file", error_type="RejectFile")
    else:
        writer.begin_input()
        try:
            row["n_samples"], member_rows = _decode_into(source, task, sha or "", data, writer, row)
        except SkipFile as exc:
            writer.drop_input(task.rel)
            row.update(status="skipped", reason=exc.reason, detail=exc.detail or None)
        except Exception as exc:  # noqa: BLE001 - adapter failures (RejectFile too) become rejected rows, not a crash
            writer.drop_input(task.rel)
            why = environment_problem(exc, task.path, out)
            if why is not None:  # not the file's fault: commit nothing, the file stays pending
                raise environment_error(task.rel, task.path, why) from exc
            if isinstance(exc, RejectFile):
                row.update(status="rejected", reason=exc.reason, detail=exc.detail or None, error_type="RejectFile")
            else:
                row.update(status="rejected", reason="error", detail=f"{exc}"[:500], error_type=type(exc).__name__)
    writer.end_input(task.rel, [row, *member_rows])
    return {"src_path": task.rel, "status": row["status"], "reason": row["reason"], "detail": row["detail"],
            "resumed": False, "pack": None}  # fmt: skip


def _guard(fn: Callable[..., Any], *args: Any) -> Any:
    """Call an output-writing step; its ``OSError`` is the environment's fault, never the input's."""
    try:
        return fn(*args)
    except OSError as exc:
        raise OutputFailure(str(exc)) from exc


def _decode_into(
    source: Source, task: UnitTask, sha: str, data: bytes | None, writer: PackWriter, file_row: dict[str, Any]
) -> tuple[int, list[dict[str, Any]]]:
    """Run the adapter, streaming each sample's arrays and row into ``writer``; return the sample count and the
    member rows."""
    n = 0
    ok: Counter[str] = Counter()  # samples per container member
    others: list[MemberStatus] = []
    uid = unit_id(task.rel)
    for item in source.read(FileUnit(task.rel, task.path, task.size, data)):
        if isinstance(item, MemberStatus):
            others.append(item)
            continue
        members: dict[str, tuple[bytes, memoryview]] = {}
        row = _sample_row(source, task, sha, item, members, n, uid)
        row["store_offset"], row["store_sizes"], row["store_xxh3"] = _guard(
            writer.add_arrays, [members[f] for f in row["fields"]]
        )
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


def _read_and_hash(task: UnitTask, whole: bool = True) -> tuple[bytes | None, str | None]:
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


_CHECKED: set[tuple[str, np.dtype]] = set()  # (field, dtype) pairs the registry allows (checked once)
_HEADERS: dict[tuple[np.dtype, tuple[int, ...]], bytes] = {}  # .npy header by dtype and shape
_DTYPE_NAMES: dict[np.dtype, str] = {}
_LITTLE = np.little_endian


def _encode(arr: np.ndarray) -> tuple[bytes, memoryview]:
    """:func:`~sardata.shards.codecs.encode_npy` as (header, data) without copying the data: the header it wrote
    for the first array of this dtype and shape is reused for the next ones (building one costs as much as
    copying a small chip)."""
    if not (arr.flags.c_contiguous and arr.dtype.byteorder in "=<|" and (arr.dtype.byteorder != "=" or _LITTLE)):
        arr = np.ascontiguousarray(arr.astype(arr.dtype.newbyteorder("<"), copy=False))
    key = (arr.dtype, arr.shape)
    header = _HEADERS.get(key)
    if header is None:
        encoded = encode_npy(arr)
        header = encoded[: len(encoded) - arr.nbytes]
        if len(_HEADERS) < 1024:
            _HEADERS[key] = header
    try:
        return header, memoryview(arr).cast("B")
    except (TypeError, ValueError, NotImplementedError):  # no buffer export for this dtype, or an empty array
        return header, memoryview(arr.tobytes())


def encode_arrays(sample: Sample, fields: list[str]) -> list[bytes]:
    """The sample's ``.npy`` bytes for ``fields``, exactly as ingest stores them."""
    return [b"".join(_encode(sample.arrays[f])) for f in fields]


def _dtype_name(dtype: np.dtype) -> str:
    name = _DTYPE_NAMES.get(dtype)
    if name is None:
        name = _DTYPE_NAMES[dtype] = str(dtype)
    return name


def _sample_row(
    source: Source, task: UnitTask, sha: str, s: Sample, members: dict[str, tuple[bytes, memoryview]], i: int, uid: str
) -> dict[str, Any]:
    """Validate one sample, add its encoded arrays (``.npy`` header, data) to ``members`` and return its
    ``samples`` row."""
    bad_cols = set(s.columns) - _COLUMNS
    if bad_cols:
        raise ValueError(f"adapter {source.id} set unknown columns {sorted(bad_cols)}")
    for name, value in s.columns.items():  # list columns (bbox, pixel_spacing_m): unknown is None, never NaN
        if isinstance(value, (list, tuple)) and not all(np.isfinite(v) for v in value if isinstance(v, float)):
            raise RejectFile("bad_values", f"column {name} has NaN or Inf values {list(value)}")
    h = hashlib.sha256()
    for name in sorted(s.arrays):
        arr = s.arrays[name]
        if (name, arr.dtype) not in _CHECKED:
            check_array(name, arr)
            _CHECKED.add((name, arr.dtype))
        if arr.dtype.kind in "fc" and not np.isfinite(arr).all():
            raise RejectFile("bad_values", f"{name} has NaN or Inf values")
        members[name] = header, data = _encode(arr)
        h.update(name.encode())
        h.update(header)
        h.update(data)
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
        "dtype": _dtype_name(main.dtype) if main is not None else None,
        "meta": canonical_json(s.meta),
        "store_path": f"{unit_file(uid)}#{i}",
    } | {k: None for k, v in s.columns.items() if isinstance(v, float) and not np.isfinite(v)}


__all__ = [
    "PACK_BYTES",
    "encode_arrays",
    "PACK_INPUTS",
    "READ_ONCE_BYTES",
    "UnitTask",
    "init_worker",
    "process_chunk",
    "process_unit",
    "run_chunk",
]
