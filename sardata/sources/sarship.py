"""SAR-Ship-Dataset (CAESAR-Radi): flat ``ship_dataset_v0/<stem>.jpg`` + YOLO ``<stem>.txt`` (``sources.md`` §2).

Work unit = one image (it reads its ``.txt``), or the whole ``ship_dataset_v0.zip`` read in place (one sample per
JPEG member). Single class ``ship``; ``boxes`` float32 ``(N, 5)`` = class id, x0, y0, x1, y1 in pixels converted
from the normalised ``0 cx cy w h`` lines with the decoded image size.

Decisions where the spec is silent:

* **Sensor/pol** come from the name prefix ``{Gao,Sen}_ship_{hh,hv,vh,vv}_<digits>`` (``GF-3``, the string
  :mod:`sardata.sources.saracd` uses for Gaofen-3, and ``Sentinel-1``; pol upper-case). Untagged ``newship…``,
  ``ship…`` and any other name → ``unknown``. The digit tail is kept as ``meta.name_digits``, never parsed as a
  date. Band is ``C`` for every chip (both satellites are C-band).
* **Image label**: ``ship`` when the chip has at least one box, else ``None`` (same rule as MSAR's largest box).
* **Labels**: blank lines are ignored; a line that is not exactly five numbers rejects the image
  (``bad_annotation``), as does a non-positive width or height; a class other than 0 gives ``unknown_class``.
  A box reaching beyond the chip is clipped and counted in ``meta.boxes_clipped`` (``-o clip_boxes=false``
  rejects it instead). An empty or missing ``.txt`` gives zero boxes (``meta.label_file`` null when missing).
* **Companions**: a ``.txt`` beside its image is a ``skipped`` row with reason ``companion`` (inside the zip an
  ``ok`` member row, as :mod:`sardata.sources.opensarship` does); a YOLO ``.txt`` without image is rejected
  (``annotation_without_image``); other ``.txt`` files are skipped as ``not_data``.
* **Duplicates**: ``meta.payload_sha256`` is the sha256 of the JPEG bytes (equal to ``src_sha256`` for loose files,
  the member's own hash inside the zip), so split builders can group byte-identical chips.
* **Zip**: read in place with the limits of :mod:`sardata.sources._archive`, members yielded one by one so memory
  stays bounded; the zip is one work unit (one worker), so ingesting the extracted folder is faster. A root-level
  zip beside a folder of the same name (its extracted copy) is skipped as ``duplicate_archive``, so chips are not
  ingested twice.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from sardata.errors import RejectFile, SkipFile
from sardata.sources._archive import member_problem, open_zip
from sardata.sources._base import FileUnit, MemberStatus, Sample, Source
from sardata.sources._image import decode_image

CLASSES = ("ship",)
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})
SENSORS = {"gao": "GF-3", "sen": "Sentinel-1"}
TAGGED = re.compile(r"^(?P<sensor>gao|sen)_ship_(?P<pol>hh|hv|vh|vv)_(?P<digits>\d+)$", re.IGNORECASE)
UNTAGGED = re.compile(r"^(?P<prefix>newship|ship)(?P<digits>\d+)$", re.IGNORECASE)
#: corners may overshoot [0, 1] by float rounding of the label text before they count as outside the chip
EDGE_TOLERANCE = 1e-6
#: zips up to this size are read into memory once; larger ones are opened from their path
READ_ONCE_BYTES = 256 << 20


@dataclass(frozen=True)
class SARShipOptions:
    #: clip boxes that reach beyond the chip (true) or reject the image (false)
    clip_boxes: bool = True


def parse_name(stem: str) -> dict[str, Any]:
    """Sensor, polarisation and tag from a file stem; ``unknown`` for untagged or unrecognised names."""
    m = TAGGED.match(stem)
    if m:
        return {"sensor": SENSORS[m["sensor"].lower()], "pol": m["pol"].upper(), "tag": m["sensor"].capitalize(),
                "digits": m["digits"]}  # fmt: skip
    m = UNTAGGED.match(stem)
    return {"sensor": "unknown", "pol": "unknown", "tag": m["prefix"].lower() if m else None,
            "digits": m["digits"] if m else None}  # fmt: skip


def parse_yolo(text: str, width: int, height: int, clip: bool = True) -> tuple[np.ndarray, int]:
    """YOLO lines → ``(boxes (N, 5) float32 in pixels, number of clipped boxes)``.

    Raises:
        RejectFile: ``bad_annotation`` for a malformed line or a box outside the chip with ``clip=False``,
            ``unknown_class`` for a class other than 0.
    """
    rows, clipped = [], 0
    for n, line in enumerate(text.splitlines(), 1):
        tokens = line.split()
        if not tokens:
            continue
        try:
            values = [float(t) for t in tokens]
        except ValueError:
            raise RejectFile("bad_annotation", f"line {n}: {line.strip()!r} is not numeric") from None
        if len(values) != 5 or not np.isfinite(values).all():
            raise RejectFile("bad_annotation", f"line {n}: {line.strip()!r}; expected 'class cx cy w h'")
        cls, cx, cy, w, h = values
        if cls != 0:
            raise RejectFile("unknown_class", f"line {n}: class {tokens[0]}; SAR-Ship has the single class 0 (ship)")
        if w <= 0 or h <= 0:
            raise RejectFile("bad_annotation", f"line {n}: non-positive box size w={w}, h={h}")
        box = np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
        if box.min() < -EDGE_TOLERANCE or box.max() > 1 + EDGE_TOLERANCE:
            if not clip:
                raise RejectFile("bad_annotation", f"line {n}: box {box.round(6).tolist()} reaches beyond the chip")
            clipped += 1
        box = box.clip(0, 1) * [width, height, width, height]
        rows.append([0.0, *box])
    return np.array(rows, np.float32).reshape(-1, 5), clipped


def _is_yolo(data: bytes) -> bool:
    """Whether a text file reads as YOLO labels (any class), to tell an orphan label file from other text."""
    try:
        lines = [line.split() for line in data.decode("utf-8-sig").splitlines() if line.strip()]
        return bool(lines) and all(len(t) == 5 and [float(v) for v in t] for t in lines)
    except (UnicodeDecodeError, ValueError):
        return False


@dataclass
class _Folder:
    labels: dict[str, str]  # stem.lower() → .txt file name
    images: set[str]  # image stems, lower-case


class SARShip(Source):
    companion_files = True  # labels / metadata live in other files: resume checks the whole listing
    id = "sar-ship"
    version = "1.0.0"
    description = "SAR-Ship-Dataset ship chips (Gaofen-3 + Sentinel-1), <stem>.jpg + YOLO .txt, folder or zip"
    classes = CLASSES
    Options = SARShipOptions

    def __init__(self, root: str | os.PathLike[str], options: Any = None) -> None:
        super().__init__(root, options)
        self._folders: dict[Path, _Folder] = {}

    @property
    def base(self) -> Path:
        return self.root if self.root.is_dir() else self.root.parent

    def skip_reasons(self, rels: list[str]) -> dict[str, str]:
        out = {rel: r for rel, r in super().skip_reasons(rels).items() if not rel.lower().endswith(".txt")}
        images = {_stem_key(rel): rel for rel in rels if PurePosixPath(rel).suffix.lower() in IMAGE_SUFFIXES}
        folders = {PurePosixPath(rel).parts[0] for rel in images.values() if len(PurePosixPath(rel).parts) > 1}
        for rel in rels:
            p = PurePosixPath(rel)
            suffix = p.suffix.lower()
            if rel in out or suffix in IMAGE_SUFFIXES:
                continue
            if suffix == ".txt":
                if p.name.lower().startswith("readme"):
                    out[rel] = "not_data: documentation"
                elif _stem_key(rel) in images:
                    out[rel] = f"companion: labels of {images[_stem_key(rel)]}, read with it"
            elif suffix == ".zip":
                if len(p.parts) == 1 and p.stem in folders:
                    out[rel] = f"duplicate_archive: the extracted copy {p.stem}/ is ingested instead"
            else:
                out[rel] = f"not_data: {suffix or 'extension-less'} files are not SAR-Ship chips or labels"
        return out

    def read(self, unit: FileUnit) -> Iterable[Sample | MemberStatus]:
        suffix = PurePosixPath(unit.rel).suffix.lower()
        if suffix == ".zip":
            return self._read_zip(unit)
        folder = self._folder(self.base / Path(unit.rel).parent)
        stem = Path(unit.rel).stem.lower()
        if suffix == ".txt":
            if stem in folder.images:
                raise SkipFile("companion", "labels read with the image of the same stem")
            if _is_yolo(unit.data()):
                raise RejectFile("annotation_without_image", f"no image named {Path(unit.rel).stem}.jpg beside it")
            raise SkipFile("not_data", "text file that is not YOLO labels")
        if suffix not in IMAGE_SUFFIXES:
            raise SkipFile("not_data", f"{suffix or 'extension-less'} files are not SAR-Ship chips or labels")
        txt = folder.labels.get(stem)
        label_rel = str(Path(unit.rel).parent / txt) if txt else None
        try:
            labels = (self.base / label_rel).read_bytes() if label_rel else None
        except OSError as exc:
            raise RejectFile("unreadable", f"{label_rel}: {exc.strerror}") from exc
        return [self._sample(unit.rel, unit.data(), labels, label_rel)]

    def _folder(self, path: Path) -> _Folder:
        """Label files and image stems of one folder, listed once per process."""
        if path not in self._folders:
            names = sorted(os.listdir(path))
            self._folders[path] = _Folder(
                labels={Path(n).stem.lower(): n for n in names if n.lower().endswith(".txt")},
                images={Path(n).stem.lower() for n in names if Path(n).suffix.lower() in IMAGE_SUFFIXES},
            )
        return self._folders[path]

    def _sample(self, name: str, data: bytes, labels: bytes | None, label_rel: str | None, **extra: Any) -> Sample:
        img, meta = decode_image(data)
        height, width = img.shape[1:]
        boxes, clipped = np.zeros((0, 5), np.float32), 0
        if labels is not None:
            try:
                text = labels.decode("utf-8-sig")
            except UnicodeDecodeError:
                raise RejectFile("bad_annotation", f"{label_rel}: not UTF-8 text") from None
            try:
                boxes, clipped = parse_yolo(text, width, height, self.options.clip_boxes)
            except RejectFile as exc:
                raise RejectFile(exc.reason, f"{label_rel}: {exc.detail}") from exc
        parsed = parse_name(PurePosixPath(name).stem)
        return Sample(
            arrays={"img": img, "boxes": boxes},
            split="pool",
            label_name="ship" if len(boxes) else None,
            columns={
                "radiometry": "display8",
                "scale": "uint8",
                "sensor": parsed["sensor"],
                "band": "C",
                "pol": parsed["pol"],
            },  # fmt: skip
            meta={
                **meta,
                "payload_sha256": hashlib.sha256(data).hexdigest(),
                "label_file": label_rel,
                "n_boxes": len(boxes),
                "boxes_clipped": clipped,
                "name_tag": parsed["tag"],
                "name_digits": parsed["digits"],
            },
            **extra,
        )

    def _read_zip(self, unit: FileUnit) -> Iterator[Sample | MemberStatus]:
        """One sample per image member, yielded one at a time (the engine writes each before the next is decoded,
        so memory stays bounded for the 427 MB release); labels paired by folder and stem inside the archive."""
        try:
            zf = open_zip(unit.data() if unit.size <= READ_ONCE_BYTES else None, unit.path)
        except Exception as exc:  # zipfile raises BadZipFile, OSError, ValueError...
            raise RejectFile("undecodable", f"zip cannot be opened: {exc}") from exc
        with zf:
            infos = {}
            for info in sorted(zf.infolist(), key=lambda i: i.filename):
                if info.is_dir():
                    continue
                problem = member_problem(info) or ("encrypted member" if info.flag_bits & 0x1 else None)
                if problem:
                    yield MemberStatus(info.filename, "rejected", "unsafe_member", problem)
                else:
                    infos[info.filename] = info
            images = {_stem_key(n): n for n in infos if PurePosixPath(n).suffix.lower() in IMAGE_SUFFIXES}
            labels = {_stem_key(n): n for n in infos if PurePosixPath(n).suffix.lower() == ".txt"}
            for index, (key, name) in enumerate(sorted(images.items(), key=lambda kv: kv[1])):
                txt = labels.get(key)
                try:
                    sample = self._sample(
                        name, _member(zf, name), _member(zf, txt) if txt else None, txt,
                        src_member=name, sub_index=index, key_token=PurePosixPath(name).stem,
                    )  # fmt: skip
                except RejectFile as exc:
                    yield MemberStatus(name, "rejected", exc.reason, exc.detail)
                    if txt:
                        yield MemberStatus(txt, "skipped", "companion", f"labels of rejected {name}")
                    continue
                yield sample
                if txt:
                    yield MemberStatus(txt, "ok", "companion", f"labels of {name}")
            for key, txt in sorted(labels.items(), key=lambda kv: kv[1]):
                if key not in images:
                    if PurePosixPath(txt).name.lower().startswith("readme") or not _is_yolo(_member(zf, txt, b"")):
                        yield MemberStatus(txt, "skipped", "not_data", "text that is not YOLO labels")
                    else:
                        yield MemberStatus(txt, "rejected", "annotation_without_image", "no image member")
            for name in sorted(set(infos) - set(images.values()) - set(labels.values())):
                yield MemberStatus(name, "skipped", "not_data", "not a SAR-Ship chip or label file")


def _stem_key(rel: str) -> tuple[str, str]:
    p = PurePosixPath(rel)
    return str(p.parent), p.stem.lower()


def _member(zf: Any, name: str, default: bytes | None = None) -> bytes:
    """A member's bytes; a CRC or decompression failure rejects that member only (or returns ``default``)."""
    try:
        return zf.read(name)
    except Exception as exc:  # BadZipFile (CRC), zlib.error, NotImplementedError (compression method)...
        if default is not None:
            return default
        raise RejectFile("undecodable", f"{name}: cannot be read from the zip: {exc}") from exc
