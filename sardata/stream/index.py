"""The rows of one view of a built dataset and the open shard files they are read from.

Why apart from the datasets: :class:`ShardIndex` is what both the iterable and the map-style dataset (and
``order_lines``) stand on — selection (split, view, ``--where``, fields), manifest order, shard locations and the
read path with its integrity checks (:mod:`sardata.stream.verify`) — while ordering and batching live elsewhere.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from sardata.errors import ConfigError, ShardIntegrityError
from sardata.location import local_file, resolve
from sardata.manifest.io import read_card
from sardata.safepath import resolve_inside
from sardata.shards.reader import decode_field
from sardata.stream.cache import ShardCache
from sardata.stream.keys import GEO_COLUMNS, check_keys, geo_entry, member_names
from sardata.stream.verify import await_verified, check_mode, check_sample, open_verified_table, verify_ahead

SAMPLE_COLUMNS = ["key", "shard", "shard_pos", "members", "label", "split", "sample_sha256"]


@dataclass
class Row:
    key: str
    shard: str
    members: list[dict]
    label: int | None
    sha256: str | None = None  # sample_sha256: over *all* members, also those ``fields`` skips
    all_members: list[dict] | None = None
    geo: dict[str, Any] | None = None  # crs / bounds of a georeferenced sample (``keys="torchgeo"`` only)


def _select_samples(root: Path, card: dict[str, Any], split: str | None, view: str | None, where: str | None,
                    geo: bool = False) -> pd.DataFrame:  # fmt: skip
    """The samples table (card-verified) cut to ``split``, ``view`` and ``where``, with the columns rows need
    (and the geo columns the table has, with ``geo``)."""
    table = open_verified_table(root, "samples", card)
    cols = SAMPLE_COLUMNS + ([view] if view else []) + [c for c in GEO_COLUMNS if geo and c in table.column_names]
    if view is not None and view not in table.column_names:
        views = sorted(c for c in table.column_names if c.startswith("split_"))
        raise ConfigError(f"{root}: no view {view!r}; this build has {views or 'no views'} "
                          "(add it with build-shards --shots/--seeds/--long-tail)")  # fmt: skip
    samples = table.to_pandas() if where else table.select(cols).to_pandas()
    if where:  # a pandas query over manifest columns, e.g. "mode == 'VS'" (a cross-mode transfer's side)
        try:
            from sardata.manifest.where import filter_frame

            samples = filter_frame(samples, where)[cols]  # sardata.manifest.where: runs no code
        except Exception as exc:  # pandas raises many types for a bad expression
            raise ConfigError(f"{root}: bad --where {where!r} ({exc})") from exc
    if split is not None:  # one split value, or a comma list ("train,pool,unlabelled": everything but test)
        samples = samples[samples["split"].isin(split.split(","))]
    if view is not None:
        samples = samples[samples[view] == "train"]
    return samples


def _make_rows(samples: pd.DataFrame, keep: set[str] | None) -> list[Row]:
    """One :class:`Row` per sample; ``members`` keeps only the fields in ``keep`` (all with None); ``geo`` from
    the ``crs`` / ``bbox`` columns when they were selected."""
    geo = [None] * len(samples)
    if "crs" in samples and "bbox" in samples:
        geo = [geo_entry(c, b) for c, b in zip(samples["crs"], samples["bbox"], strict=True)]
    return [
        Row(
            k,
            s,
            [x for x in m if keep is None or x["field"] in keep],
            None if pd.isna(label) else int(label),
            sha,
            list(m),
            g,
        )  # fmt: skip
        for k, s, m, label, sha, g in zip(
            samples["key"],
            samples["shard"],
            samples["members"],
            samples["label"],
            samples["sample_sha256"],
            geo,
            strict=True,
        )
    ]


def _manifest_hash(card: dict[str, Any]) -> str:
    """The samples and shards tables' sha256 from the card: what a saved loader state must match."""
    tables = card.get("tables", {})
    return f"{tables.get('samples', {}).get('sha256', '')}:{tables.get('shards', {}).get('sha256', '')}"


class ShardIndex:
    """The rows of one view of a dataset, in manifest order (shards as in ``shards.parquet``, samples by
    ``shard_pos``), plus where the shard bytes live (local directory, or a URL through a cache)."""

    def __init__(self, root: str | os.PathLike[str], split: str | None = "train", view: str | None = None,
                 base_url: str | None = None, cache: Any = None, where: str | None = None,
                 fields: Collection[str] | None = None, verify: str = "shard", keys: str = "fields") -> None:  # fmt: skip
        """``fields``: the members to read (e.g. ``{"img.npy", "cls"}`` or ``{"image", "label"}`` for online GR);
        None reads all. Skipping a member skips its bytes, which is most of the I/O when it is the GR maps.
        ``verify``: ``"shard"`` (default), ``"sample"`` or ``"off"`` — how shard bytes are checked against the index
        (:mod:`sardata.stream.verify`); tables are always checked against the card. ``keys="torchgeo"`` adds
        ``crs`` / ``bounds`` to georeferenced samples (:mod:`sardata.stream.keys`); members keep their stored
        names here, the datasets rename what they deliver."""
        from sardata.stream.locate import locate

        self.root, base_url, cache = locate(root, base_url, cache)  # URL roots, the card's base_url
        card = read_card(self.root)
        self.card, self.verify, self.keys = card, check_mode(verify), check_keys(keys)
        shards = open_verified_table(self.root, "shards", card).to_pylist()
        samples = _select_samples(self.root, card, split, view, where, geo=keys == "torchgeo")
        order = {s["shard"]: i for i, s in enumerate(shards)}
        samples = samples.assign(_o=samples["shard"].map(order)).sort_values(["_o", "shard_pos"])
        keep = member_names(fields)
        self.rows = _make_rows(samples, keep)
        if keep is not None and self.rows:
            present = {x["field"] for m in samples["members"] for x in m}
            if not keep & present:
                raise ConfigError(
                    f"{self.root}: none of fields {sorted(keep)} is in this dataset; it has {sorted(present)}"
                )
        counts = samples.groupby("shard", sort=False).size()
        self.shard_names = [s["shard"] for s in shards if s["shard"] in counts.index]
        self.shard_sizes = [int(counts[s]) for s in self.shard_names]
        self.shard_info = {s["shard"]: s for s in shards}
        self.base_url, self.cache = base_url, cache
        self.manifest_hash = _manifest_hash(card)
        self.selection = {"split": split, "view": view} | ({"where": where} if where else {})
        self._handles: dict[str, Any] = {}
        self._pending: dict[str, Any] = {}  # shard -> Future of its background verification (verify_ahead)
        self._pid = os.getpid()  # handles and pending checks belong to the process that made them

    def __len__(self) -> int:
        return len(self.rows)

    def shard_path(self, shard: str) -> Path:
        """A local file with ``shard``'s bytes: inside the dataset root, in place under a relocated local base, or a
        verified cached copy of a remote one (a default :class:`ShardCache` is made on first need)."""
        info = self.shard_info[shard]
        if self.base_url is None and self.cache is None:
            return resolve_inside(self.root, info["path"], "shard path", "shards.parquet")  # never outside the root
        url = resolve(self.base_url or str(self.root), info["path"])
        if self.cache is None:
            local = local_file(url)
            if local is not None:
                return local  # a relocated local dataset is read in place
            self.cache = ShardCache()
        return self.cache.local_path(url, info["sha256"], info["bytes"])

    def _own(self) -> None:
        """Drop what a parent process left (open files, pending checks) once this copy runs in another one."""
        if self._pid != os.getpid():  # a forked DataLoader worker: never share the parent's files or futures
            self._handles, self._pending, self._pid = {}, {}, os.getpid()

    def _rows_of(self, shard: str) -> Callable[[], list[dict[str, Any]]]:
        """The rows of ``shard`` for a damage report, computed lazily: only a mismatch needs them."""
        return lambda: [self._row_dict(r) for r in self.rows if r.shard == shard]  # on a mismatch only

    def prefetch(self, shard: str) -> None:
        """Start hashing ``shard`` in the background (``verify="shard"``, local shards), so that its check overlaps
        the delivery of the shards before it. Nothing is read from it until :meth:`shard_file` has the result."""
        self._own()
        if self.verify != "shard" or self.base_url is not None or self.cache is not None:
            return  # remote shards: the cache fetches (and hashes) them when first opened, as before
        if shard in self._pending or shard in self._handles:
            return
        path = self.shard_path(shard)
        self._pending[shard] = verify_ahead(path, self.shard_info[shard], self._rows_of(shard))

    def shard_file(self, shard: str) -> Any:
        """The open handle of ``shard`` (at most 8 kept, oldest closed first: reads are shard-local), verified
        before its first byte is used; public because batched reads (:mod:`sardata.stream.batch`) seek in it too."""
        self._own()
        fh = self._handles.get(shard)
        if fh is None:
            for old in list(self._handles)[: max(0, len(self._handles) - 7)]:
                self._handles.pop(old).close()
            path = self.shard_path(shard)
            pending = self._pending.pop(shard, None)
            if self.verify == "shard":  # before the first byte of this shard is used (once per file identity)
                await_verified(pending, path, self.shard_info[shard], self._rows_of(shard))
            fh = self._handles[shard] = open(path, "rb")  # noqa: SIM115
        return fh

    @staticmethod
    def _row_dict(row: Row) -> dict[str, Any]:
        return {"key": row.key, "members": row.all_members, "sample_sha256": row.sha256, "label": row.label}

    def read(self, i: int, skip: frozenset[str] = frozenset()) -> dict[str, Any]:
        """Decode sample ``i`` (all fields but ``skip``) with one seek per field in its shard."""
        row = self.rows[i]
        fh = self.shard_file(row.shard)
        sample: dict[str, Any] = {"__key__": row.key, "__shard__": row.shard}
        checked = check_sample(fh, row.shard, self._row_dict(row)) if self.verify == "sample" else None
        for m in row.members:
            if m["field"] in skip:
                continue
            if checked is not None:  # the bytes just hashed, decoded from a writable copy
                where = f"{row.shard}:{row.key}"
                sample[m["field"]] = decode_field(m["field"], bytearray(checked[m["field"]]), where)
                continue
            fh.seek(m["offset"])
            buf = bytearray(m["size"])  # readinto + a zero-copy, writable view: one copy from the page cache
            if fh.readinto(buf) != m["size"]:
                raise ShardIntegrityError(f"{row.shard}:{row.key}: {m['field']} is truncated; re-fetch or rebuild")
            sample[m["field"]] = decode_field(m["field"], buf, f"{row.shard}:{row.key}")
        if row.geo is not None:  # keys="torchgeo": where the sample lies (a fresh bounds array per read)
            sample.update(crs=row.geo["crs"], bounds=row.geo["bounds"].copy())
        return sample

    def close(self) -> None:
        """Close the shard files kept open for sequential reads; drop background checks not yet waited on (a
        running one finishes and only leaves its marker; its result, or error, is never used)."""
        if getattr(self, "_pid", None) == os.getpid():  # also after a failed __init__ (called from __del__)
            while self._pending:
                self._pending.popitem()[1].cancel()
        while getattr(self, "_handles", None):
            self._handles.popitem()[1].close()

    def __del__(self) -> None:
        try:
            self.close()
        except (AttributeError, TypeError):  # at interpreter exit, ``os`` may already be torn down: nothing to do
            pass

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_handles": {}, "_pending": {}}  # handles and futures stay in their process


__all__ = ["Row", "SAMPLE_COLUMNS", "ShardIndex"]
