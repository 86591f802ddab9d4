"""COCO instance annotations as the detection adapters read them (:mod:`~sardata.sources.hrsid`, ``ssdd -o
style=coco``): the JSON files of a release joined into one index over the image files of the listing.

A COCO JSON lists ``images`` (``id``, ``file_name``, ``width``, ``height``), ``annotations`` (``image_id``,
``category_id``, ``bbox`` = x, y, w, h, ``segmentation`` = polygons or RLE, ``iscrowd``) and ``categories``
(``id``, ``name``). A release holds several, told apart by name (:func:`coco_role`): official split files
(HRSID ``train2017.json``/``test2017.json``, SSDD ``train.json``/``test.json``), a union over splits (HRSID
``train_test2017.json``) and scene subsets (HRSID ``inshore_offshore/{inshore,offshore}.json``, SSDD
``test_inshore.json``/``test_offshore.json``). An image's boxes come from the split file that lists it (the union
only for images no split file lists, split ``pool``); subsets only tag images (``meta.scene_tags``) by file
name.

An image is looked up, relative to the folder above the JSON's own folder (``<top>``), at
``<top>/{images,JPEGImages}/<json stem>/<file_name>``, ``<top>/{images,JPEGImages}/<file_name>`` and
``<top>/<file_name>``, and by stem with another image suffix in those folders (a PNG copy of a release annotated
with ``.jpg`` names; ``meta.paired_by``). Names from a JSON never become paths on their own: a ``file_name`` is
checked with :func:`sardata.safepath.check_relpath` (no ``..``, no absolute path, backslash or NUL: ``unsafe_path``)
and then only matched against the ingest's own listing, so an annotation can neither reach outside the root nor
open a file the listing does not hold. Problems of a JSON (bad or unsafe image entries, images not found, duplicate
ids, annotations of no listed image) become rejected member rows of that JSON (``images[3]``, ``annotations[7]``);
a JSON that does not parse, or is larger than the per-sample budget, is rejected whole.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from sardata.discovery import walk
from sardata.errors import ManifestSchemaError, RejectFile, SkipFile
from sardata.safepath import check_relpath
from sardata.sources._base import FileUnit, MemberStatus, check_budget
from sardata.sources._detect import Instance, detection_fields, number, polygon
from sardata.sources._image import decode_image

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff"})
IMAGE_FOLDERS = ("images", "JPEGImages")
SPLITS = ("train", "val", "test")
TAGS = ("inshore", "offshore")


def coco_role(stem: str) -> tuple[str, str]:
    """``("tag", "inshore"|"offshore")``, ``("split", "train"|"val"|"test")`` or ``("union", "")`` from a JSON
    file's stem (``train2017`` → split train, ``train_test2017`` → union, ``test_inshore`` → tag inshore)."""
    low = stem.lower()
    for tag in TAGS:
        if tag in low:
            return "tag", tag
    found = [s for s in SPLITS if s in low]
    return ("split", found[0]) if len(found) == 1 else ("union", "")


@dataclass
class CocoImage:
    """One image entry of one JSON with its annotations."""

    json_rel: str
    role: str  # "split" | "union"
    split: str  # train/val/test, "pool" for a union file
    image_id: int
    width: int | None
    height: int | None
    paired_by: str  # "file_name" | "stem"
    categories: dict[int, str]
    annotations: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class CocoIndex:
    """All COCO JSONs of a listing, by image file."""

    records: dict[str, list[CocoImage]] = field(default_factory=dict)  # image rel -> entries (JSON order)
    tags: dict[str, set[str]] = field(default_factory=dict)  # file name (lower-case) -> scene tags
    subset_only: dict[str, str] = field(default_factory=dict)  # image rel listed by subset JSONs only -> JSON
    problems: dict[str, list[MemberStatus]] = field(default_factory=dict)  # JSON rel -> rejected entries
    failed: dict[str, tuple[str, str]] = field(default_factory=dict)  # JSON rel -> (status, reason: detail)
    counts: dict[str, int] = field(default_factory=dict)  # JSON rel -> images listed

    def choose(self, rel: str) -> CocoImage:
        """The entry an image's boxes come from: its split file (two splits disagreeing: ``split_conflict``)."""
        recs = self.records[rel]
        splits = sorted({r.split for r in recs if r.role == "split"})
        if len(splits) > 1:
            files = sorted({r.json_rel for r in recs if r.role == "split"})
            raise RejectFile("split_conflict", f"listed in split files of different splits: {', '.join(files)}")
        return next((r for r in recs if r.role == "split"), recs[0])


def build_index(base: Path, rels: list[str]) -> CocoIndex:
    """Read every ``.json`` of ``rels`` into an index over the image files of ``rels``."""
    listing = _Listing(rels)
    index = CocoIndex()
    for rel in sorted(r for r in rels if r.lower().endswith(".json")):
        try:
            doc = load_json(base / rel)
        except RejectFile as exc:
            index.failed[rel] = ("rejected", f"{exc.reason}: {exc.detail}")
            continue
        if not isinstance(doc, dict) or not isinstance(doc.get("images"), list):
            index.failed[rel] = ("skipped", "not_data: JSON without an images list is not COCO annotations")
            continue
        _add_json(index, listing, rel, doc)
    for rel, recs in list(index.records.items()):
        if not recs:
            del index.records[rel]
    return index


def load_json(path: Path) -> Any:
    """Parse a JSON file after a size check against the per-sample budget (``too_large``); ``bad_annotation`` when it
    does not parse (NaN/Infinity refused)."""
    try:
        check_budget((os.path.getsize(path),), 1, f"JSON {path.name}")
        data = path.read_bytes()
    except OSError as exc:
        raise RejectFile("unreadable", f"{path.name}: {exc.strerror}") from exc
    try:
        return json.loads(data, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise RejectFile("bad_annotation", f"{path.name} does not parse as JSON: {str(exc)[:200]}") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


class _Listing:
    """The ingest's files, looked up by exact path or by folder and stem."""

    def __init__(self, rels: list[str]) -> None:
        self.files = set(rels)
        self.stems: dict[tuple[str, str], str] = {}
        for rel in sorted(rels):
            p = PurePosixPath(rel)
            if p.suffix.lower() in IMAGE_SUFFIXES:
                self.stems.setdefault((str(p.parent), p.stem.lower()), rel)

    def find(self, file_name: str, json_rel: str, subfolders: tuple[str, ...]) -> tuple[str, str] | None:
        """(image rel, ``file_name`` | ``stem``) of an annotated name, or None: searched from each folder above the
        JSON's own (nearest first) in ``{images,JPEGImages}/<subfolder>``, ``{images,JPEGImages}`` and itself."""
        own = PurePosixPath(json_rel).parent
        folders: list[str] = []
        for top in [*own.parents, own] if str(own) != "." else [own]:
            for f in IMAGE_FOLDERS:
                folders += [str(PurePosixPath(top, f, s)) for s in subfolders] + [str(PurePosixPath(top, f))]
            folders.append(str(top))
        target = PurePosixPath(file_name)
        for folder in folders:
            rel = str(PurePosixPath(folder, file_name))
            if rel in self.files:
                return rel, "file_name"
        for folder in folders:
            rel = self.stems.get((str(PurePosixPath(folder, target).parent), target.stem.lower()))
            if rel is not None:
                return rel, "stem"
        return None


def _add_json(index: CocoIndex, listing: _Listing, rel: str, doc: dict[str, Any]) -> None:
    """Add one parsed JSON's image entries and annotations to ``index``; its problems become member rows."""
    p = PurePosixPath(rel)
    role, value = coco_role(p.stem)
    subfolders = tuple(dict.fromkeys(s for s in (p.stem, value) if s))
    problems = index.problems.setdefault(rel, [])
    categories = _categories(doc.get("categories"), problems)
    by_id: dict[int, CocoImage] = {}
    rejected_ids: set[Any] = set()
    for i, entry in enumerate(doc["images"]):
        problem = _entry_problem(entry, by_id)
        found = listing.find(entry["file_name"], rel, subfolders) if problem is None else None
        if problem is None and found is None:
            problem = ("missing_image", f"{entry['file_name']!r}: no such image in {{{','.join(IMAGE_FOLDERS)}}}/ "
                                        "folders above this JSON in the input listing")  # fmt: skip
        if problem is not None:
            problems.append(MemberStatus(f"images[{i}]", "rejected", *problem))
            rejected_ids.add(_int(entry.get("id")) if isinstance(entry, dict) else None)
            continue
        image_rel, paired_by = found
        if role == "tag":
            index.tags.setdefault(PurePosixPath(image_rel).name.lower(), set()).add(value)
            index.subset_only.setdefault(image_rel, rel)
            continue
        record = CocoImage(rel, role, value or "pool", entry["id"], entry.get("width"), entry.get("height"),
                           paired_by, categories)  # fmt: skip
        by_id[entry["id"]] = record
        index.records.setdefault(image_rel, []).append(record)
    index.counts[rel] = len(doc["images"])
    annotations = doc.get("annotations", [])
    if role == "tag":
        return  # subsets only tag their images; their boxes are the split files' own
    if not isinstance(annotations, list):
        problems.append(MemberStatus("annotations", "rejected", "bad_annotation", "annotations is not a list"))
        return
    for j, ann in enumerate(annotations):
        image_id = _int(ann.get("image_id")) if isinstance(ann, dict) else None
        image = by_id.get(image_id) if image_id is not None else None
        if image is not None:
            image.annotations.append(ann)
        elif image_id is None or image_id not in rejected_ids:
            what = str(ann.get("image_id"))[:40] if isinstance(ann, dict) else type(ann).__name__
            problems.append(MemberStatus(f"annotations[{j}]", "rejected", "orphan_annotation",
                                         f"image_id {what} is not among this file's images"))  # fmt: skip


def _int(value: Any) -> int | None:
    """``value`` when it is an integer (not a bool), else None: ids from a JSON may be anything."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _entry_problem(entry: Any, by_id: dict[int, CocoImage]) -> tuple[str, str] | None:
    """(reason, detail) when an ``images`` entry cannot be used."""
    if not isinstance(entry, dict):
        return "bad_annotation", f"image entry is a {type(entry).__name__}, not an object"
    image_id, name = _int(entry.get("id")), entry.get("file_name")
    if image_id is None:
        return "bad_annotation", f"image id {str(entry.get('id'))[:40]} is not an integer"
    if image_id in by_id:
        return "duplicate_id", f"image id {image_id} is listed twice"
    if not isinstance(name, str) or not name:
        return "bad_annotation", f"file_name {str(name)[:40]!r} is not a non-empty string"
    try:
        check_relpath(name, "file_name")
    except ManifestSchemaError:
        return "unsafe_path", f"file_name {name!r} is not a relative path inside the root; never opened"
    for key in ("width", "height"):
        value = entry.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
            return "bad_annotation", f"{name!r}: {key} {str(value)[:40]} is not a positive integer"
    return None


def _categories(raw: Any, problems: list[MemberStatus]) -> dict[int, str]:
    out: dict[int, str] = {}
    for k, cat in enumerate(raw if isinstance(raw, list) else []):
        if isinstance(cat, dict) and _int(cat.get("id")) is not None and isinstance(cat.get("name"), str):
            out[cat["id"]] = cat["name"]
        else:
            problems.append(MemberStatus(f"categories[{k}]", "rejected", "bad_annotation", f"category {str(cat)[:80]}"))
    return out


def coco_instances(record: CocoImage, classes: tuple[str, ...]) -> tuple[list[Instance], int]:
    """The instances of an image entry (class ids by category *name*) and how many are ``iscrowd``.

    Raises:
        RejectFile: ``unknown_class`` (category id not declared, or a name outside ``classes``), ``bad_annotation``.
    """
    out, crowd = [], 0
    for j, ann in enumerate(record.annotations):
        ref = f"{record.json_rel} annotation {ann.get('id', f'#{j}')}"
        cat = ann.get("category_id")
        name = record.categories.get(cat) if _int(cat) is not None else None
        if name is None:
            raise RejectFile("unknown_class", f"{ref}: category_id {cat!r} is not among the file's categories")
        if name.strip().lower() not in classes:
            raise RejectFile("unknown_class", f"{ref}: category {name!r}; this source's classes are {list(classes)}")
        bbox = ann.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise RejectFile("bad_annotation", f"{ref}: bbox {bbox!r} is not [x, y, width, height]")
        x, y, w, h = (number(v, f"{ref}: bbox") for v in bbox)
        if w < 0 or h < 0:
            raise RejectFile("bad_annotation", f"{ref}: bbox {bbox} has a negative width or height")
        polygons, rle = _segmentation(ann.get("segmentation"), ref)
        out.append(Instance(classes.index(name.strip().lower()), (x, y, x + w, y + h), ref, polygons, rle))
        crowd += ann.get("iscrowd") == 1
    return out, crowd


def _segmentation(seg: Any, ref: str) -> tuple[tuple[tuple[float, ...], ...], dict[str, Any] | None]:
    if seg is None or seg == [] or seg == {}:
        return (), None
    if isinstance(seg, list):
        return tuple(polygon(p, f"{ref}: segmentation") for p in seg), None
    if isinstance(seg, dict):
        return (), seg
    raise RejectFile("bad_annotation", f"{ref}: segmentation is a {type(seg).__name__}, not polygons or RLE")


# ----------------------------------------------------------------------------------------------- reading units
def list_files(base: Path) -> list[str]:
    """Relative paths of every file under ``base`` by the ingest's own traversal (a worker lists the root once;
    folders it cannot list are already rejected rows of the ingest's discovery)."""
    rels: list[str] = []
    for dirpath, _dirnames, filenames in walk(base, errors=[]):
        rels += [os.path.relpath(os.path.join(dirpath, n), base).replace(os.sep, "/") for n in filenames]
    return rels


def json_unit(index: CocoIndex, rel: str) -> list[MemberStatus]:
    """A JSON file as a unit: its rejected entries (member rows); ``SkipFile`` (``companion``) when it has none."""
    if rel in index.failed:
        status, why = index.failed[rel]
        reason, _, detail = why.partition(": ")
        raise (RejectFile if status == "rejected" else SkipFile)(reason, detail)
    if rel not in index.counts:
        raise SkipFile("not_data", "JSON outside the annotation tree this style reads")
    if index.problems.get(rel):
        return list(index.problems[rel])
    role, value = coco_role(PurePosixPath(rel).stem)
    what = {"tag": f"scene subset {value}", "split": f"split {value}", "union": "all splits"}[role]
    raise SkipFile("companion", f"COCO annotations ({what}) of {index.counts[rel]} images, read with them")


def coco_image(index: CocoIndex, unit: FileUnit, classes: tuple[str, ...], clip: bool, masks: bool
               ) -> tuple[dict[str, np.ndarray], dict[str, Any], CocoImage]:  # fmt: skip
    """Decode an image and its annotations: arrays (``img``, ``boxes``, ``inst``), meta and the entry used.

    Raises:
        SkipFile: ``subset_copy`` for an image only a scene-subset JSON lists (the split files' copy is read).
        RejectFile: ``missing_annotation``, ``split_conflict``, ``size_mismatch`` and the annotation reasons.
    """
    if unit.rel not in index.records:
        if unit.rel in index.subset_only:
            raise SkipFile("subset_copy", f"listed only by the scene subset {index.subset_only[unit.rel]}; the copy "
                                          "the split files list is ingested")  # fmt: skip
        raise RejectFile("missing_annotation", "no COCO JSON of the input lists this image")
    record = index.choose(unit.rel)
    img, meta = decode_image(unit.data())
    height, width = img.shape[1:]
    declared = (record.width or width, record.height or height)
    if declared != (width, height):
        raise RejectFile("size_mismatch", f"{record.json_rel} declares {declared[0]}x{declared[1]}, the image is "
                                          f"{width}x{height}")  # fmt: skip
    instances, crowd = coco_instances(record, classes)
    arrays, counts = detection_fields(instances, height, width, clip=clip, masks=masks)
    others = [r for r in index.records[unit.rel] if r is not record and len(r.annotations) != len(record.annotations)]
    warnings = [f"{r.json_rel} lists {len(r.annotations)} annotations, {record.json_rel} {len(record.annotations)}; "
                f"boxes from {record.json_rel}" for r in others]  # fmt: skip
    meta = {**meta, **counts, "annotation": record.json_rel, "coco_image_id": record.image_id,
            "paired_by": record.paired_by, "n_crowd": crowd, "warnings": warnings,
            "scene_tags": sorted(index.tags.get(PurePosixPath(unit.rel).name.lower(), ()))}  # fmt: skip
    return {"img": img, **arrays}, meta, record


__all__ = ["CocoImage", "CocoIndex", "build_index", "coco_image", "coco_instances", "coco_role", "json_unit",
           "list_files", "load_json"]  # fmt: skip
