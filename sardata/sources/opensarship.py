"""OpenSARShip: Sentinel-1 ship chips in per-scene zips, read in place (``sources.md`` §8).

Work unit = one scene zip (never extracted). One sample per ship patch ``<Class>_x<col>_y<row>``:

* ``img`` = ``Patch_Cal/<name>.tif``: calibrated intensity, float32, one channel per polarisation
  (``radiometry=sigma0``, ``scale=linear``; dual-pol channel order VH, VV — inferred, recorded in ``pol``);
* ``cplx`` = for SLC products, ``Patch/<name>.tif`` signed I/Q pairs as complex64 (2 bands → 1 channel,
  4 bands → 2 channels); GRD ``Patch/`` DN chips are redundant with ``Patch_Cal`` and recorded as skipped;
* ``Ship.xml``'s ``<ship>`` whose ``Center_x/Center_y`` equal the name's ``x``/``y`` is joined into ``meta``
  (SAR, AIS, match and MarineTraffic fields; ``Incidence`` → ``incidence_deg``).

A damaged member (bad CRC, corrupt deflate data) is a rejected member row of its own; the scene's other chips are
kept. Every other member is accounted for as a skipped member row: ``Patch_Uint8``/``Patch_RGB`` previews (some are
PNG bytes behind a ``.tif`` name — detected from content), documentation and product XMLs. Types are detected from
bytes, class names may contain spaces (keys use the slug), and unknown class names are rejected members.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import numpy as np

from sardata.errors import RejectFile
from sardata.manifest.keys import slugify
from sardata.sources._archive import member_problem, open_zip, read_member
from sardata.sources._base import FileUnit, MemberStatus, Sample, Source, parse_float
from sardata.sources._sniff import sniff

CLASSES = ("Cargo", "Tanker", "Other Type", "Passenger", "Tug", "Law Enforcement", "Search and Rescue vessel")
#: truncated class names seen in real files (``Patch_Cal/Search_x…`` is ``Patch/Search and Rescue vessel_x…``)
ALIASES = {"Search": "Search and Rescue vessel"}
PATCH_RE = re.compile(r"^(?P<cls>.+?)_x(?P<x>\d+)_y(?P<y>\d+)$")
PRODUCT_RE = re.compile(r"S1[AB]_IW_(?P<type>GRDH|SLC_)_1S(?P<pol>DV|SV|DH|SH)")
POLS = {"DV": ["VH", "VV"], "SV": ["VV"], "DH": ["HV", "HH"], "SH": ["HH"]}


@dataclass(frozen=True)
class OpenSARShipOptions:
    #: also store SLC I/Q as ``cplx``
    complex: bool = True


class OpenSARShip(Source):
    id = "opensarship"
    version = "1.0.0"
    description = "OpenSARShip Sentinel-1 ship chips, per-scene zips read in place (Patch_Cal + SLC I/Q + Ship.xml)"
    classes = CLASSES
    Options = OpenSARShipOptions

    def skip_reasons(self, rels: list[str]) -> dict[str, str]:
        out = super().skip_reasons(rels)
        for rel in rels:
            if rel not in out and not rel.lower().endswith(".zip"):
                out[rel] = "not_data: OpenSARShip scenes are .zip files"
        return out

    def read(self, unit: FileUnit) -> list[Sample | MemberStatus]:
        if sniff(unit.data()[:8] if unit.size < 1 << 28 else b"PK\x03\x04") != "zip":
            raise RejectFile("bad_format", "not a zip archive")
        try:
            zf = open_zip(unit.data(), unit.path)
        except Exception as exc:  # zipfile raises BadZipFile, OSError, ValueError...
            raise RejectFile("undecodable", f"zip cannot be opened: {exc}") from exc
        with zf:
            return self._read_zip(zf, unit)

    def _read_zip(self, zf: Any, unit: FileUnit) -> list[Sample | MemberStatus]:
        results: list[Sample | MemberStatus] = []
        infos = {}
        for info in zf.infolist():
            if info.is_dir():
                continue
            problem = member_problem(info)
            if problem:
                results.append(MemberStatus(info.filename, "rejected", "unsafe_member", problem))
            else:
                infos[info.filename] = info
        product = _product(unit.rel, infos)
        ships, ship_problem = _ships(zf, infos)
        cal = _by_centre(infos, "Patch_Cal")
        raw = _by_centre(infos, "Patch")
        used: set[str] = set()
        for index, centre in enumerate(sorted(cal)):
            cal_name, raw_name = cal[centre], raw.get(centre)
            used.add(cal_name)
            try:
                sample = self._sample(zf, unit, product, ships, centre, cal_name, raw_name, index)
                results.append(sample)
                if "cplx" in sample.arrays:
                    used.add(raw_name)
                    results.append(MemberStatus(raw_name, "ok", "companion", f"I/Q stored as cplx of {cal_name}"))
            except RejectFile as exc:
                results.append(MemberStatus(cal_name, "rejected", exc.reason, exc.detail))
        for name in sorted(set(infos) - used):
            if ship_problem and PurePosixPath(name).name == "Ship.xml":
                results.append(MemberStatus(name, "rejected", "bad_metadata", ship_problem))
            else:
                try:
                    results.append(_other_member(zf, infos[name], name, product))
                except RejectFile as exc:  # a damaged preview or document costs only itself
                    results.append(MemberStatus(name, "rejected", exc.reason, exc.detail))
        return results

    def _sample(self, zf: Any, unit: FileUnit, product: dict, ships: dict, centre: tuple[int, int], cal_name: str,
                raw_name: str | None, index: int) -> Sample:  # fmt: skip
        names = [PATCH_RE.match(PurePosixPath(n).stem)["cls"] for n in (raw_name, cal_name) if n]
        label = ALIASES.get(max(names, key=len), max(names, key=len))
        if label not in CLASSES:
            raise RejectFile("unknown_class", f"class {label!r} not in {list(CLASSES)}")
        x, y = centre
        img = _read_tiff(read_member(zf, cal_name), cal_name).astype(np.float32)
        arrays = {"img": img}
        if product["type"] == "SLC" and raw_name and self.options.complex:
            iq = _read_tiff(read_member(zf, raw_name), raw_name).astype(np.float32)
            if iq.shape[0] % 2:
                raise RejectFile("bad_shape", f"{raw_name}: {iq.shape[0]} bands, expected I/Q pairs")
            arrays["cplx"] = (iq[0::2] + 1j * iq[1::2]).astype(np.complex64)
        ship = ships.get(centre, {})
        stem = PurePosixPath(cal_name).stem
        meta = {"product": product["name"], "patch": stem, "x": x, "y": y, **ship}
        if not ship:
            meta["warning"] = "no Ship.xml entry with this centre"
        pols = product["pols"][: img.shape[0]]
        incidence = ship.get("SARShipInformation", {}).get("Incidence")
        return Sample(
            arrays=arrays,
            split="pool",
            label_name=label,
            key_token=slugify(f"{label}-x{x}-y{y}"),
            sub_index=index,
            src_member=cal_name,
            columns={
                "radiometry": "sigma0",
                "scale": "linear",
                "sensor": "Sentinel-1",
                "band": "C",
                "pol": ",".join(pols),
                "incidence_deg": parse_float(incidence),
            },  # fmt: skip
            meta=meta,
        )


def _product(rel: str, infos: dict) -> dict:
    name = PurePosixPath(rel).stem.split("(")[0]
    m = PRODUCT_RE.search(name) or next((PRODUCT_RE.search(n) for n in infos if PRODUCT_RE.search(n)), None)
    kind = "SLC" if m and m["type"].startswith("SLC") else "GRD"
    return {"name": name, "type": kind, "pols": POLS.get(m["pol"], []) if m else []}


def _ships(zf: Any, infos: dict) -> tuple[dict[tuple[int, int], dict], str | None]:
    """Ship.xml entries keyed by (Center_x, Center_y), each section a flat dict of text values, and the parse
    problem if the file is unreadable. Real files close the root as ``<\\ShipList>`` (a backslash); such
    backslash closing tags are repaired before parsing."""
    name = next((n for n in infos if PurePosixPath(n).name == "Ship.xml"), None)
    if name is None:
        return {}, None
    try:
        data = re.sub(rb"<\\(\w+)>", rb"</\1>", read_member(zf, name))
        root = ET.fromstring(data)
    except RejectFile as exc:
        return {}, exc.detail
    except ET.ParseError as exc:
        return {}, f"{name}: {exc}"
    out = {}
    for ship in root.iter("ship"):
        rec = {sec.tag: {f.tag: (f.text or "").strip() for f in sec} for sec in ship}
        sar = rec.get("SARShipInformation", {})
        try:
            out[(int(float(sar["Center_x"])), int(float(sar["Center_y"])))] = rec
        except (KeyError, ValueError):
            continue
    return out, None


def _by_centre(infos: dict, folder: str) -> dict[tuple[int, int], str]:
    """Patch files of one folder keyed by their (x, y) centre — names differ between folders for one ship."""
    out = {}
    for name in infos:
        path = PurePosixPath(name)
        m = PATCH_RE.match(path.stem)
        if path.parent.name == folder and m:
            out[(int(m["x"]), int(m["y"]))] = name
    return out


def _other_member(zf: Any, info: Any, name: str, product: dict) -> MemberStatus:
    path = PurePosixPath(name)
    folder = path.parent.name
    if folder in ("Patch_Uint8", "Patch_RGB"):
        kind = sniff(read_member(zf, name)[:600])
        detail = f"{folder} preview" + (
            f" ({kind} bytes behind a {path.suffix} name)" if kind and kind != "tiff" and path.suffix == ".tif" else ""
        )
        return MemberStatus(name, "skipped", "preview", detail)
    if folder == "Patch":
        if product["type"] == "SLC":
            return MemberStatus(name, "skipped", "redundant", "SLC I/Q patch not stored (-o complex=false)")
        return MemberStatus(name, "skipped", "redundant", "GRD DN patch; the calibrated Patch_Cal copy is used")
    if path.name == "Ship.xml":
        return MemberStatus(name, "skipped", "metadata", "joined into the samples' meta")
    return MemberStatus(name, "skipped", "not_data", "product metadata or documentation")


def _read_tiff(data: bytes, name: str) -> np.ndarray:
    if sniff(data[:8]) != "tiff":
        raise RejectFile("bad_format", f"{name}: content is {sniff(data[:600]) or 'unrecognised'}, expected TIFF")
    from rasterio.io import MemoryFile

    try:
        with MemoryFile(data) as mem, mem.open() as ds:
            from sardata.sources._base import check_raster_budget

            check_raster_budget(ds, name)  # a sparse TIFF declaring 20000² pixels is refused before .read()
            return ds.read()
    except RejectFile:
        raise
    except Exception as exc:  # rasterio raises RasterioIOError, CPLE_* ...
        raise RejectFile("undecodable", f"{name}: {exc}") from exc
