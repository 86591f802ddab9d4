"""Ingest: source files → sample store + ``samples.parquet`` / ``sources.parquet`` + ``dataset.json``.

Work unit = one input file (``data-contract.md`` §4): it is read once, hashed, decoded by the source adapter and
accounted for once. Inputs are committed in batches: a worker takes a chunk of consecutive inputs and writes
them into packs of the sample store (``units/<id>.zip``: arrays plus rows, see :mod:`sardata.store`), each via
temp + rename. A rerun after a crash or ``kill -9`` resumes every input whose record in a committed pack has the
same input sha256, adapter version and options, redoes the rest (at most the packs in flight), and the final merge
builds identical tables.

Every visited file ends in ``sources.parquet`` exactly once as ``ok``, ``rejected`` (with ``reason``,
``detail``, ``error_type``) or ``skipped``. Nothing is silently dropped (unlistable directories are rejected rows,
:mod:`sardata.discovery`).

Only content errors become ``rejected``: an environment failure (the output cannot be written, a transient errno
such as ``EIO``/``ENOSPC``/``EMFILE``, ``MemoryError``, an input that vanished after listing) aborts the run with
:class:`~sardata.errors.IngestEnvironmentError` naming the file, which stays pending — the rule is spelled out in
:mod:`sardata.faults`. One run at a time writes an output directory (:mod:`sardata.outlock`); stale temps are only
removed under that lock. ``retry_rejected`` redoes committed rejections; ``overwrite`` starts from an empty store.
"""

from sardata.ingest.driver import LOCK_NAME, IngestResult, ingest
from sardata.ingest.tables import load_ingest, merge_units
from sardata.ingest.unit import READ_ONCE_BYTES, UnitTask, process_chunk, process_unit

__all__ = [
    "LOCK_NAME",
    "READ_ONCE_BYTES",
    "IngestResult",
    "UnitTask",
    "ingest",
    "load_ingest",
    "merge_units",
    "process_chunk",
    "process_unit",
]
