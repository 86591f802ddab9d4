"""Ingest: source files → sample store + ``samples.parquet`` / ``sources.parquet`` + ``dataset.json``.

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

from sardata.ingest.driver import LOCK_NAME, IngestResult, ingest
from sardata.ingest.tables import load_ingest, merge_units
from sardata.ingest.unit import READ_ONCE_BYTES, UnitTask, process_unit

__all__ = [
    "LOCK_NAME",
    "READ_ONCE_BYTES",
    "IngestResult",
    "UnitTask",
    "ingest",
    "load_ingest",
    "merge_units",
    "process_unit",
]
