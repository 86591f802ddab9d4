"""``sardata manifest merge A B --out C``: the union of built datasets as one new, self-contained dataset.

Conflict rules, per sample key (inputs are taken in the order given, the first one wins):

* same key, same content (``content_sha256`` and ``sample_sha256`` both equal) → one row, from the first input;
* same key, different content → :class:`ConfigError` naming the key and both inputs (with shard and hashes);
* inputs must agree on what a label means (``class_maps`` per source), on precomputed feature parameters
  (``features``, e.g. the GR codec) and may not mix radiometry/scale (same rule as ``build-shards``).

The output is a normal dataset directory (relocatable, verifiable, loadable): shards whose samples are all kept are
hard-linked (or copied) unchanged under new names ``<split>-<NNNNNN>.tar`` numbered per split in input order;
a shard that loses duplicates is rewritten with the remaining samples by the same reproducible writer. Tables are
written with the merged configuration hash, ``dataset.json`` last. The merged configuration records only the
inputs' hashes (never their paths), so merging the same datasets twice gives identical tables and shards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from sardata.atomic import TMP_PREFIX, remove_stale_temps, xxh3_file
from sardata.config import config_sha256
from sardata.errors import ConfigError
from sardata.manifest.card import card_header, per_split_class, split_summary, table_entries
from sardata.manifest.io import CARD_NAME, read_card, write_card, write_table
from sardata.manifest.schema import SHARDS, SOURCES
from sardata.safepath import resolve_inside
from sardata.shards.writer import read_member, write_shard
from sardata.stream.verify import open_verified_table, verify_shard


@dataclass
class MergeResult:
    out: Path
    samples: int
    shards: int
    duplicates: int  # rows dropped because an earlier input holds the same key with the same content
    linked: int  # shards taken over unchanged
    rewritten: int  # shards rewritten without their duplicate samples


@dataclass
class _Input:
    label: str  # as the user named it (messages only)
    root: Path  # local manifest directory
    base: str | None
    cache: Any
    card: dict[str, Any]
    samples: pd.DataFrame
    shards: list[dict[str, Any]]
    sources: pa.Table

    def shard_file(self, row: dict[str, Any]) -> Path:
        """A local file with the shard's bytes (remote shards are fetched and verified through the cache)."""
        if self.base is None:
            return resolve_inside(self.root, row["path"], "shard path", "shards.parquet")
        from sardata.location import local_file, resolve
        from sardata.stream.cache import ShardCache

        url = resolve(self.base, row["path"])
        local = local_file(url)
        if local is not None:
            return local
        self.cache = self.cache or ShardCache()
        return self.cache.local_path(url, row["sha256"], row["bytes"])


def merge(
    inputs: list[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> MergeResult:
    """Merge built datasets (local directories or URLs) into ``out``.

    Raises:
        ConfigError: fewer than two inputs, an ingest (not built) input, a key with different content in two
            inputs, disagreeing class maps / features, mixed radiometry, or ``out`` already holding a dataset.
    """
    if len(inputs) < 2:
        raise ConfigError("merge needs at least two datasets")
    out = Path(out)
    if (out / CARD_NAME).exists() and not overwrite:
        raise ConfigError(f"{out} already holds a dataset; choose a new --out or pass --overwrite")
    loaded = [_load(str(p)) for p in inputs]
    class_maps = _agree_class_maps(loaded)
    features = _agree(loaded, "features")
    keep, duplicates = _resolve_keys(loaded)
    _check_radiometry(loaded, keep)
    _verify_shards(loaded)  # every input shard's sha256, before anything is linked, copied or written

    if overwrite:
        (out / CARD_NAME).unlink(missing_ok=True)
        shutil.rmtree(out / "shards", ignore_errors=True)
    (out / "shards").mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out)

    config = {"merge": [{"config_sha256": i.card["config_sha256"], "tables": i.card.get("tables", {})} for i in loaded]}
    cfg_sha = config_sha256(config)
    frames, shard_rows, linked, rewritten = _write_shards(loaded, keep, out, progress)
    samples = pd.concat(frames, ignore_index=True).sort_values("key", kind="stable").reset_index(drop=True)
    write_table(pa.Table.from_pandas(samples, preserve_index=False), out / "samples.parquet", "samples", cfg_sha)
    write_table(pa.Table.from_pylist(shard_rows, schema=SHARDS), out / "shards.parquet", "shards", cfg_sha)
    sources = _merged_sources(loaded)
    write_table(sources, out / "sources.parquet", "sources", cfg_sha)
    card = _card(out, loaded, samples, shard_rows, sources, config, cfg_sha, class_maps, features)
    write_card(out, card)
    return MergeResult(out, len(samples), len(shard_rows), duplicates, linked, rewritten)


def _write_shards(
    loaded: list[_Input], keep: dict[str, _Input], out: Path, progress: Callable[[int, int], None] | None
) -> tuple[list[pd.DataFrame], list[dict[str, Any]], int, int]:
    """Take every input shard over in input order, numbered per split: linked when all its samples are kept,
    rewritten without the dropped ones, skipped when none is left. Returns the located sample rows, the
    ``shards`` rows and how many shards were linked and rewritten."""
    frames, shard_rows, linked, rewritten = [], [], 0, 0
    counters: dict[str, int] = {}
    todo = [(i, s) for i in loaded for s in i.shards]
    for n, (inp, shard) in enumerate(todo, 1):
        rows = inp.samples[inp.samples["shard"] == shard["shard"]].sort_values("shard_pos")
        kept = rows[rows["key"].map(lambda k, i=inp: keep[k] is i)]
        if kept.empty:
            continue
        index = counters.get(shard["split"], 0)
        counters[shard["split"]] = index + 1
        name = f"{shard['split']}-{index:06d}.tar"
        if len(kept) == len(rows):
            _link(inp.shard_file(shard), out / "shards" / name)
            nbytes, sha, located = shard["bytes"], shard["sha256"], kept.assign(shard=name)
            fast = shard.get("xxh3_128") or xxh3_file(out / "shards" / name)  # an input from schema 1.0
            linked += 1
        else:
            nbytes, sha, fast, located = _rewrite(inp.shard_file(shard), out / "shards" / name, kept)
            rewritten += 1
        frames.append(located)
        keys = located["key"].tolist()
        shard_rows.append({"shard": name, "path": f"shards/{name}", "split": shard["split"], "shard_index": index,
                           "n_samples": len(keys), "bytes": int(nbytes), "sha256": sha, "first_key": keys[0],
                           "last_key": keys[-1], "xxh3_128": fast})  # fmt: skip
        if progress:
            progress(n, len(todo))
    return frames, shard_rows, linked, rewritten


# ----------------------------------------------------------------------------------------------- inputs
def _load(location: str) -> _Input:
    from sardata.stream.locate import locate

    root, base, cache = locate(location)
    card = read_card(root)
    if card.get("kind", "dataset") != "dataset":
        raise ConfigError(
            f"{location}: a {card.get('kind')} manifest, not a built dataset; merge built datasets, or pass several "
            "ingest directories to build-shards"
        )
    samples = open_verified_table(root, "samples", card).to_pandas()  # each table checked against the card
    shards = open_verified_table(root, "shards", card).to_pylist()
    sources = open_verified_table(root, "sources", card)
    return _Input(location, root, base, cache, card, samples, shards, sources)


def _verify_shards(loaded: list[_Input]) -> None:
    """Hash every input shard against its ``shards.parquet`` row; a damaged one raises ``ShardIntegrityError``
    naming shard, sample and member, and nothing has been written yet."""
    for inp in loaded:
        for shard in inp.shards:
            rows = inp.samples[inp.samples["shard"] == shard["shard"]]
            verify_shard(inp.shard_file(shard), shard,
                         lambda r=rows: r[["key", "members", "sample_sha256", "label"]].to_dict("records"))  # fmt: skip


def _agree_class_maps(loaded: list[_Input]) -> dict[str, list[str]]:
    merged: dict[str, list[str]] = {}
    owner: dict[str, str] = {}
    for inp in loaded:
        for source, names in inp.card.get("class_maps", {}).items():
            if merged.setdefault(source, names) != names:
                raise ConfigError(
                    f"class map of source {source} differs between {owner[source]} and {inp.label}: labels would "
                    "mean different classes; rebuild one of them with the other's class selection"
                )
            owner.setdefault(source, inp.label)
    return merged


def _agree(loaded: list[_Input], field: str) -> Any:
    first = loaded[0].card.get(field, {})
    for inp in loaded[1:]:
        if inp.card.get(field, {}) != first:
            raise ConfigError(
                f"{field} differ between {loaded[0].label} and {inp.label} ({first!r} vs {inp.card.get(field)!r}); "
                "rebuild them with the same options before merging"
            )
    return first


def _resolve_keys(loaded: list[_Input]) -> tuple[dict[str, _Input], int]:
    """Owner input of every key; raise on a key whose content differs between inputs."""
    owner: dict[str, tuple[_Input, dict[str, Any]]] = {}
    duplicates = 0
    for inp in loaded:
        cols = inp.samples[["key", "content_sha256", "sample_sha256", "shard", "source"]].to_dict("records")
        for row in cols:
            first = owner.get(row["key"])
            if first is None:
                owner[row["key"]] = (inp, row)
                continue
            a = first[1]
            if (a["content_sha256"], a["sample_sha256"]) != (row["content_sha256"], row["sample_sha256"]):
                raise ConfigError(
                    f"key {row['key']!r} has different content in {first[0].label} (source {a['source']}, shard "
                    f"{a['shard']}, sample_sha256 {str(a['sample_sha256'])[:16]}…) and {inp.label} (source "
                    f"{row['source']}, shard {row['shard']}, sample_sha256 {str(row['sample_sha256'])[:16]}…); "
                    "drop it from one input (build-shards --where) before merging"
                )
            duplicates += 1
    return {k: v[0] for k, v in owner.items()}, duplicates


def _check_radiometry(loaded: list[_Input], keep: dict[str, _Input]) -> None:
    scales = set()
    for inp in loaded:
        rows = inp.samples[inp.samples["key"].map(lambda k, i=inp: keep[k] is i)]
        scales |= {f"{r}/{s}" for r, s in zip(rows["radiometry"], rows["scale"], strict=True)}
    if len(scales) > 1:
        raise ConfigError(
            f"the inputs mix radiometry/scale {sorted(scales)}; build them with --normalise unit-magnitude first"
        )


# ----------------------------------------------------------------------------------------------- shards
def _link(src: Path, dst: Path) -> None:
    """Take a shard over unchanged: a hard link where possible (same file system), else a copy; atomic."""
    tmp = dst.with_name(f"{TMP_PREFIX}{os.getpid()}-{dst.name}")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def _rewrite(src: Path, dst: Path, kept: pd.DataFrame) -> tuple[int, str, str, pd.DataFrame]:
    """Write the kept samples of ``src`` (same order, same member bytes) as a new reproducible shard."""
    payload = [(row.key, {m["field"]: read_member(src, m["offset"], m["size"]) for m in row.members})
               for row in kept.itertuples(index=False)]  # fmt: skip
    result = write_shard(dst, payload)
    kept = kept.copy()
    kept["shard"] = dst.name
    kept["shard_pos"] = range(len(kept))
    kept["sample_offset"] = [r.offset for r in result.samples]
    kept["sample_bytes"] = [r.nbytes for r in result.samples]
    kept["members"] = [r.members for r in result.samples]
    kept["sample_sha256"] = [r.sha256 for r in result.samples]
    return result.nbytes, result.sha256, result.xxh3_128, kept


# ----------------------------------------------------------------------------------------------- tables, card
def _merged_sources(loaded: list[_Input]) -> pa.Table:
    """Every input's ``sources`` rows; a file visited by several inputs (identical row) appears once."""
    seen, rows = set(), []
    for inp in loaded:
        for row in inp.sources.cast(SOURCES).to_pylist():
            ident = tuple(sorted((k, str(v)) for k, v in row.items()))
            if ident not in seen:
                seen.add(ident)
                rows.append(row)
    rows.sort(key=lambda r: (r["source"], r["src_path"], r["src_member"] or ""))
    return pa.Table.from_pylist(rows, schema=SOURCES)


def _card(out: Path, loaded: list[_Input], samples: pd.DataFrame, shard_rows: list[dict], sources: pa.Table,
          config: dict, cfg_sha: str, class_maps: dict, features: dict) -> dict[str, Any]:  # fmt: skip
    identities, fields = [], {}
    for inp in loaded:
        identities += [s for s in inp.card.get("sources", []) if s not in identities]
        fields.update(inp.card.get("fields", {}))
    return {
        **card_header("dataset", config, cfg_sha, git_sha=None),
        "sources": identities,
        "splits": split_summary(samples["split"], [r["split"] for r in shard_rows], [r["bytes"] for r in shard_rows]),
        "fields": dict(sorted(fields.items())),
        "features": features,
        "class_maps": class_maps,
        "normalisation": loaded[0].card.get("normalisation"),
        "views": sorted(c for c in samples.columns if c.startswith("split_")),
        "counts": {"per_split_class": per_split_class(samples)},
        "tables": table_entries(out, {"samples": len(samples), "shards": len(shard_rows), "sources": sources.num_rows}),
    }


__all__ = ["MergeResult", "merge"]
