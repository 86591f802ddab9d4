"""MSAR-1.0 detection slices, VOC layout ``JPEGImages/<stem>.jpg`` + ``Annotations/<stem>.xml`` (``sources.md`` §1).

Work unit = one image; it reads its XML, so ``src_path`` is the image. An XML paired with an image is a
``skipped`` row (reason ``companion``); an XML without image is ``rejected`` (``annotation_without_image``), an
image without XML too (``missing_annotation``). Pairing is by stem inside one dataset folder (the part of the
path around ``JPEGImages``/``Annotations``), with a fallback to the XML ``<filename>`` for XMLs whose stem
matches no image. Each worker lists the root once and caches the pairing, because a unit sees only its own file.

Decisions where the spec is silent:

* **Classes**: ``aircraft, oil_tank, bridge, ship, other`` (label ids in that order). Names are mapped from the
  Chinese ``<name>`` (船只, 油罐, 飞机, 桥梁; English ids accepted too). Unknown names (the stray ``W``) map to
  ``other`` and are counted in ``meta.unknown_names``; ``-o unknown=reject`` rejects such images instead
  (``unknown_class``). ``other`` is a class so that every box has a class id.
* **Image label** (``-o label=largest``, the default): the class of the largest-area box, first one on ties;
  ``None`` for background-only images. ``-o label=none`` leaves every label null (boxes only).
* **Boxes**: ``boxes`` float32 ``(N, 5)`` = class id, xmin, ymin, xmax, ymax exactly as written in the XML
  (pixels, floats kept, no 1-based shift); inverted or non-numeric boxes reject the image (``bad_annotation``);
  boxes beyond the image and a ``<size>`` that disagrees with the pixels are kept and noted in ``meta.warnings``.
* **Colour**: MSAR is "3-channel grey"; an image whose channels differ is rejected (``colour_image``) as the issue
  asks, although ``sources.md`` §0.8 converts such images to luma — ``-o colour=luma`` does that instead.
* **XML text**: decoded as UTF-8 first, then the declared encoding, then GB18030 (a superset of GBK/GB2312);
  expat itself cannot read multi-byte encodings. The codec used is ``meta.xml_encoding``.
* **Split**: ``pool``, unless ``ImageSets/Main/{train,val,test}.txt`` exist beside ``JPEGImages`` (one stem per
  line, first token); a stem listed in none of them stays ``pool``. ``-o image_sets=false`` ignores them.
* **Columns**: sensor ``unknown`` (HISEA-1 or Gaofen-3, not recorded per file), band ``C``, pol ``unknown``.
"""

from __future__ import annotations

import codecs
import os
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from sardata.discovery import walk
from sardata.errors import ConfigError, RejectFile, SkipFile
from sardata.sources._base import FileUnit, Sample, Source
from sardata.sources._image import decode_image

CLASSES = ("aircraft", "oil_tank", "bridge", "ship", "other")
NAMES = {
    "船只": "ship",
    "油罐": "oil_tank",
    "飞机": "aircraft",
    "桥梁": "bridge",
    **{c: c for c in CLASSES[:-1]},
    "oil tank": "oil_tank",
}
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff"})
DATA_FOLDERS = ("jpegimages", "annotations")
SPLIT_FILES = ("train", "val", "test")
_DECLARED = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
_GB = frozenset({"gbk", "gb2312", "gb-2312", "cp936", "gb18030", "euc-cn", "x-gbk"})


@dataclass(frozen=True)
class MSAROptions:
    #: image label rule: ``largest`` (class of the largest box) or ``none`` (boxes only)
    label: str = "largest"
    #: unknown ``<name>`` values: ``other`` (map and count) or ``reject`` (reject the image)
    unknown: str = "other"
    #: images with unequal channels: ``reject`` or ``luma`` (convert, flag ``was_colour``)
    colour: str = "reject"
    #: honour ``ImageSets/Main/{train,val,test}.txt`` when present
    image_sets: bool = True

    def __post_init__(self) -> None:
        for name, allowed in (("label", ("largest", "none")), ("unknown", ("other", "reject")),
                              ("colour", ("reject", "luma"))):  # fmt: skip
            if getattr(self, name) not in allowed:
                raise ConfigError(f"msar: option {name}={getattr(self, name)!r}; choose one of {list(allowed)}")


# ----------------------------------------------------------------------------------------------- XML
def canonical_name(name: str) -> str | None:
    """Canonical class of an XML ``<name>`` (Chinese or English, any case), or None when unknown."""
    return NAMES.get(name) or NAMES.get(name.lower())


@dataclass
class VOCAnnotation:
    """The parts of a PASCAL-VOC XML this adapter uses."""

    filename: str | None
    size: tuple[int, int] | None  # (width, height)
    objects: list[tuple[str, float, float, float, float]]  # (name, xmin, ymin, xmax, ymax)
    encoding: str
    declared: str | None = None


def decode_xml(data: bytes) -> tuple[str, str, str | None]:
    """Decode XML bytes to text; return ``(text, codec used, declared encoding)``.

    Raises:
        RejectFile: ``bad_annotation`` when no candidate codec decodes the bytes.
    """
    if data.startswith(codecs.BOM_UTF8):
        return data[3:].decode("utf-8", "strict"), "utf-8", None
    if data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        return data.decode("utf-16"), "utf-16", None
    m = _DECLARED.match(data[:200])
    declared = m.group(1).decode("ascii").lower() if m else None
    candidates = ["utf-8"]
    if declared:
        candidates.append("gb18030" if declared in _GB else declared)
    candidates.append("gb18030")
    for enc in dict.fromkeys(candidates):
        try:
            return data.decode(enc), enc, declared
        except (UnicodeDecodeError, LookupError):
            continue
    raise RejectFile("bad_annotation", f"XML is neither UTF-8, {declared or 'its declared encoding'} nor GB18030")


def parse_voc(data: bytes) -> VOCAnnotation:
    """Parse a VOC annotation (any supported encoding).

    Raises:
        RejectFile: ``bad_annotation`` for XML that does not parse, is not ``<annotation>`` or holds an object
            without four numeric, non-inverted box coordinates.
    """
    text, enc, declared = decode_xml(data)
    try:
        root = ET.fromstring(_DECLARATION.sub("", text, count=1))
    except ET.ParseError as exc:
        raise RejectFile("bad_annotation", f"XML does not parse: {exc}") from exc
    if root.tag != "annotation":
        raise RejectFile("bad_annotation", f"root element is <{root.tag}>, expected <annotation>")
    objects = []
    for i, obj in enumerate(root.iter("object")):
        name = (obj.findtext("name") or "").strip()
        box = obj.find("bndbox")
        try:
            x0, y0, x1, y1 = (float((box.findtext(k) or "").strip()) for k in ("xmin", "ymin", "xmax", "ymax"))
        except (AttributeError, ValueError):
            raise RejectFile("bad_annotation", f"object {i} ({name!r}): bndbox missing or not numeric") from None
        if not np.isfinite([x0, y0, x1, y1]).all() or x1 < x0 or y1 < y0:
            raise RejectFile("bad_annotation", f"object {i} ({name!r}): invalid box {(x0, y0, x1, y1)}")
        objects.append((name, x0, y0, x1, y1))
    size = None
    try:
        size = (int(float(root.findtext("size/width") or "")), int(float(root.findtext("size/height") or "")))
    except ValueError:
        pass
    filename = (root.findtext("filename") or "").strip() or None
    return VOCAnnotation(filename, size, objects, enc, declared)


# ----------------------------------------------------------------------------------------------- pairing
def _dataset_dir(rel: str) -> str:
    """The folder holding ``JPEGImages``/``Annotations`` (or the file's own folder in a flat layout)."""
    parts = PurePosixPath(rel).parts[:-1]
    for i, part in enumerate(parts):
        if part.lower() in DATA_FOLDERS:
            return "/".join(parts[:i])
    return "/".join(parts)


def _pair_key(rel: str) -> tuple[str, str]:
    """Folders with the data-folder component blanked (``A/JPEGImages/s/x.jpg`` ~ ``A/Annotations/s/x.xml``)."""
    parts = PurePosixPath(rel).parts
    folders = tuple("*" if p.lower() in DATA_FOLDERS else p for p in parts[:-1])
    return "/".join(folders), PurePosixPath(rel).stem.lower()


@dataclass
class Layout:
    """Image ↔ XML pairing and split lists of one root, computed from its file listing."""

    xml_of_image: dict[str, tuple[str, str]] = field(default_factory=dict)  # image → (xml, "stem"|"filename")
    image_of_xml: dict[str, str] = field(default_factory=dict)
    orphan_xml: dict[str, tuple[str, str]] = field(default_factory=dict)  # xml → (reason, detail)
    split_lists: dict[str, dict[str, str]] = field(default_factory=dict)  # dataset dir → {split: rel}


def build_layout(base: Path, rels: Iterable[str]) -> Layout:
    """Pair images and XMLs by stem, then unpaired ones by the XML ``<filename>`` (parsed only for those)."""
    images: dict[tuple[str, str], str] = {}
    xmls: dict[tuple[str, str], str] = {}
    out = Layout()
    for rel in sorted(rels):
        p = PurePosixPath(rel)
        suffix = p.suffix.lower()
        if suffix in IMAGE_SUFFIXES:
            images.setdefault(_pair_key(rel), rel)
        elif suffix == ".xml":
            xmls.setdefault(_pair_key(rel), rel)
        elif suffix == ".txt" and len(p.parts) >= 3 and [x.lower() for x in p.parts[-3:-1]] == ["imagesets", "main"]:
            if p.stem.lower() in SPLIT_FILES:
                dataset = "/".join(p.parts[:-3])
                out.split_lists.setdefault(dataset, {})[p.stem.lower()] = rel
    for key, xml in xmls.items():
        if key in images:
            out.xml_of_image[images[key]] = (xml, "stem")
            out.image_of_xml[xml] = images[key]
    unpaired = {}
    for (folders, _), img in images.items():
        if img not in out.xml_of_image:
            name = PurePosixPath(img).name.lower()
            unpaired[(folders, name)] = unpaired[(folders, PurePosixPath(name).stem)] = img
    for key, xml in xmls.items():
        if xml in out.image_of_xml:
            continue
        try:
            filename = parse_voc((base / xml).read_bytes()).filename
        except (OSError, RejectFile) as exc:
            out.orphan_xml[xml] = ("annotation_without_image", f"no image with stem {key[1]!r}; XML unreadable: {exc}")
            continue
        name = PurePosixPath((filename or "").replace("\\", "/")).name.lower()
        img = unpaired.get((key[0], name)) or unpaired.get((key[0], PurePosixPath(name).stem))
        if filename and img and img not in out.xml_of_image:
            out.xml_of_image[img] = (xml, "filename")
            out.image_of_xml[xml] = img
        elif filename and any(PurePosixPath(i).name.lower() == name for i in out.xml_of_image):
            out.orphan_xml[xml] = ("duplicate_annotation", f"<filename>{filename}</filename> already has an XML")
        else:
            out.orphan_xml[xml] = (
                "annotation_without_image",
                f"no image with stem {key[1]!r} or <filename> {filename!r} beside JPEGImages",
            )
    return out


def _walk(base: Path) -> list[str]:
    """Relative paths of every file under ``base``, by the ingest's own traversal (:func:`sardata.discovery.walk`).

    Unlistable folders are dropped here: the ingest's discovery already reports each one as a rejected row.
    """
    rels: list[str] = []
    for dirpath, _dirnames, filenames in walk(base, errors=[]):
        rels += [os.path.relpath(os.path.join(dirpath, n), base) for n in filenames]
    return rels


# ----------------------------------------------------------------------------------------------- adapter
class MSAR(Source):
    companion_files = True  # labels / metadata live in other files: resume checks the whole listing
    id = "msar"
    version = "1.0.0"
    description = "MSAR-1.0 detection slices (HISEA-1/Gaofen-3, C-band), VOC JPEGImages + Annotations, boxes kept"
    classes = CLASSES
    Options = MSAROptions

    def __init__(self, root: str | os.PathLike[str], options: Any = None) -> None:
        super().__init__(root, options)
        self._layout: Layout | None = None
        self._splits: dict[str, tuple[dict[str, str], list[str]]] = {}

    @property
    def base(self) -> Path:
        return self.root if self.root.is_dir() else self.root.parent

    def layout(self, rels: Iterable[str] | None = None) -> Layout:
        """The pairing of this root, computed once per process (from ``rels`` or by listing the root)."""
        if self._layout is None:
            self._layout = build_layout(self.base, _walk(self.base) if rels is None else rels)
        return self._layout

    def skip_reasons(self, rels: list[str]) -> dict[str, str]:
        out = super().skip_reasons(rels)
        layout = self.layout(rels)
        lists = {rel for d in layout.split_lists.values() for rel in d.values()}
        for rel in rels:
            suffix = PurePosixPath(rel).suffix.lower()
            if rel in lists and self.options.image_sets:
                out[rel] = "split_list: read as split membership of the images it names"
            elif rel in layout.image_of_xml:
                out[rel] = f"companion: annotation of {layout.image_of_xml[rel]}, read with it"
            elif rel not in out and suffix not in IMAGE_SUFFIXES and suffix != ".xml":
                out[rel] = f"not_data: {suffix or 'extension-less'} files are not MSAR images or annotations"
        return out

    def read(self, unit: FileUnit) -> list[Sample]:
        suffix = PurePosixPath(unit.rel).suffix.lower()
        layout = self.layout()
        if suffix == ".xml":
            if unit.rel in layout.image_of_xml:
                raise SkipFile("companion", f"annotation of {layout.image_of_xml[unit.rel]}, read with it")
            raise RejectFile(*layout.orphan_xml.get(unit.rel, ("annotation_without_image", "no paired image")))
        if suffix not in IMAGE_SUFFIXES:
            raise SkipFile("not_data", f"{suffix or 'extension-less'} files are not MSAR images or annotations")
        paired = layout.xml_of_image.get(unit.rel)
        if paired is None:
            raise RejectFile("missing_annotation", f"no Annotations/{Path(unit.rel).stem}.xml for this image")
        xml_rel, paired_by = paired
        try:
            ann = parse_voc((self.base / xml_rel).read_bytes())
        except OSError as exc:
            raise RejectFile("missing_annotation", f"{xml_rel}: {exc.strerror}") from exc
        except RejectFile as exc:
            raise RejectFile(exc.reason, f"{xml_rel}: {exc.detail}") from exc
        img, meta = decode_image(unit.data())
        if meta["was_colour"] and self.options.colour == "reject":
            raise RejectFile("colour_image", _colour_detail(unit.data()))
        return [self._sample(unit, img, meta, ann, xml_rel, paired_by)]

    def _sample(self, unit: FileUnit, img: np.ndarray, meta: dict, ann: VOCAnnotation, xml_rel: str,
                paired_by: str) -> Sample:  # fmt: skip
        classes = self.class_names()
        unknown = Counter(name for name, *_ in ann.objects if canonical_name(name) is None)
        if unknown and self.options.unknown == "reject":
            raise RejectFile("unknown_class", f"{xml_rel}: names {sorted(unknown)} are not MSAR classes (-o unknown)")
        labels = [canonical_name(name) or "other" for name, *_ in ann.objects]
        boxes = np.array(
            [[classes.index(c), *box] for c, (_, *box) in zip(labels, ann.objects, strict=True)], np.float32
        ).reshape(-1, 5)
        height, width = img.shape[1:]
        warnings = []
        if ann.size is not None and ann.size != (width, height):
            warnings.append(f"<size> {ann.size[0]}x{ann.size[1]} but the image is {width}x{height}")
        if len(boxes) and (boxes[:, 1:].min() < 0 or boxes[:, [1, 3]].max() > width or boxes[:, [2, 4]].max() > height):
            warnings.append("a box extends beyond the image")
        if ann.filename and PurePosixPath(ann.filename.replace("\\", "/")).stem.lower() != Path(unit.rel).stem.lower():
            warnings.append(f"<filename> {ann.filename!r} differs from the image name")
        split, split_warning = self._split(unit.rel)
        warnings += [split_warning] if split_warning else []
        label = None
        if self.options.label == "largest" and len(boxes):
            label = labels[int(np.argmax((boxes[:, 3] - boxes[:, 1]) * (boxes[:, 4] - boxes[:, 2])))]
        meta = {
            **meta,
            "annotation": xml_rel,
            "paired_by": paired_by,
            "xml_encoding": ann.encoding,
            "xml_declared_encoding": ann.declared,
            "xml_filename": ann.filename,
            "names": [name for name, *_ in ann.objects],
            "class_counts": dict(sorted(Counter(labels).items())),
            "unknown_names": dict(sorted(unknown.items())),
            "label_rule": self.options.label,
            "warnings": warnings,
        }
        return Sample(
            arrays={"img": img, "boxes": boxes},
            split=split,
            label_name=label,
            columns={"radiometry": "display8", "scale": "uint8", "sensor": "unknown", "band": "C", "pol": "unknown"},
            meta=meta,
        )

    def _split(self, rel: str) -> tuple[str, str | None]:
        """Split of an image from ``ImageSets/Main`` lists of its dataset folder, and a warning on conflicts."""
        dataset = _dataset_dir(rel)
        lists = self.layout().split_lists.get(dataset) if self.options.image_sets else None
        if not lists:
            return "pool", None
        if dataset not in self._splits:
            member: dict[str, str] = {}
            conflicts: list[str] = []
            for split in SPLIT_FILES:
                if split not in lists:
                    continue
                text = (self.base / lists[split]).read_text(encoding="utf-8", errors="replace")
                for line in text.splitlines():
                    stem = line.split()[0] if line.split() else ""
                    if stem and member.setdefault(stem, split) != split:
                        conflicts.append(stem)
            self._splits[dataset] = (member, conflicts)
        member, conflicts = self._splits[dataset]
        stem = Path(rel).stem
        warning = f"stem listed in several ImageSets files; using {member[stem]}" if stem in conflicts else None
        return member.get(stem, "pool"), warning


def _colour_detail(data: bytes) -> str:
    """Why a colour image is refused, with the largest channel difference (to tell noise from real colour)."""
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        rgb = np.asarray(im.convert("RGB")).astype(np.int16)
    diff = int(max(np.abs(rgb[..., 0] - rgb[..., 1]).max(), np.abs(rgb[..., 0] - rgb[..., 2]).max()))
    return (
        f"channels are not equal (differ by up to {diff} levels); MSAR slices are 3-channel grey. "
        "Ingest with -o colour=luma to convert to luma instead"
    )
