"""SSDD, the SAR Ship Detection Dataset: VOC XML, or its COCO copy with ``-o style=coco`` (``sources.md`` is silent
on it; this module models the public releases: Li et al. 2017 and the official release, Zhang et al. 2021,
github.com/TianwenZhang0825/Official-SSDD).

Layout of the official release, per variant (``BBox_SSDD``, ``RBox_SSDD``, ``PSeg_SSDD``, ``BBox_RBox_PSeg_SSDD``;
the same 1,160 images, different labels)::

    voc_style/JPEGImages/000001.jpg … 001160.jpg       (some copies: JPEGImages_train/, JPEGImages_test/, …)
    voc_style/Annotations/000001.xml                   (+ Annotations_train/, _test/, _test_inshore/, _test_offshore/)
    voc_style/ImageSets/Main/{train,test,test_inshore,test_offshore}.txt
    coco_style/annotations/{train,test,test_inshore,test_offshore}.json + coco_style/images/{train,test,…}/

The 2017 release is the plain ``JPEGImages`` + ``Annotations`` tree. A VOC ``<object>`` has ``<name>ship</name>``,
``<bndbox>`` (xmin, ymin, xmax, ymax) and, in the PSeg variants, ``<segm><point>x,y</point>…</segm>``.

Work unit = one image; it reads its XML (VOC) or the JSONs (COCO, :mod:`sardata.sources._coco`); boxes and masks
follow :mod:`sardata.sources._detect`. Decisions where the spec is silent:

* **One copy per image**: images are grouped by folder above ``JPEGImages*`` and stem; the copy in ``JPEGImages/`` is
  read (else ``JPEGImages_train/``, ``_test/``, then the others), the rest are ``skipped`` rows
  (``duplicate_copy``). Annotations likewise (``Annotations/`` first): the one read is a ``companion`` row, the
  copies ``duplicate_copy``. ``-o style=voc`` (default) skips the COCO tree and ``-o style=coco`` the VOC tree
  (``not_data``, naming the option), so pointing at a whole variant ingests each image once.
* **Split**: the official rule (Zhang et al. 2021, §4.1): images whose number ends in 1 or 9 are ``test`` (232),
  the rest ``train`` (928); a stem without a number goes to ``pool``. ``-o split=pool`` puts everything in ``pool``.
  ``ImageSets`` lists and the split folders are not needed for it (lists are ``skipped``, reason ``split_list``);
  a COCO split file that disagrees with the rule is noted in ``meta.warnings``.
* **Scene tags**: ``meta.scene_tags`` = ``["inshore"]`` / ``["offshore"]`` where a copy of the image or its XML sits
  in a ``*_inshore`` / ``*_offshore`` folder (VOC) or a subset JSON lists it (COCO).
* **Classes**: ``ship`` only (VOC ``<name>``, COCO category name, any case); anything else is ``unknown_class``.
* **Fields**: ``img`` uint8 ``(1, H, W)`` (3-channel grey collapsed); ``boxes`` float32 ``(N, 5)`` = 0, xmin, ymin,
  xmax, ymax as written (VOC pixel values kept, no 1-based shift, as in ``msar``); an object without ``<bndbox>``
  takes its polygon's extent; ``inst`` from the polygons where the variant has them (BBox-only images have none);
  rotated boxes are not read. ``n_boxes`` column; label ``ship`` when there is a box, else null. Boxes reaching
  beyond the image are clipped and counted (``-o clip_boxes=false`` rejects). A VOC ``<size>`` that disagrees with
  the pixels is noted in ``meta.warnings`` (pixel coordinates are the image's own either way).
* **Columns**: radiometry ``display8``, scale ``uint8``; sensor, band, polarisation ``unknown`` (RadarSat-2,
  TerraSAR-X and Sentinel-1 images, C and X band, HH/HV/VV/VH, not recorded per image).
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from sardata.errors import ConfigError, RejectFile, SkipFile
from sardata.sources._base import FileUnit, MemberStatus, Sample, Source, check_budget, parse_float
from sardata.sources._coco import IMAGE_SUFFIXES, TAGS, CocoIndex, build_index, coco_image, json_unit, list_files
from sardata.sources._detect import Instance, detection_fields, polygon
from sardata.sources._image import decode_image
from sardata.sources.msar import decode_xml

CLASSES = ("ship",)
_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
_NUMBER = re.compile(r"(\d+)$")
#: preference among copies: JPEGImages/ (Annotations/) first, then the train and test folders, then the subsets
_RANK = {"": 0, "_train": 1, "_test": 2}


@dataclass(frozen=True)
class SSDDOptions:
    #: ``voc`` (JPEGImages + Annotations XML) or ``coco`` (coco_style JSONs + images)
    style: str = "voc"
    #: ``official`` (numbers ending in 1 or 9 are test) or ``pool``
    split: str = "official"
    #: clip boxes reaching beyond the image (true) or reject the image (false)
    clip_boxes: bool = True
    #: rasterise instance masks (polygons) into ``inst.npy`` (false: boxes only)
    masks: bool = True

    def __post_init__(self) -> None:
        for name, allowed in (("style", ("voc", "coco")), ("split", ("official", "pool"))):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"ssdd: option {name}={getattr(self, name)!r}; choose one of {list(allowed)}")


def official_split(stem: str) -> str:
    """``test`` for image numbers ending in 1 or 9, ``train`` for the others, ``pool`` without a number."""
    m = _NUMBER.search(stem)
    return "pool" if m is None else "test" if m[1][-1] in "19" else "train"


# ----------------------------------------------------------------------------------------------- VOC
def parse_ssdd_xml(data: bytes, ref: str) -> tuple[list[tuple[str, list[float], tuple[float, ...]]], tuple | None]:
    """``([(name, [x0, y0, x1, y1], polygon)], (width, height) | None)`` of an SSDD VOC XML.

    Raises:
        RejectFile: ``bad_annotation`` for XML that does not parse, is not ``<annotation>``, or holds an object
            without a numeric box or polygon.
    """
    text, _, _ = decode_xml(data)
    try:
        root = ET.fromstring(_DECLARATION.sub("", text, count=1))
    except ET.ParseError as exc:
        raise RejectFile("bad_annotation", f"{ref}: XML does not parse: {exc}") from exc
    if root.tag != "annotation":
        raise RejectFile("bad_annotation", f"{ref}: root element is <{root.tag}>, expected <annotation>")
    objects = []
    for i, obj in enumerate(root.iter("object")):
        what = f"{ref} object {i}"
        points = [(p.text or "").split(",") for p in obj.findall("segm/point")]
        try:
            flat = [float(v) for p in points for v in (p if len(p) == 2 else ["?"])]
        except ValueError:
            raise RejectFile("bad_annotation", f"{what}: a <segm><point> is not 'x,y'") from None
        poly = polygon(flat, f"{what}: segm") if points else ()
        box = obj.find("bndbox")
        if box is not None:
            coords = [parse_float(box.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")]
            if None in coords:
                raise RejectFile("bad_annotation", f"{what}: bndbox has a missing or non-numeric coordinate")
        elif poly:
            coords = [min(poly[0::2]), min(poly[1::2]), max(poly[0::2]), max(poly[1::2])]
        else:
            raise RejectFile("bad_annotation", f"{what}: neither <bndbox> nor <segm> points")
        objects.append(((obj.findtext("name") or "").strip(), coords, poly))
    size = (parse_float(root.findtext("size/width")), parse_float(root.findtext("size/height")))
    return objects, size if None not in size else None


@dataclass
class VOCLayout:
    """The VOC tree of a listing: one image and one XML per (dataset folder, stem), the rest as skip reasons."""

    image: dict[tuple[str, str], str] = field(default_factory=dict)
    xml: dict[tuple[str, str], str] = field(default_factory=dict)
    tags: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    skip: dict[str, str] = field(default_factory=dict)  # rel -> "reason: detail"


def _slot(rel: str) -> tuple[tuple[str, str], str, str] | None:
    """((dataset folder, stem), "img" | "xml", folder suffix) for a file directly in JPEGImages* / Annotations*."""
    p = PurePosixPath(rel)
    folder = p.parts[-2].lower() if len(p.parts) > 1 else ""
    if folder.startswith("jpegimages") and p.suffix.lower() in IMAGE_SUFFIXES:
        return (str(p.parent.parent), p.stem.lower()), "img", folder[len("jpegimages") :]
    if folder.startswith("annotations") and p.suffix.lower() == ".xml":
        return (str(p.parent.parent), p.stem.lower()), "xml", folder[len("annotations") :]
    return None


def build_voc_layout(rels: Iterable[str]) -> VOCLayout:
    out = VOCLayout()
    copies: dict[tuple[tuple[str, str], str], list[tuple[int, str, str]]] = {}
    for rel in sorted(rels):
        slot = _slot(rel)
        if slot is None:
            continue
        key, kind, suffix = slot
        copies.setdefault((key, kind), []).append((_RANK.get(suffix, 3), suffix, rel))
        out.tags.setdefault(key, set()).update(t for t in TAGS if t in suffix)
    for (key, kind), found in sorted(copies.items()):
        found.sort()
        (out.image if kind == "img" else out.xml)[key] = found[0][2]
        for _, _, rel in found[1:]:
            out.skip[rel] = f"duplicate_copy: another copy of {found[0][2]}, which is read"
    for key, xml in out.xml.items():
        if key in out.image:
            out.skip[xml] = f"companion: annotation of {out.image[key]}, read with it"
    return out


# ----------------------------------------------------------------------------------------------- adapter
class SSDD(Source):
    companion_files = True  # boxes live in XML / JSON files: resume checks the whole listing
    id = "ssdd"
    version = "1.0.0"
    description = "SSDD ship detection (RadarSat-2, TerraSAR-X, Sentinel-1): VOC XML or COCO, boxes and polygon masks"
    classes = CLASSES
    Options = SSDDOptions

    def __init__(self, root: str | os.PathLike[str], options: Any = None) -> None:
        super().__init__(root, options)
        self._voc: VOCLayout | None = None
        self._coco: CocoIndex | None = None

    @property
    def base(self) -> Path:
        return self.root if self.root.is_dir() else self.root.parent

    def voc(self, rels: list[str] | None = None) -> VOCLayout:
        if self._voc is None:
            self._voc = build_voc_layout(list_files(self.base) if rels is None else rels)
        return self._voc

    def coco(self) -> CocoIndex:
        if self._coco is None:
            self._coco = build_index(self.base, list_files(self.base))
        return self._coco

    def skip_reasons(self, rels: list[str]) -> dict[str, str]:
        out = super().skip_reasons(rels)
        other = "coco" if self.options.style == "voc" else "voc"
        layout = self.voc(rels) if self.options.style == "voc" else None
        for rel in rels:
            p = PurePosixPath(rel)
            suffix, folders = p.suffix.lower(), [x.lower() for x in p.parts[:-1]]
            if suffix == ".txt" and folders[-2:] == ["imagesets", "main"]:
                out[rel] = "split_list: the official rule (numbers ending in 1 or 9 are test) decides the split"
            elif layout is not None and rel in layout.skip:
                out[rel] = layout.skip[rel]
            elif self._foreign(rel):
                out[rel] = f"not_data: part of the {other.upper()} copy (read it with -o style={other})"
            elif rel not in out and suffix not in IMAGE_SUFFIXES | {".xml", ".json"}:
                out[rel] = f"not_data: {suffix or 'extension-less'} files are not SSDD images or annotations"
        return out

    def _foreign(self, rel: str) -> bool:
        """Whether ``rel`` belongs to the style not being read."""
        p = PurePosixPath(rel)
        if self.options.style == "voc":
            return p.suffix.lower() == ".json" or (p.suffix.lower() in IMAGE_SUFFIXES and _slot(rel) is None)
        return p.suffix.lower() == ".xml" or _slot(rel) is not None

    def read(self, unit: FileUnit) -> Iterable[Sample | MemberStatus]:
        suffix = PurePosixPath(unit.rel).suffix.lower()
        if self._foreign(unit.rel):
            raise SkipFile("not_data", "part of the copy of the other style (-o style)")
        if self.options.style == "coco":
            return self._read_coco(unit) if suffix != ".json" else json_unit(self.coco(), unit.rel)
        layout = self.voc()
        if unit.rel in layout.skip:
            reason, _, detail = layout.skip[unit.rel].partition(": ")
            raise SkipFile(reason, detail)
        key, kind, _ = _slot(unit.rel) or (None, None, None)
        if kind == "xml":
            raise RejectFile("annotation_without_image", f"no JPEGImages*/{PurePosixPath(unit.rel).stem}.* image")
        if kind != "img":
            raise SkipFile("not_data", "not an SSDD image or annotation")
        xml = layout.xml.get(key)
        if xml is None:
            raise RejectFile("missing_annotation", f"no Annotations*/{PurePosixPath(unit.rel).stem}.xml for it")
        return [self._read_voc(unit, xml, layout.tags.get(key, set()))]

    def _read_voc(self, unit: FileUnit, xml: str, tags: set[str]) -> Sample:
        try:
            check_budget((os.path.getsize(self.base / xml),), 1, f"XML {xml}")
            objects, size = parse_ssdd_xml((self.base / xml).read_bytes(), xml)
        except OSError as exc:
            raise RejectFile("missing_annotation", f"{xml}: {exc.strerror}") from exc
        bad = sorted({name for name, _, _ in objects if name.lower() not in CLASSES})
        if bad:
            raise RejectFile("unknown_class", f"{xml}: names {bad}; SSDD has the single class ship")
        img, meta = decode_image(unit.data())
        height, width = img.shape[1:]
        instances = [
            Instance(0, tuple(box), f"{xml} object {i}", (poly,) if poly else ())
            for i, (_, box, poly) in enumerate(objects)
        ]
        opts = self.options
        arrays, counts = detection_fields(instances, height, width, clip=opts.clip_boxes, masks=opts.masks)
        warnings = []
        if size is not None and size != (width, height):
            warnings.append(f"<size> {size[0]:g}x{size[1]:g} but the image is {width}x{height}")
        meta = {**meta, **counts, "annotation": xml, "scene_tags": sorted(tags), "warnings": warnings}
        return self._sample(unit, {"img": img, **arrays}, meta)

    def _read_coco(self, unit: FileUnit) -> list[Sample]:
        arrays, meta, record = coco_image(self.coco(), unit, CLASSES, self.options.clip_boxes, self.options.masks)
        sample = self._sample(unit, arrays, meta)
        if record.role == "split" and self.options.split == "official" and record.split != sample.split:
            sample.meta["warnings"].append(f"{record.json_rel} lists it as {record.split}; the official rule "
                                           f"gives {sample.split}")  # fmt: skip
        return [sample]

    def _sample(self, unit: FileUnit, arrays: dict[str, Any], meta: dict[str, Any]) -> Sample:
        stem = PurePosixPath(unit.rel).stem
        n_boxes = len(arrays["boxes"])
        return Sample(
            arrays=arrays,
            split=official_split(stem) if self.options.split == "official" else "pool",
            label_name="ship" if n_boxes else None,
            columns={
                "radiometry": "display8",
                "scale": "uint8",
                "sensor": "unknown",
                "band": "unknown",
                "pol": "unknown",
                "n_boxes": n_boxes,
            },
            meta={**meta, "split_rule": self.options.split},
        )


__all__ = ["CLASSES", "SSDD", "SSDDOptions", "build_voc_layout", "official_split", "parse_ssdd_xml"]
