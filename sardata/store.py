"""The ingest sample store: decoded arrays written once at ingest, read by the shard builder.

Layout (inside an ingest output directory)::

    units/<uid[:2]>/<uid>.npz    one uncompressed zip per input file (work unit):
                                 "<i>.<field>.npy" members (sample i's arrays), "samples.parquet"
                                 (the unit's sample rows) and "part.json" (its sources rows)

``uid`` = first 32 hex digits of sha256(source-relative path). A sample's ``store_path`` column reads
``units/ab/abcd….npz#<i>``. Why one ``.npz`` per unit: numpy-native (``np.load(..., allow_pickle=False)`` reads
it, no pickle possible), random access per member, and a single temp + rename makes the unit the atomic step of
ingest — its existence means the unit is committed. Sample rows are spooled to Parquet in blocks while the
adapter runs, so a 10⁶-frame HDF5 unit never holds its rows as Python dicts (~3 KB each) in memory. Files are
not fsynced: this protects against a killed process, not a power cut (final tables and ``dataset.json`` are
fsynced).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from sardata.atomic import atomic_path
from sardata.errors import ShardIntegrityError

PART_MEMBER = "part.json"


def unit_id(rel: str) -> str:
    return hashlib.sha256(rel.encode("utf-8", "surrogateescape")).hexdigest()[:32]


def unit_file(uid: str) -> str:
    return f"units/{uid[:2]}/{uid}.npz"


ROWS_MEMBER = "samples.parquet"
ROW_BLOCK = 4096  # sample rows buffered as dicts before they are written out as one Parquet row group


class UnitWriter:
    """Streams one unit's ``.npy`` members into its zip as samples arrive and its sample rows into a Parquet spool
    beside it; :meth:`commit` adds the rows and the part document and renames the file into place. Leaving the
    ``with`` block without committing deletes both temp files."""

    def __init__(self, out: Path, uid: str, schema: pa.Schema | None = None) -> None:
        self.rel = unit_file(uid)
        self._ctx = atomic_path(out / self.rel)
        self._tmp = self._ctx.__enter__()
        self._zf = zipfile.ZipFile(self._tmp, "w", zipfile.ZIP_STORED)
        self._schema, self._rows, self._spool = schema, [], None
        self._spool_path = self._tmp.with_name(self._tmp.name + ".rows")

    def add(self, name: str, data: bytes) -> None:
        self._zf.writestr(_info(f"{name}.npy"), data)

    def add_row(self, row: dict[str, Any]) -> None:
        """One sample row (needs the ``schema`` given at construction); flushed every :data:`ROW_BLOCK` rows."""
        self._rows.append(row)
        if len(self._rows) >= ROW_BLOCK:
            self._flush()

    def _flush(self) -> None:
        if self._schema is None:
            raise ValueError("UnitWriter.add_row needs the samples schema")
        import pyarrow.parquet as pq

        if self._spool is None:
            self._spool = pq.ParquetWriter(self._spool_path, self._schema, compression="zstd")
        self._spool.write_table(pa.Table.from_pylist(self._rows, schema=self._schema))
        self._rows = []

    def commit(self, part: dict[str, Any]) -> None:
        if self._rows or (self._schema is not None and self._spool is None):
            self._flush()  # the last block; a unit without samples still gets an empty table
        if self._spool is not None:
            self._spool.close()
            with open(self._spool_path, "rb") as src, self._zf.open(_info(ROWS_MEMBER), "w", force_zip64=True) as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            self._spool_path.unlink()
        self._zf.writestr(_info(PART_MEMBER), json.dumps(part, allow_nan=False, ensure_ascii=False).encode("utf-8"))
        self._zf.close()
        self._ctx.__exit__(None, None, None)

    def __enter__(self) -> UnitWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            return
        try:  # every step runs even if one fails (a full disk), and the adapter's error is the one that propagates
            if self._spool is not None:
                with contextlib.suppress(Exception):
                    self._spool.close()
            self._spool_path.unlink(missing_ok=True)
            with contextlib.suppress(Exception):
                self._zf.close()
        finally:
            self._ctx.__exit__(exc_type, exc, tb)


def _info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))  # fixed: unit files are reproducible
    info.external_attr = 0o644 << 16
    return info


def read_part(out: Path, uid: str) -> dict[str, Any] | None:
    """A unit's part document, or None when missing or damaged (the unit is then simply redone)."""
    try:
        with zipfile.ZipFile(out / unit_file(uid)) as zf:
            return json.loads(zf.read(PART_MEMBER))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None


def read_unit(out: Path, uid: str, schema: pa.Schema) -> tuple[dict[str, Any], pa.Table] | None:
    """A committed unit's part document and sample rows, from one opening of its zip (a large unit's central
    directory is 10⁵+ entries); None when missing or damaged. Units written before the Parquet spool kept their
    rows in ``part.json``."""
    import pyarrow.parquet as pq

    try:
        with zipfile.ZipFile(out / unit_file(uid)) as zf:
            part = json.loads(zf.read(PART_MEMBER))
            if "samples" in part:
                return part, pa.Table.from_pylist(part["samples"], schema=schema)
            return part, pq.read_table(pa.BufferReader(zf.read(ROWS_MEMBER)), schema=schema)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):  # pyarrow's errors derive from these
        return None


#: open unit files of this process: (pid, path, mtime_ns, size) → (ZipFile, sample index → member infos)
_OPEN_UNITS: OrderedDict[tuple, tuple[zipfile.ZipFile, dict[str, list[zipfile.ZipInfo]]]] = OrderedDict()
_MAX_OPEN_UNITS = 8


def _unit(path: Path) -> tuple[zipfile.ZipFile, dict[str, list[zipfile.ZipInfo]]]:
    """The unit's zip and a per-sample member index, opened once per process and file version.

    One HDF5 or scene unit can hold 10⁵ samples; re-reading its central directory for every sample made a build
    quadratic in the unit size. The key holds the pid (a forked worker never shares the parent's file offset)
    and the file's mtime and size (a unit rewritten by a rerun of ingest is reopened)."""
    st = path.stat()
    key = (os.getpid(), str(path), st.st_mtime_ns, st.st_size)
    hit = _OPEN_UNITS.get(key)
    if hit is not None:
        _OPEN_UNITS.move_to_end(key)
        return hit
    zf = zipfile.ZipFile(path)
    index: dict[str, list[zipfile.ZipInfo]] = {}
    for info in zf.infolist():
        if info.filename.endswith(".npy"):
            index.setdefault(info.filename.partition(".")[0], []).append(info)
    _OPEN_UNITS[key] = (zf, index)
    while len(_OPEN_UNITS) > _MAX_OPEN_UNITS:
        old_key, (old, _) = _OPEN_UNITS.popitem(last=False)
        if old_key[0] == os.getpid():
            old.close()
    return zf, index


def load_arrays(root: str | os.PathLike[str], store_path: str) -> dict[str, np.ndarray]:
    """Arrays of one sample from ``store_path`` (``units/…npz#i``) under an ingest root."""
    rel, _, idx = store_path.partition("#")
    path = Path(root) / rel
    try:
        zf, index = _unit(path)
        return {
            info.filename[len(idx) + 1 : -4]: np.lib.format.read_array(io.BytesIO(zf.read(info)), allow_pickle=False)
            for info in index.get(idx, [])
        }
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ShardIntegrityError(f"{path}: cannot read sample store ({exc}); rerun `sardata ingest`") from exc


def stored_sizes(root: str | os.PathLike[str], store_path: str) -> dict[str, int]:
    """Encoded ``.npy`` size of each field of one sample, from the zip directory (no data read)."""
    rel, _, idx = store_path.partition("#")
    _, index = _unit(Path(root) / rel)
    return {i.filename[len(idx) + 1 : -4]: i.file_size for i in index.get(idx, [])}
