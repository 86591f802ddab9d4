"""Rows in key order with bounded memory: the merge's sort of ``samples`` (an external merge sort).

Why not sort in memory: a 10⁶-frame RadChar file or a 10⁶-chip image set has 10⁶ rows of ≈ 0.7 KB each (``meta``
JSON, two sha256 strings, paths), and holding them all — let alone as Python dicts — made the merge's peak
memory grow by ≈ 3 KB per sample. Here rows travel as Arrow tables of a few thousand rows: when the caller knows
they already arrive in key order (the usual case for a container file, whose rows follow its frame index) they
are only re-cut into the output's row groups; otherwise runs of :data:`RUN_ROWS` rows are sorted in memory,
spilled to uncompressed Arrow IPC temp files and merged back, holding one block per run at a time. Keys must be
unique (the merge resolves collisions first), so the order is total and the result never depends on how rows
arrived.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from sardata.atomic import TMP_PREFIX

RUN_ROWS = 1 << 16  # rows sorted in memory per run
BLOCK_ROWS = 1 << 13  # rows per block read back from a run while merging


def rechunk(tables: Iterator[pa.Table], rows: int) -> Iterator[pa.Table]:
    """The same rows as tables of exactly ``rows`` rows (the last one shorter), each column one chunk."""
    buf: list[pa.Table] = []
    n = 0
    for t in tables:
        if t.num_rows == 0:
            continue
        buf.append(t)
        n += t.num_rows
        while n >= rows:
            whole = pa.concat_tables(buf)
            yield whole.slice(0, rows).combine_chunks()
            rest = whole.slice(rows)
            buf, n = ([rest] if rest.num_rows else []), rest.num_rows
    if n:
        yield pa.concat_tables(buf).combine_chunks()


def sorted_by_key(tables: Iterator[pa.Table], presorted: bool, tmp_dir: Path, rows: int) -> Iterator[pa.Table]:
    """All rows of ``tables`` ordered by their unique ``key`` column, as tables of ``rows`` rows (the last one
    shorter). ``presorted``: the caller has checked that the rows already arrive in key order."""
    if presorted:
        yield from rechunk(tables, rows)
        return
    runs: list[Path] = []
    try:
        for run in rechunk(tables, RUN_ROWS):
            run = _sort(run)
            if not runs and run.num_rows < RUN_ROWS:  # everything fitted in one run: no temp file
                yield from rechunk(iter([run]), rows)
                return
            runs.append(tmp_dir / f"{TMP_PREFIX}{os.getpid()}-run-{len(runs)}.arrow")
            with pa.OSFile(str(runs[-1]), "wb") as sink, pa.ipc.new_stream(sink, run.schema) as writer:
                writer.write_table(run, max_chunksize=BLOCK_ROWS)
        yield from rechunk(_merge(runs), rows)
    finally:
        for path in runs:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def _sort(table: pa.Table) -> pa.Table:
    return table.take(pc.sort_indices(table, [("key", "ascending")]))


def _blocks(path: Path) -> Iterator[pa.Table]:
    with pa.OSFile(str(path), "rb") as src:  # read into memory block by block, not mapped
        reader = pa.ipc.open_stream(src)
        for batch in reader:
            yield pa.Table.from_batches([batch])


def _merge(runs: list[Path]) -> Iterator[pa.Table]:
    """k-way merge of sorted runs, a vector at a time: every row up to the smallest last key among the runs'
    current blocks can be emitted (no run holds a smaller key beyond its block), sorted together."""
    streams = [_blocks(p) for p in runs]
    heads: list[tuple[pa.Table, Iterator[pa.Table]]] = []
    for s in streams:
        first = next(s, None)
        if first is not None:
            heads.append((first, s))
    while heads:
        bound = min(h.column("key")[-1].as_py() for h, _ in heads)
        parts, kept = [], []
        for head, stream in heads:
            n = pc.sum(pc.less_equal(head.column("key"), bound)).as_py() or 0
            if n:
                parts.append(head.slice(0, n))
            rest = head.slice(n) if n < head.num_rows else next(stream, None)
            if rest is not None:
                kept.append((rest, stream))
        heads = kept
        yield _sort(pa.concat_tables(parts))


__all__ = ["BLOCK_ROWS", "RUN_ROWS", "rechunk", "sorted_by_key"]
