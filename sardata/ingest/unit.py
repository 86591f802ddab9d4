"""One ingest unit (one input file): read and hash it once, decode it with the adapter, commit its unit file.

The per-item work of :mod:`sardata.ingest`, run by an engine (:mod:`sardata.engines`) in each worker after
:func:`init_worker`; what the rows mean and which failures are the file's fault is described there and in
:mod:`sardata.faults`.
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
from sardata.manifest.schema import SAMPLES
from sardata.shards.codecs import check_array, encode_npy
from sardata.sources import FileUnit, MemberStatus, Sample, Source, get_source
from sardata.store import UnitWriter, read_part, unit_file, unit_id

_COLUMNS = set(SAMPLES.names)


@dataclass(frozen=True)
class UnitTask:
    """One input file to ingest, as listed on the driver (``problem``: listing error; ``skip``: adapter's reason)."""

    rel: str
    path: str
    size: int
    problem: tuple[str, str] | None
    skip: str | None
    retry_rejected: bool = False  # redo a unit committed as rejected instead of resuming it


_WORKER: dict[str, Any] = {}  # this process's source, output and fingerprint, set by init_worker


def init_worker(source_id: str, root: str, options: Any, out: str, fingerprint: str) -> None:
    """Set up a worker process once: the adapter is built here, not pickled per unit."""
    cls = get_source(source_id)
    _WORKER.update(source=cls(root, options), out=Path(out), fingerprint=fingerprint)


def run_unit(task: UnitTask) -> dict[str, Any]:
    """:func:`process_unit` with this worker's state (the per-item function handed to the engine)."""
    return process_unit(_WORKER["source"], _WORKER["out"], _WORKER["fingerprint"], task)


def process_unit(source: Source, out: Path, fingerprint: str, task: UnitTask) -> dict[str, Any]:
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
    source: Source, task: UnitTask, sha: str, data: bytes | None, writer: Any, uid: str, file_row: dict[str, Any]
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


def _sample_row(
    source: Source, task: UnitTask, sha: str, s: Sample, members: dict[str, bytes], i: int, uid: str
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


__all__ = ["READ_ONCE_BYTES", "UnitTask", "init_worker", "process_unit", "run_unit"]
