"""FUSAR-Ship: Gaofen-3 ship chips with AIS-matched ``meta.csv`` and the 10-class repackage (``sources.md`` §6).

Two layouts, detected per file from its folders; which files become samples is chosen by ``-o setting=``:

* **Original** ``FUSAR_Ship1.0/<Category>/<SubCategory>/Ship_CxxSyyNzzzz.tiff`` (also under ``ShipCategory/``, and
  ``MarineCategory/<kind>/...`` in the fuller rar): 512×512 single-band uint8 TIFF, decoded with rasterio.
  With ``setting=15class`` (default) the label is the ``Category`` folder (15 classes, the card's list), the
  subcategory and the name's ``Cxx/Syy/Nzzzz`` indices go to ``meta``; ``MarineCategory`` chips are not ships
  and are ``skipped`` (``not_ship``). Split ``pool`` (none shipped).
* **Repackage** ``New_FUSAR/{Train,Val}/<Class>/*.{jpg,png}``: recognised by a ``Train``/``Val``/``Test``
  ancestor folder; ``Train`` → ``train``, ``Val`` (the protocol's test set) and ``Test`` → ``test``.

``setting=10class`` switches :meth:`class_names` to the SAR-JEPA 10-class list (label ids as in ``sar-jepa.md``
§3). It reads the repackage by its class folders, and also maps the original tree with the spec's table
(``Cargo/CargoShip`` → Cargo, ``Fishing/Fishing`` → Fishing, ``Other/Othertypeofship`` → OtherShip,
``Tanker/*`` → Tanker, ``MarineCategory/bridge`` → Bridges, …; split ``pool``, other subcategories ``skipped``
as ``class_not_selected``). Under ``setting=15class`` repackage files are ``skipped`` (``other_setting``): its
``Cargo`` means ``Cargo/CargoShip`` only, so mixing it with the 15-class ``Cargo`` would change the class.
Point an ingest at one tree: the repackage holds copies of original chips, and both trees under one root with
``setting=10class`` would yield each chip twice.

``meta.csv`` (the nearest one in the file's folder or an ancestor, up to the ingest root) is parsed once per
worker, delimiter sniffed (comma, tab or semicolon), encoding UTF-8 with GB18030 fallback, and joined on ``id``
= the image stem (case-insensitive, an image extension in ``id`` tolerated): ``centerLookAngle`` →
``incidence_deg`` (it is an incidence angle), ``[heightspace, widthspace]`` → ``pixel_spacing_m`` (row, column;
inferred meaning), ``polarMode`` → ``pol`` when it names one polarisation, everything else (``mmsi``, ship
``length``/``width``, the backslash ``path`` as ``Cargo/BulkCarrier``) → ``meta``. Images without a row are
samples without AIS fields. ``meta.csv`` is its own work unit: an ``ok`` row with no samples plus one
``rejected`` member row per CSV row that names no image file under the CSV's folder (``orphan_metadata``),
per malformed row (``bad_row``) and per repeated ``id`` (``duplicate_id``; the first row wins). ``meta.xls``
is ``skipped`` (export it as ``meta.csv`` to join it).

Limitation: a unit's resume fingerprint covers its own bytes only, so after editing ``meta.csv`` rerun the
ingest with ``--overwrite`` (or into a new ``--out``) to refresh the joined fields.
"""

from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sardata.discovery import walk
from sardata.errors import ConfigError, RejectFile, SkipFile
from sardata.sources._base import FileUnit, MemberStatus, Sample, Source, parse_float
from sardata.sources._image import decode_image, decode_tiff
from sardata.sources._sniff import sniff

CLASSES = (
    "Cargo", "DiveVessel", "Dredger", "Fishing", "HighSpeedCraft", "LawEnforce", "Other", "Passenger",
    "PortTender", "Reserved", "SAR", "Tanker", "Tug", "Unspecified", "WingInGrnd",
)  # fmt: skip
CLASSES_10 = (
    "Bridges", "Cargo", "CoastalLands_island", "Fishing", "LandPatches", "OtherShip", "SeaClutterWaves",
    "SeaPatches", "StrongFalseAlarms", "Tanker",
)  # fmt: skip
SETTINGS = ("15class", "10class")
#: original tree → 10-class setting: (category, subcategory or None for any) and MarineCategory folders
SHIP_TO_10 = {
    ("cargo", "cargoship"): "Cargo",
    ("fishing", "fishing"): "Fishing",
    ("other", "othertypeofship"): "OtherShip",
    ("tanker", None): "Tanker",
}
MARINE_TO_10 = {
    "bridge": "Bridges",
    "landseaside_island": "CoastalLands_island",
    "land": "LandPatches",
    "wave": "SeaClutterWaves",
    "sea": "SeaPatches",
    "likeship": "StrongFalseAlarms",
}
SPLIT_FOLDERS = {"train": "train", "val": "test", "test": "test"}
IMAGE_SUFFIXES = (".tif", ".tiff", ".jpg", ".jpeg", ".png")
SINGLE_POLS = ("HH", "HV", "VH", "VV")
NAME_RE = re.compile(r"^Ship_C(?P<c>\d+)S(?P<s>\d+)N(?P<n>\d+)$", re.IGNORECASE)
CSV_NAME = "meta.csv"
FLOAT_COLUMNS = ("length", "width", "centerlookangle", "heightspace", "widthspace")


@dataclass(frozen=True)
class FUSARShipOptions:
    #: ``15class`` (original categories) or ``10class`` (SAR-JEPA setting: repackage + mapped original tree)
    setting: str = "15class"

    def __post_init__(self) -> None:
        if self.setting not in SETTINGS:
            raise ConfigError(f"fusar-ship: setting must be one of {list(SETTINGS)}, got {self.setting!r}")


@dataclass
class _CSV:
    """A parsed ``meta.csv``: rows by normalised id, plus the rows that could not be used."""

    folder: Path  # folder of the CSV on disk
    rows: dict[str, tuple[int, dict[str, str]]]  # id → (line number, lower-cased column → value)
    problems: list[MemberStatus]


class FUSARShip(Source):
    companion_files = True  # labels / metadata live in other files: resume checks the whole listing
    id = "fusar-ship"
    version = "1.0.0"
    description = "FUSAR-Ship GF-3 ship chips (15 categories, meta.csv joined) and the 10-class New_FUSAR repackage"
    classes = CLASSES
    Options = FUSARShipOptions

    def __init__(self, root: str | os.PathLike[str], options: Any = None) -> None:
        super().__init__(root, options)
        self._csv_cache: dict[Path, _CSV | str] = {}  # CSV path → parsed table or the reason it is unusable
        self._csv_for_dir: dict[Path, Path | None] = {}

    def class_names(self) -> list[str]:
        return list(CLASSES_10 if self.options.setting == "10class" else CLASSES)

    def skip_reasons(self, rels: list[str]) -> dict[str, str]:
        out = super().skip_reasons(rels)
        for rel in rels:
            if rel not in out and Path(rel).name.lower() in ("meta.xls", "meta.xlsx"):
                out[rel] = "unsupported_metadata: spreadsheet metadata is not joined; export it as meta.csv"
        return out

    def read(self, unit: FileUnit) -> list[Sample | MemberStatus]:
        name = Path(unit.rel).name
        if name.lower() == CSV_NAME:
            return self._read_csv(unit)
        data = unit.data()
        kind = sniff(data[:600])
        if kind not in ("tiff", "jpeg", "png"):
            if Path(name).suffix.lower() in IMAGE_SUFFIXES:
                raise RejectFile("bad_format", f"content is {kind or 'unrecognised bytes'}, expected TIFF/JPEG/PNG")
            raise SkipFile("not_data", f"not an image or meta.csv (content {kind or 'unrecognised'})")
        label, split, meta = self._label(unit)
        img, img_meta = decode_tiff(data) if kind == "tiff" else decode_image(data, expect=("jpeg", "png"))
        meta |= img_meta
        columns: dict[str, Any] = {
            "radiometry": "display8", "scale": "uint8", "sensor": "GF-3", "band": "C", "pol": "unknown",
        }  # fmt: skip
        self._join(unit, columns, meta)
        return [Sample(arrays={"img": img}, split=split, label_name=label, columns=columns, meta=meta)]

    # ------------------------------------------------------------------------------------------- labels
    def _label(self, unit: FileUnit) -> tuple[str, str, dict[str, Any]]:
        """Class, split and layout metadata from the folders (raises Skip/RejectFile)."""
        folders = unit.parts[:-1]
        lower = [f.lower() for f in folders]
        stem = Path(unit.rel).stem
        meta: dict[str, Any] = {"stem": stem}
        m = NAME_RE.match(stem)
        if m:
            meta |= {"name_category": int(m["c"]), "name_subcategory": int(m["s"]), "name_index": int(m["n"])}
        split_at = next((i for i in range(len(lower) - 1, -1, -1) if lower[i] in SPLIT_FOLDERS), None)
        if split_at is not None:
            return self._label_repack(folders, split_at, meta)
        if "marinecategory" in lower:
            kind = folders[lower.index("marinecategory") + 1] if lower[-1] != "marinecategory" else ""
            meta |= {"layout": "original", "marine_kind": kind}
            if self.options.setting == "15class":
                raise SkipFile("not_ship", f"MarineCategory/{kind} is not a ship category (-o setting=10class)")
            label = MARINE_TO_10.get(kind.lower())
            if label is None:
                raise RejectFile("unknown_class", f"MarineCategory/{kind!r} is not one of {sorted(MARINE_TO_10)}")
            return label, "pool", meta
        lookup = {c.lower(): c for c in CLASSES}
        if len(folders) >= 2 and lower[-2] in lookup:
            category, sub = lookup[lower[-2]], folders[-1]
        elif folders and lower[-1] in lookup:
            category, sub = lookup[lower[-1]], None
        else:
            raise RejectFile(
                "unknown_class",
                f"no FUSAR-Ship category folder in {'/'.join(folders) or '(root)'}; expected "
                f"<Category>/<SubCategory>/ with Category one of {list(CLASSES)}",
            )
        meta |= {"layout": "original", "category": category, "subcategory": sub}
        if self.options.setting == "15class":
            return category, "pool", meta
        key = category.lower(), (sub or "").lower()
        label = SHIP_TO_10.get(key) or SHIP_TO_10.get((key[0], None))
        if label is None:
            raise SkipFile("class_not_selected", f"{category}/{sub} is not part of the 10-class setting")
        return label, "pool", meta

    def _label_repack(self, folders: tuple[str, ...], split_at: int, meta: dict[str, Any]) -> tuple[str, str, dict]:
        meta |= {"layout": "repackage", "split_folder": folders[split_at]}
        if self.options.setting == "15class":
            raise SkipFile(
                "other_setting", "a Train/Val repackage is the 10-class setting; ingest it with -o setting=10class"
            )
        folder = folders[split_at + 1] if split_at + 1 < len(folders) else ""
        lookup = {_slug(c): c for c in CLASSES_10}
        label = lookup.get(_slug(folder))
        if label is None:
            raise RejectFile("unknown_class", f"folder {folder or '(none)'!r} is not one of {list(CLASSES_10)}")
        return label, SPLIT_FOLDERS[folders[split_at].lower()], meta

    # ------------------------------------------------------------------------------------------- meta.csv
    def _join(self, unit: FileUnit, columns: dict[str, Any], meta: dict[str, Any]) -> None:
        """Add the matching ``meta.csv`` row (if any) to ``columns`` and ``meta``."""
        csv_path = self._find_csv(unit)
        meta["csv_joined"] = False
        if csv_path is None:
            return
        table = self._csv(csv_path)
        if isinstance(table, str):
            meta.setdefault("warnings", []).append(f"{CSV_NAME} unusable, not joined: {table}")
            return
        hit = table.rows.get(_norm_id(Path(unit.rel).stem))
        if hit is None:
            return
        line, row = hit
        values = {k: parse_float(row.get(k)) for k in FLOAT_COLUMNS}
        pol = (row.get("polarmode") or "").strip()
        csv_folder = (row.get("path") or "").strip().replace("\\", "/").strip("/")
        meta |= {
            "csv_joined": True, "csv_line": line, "mmsi": (row.get("mmsi") or "").strip() or None,
            "ship_length_m": values["length"], "ship_width_m": values["width"], "polar_mode": pol or None,
            "csv_path": csv_folder or None,
        }  # fmt: skip
        if pol.upper() in SINGLE_POLS:
            columns["pol"] = pol.upper()
        columns["incidence_deg"] = values["centerlookangle"]
        if values["heightspace"] is not None and values["widthspace"] is not None:
            columns["pixel_spacing_m"] = [values["heightspace"], values["widthspace"]]
        folder = "/".join(unit.parts[-3:-1]).lower()
        if csv_folder and not folder.endswith(csv_folder.lower()):
            where = "/".join(unit.parts[:-1])
            meta.setdefault("warnings", []).append(f"{CSV_NAME} path {csv_folder!r} disagrees with the folder {where}")

    def _find_csv(self, unit: FileUnit) -> Path | None:
        """The nearest ``meta.csv`` in the file's folder or an ancestor below the ingest root."""
        parts = unit.parts
        base = Path(unit.path).parents[len(parts) - 1]
        for k in range(len(parts) - 1, -1, -1):
            folder = base.joinpath(*parts[:k])
            if folder not in self._csv_for_dir:
                try:
                    names = {n.lower(): n for n in os.listdir(folder)}
                except OSError:
                    names = {}
                self._csv_for_dir[folder] = folder / names[CSV_NAME] if CSV_NAME in names else None
            if self._csv_for_dir[folder] is not None:
                return self._csv_for_dir[folder]
        return None

    def _csv(self, path: Path) -> _CSV | str:
        if path not in self._csv_cache:
            try:
                self._csv_cache[path] = parse_meta_csv(path.read_bytes(), path.parent)
            except (OSError, RejectFile) as exc:
                self._csv_cache[path] = str(exc)
        return self._csv_cache[path]

    def _read_csv(self, unit: FileUnit) -> list[Sample | MemberStatus]:
        table = parse_meta_csv(unit.data(), Path(unit.path).parent)  # raises RejectFile for an unusable table
        self._csv_cache[Path(unit.path)] = table
        stems = _image_stems(table.folder)
        out = list(table.problems)
        for key, (line, row) in sorted(table.rows.items(), key=lambda kv: kv[1][0]):
            if key not in stems:
                ident, where = row["id"].strip(), row.get("path", "").strip()
                detail = f"no image named {ident} under the folder of {CSV_NAME} (CSV path: {where})"
                out.append(MemberStatus(f"line:{line:06d}:{ident}", "rejected", "orphan_metadata", detail))
        return out


# ----------------------------------------------------------------------------------------------- helpers
def parse_meta_csv(data: bytes, folder: Path) -> _CSV:
    """Parse ``meta.csv`` bytes (delimiter sniffed from the header line, BOM and GB18030 tolerated).

    Raises:
        RejectFile: ``bad_csv`` when the text cannot be decoded or there is no ``id`` column.
    """
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise RejectFile("bad_csv", "meta.csv is neither UTF-8 nor GB18030 text")
    header = text.split("\n", 1)[0]
    delimiter = max(("\t", ",", ";"), key=header.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        names = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise RejectFile("bad_csv", "meta.csv is empty") from None
    if "id" not in names:
        raise RejectFile("bad_csv", f"meta.csv header {names} has no id column (delimiter {delimiter!r})")
    rows: dict[str, tuple[int, dict[str, str]]] = {}
    problems: list[MemberStatus] = []
    for values in reader:
        line = reader.line_num
        if not any(v.strip() for v in values):
            continue
        row = dict(zip(names, values, strict=False))
        ident = row.get("id", "").strip()
        if len(values) != len(names) or not ident:
            detail = f"{len(values)} fields for {len(names)} columns" if ident else "empty id"
            problems.append(MemberStatus(f"line:{line:06d}:{ident}", "rejected", "bad_row", detail))
            continue
        key = _norm_id(ident)
        if key in rows:
            first = rows[key][0]
            problems.append(
                MemberStatus(f"line:{line:06d}:{ident}", "rejected", "duplicate_id", f"id repeats line {first}")
            )
            continue
        rows[key] = (line, row)
    return _CSV(folder, rows, problems)


def _image_stems(folder: Path) -> set[str]:
    """Normalised stems of every image file below ``folder``, by the ingest's traversal (symlinks followed once).

    Unlistable folders are dropped here: the ingest's discovery already reports each one as a rejected row.
    """
    stems: set[str] = set()
    for _dirpath, _dirnames, filenames in walk(folder, errors=[]):
        stems.update(_norm_id(n) for n in filenames if Path(n).suffix.lower() in IMAGE_SUFFIXES)
    return stems


def _norm_id(text: str) -> str:
    name = text.strip().replace("\\", "/").rsplit("/", 1)[-1].lower()
    for suffix in IMAGE_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())
