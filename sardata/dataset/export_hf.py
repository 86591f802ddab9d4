"""``sardata manifest export DS --format hf``: a Hugging Face dataset card (``README.md``) that makes
``datasets.load_dataset("DS")`` read the existing shards, with typed features. Written next to the dataset
(``--out DS/README.md``), it is the only file the export adds: no data is copied or converted.

How ``datasets`` reads the shards (checked on datasets 5.2): its ``webdataset`` builder groups tar members by key,
decodes ``.npy`` members with ``numpy.lib.format.read_array(allow_pickle=False)``, ``.json`` with ``json.loads`` and
``cls`` with ``int``, then encodes each example with the card's ``features``; a member without a declared feature
is dropped. So the card declares, per member field:

- ``cls``: ``ClassLabel`` with the names of the dataset's class map (``int64`` when the dataset has several class
  maps: labels are then per-source indices, named by ``label_name`` in ``samples.parquet``);
- ``meta.json``: ``Json``;
- each ``.npy`` field (``img.npy``, ``gr.npy``...): its shape and dtype as stored, read from the ``.npy`` header of
  every member (one small read per member; the index does not hold every field's shape). One shape for all
  samples gives ``Array2D``..``Array5D`` (a varying first dimension becomes ``None``, e.g. boxes ``(None, 5)``);
  a 1-D field is a ``List`` (fixed ``length`` when all agree); shapes varying beyond the first dimension (images
  built with ``size_policy=keep``) are nested ``List``s, still numpy arrays of the stored dtype under
  ``with_format("numpy", dtype=None)``. Fields ``datasets`` cannot hold are left out and named in the card: complex
  dtypes (``cplx.npy``, ``iqc.npy``: Arrow has no complex type), structured dtypes (``pdw.npy``), mixed dtypes.
- ``__key__`` (the sample key, as in ``samples.parquet``) and ``__url__`` (the shard it came from).

``configs`` maps each split to its shards (``shards/<split>-*.tar`` when that glob is exactly the split's shards,
else the list from ``shards.parquet``), so the splits are the dataset's; ``datasets`` checks each split's row count
against ``dataset_info.splits``. ``num_bytes``/``download_size``/``dataset_size`` are the shards' bytes. The index
(``samples.parquet``) is not a config: ``datasets`` picks one builder per repository, so it stays a Parquet file for
``load_dataset("parquet", data_files="DS/samples.parquet")``.

Disk cost: the card (a few KB). ``load_dataset`` itself converts the shards once into its Arrow cache
(``HF_HOME``), about the size of the decoded arrays: roughly the shards' size again.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from sardata.dataset.export_meta import SourceInfo, dataset_card, dataset_version, source_infos
from sardata.errors import ConfigError, ManifestSchemaError, ShardIntegrityError
from sardata.manifest.io import read_table
from sardata.safepath import resolve_inside
from sardata.shards.codecs import FIELDS, plain_npy_layout
from sardata.stream.locate import card_base

#: numpy dtype names that are also ``datasets`` Value dtypes
_HF_DTYPES = {"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
              "float16", "float32", "float64"}  # fmt: skip
_SPLIT_NAME = re.compile(r"^\w+(\.\w+)*$")  # what datasets accepts as a split name


@dataclass
class ArrayLayout:
    """Shapes and dtypes seen for one ``.npy`` field over all samples."""

    shapes: set[tuple[int, ...]] = field(default_factory=set)
    dtypes: set[str] = field(default_factory=set)
    structured: bool = False


def _local_shards(root: Path, card: dict[str, Any]) -> dict[str, tuple[str, str, Path]]:
    """Shard name -> (split, relative path, local file); the card must not point the shards elsewhere."""
    base = card_base(card, root) if card.get("base_url") else None
    if base is not None and os.path.realpath(base) != os.path.realpath(root):
        raise ConfigError(
            f"{root}/dataset.json: shards live at {base} (base_url), but a Hugging Face card reads shards/ next to "
            f"it; copy them there and run 'sardata manifest relocate {root} --base .'"
        )
    out = {}
    for s in read_table(root / "shards.parquet", "shards").to_pylist():
        out[s["shard"]] = (s["split"], s["path"], resolve_inside(root, s["path"], "shard path", "shards.parquet"))
    return out


def _npy_header(fh: BinaryIO, offset: int, size: int, where: str) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) of the ``.npy`` member whose data start at ``offset`` (header only is read)."""
    fh.seek(offset)
    head = fh.read(min(size, 12))
    if len(head) < 10 or head[:6] != b"\x93NUMPY" or head[6] not in (1, 2):
        raise ShardIntegrityError(f"{where}: not a .npy member (bad magic); run 'sardata manifest verify'")
    width = 2 if head[6] == 1 else 4
    end = 8 + width + int.from_bytes(head[8 : 8 + width], "little")
    if end > size:
        raise ShardIntegrityError(f"{where}: .npy header longer than the member; run 'sardata manifest verify'")
    fh.seek(offset)
    try:
        layout = plain_npy_layout(fh.read(end), size)
    except ValueError as exc:
        raise ShardIntegrityError(f"{where}: refused .npy header ({exc})") from exc
    if layout is None:
        raise ShardIntegrityError(
            f"{where}: not a plain C-order .npy member of its size; run 'sardata manifest verify'"
        )
    return layout[1], layout[2]


def _layouts(root: Path, shards: dict[str, tuple[str, str, Path]], samples: list[dict]) -> dict[str, ArrayLayout]:
    members: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
    for row in samples:
        members[row["shard"]] += [(m["offset"], m["size"], m["field"]) for m in row["members"] or []
                                  if str(m["field"]).endswith(".npy")]  # fmt: skip
    out: dict[str, ArrayLayout] = defaultdict(ArrayLayout)
    for shard, items in sorted(members.items()):
        if shard not in shards:
            raise ManifestSchemaError(f"{root}/samples.parquet: shard {shard!r} is not in shards.parquet")
        path = shards[shard][2]
        if not path.is_file():
            raise ManifestSchemaError(
                f"{path}: listed in shards.parquet but missing; restore it or rebuild the dataset"
            )
        with path.open("rb") as fh:
            for offset, size, name in sorted(items):
                shape, dtype = _npy_header(fh, offset, size, f"{path}: {name} at byte {offset}")
                layout = out[name]
                layout.shapes.add(shape)
                layout.dtypes.add(dtype.name)
                layout.structured |= dtype.names is not None
    return dict(out)


def array_layouts(root: str | os.PathLike[str]) -> dict[str, ArrayLayout]:
    """Per ``.npy`` member field (``img.npy``...): every shape and dtype stored, from the members' headers."""
    root = Path(root)
    shards = _local_shards(root, dataset_card(root))
    return _layouts(
        root, shards, read_table(root / "samples.parquet", "samples").select(["shard", "members"]).to_pylist()
    )


def array_feature(name: str, layout: ArrayLayout) -> dict[str, Any] | str:
    """The ``datasets`` YAML feature of one ``.npy`` field, or why it has none."""
    if layout.structured:
        return "structured dtype: datasets has no feature for numpy records"
    if len(layout.dtypes) != 1:
        return f"mixed dtypes {sorted(layout.dtypes)}"
    dtype = next(iter(layout.dtypes))
    if dtype not in _HF_DTYPES:
        return f"dtype {dtype}: Arrow (and so datasets) has no such type"
    ranks = {len(s) for s in layout.shapes}
    if len(ranks) != 1:
        return f"arrays of different ranks {sorted(ranks)}"
    rank = ranks.pop()
    dims = [next(iter(d)) if len(d) == 1 else None for d in (set(s[i] for s in layout.shapes) for i in range(rank))]
    if rank == 0:
        return {"name": name, "dtype": dtype}
    if rank == 1:
        return {"name": name, "list": dtype, **({"length": dims[0]} if dims[0] is not None else {})}
    if rank <= 5 and None not in dims[1:]:
        return {"name": name, "dtype": {f"array{rank}_d": {"shape": dims, "dtype": dtype}}}
    nested: Any = dtype
    for _ in range(rank):
        nested = {"list": nested}
    return {"name": name, **nested}


def _features(card: dict[str, Any], layouts: dict[str, ArrayLayout], fields: set[str]) -> tuple[list, dict]:
    """(features, {left-out field: reason}) for the members present in the shards."""
    maps = card.get("class_maps", {})
    features: list[dict[str, Any]] = [{"name": "__key__", "dtype": "string"}, {"name": "__url__", "dtype": "string"}]
    left_out: dict[str, str] = {}
    for name in sorted(fields | set(layouts)):
        if name == "cls" and len(maps) == 1:
            names = {
                str(i): n for i, n in enumerate(next(iter(maps.values())))
            }  # YAML keys are strings, as datasets writes
            features.append({"name": "cls", "dtype": {"class_label": {"names": names}}})
        elif name == "cls":
            features.append({"name": "cls", "dtype": "int64"})
        elif name.endswith(".json"):
            features.append({"name": name, "dtype": "json"})
        elif name in layouts:
            feature = array_feature(name, layouts[name])
            if isinstance(feature, str):
                left_out[name] = feature
            else:
                features.append(feature)
        else:
            left_out[name] = "no datasets decoder for this encoding"
    return features, left_out


def _data_files(root: Path, shards: dict[str, tuple[str, str, Path]], splits: list[str]) -> list[dict[str, Any]]:
    out = []
    for split in splits:
        if not _SPLIT_NAME.match(split):
            raise ConfigError(f"{root}/dataset.json: split {split!r} is not a valid Hugging Face split name")
        paths = sorted(rel for s, rel, _ in shards.values() if s == split)
        globbed = sorted(p.relative_to(root).as_posix() for p in root.glob(f"shards/{split}-*.tar"))
        out.append({"split": split, "path": f"shards/{split}-*.tar" if globbed == paths else paths})
    return out


def _describe(root: Path) -> tuple[dict[str, Any], dict[str, tuple[str, str, Path]], list, dict[str, str]]:
    """(card, shards, features, left-out fields) of a built dataset."""
    card = dataset_card(root)
    shards = _local_shards(root, card)
    samples = read_table(root / "samples.parquet", "samples").select(["shard", "members"]).to_pylist()
    fields = {str(m["field"]) for row in samples for m in row["members"] or []}
    features, left_out = _features(card, _layouts(root, shards, samples), fields)
    return card, shards, features, left_out


def _header(root: Path, card: dict[str, Any], shards: dict[str, tuple[str, str, Path]], features: list) -> dict:
    splits = card.get("splits", {})
    shard_bytes = sum(v.get("bytes", 0) for v in splits.values())
    return {
        "dataset_info": {
            "features": features,
            "splits": [
                {"name": s, "num_bytes": v.get("bytes", 0), "num_examples": v.get("samples", 0)}
                for s, v in splits.items()
            ],  # fmt: skip
            "download_size": shard_bytes,
            "dataset_size": shard_bytes,
        },
        "configs": [{"config_name": "default", "data_files": _data_files(root, shards, list(splits))}],
    }


def hf_dataset_info(root: str | os.PathLike[str]) -> dict[str, Any]:
    """The YAML header of the dataset card (as a dict): ``dataset_info`` (features, splits, sizes) and ``configs``."""
    root = Path(root)
    card, shards, features, _ = _describe(root)
    return _header(root, card, shards, features)


def _body(root: Path, card: dict[str, Any], left_out: dict[str, str], sources: list[SourceInfo]) -> str:
    """The Markdown below the YAML header: how to load, what is left out, sources with licence and citation."""
    name = root.resolve().name
    lines = [f"# {name}", "", f"sardata dataset (schema {card.get('schema_version')}, version "
             f"{dataset_version(card)}): WebDataset shards in `shards/` with a Parquet index (`samples.parquet`, "
             "`shards.parquet`, `sources.parquet`) and `dataset.json`.", "", "```python", "import datasets",
             f'ds = datasets.load_dataset("{name}")  # the folder holding this card', "```", "",
             "Arrays are `.npy` tar members decoded to their stored shape and dtype "
             '(`ds.with_format("numpy", dtype=None)` keeps the dtype). '
             "The index rows: `datasets.load_dataset(\"parquet\", data_files=\"samples.parquet\")`.", ""]  # fmt: skip
    if left_out:
        lines += ["Fields not exposed to `datasets` (read them with sardata's loaders):", ""]
        lines += [f"- `{k}`: {v}" for k, v in sorted(left_out.items())] + [""]
    meanings = {k: FIELDS[k.split(".")[0]].meaning for k in card.get("fields", {}) if k.split(".")[0] in FIELDS}
    gr = card.get("features", {}).get("gr")
    if "gr.npy" in meanings and isinstance(gr, dict):
        meanings["gr.npy"] += f"; this build: radii {gr.get('radii')}, codec {gr.get('dtype')}"
    if meanings:
        lines += ["Fields:", ""] + [f"- `{k}`: {v}" for k, v in sorted(meanings.items())] + [""]
    lines += ["## Sources", ""]
    for s in sources:
        lines += [f"- **{s.name or s.id}** (`{s.id}` v{s.version}){f', {s.homepage}' if s.homepage else ''}",
                  f"  - licence: {s.licence}", f"  - citation: {s.citation}"]  # fmt: skip
    return "\n".join(lines) + "\n"


def hf_card(root: str | os.PathLike[str], cards_dir: str | os.PathLike[str] | None = None) -> str:
    """The dataset card text: YAML header (:func:`hf_dataset_info`) and a Markdown body."""
    import yaml

    root = Path(root)
    card, shards, features, left_out = _describe(root)
    header = yaml.safe_dump(_header(root, card, shards, features), sort_keys=False, allow_unicode=True)
    sources = source_infos(card, None if cards_dir is None else Path(cards_dir))
    return f"---\n{header}---\n\n{_body(root, card, left_out, sources)}"


__all__ = ["ArrayLayout", "array_feature", "array_layouts", "hf_card", "hf_dataset_info"]
