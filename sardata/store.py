"""The ingest sample store: decoded arrays written once at ingest, read by the shard builder.

Layout (inside an ingest output directory)::

    units/<pack-id>.zip      one uncompressed zip per *pack*, a batch of consecutive inputs (≤ 256 inputs, ≤ 64 MB
                             of arrays, see :mod:`sardata.ingest.driver`):
                               arrays           every sample's encoded ``.npy`` arrays back to back, fields in
                                                name order, samples in the order the adapter gave them
                               samples.parquet  the pack's sample rows, plus where each sample's arrays lie in
                                                ``arrays`` (``store_offset``, ``store_sizes``)
                               sources.parquet  one row per input file of the pack (and per container member)
                               pack.json        the configuration fingerprint the pack was written under
    units/index.parquet      written by the merge: for every row of ``samples.parquet``, in the same order, the
                             pack, offset, field names and sizes of its arrays

Why packs, not one file per input: creating, renaming and reopening a file (and a Parquet writer) per input cost
≈ 5 ms, 10-40× the decode of a small JPEG chip, and an inode per sample. A pack is written to a temp name and
renamed: it is the atomic step of ingest (every input in its ``sources.parquet`` is committed; a ``kill -9``
loses only the packs in flight). Why zip: members carry CRCs (a flipped byte in a row table is detected). Why one
``arrays`` member: a zip entry costs ≈ 170 bytes, > 5 % of a small chip; a sample is one ``pread``, checked
against the XXH3-64 written with it.

A sample's ``store_path`` column keeps its earlier form ``units/<uid[:2]>/<uid>.npz#<i>`` (``uid`` = 32 hex
digits of sha256(source-relative path), ``i`` = the sample's place in its input): it is the sample's address,
resolved through ``units/index.parquet``, so the ingest tables do not depend on how inputs were batched (any
worker count, resumed or not). Files are not fsynced: this protects against a killed process, not a power cut
(final tables and ``dataset.json`` are fsynced).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import json
import os
import zipfile
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from sardata.atomic import TMP_PREFIX
from sardata.errors import ShardIntegrityError

UNITS = "units"
INDEX = f"{UNITS}/index.parquet"
PACK_SUFFIX = ".zip"
ARRAYS, ROWS_MEMBER, SOURCES_MEMBER, PACK_MEMBER = "arrays", "samples.parquet", "sources.parquet", "pack.json"
PACK_FORMAT = 2
ROW_BLOCK = 4096  # sample rows buffered as dicts before they are written out as one Parquet row group
WRITE_BYTES = 1 << 20  # arrays are handed to the zip in writes of this size
#: the pack's own tables: written once and read once or twice, so written fast (snappy, no dictionaries or
#: statistics: ≈ 3 µs per row, against ≈ 14 µs with the manifest's zstd + dictionaries) at ≈ 0.25 KB per row
PACK_PARQUET = {"compression": "snappy", "use_dictionary": False, "write_statistics": False}
#: where each sample's arrays lie in its pack (columns added to the pack's sample rows)
LOCATION = pa.schema(
    [
        pa.field("store_offset", pa.int64()),
        pa.field("store_sizes", pa.list_(pa.int64())),
        pa.field("store_xxh3", pa.uint64()),  # XXH3-64 of the sample's arrays: checked on every read
    ]
)
INDEX_SCHEMA = pa.schema(
    [
        pa.field("store_path", pa.string()),
        pa.field("pack", pa.string()),
        pa.field("offset", pa.int64()),
        pa.field("fields", pa.list_(pa.string())),
        pa.field("sizes", pa.list_(pa.int64())),
        pa.field("xxh3", pa.uint64()),
    ]
)
_SEQ = itertools.count()


def unit_id(rel: str) -> str:
    return hashlib.sha256(rel.encode("utf-8", "surrogateescape")).hexdigest()[:32]


def unit_file(uid: str) -> str:
    """The address prefix of an input's samples (historically its unit file; now resolved via the index)."""
    return f"{UNITS}/{uid[:2]}/{uid}.npz"


def pack_path(out: Path, pack: str) -> Path:
    return out / UNITS / f"{pack}{PACK_SUFFIX}"


def list_packs(out: Path) -> list[str]:
    """Committed pack ids under ``out`` (sorted; temps of a killed run are not packs)."""
    names = os.listdir(out / UNITS) if (out / UNITS).is_dir() else []
    return sorted(n[: -len(PACK_SUFFIX)] for n in names if n.endswith(PACK_SUFFIX) and not n.startswith(TMP_PREFIX))


class PackWriter:
    """Streams samples' arrays into one pack's ``arrays`` member and their rows into a Parquet table; the rows of
    an input that fails part-way are dropped again (:meth:`drop_input`). :meth:`commit` adds the tables and
    renames the pack into place under a name derived from its inputs. Leaving the ``with`` block without
    committing deletes the temp files."""

    def __init__(
        self, out: Path, fingerprint: str, samples: pa.Schema, sources: pa.Schema, arrays: bool = True
    ) -> None:
        (out / UNITS).mkdir(parents=True, exist_ok=True)
        self._keep = arrays  # False: rows only (sizes and checksums recorded, the bytes dropped: one-pass builds)
        self.out, self._fingerprint = out, fingerprint
        self._schema, self._sources_schema = pa.unify_schemas([samples, LOCATION]), sources
        self._tmp = out / UNITS / f"{TMP_PREFIX}{os.getpid()}-{next(_SEQ)}{PACK_SUFFIX}"
        self._spool_path = self._tmp.with_name(self._tmp.name + ".rows")
        self._zf = zipfile.ZipFile(self._tmp, "w", zipfile.ZIP_STORED)
        self._arrays = self._zf.open(_info(ARRAYS), "w", force_zip64=True)
        self.nbytes = 0
        self._buf = bytearray()  # arrays not yet handed to the zip (one write per MB, not per array)
        self._rows: list[dict[str, Any]] = []
        self._spool: Any = None
        self._sources: list[dict[str, Any]] = []
        self._rels: list[str] = []
        self._dead: set[str] = set()  # inputs whose rows reached the spool before they failed
        self._input_start, self._flushed = 0, False

    def add_arrays(self, encoded: list[tuple[bytes | memoryview, ...]]) -> tuple[int, list[int], int]:
        """Append one sample's encoded arrays, each given in pieces (e.g. ``.npy`` header and data); return their
        offset in ``arrays``, their sizes and the XXH3-64 of their bytes."""
        import xxhash

        offset, sizes, h = self.nbytes, [], xxhash.xxh3_64()
        for pieces in encoded:
            sizes.append(sum(memoryview(p).nbytes for p in pieces))
            for piece in pieces:
                if self._keep:
                    self._buf += piece
                h.update(piece)
        self.nbytes += sum(sizes)
        if len(self._buf) >= WRITE_BYTES:
            self._arrays.write(self._buf)
            self._buf = bytearray()
        return offset, sizes, h.intdigest()

    def begin_input(self) -> None:
        self._input_start, self._flushed = len(self._rows), False

    def add_row(self, row: dict[str, Any]) -> None:
        self._rows.append(row)
        if len(self._rows) >= ROW_BLOCK:
            self._flush()
            self._flushed = True

    def drop_input(self, rel: str) -> None:
        """Forget the rows the current input added (its arrays stay as unreferenced bytes in ``arrays``)."""
        if self._flushed:
            self._dead.add(rel)
        del self._rows[self._input_start :]

    def end_input(self, rel: str, source_rows: list[dict[str, Any]]) -> None:
        """Record one input's ``sources`` rows (its file row first): from now on it belongs to this pack."""
        self._rels.append(rel)
        self._sources.extend(source_rows)

    @property
    def n_inputs(self) -> int:
        return len(self._rels)

    def _flush(self) -> None:
        import pyarrow.parquet as pq

        if self._spool is None:
            self._spool = pq.ParquetWriter(self._spool_path, self._schema, **PACK_PARQUET)
        self._spool.write_table(_table(self._rows, self._schema, sparse=False))
        self._rows = []
        self._input_start = 0

    def _write_rows(self) -> None:
        """The ``samples.parquet`` member: straight from memory for a small pack, else copied from the spool
        (without the rows of inputs that failed after some of their rows were spooled)."""
        import shutil

        import pyarrow.parquet as pq

        if self._spool is None:
            buf = io.BytesIO()
            pq.write_table(_table(self._rows, self._schema), buf, **PACK_PARQUET)
            self._zf.writestr(_info(ROWS_MEMBER), buf.getvalue())
            return
        if self._rows:
            self._flush()
        self._spool.close()
        self._spool = None
        if self._dead:
            import pyarrow.compute as pc

            dead, kept = pa.array(sorted(self._dead)), self._spool_path.with_name(self._spool_path.name + "2")
            with pq.ParquetWriter(kept, self._schema, **PACK_PARQUET) as writer:
                for batch in pq.ParquetFile(self._spool_path).iter_batches(ROW_BLOCK):
                    writer.write_batch(batch.filter(pc.invert(pc.is_in(batch.column("src_path"), dead))))
            os.replace(kept, self._spool_path)
        with open(self._spool_path, "rb") as src, self._zf.open(_info(ROWS_MEMBER), "w", force_zip64=True) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)

    def commit(self) -> str:
        """Write the tables, close the zip and rename it into place; return the pack id."""
        import pyarrow.parquet as pq

        self._arrays.write(self._buf)
        self._arrays.close()
        self._write_rows()
        buf = io.BytesIO()
        pq.write_table(_table(self._sources, self._sources_schema), buf, **PACK_PARQUET)
        self._zf.writestr(_info(SOURCES_MEMBER), buf.getvalue())
        self._zf.writestr(_info(PACK_MEMBER), json.dumps({"format": PACK_FORMAT, "fingerprint": self._fingerprint}))
        self._zf.close()
        pack = hashlib.sha256("\n".join([self._fingerprint, *self._rels]).encode("utf-8", "surrogateescape"))
        os.replace(self._tmp, pack_path(self.out, pack.hexdigest()[:32]))
        self._spool_path.unlink(missing_ok=True)
        return pack.hexdigest()[:32]

    def __enter__(self) -> PackWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            return
        try:  # every step runs even if one fails (a full disk), and the adapter's error is the one that propagates
            for close in (getattr(self._spool, "close", None), self._arrays.close, self._zf.close):
                if close is not None:
                    with contextlib.suppress(Exception):
                        close()
        finally:
            for path in (self._spool_path, self._spool_path.with_name(self._spool_path.name + "2"), self._tmp):
                path.unlink(missing_ok=True)


def _table(rows: list[dict[str, Any]], schema: pa.Schema, sparse: bool = True) -> pa.Table:
    """Rows as a table, built column by column (``from_pylist`` costs ≈ 15× more per row). ``sparse``: columns no
    row sets are left out (a Parquet column costs ≈ 40 µs to write even when empty; :func:`complete` adds them
    back as nulls)."""
    cols = {n: [r.get(n) for r in rows] for n in schema.names}
    kept = [f for f in schema if not sparse or any(v is not None for v in cols[f.name])] or [schema.field(0)]
    return pa.Table.from_pydict({f.name: cols[f.name] for f in kept}, schema=pa.schema(kept))


def complete(table: pa.Table, schema: pa.Schema, names: list[str] | None = None) -> pa.Table:
    """``table`` with the columns ``names`` (default: all of ``schema``) in that order, absent ones as nulls."""
    names = schema.names if names is None else names
    held = set(table.column_names)
    cols = [table.column(n) if n in held else pa.nulls(table.num_rows, schema.field(n).type) for n in names]
    out = pa.Table.from_arrays(cols, names=names)
    target = pa.schema([schema.field(n) for n in names])
    return out if out.schema.equals(target) else out.cast(target)


def _info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))  # fixed: packs are reproducible
    info.external_attr = 0o644 << 16
    return info


# ---------------------------------------------------------------------------------------------- reading packs
def read_pack_sources(out: Path, pack: str, schema: pa.Schema) -> tuple[str, pa.Table] | None:
    """A pack's fingerprint and ``sources`` rows (as ``schema``), or None when it is unreadable or damaged (then
    it is redone)."""
    import pyarrow.parquet as pq

    try:
        with zipfile.ZipFile(pack_path(out, pack)) as zf:
            meta = json.loads(zf.read(PACK_MEMBER))
            table = complete(pq.ParquetFile(pa.BufferReader(zf.read(SOURCES_MEMBER))).read(), schema)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):  # pyarrow's errors derive from these
        return None
    return (meta.get("fingerprint"), table) if meta.get("format") == PACK_FORMAT else None


def iter_pack_rows(
    out: Path, pack: str, schema: pa.Schema, columns: list[str] | None = None, whole_up_to: int = 0
) -> Iterator[pa.Table]:
    """A pack's sample rows, a Parquet row group (≤ :data:`ROW_BLOCK` rows) at a time (a pack of 10⁶ rows is never
    in memory at once): the ``columns`` of ``schema`` plus the location columns (default, or when the pack has at
    most ``whole_up_to`` rows: all). The member's CRC is checked first, as ``ZipFile.read`` would; raises
    ``ValueError``, ``zipfile.BadZipFile`` (and Parquet's own errors) when damaged. (``ParquetFile``, not
    ``read_table``, which imports ``pyarrow.dataset``: 0.2 s.)"""
    import pyarrow.parquet as pq

    full = pa.unify_schemas([schema, LOCATION])
    with zipfile.ZipFile(pack_path(out, pack)) as zf:
        with zf.open(ROWS_MEMBER) as member:
            while member.read(WRITE_BYTES):  # to the end: a wrong CRC raises here
                pass
        with zf.open(ROWS_MEMBER) as member:
            rows = pq.ParquetFile(member)
            names = full.names if columns is None or rows.metadata.num_rows <= whole_up_to else columns
            held = set(rows.schema_arrow.names)  # columns no row of the pack set are absent
            for g in range(max(1, rows.num_row_groups)):
                part = rows.read_row_group(g, [c for c in names if c in held]) if rows.num_row_groups else None
                yield complete(part if part is not None else rows.schema_arrow.empty_table(), full, names)


#: open packs of this process: (pid, root, pack) → (file descriptor, offset of the ``arrays`` data)
_OPEN: OrderedDict[tuple, tuple[int, int]] = OrderedDict()
_MAX_OPEN = 32


def _pack_fd(root: str, pack: str) -> tuple[int, int]:
    """The pack's descriptor and where its ``arrays`` data start, opened once per process (the pid is in the key:
    a forked worker never shares its parent's descriptor state). A pack is never rewritten in place under the
    same name with other content (its name hashes its inputs), and every read is checked against its XXH3."""
    key = (os.getpid(), root, pack)
    hit = _OPEN.get(key)
    if hit is not None:
        _OPEN.move_to_end(key)
        return hit
    path = pack_path(Path(root), pack)
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(ARRAYS)
    fd = os.open(path, os.O_RDONLY)
    head = os.pread(fd, 30, info.header_offset)
    if len(head) < 30 or head[:4] != b"PK\x03\x04":
        os.close(fd)
        raise zipfile.BadZipFile(f"no local header for {ARRAYS}")
    start = info.header_offset + 30 + int.from_bytes(head[26:28], "little") + int.from_bytes(head[28:30], "little")
    _OPEN[key] = (fd, start)
    while len(_OPEN) > _MAX_OPEN:
        old_key, (old_fd, _) = _OPEN.popitem(last=False)
        if old_key[0] == os.getpid():
            os.close(old_fd)
    return fd, start


def read_encoded(root: str | os.PathLike[str], pack: str, offset: int, sizes: Iterable[int], xxh3: int) -> list[bytes]:
    """One sample's encoded arrays (in field order) from its pack: a single ``pread``, checked against the
    XXH3-64 recorded when it was written."""
    import xxhash

    sizes = list(sizes)
    try:
        fd, start = _pack_fd(str(root), pack)
        data = os.pread(fd, sum(sizes), start + offset)
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        raise ShardIntegrityError(
            f"{pack_path(Path(root), pack)}: cannot read sample store ({exc}); rerun `sardata ingest`"
        ) from exc
    if xxhash.xxh3_64_intdigest(data) != xxh3:
        raise ShardIntegrityError(
            f"{pack_path(Path(root), pack)}: bytes at {offset} do not match their checksum (the sample store is damaged "
            "or truncated); rerun `sardata ingest` with --overwrite"
        )
    bounds = np.cumsum([0, *sizes]).tolist()
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


# ---------------------------------------------------------------------------------------------- the index
#: per process: (root, index mtime_ns, size) → store_path → (pack, offset, fields, sizes, xxh3)
_INDEXES: dict[tuple, dict[str, tuple[str, int, list[str], list[int], int]]] = {}


def _location(root: Path, store_path: str) -> tuple[str, int, list[str], list[int], int]:
    path = root / INDEX
    try:
        st = path.stat()
    except OSError as exc:
        raise ShardIntegrityError(
            f"{root}: no sample store index ({INDEX}); an unfinished ingest or one of an older sardata (one file per "
            "input): rerun the same `sardata ingest` command"
        ) from exc
    key = (str(root), st.st_mtime_ns, st.st_size)
    index = _INDEXES.get(key)
    if index is None:
        import pyarrow.parquet as pq

        t = pq.ParquetFile(path).read().to_pydict()
        locs = zip(t["pack"], t["offset"], t["fields"], t["sizes"], t["xxh3"], strict=True)
        index = dict(zip(t["store_path"], locs, strict=True))
        _INDEXES.clear()
        _INDEXES[key] = index
    try:
        return index[store_path]
    except KeyError:
        raise ShardIntegrityError(f"{root}: {store_path} is not in the sample store; rerun `sardata ingest`") from None


def load_arrays(root: str | os.PathLike[str], store_path: str) -> dict[str, np.ndarray]:
    """Arrays of one sample from its ``store_path`` (random access through the store index)."""
    pack, offset, fields, sizes, xxh3 = _location(Path(root), store_path)
    blobs = read_encoded(root, pack, offset, sizes, xxh3)
    return {f: np.lib.format.read_array(io.BytesIO(b), allow_pickle=False) for f, b in zip(fields, blobs, strict=True)}


__all__ = ["INDEX", "INDEX_SCHEMA", "LOCATION", "PackWriter", "complete", "iter_pack_rows", "list_packs", "load_arrays"]
__all__ += ["pack_path", "read_encoded", "read_pack_sources", "unit_file", "unit_id"]
