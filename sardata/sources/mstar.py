"""MSTAR: raw Phoenix chips and JPEG chip folders, auto-detected per file (``sources.md`` §5).

Raw chips: labels from the header's ``TargetType`` (never from file-name prefixes or folders, which are kept as
metadata only); split from ``DesiredDepression`` (17° → train, 15° → test, anything else → pool with the
depression recorded); ``Chip_MD5_CheckSum`` verified. ``depression_deg`` is the *desired* (nominal) depression
that defines the SOC split; the measured value is kept in ``meta.measured_depression``.
Each raw chip yields ``img`` = float32 linear magnitude ``(1, H, W)`` and ``cplx`` = complex64 ``(1, H, W)``.

JPEG folders (``MSTAR-10/{train,test}/<CLASS>/*.jpeg``): class and split from folders; the same stem exists in
several classes, so keys include the whole relative path.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sardata.errors import RejectFile, SkipFile
from sardata.sources._base import FileUnit, Sample, Source, parse_float
from sardata.sources._image import decode_image
from sardata.sources._sniff import sniff

CLASSES = ("2s1", "bmp2", "brdm2", "btr60", "btr70", "d7", "t62", "t72", "zil131", "zsu234")

#: header ``TargetType`` → canonical id (``slicey`` is the calibration object, skipped)
TARGET_TYPES = {
    "bmp2_tank": "bmp2",
    "btr70_transport": "btr70",
    "t72_tank": "t72",
    "2s1_gun": "2s1",
    "brdm2_truck": "brdm2",
    "btr60_transport": "btr60",
    "d7_bulldozer": "d7",
    "t62_tank": "t62",
    "zil131_truck": "zil131",
    "zsu23-4_gun": "zsu234",
}
CALIBRATION_TARGETS = ("slicey", "slicy")
SPLIT_BY_DEPRESSION = {17: "train", 15: "test"}
MAX_SANE_MAGNITUDE = 1e3

_HEADER_START = b"[PhoenixHeaderVer"
_HEADER_END = b"[EndofPhoenixHeader]\n"


def canonical_class(name: str) -> str | None:
    """Map a folder name or alias (``BRDM_2``, ``ZSU_23_4``, ``BTR_60``) to a canonical id, else None."""
    slug = name.lower().replace("_", "").replace("-", "")
    return slug if slug in CLASSES else None


# ----------------------------------------------------------------------------------------------- Phoenix
@dataclass
class PhoenixChip:
    header: dict[str, str]
    magnitude: np.ndarray  # (rows, cols) float32, native byte order
    phase: np.ndarray  # (rows, cols) float32


def parse_header(data: bytes) -> tuple[dict[str, str], int]:
    """Parse the Phoenix header; return ``(fields, header_length)``.

    Raises:
        RejectFile: ``bad_header`` if the markers or ``PhoenixHeaderLength`` are missing or inconsistent.
    """
    if _HEADER_START not in data[:64]:
        raise RejectFile("bad_header", "no [PhoenixHeaderVer..] marker in the first 64 bytes")
    end = data.find(_HEADER_END)
    if end < 0:
        raise RejectFile("bad_header", "no [EndofPhoenixHeader] line (file truncated inside the header?)")
    end += len(_HEADER_END)
    fields: dict[str, str] = {}
    for line in data[:end].decode("latin-1").split("\n"):
        if "=" in line:
            k, v = line.split("=", 1)
            fields[k.strip()] = v.strip()
    try:
        length = int(fields["PhoenixHeaderLength"])
    except (KeyError, ValueError):
        raise RejectFile("bad_header", "PhoenixHeaderLength missing or not an integer") from None
    if length != end:
        raise RejectFile(
            "bad_header", f"PhoenixHeaderLength={length} but the header ends at byte {end}; file is corrupt"
        )
    return fields, length


def _int_field(header: Mapping[str, str], name: str) -> int:
    try:
        return int(header[name])
    except (KeyError, ValueError):
        raise RejectFile("bad_header", f"header field {name} missing or not an integer") from None


def parse_phoenix(data: bytes, verify_md5: bool = True) -> PhoenixChip:
    """Decode a whole Phoenix chip file (header, big-endian magnitude then phase).

    Raises:
        RejectFile: ``bad_header``, ``truncated``, ``size_mismatch``, ``checksum_mismatch``, ``unsupported``,
            ``bad_values``.
    """
    header, hlen = parse_header(data)
    rows = _int_field(header, "NumberOfRows")
    cols = _int_field(header, "NumberOfColumns")
    try:
        native = int(header.get("native_header_length", "0") or 0)
    except ValueError:
        raise RejectFile("bad_header", "native_header_length is not an integer") from None
    if native != 0:
        raise RejectFile(
            "unsupported", f"native_header_length={native} marks a clutter scene (uint16 payload), not a chip"
        )
    if rows <= 0 or cols <= 0:
        raise RejectFile("bad_header", f"NumberOfRows={rows}, NumberOfColumns={cols}")
    need = hlen + 8 * rows * cols
    sig = header.get("PhoenixSigSize", "")
    sig_size = int(sig) if sig.isascii() and sig.isdigit() else None  # "²".isdigit() but int("²") fails
    if sig_size is not None and len(data) < sig_size:
        raise RejectFile("truncated", f"{len(data)} bytes but PhoenixSigSize={sig_size}; the copy is incomplete")
    if sig_size is not None and sig_size != len(data):
        raise RejectFile("size_mismatch", f"PhoenixSigSize={sig_size} but the file has {len(data)} bytes")
    if len(data) != need:
        kind = "size_mismatch" if sig_size is not None else ("truncated" if len(data) < need else "size_mismatch")
        raise RejectFile(
            kind, f"file has {len(data)} bytes but the header's {rows}x{cols} float32 magnitude+phase needs {need}"
        )
    if verify_md5 and "Chip_MD5_CheckSum" in header:
        md5 = hashlib.md5(data[hlen:]).hexdigest()  # noqa: S324 - the format's own checksum
        if md5 != header["Chip_MD5_CheckSum"].lower():
            raise RejectFile(
                "checksum_mismatch",
                f"MD5 of payload {md5} != Chip_MD5_CheckSum {header['Chip_MD5_CheckSum']} (corrupt copy; "
                "re-download, or ingest with -o verify_md5=false to accept it)",
            )
    n = rows * cols
    mag = np.frombuffer(data, ">f4", n, hlen).reshape(rows, cols).astype(np.float32)
    phase = np.frombuffer(data, ">f4", n, hlen + 4 * n).reshape(rows, cols).astype(np.float32)
    if not (np.isfinite(mag).all() and np.isfinite(phase).all()):
        raise RejectFile("bad_values", "non-finite magnitude or phase")
    if mag.max() > MAX_SANE_MAGNITUDE or mag.min() < 0:
        raise RejectFile(
            "bad_values", f"magnitude range [{mag.min():.3g}, {mag.max():.3g}] (wrong byte order or not a chip)"
        )
    return PhoenixChip(header, mag, phase)


def write_phoenix(
    path: str | Path, magnitude: np.ndarray, phase: np.ndarray, fields: Mapping[str, str | int | float]
) -> None:
    """Write a Phoenix chip (demo data and test fixtures): measured header length, big-endian payload, MD5.

    ``fields`` are written in order after the fixed leading fields; sizes and checksum are computed here.
    """
    rows, cols = magnitude.shape
    payload = magnitude.astype(">f4").tobytes() + phase.astype(">f4").tobytes()
    md5 = hashlib.md5(payload).hexdigest()  # noqa: S324 - the format's own checksum

    def render(hlen: int) -> bytes:
        lines = [
            "",
            "[PhoenixHeaderVer01.04]",
            f"PhoenixHeaderLength= {hlen:05d}",
            f"PhoenixSigSize= {hlen + len(payload):08d}",
            "PhoenixSigNum= 0001",
            "PhoenixHeaderCallingSequence= ",
            "HeaderVersionNumber= 2CM",
            "native_header_length= 0",
            f"Chip_MD5_CheckSum= {md5}",
            f"NumberOfColumns= {cols}",
            f"NumberOfRows= {rows}",
        ]
        lines += [f"{k}= {v}" for k, v in fields.items()]
        lines.append("[EndofPhoenixHeader]")
        return ("\n".join(lines) + "\n").encode("ascii")

    hlen = len(render(0))  # fixed-width fields: the length does not change with the values
    header = render(hlen)
    assert len(header) == hlen
    Path(path).write_bytes(header + payload)


# ----------------------------------------------------------------------------------------------- adapter
@dataclass(frozen=True)
class MSTAROptions:
    verify_md5: bool = True


class MSTAR(Source):
    id = "mstar"
    version = "1.0.0"
    description = "MSTAR raw Phoenix chips (AFRL SDMS) and MSTAR-10 JPEG chip folders, auto-detected"
    classes = CLASSES
    Options = MSTAROptions

    def skip_reasons(self, rels: list[str]) -> dict[str, str]:
        out = super().skip_reasons(rels)
        # a preview JPG beside a raw chip of the same stem (HB14931.JPG next to HB14931.000)
        raw = {}
        for rel in rels:
            p = Path(rel)
            if p.suffix[1:].isdigit():
                raw[(p.parent, p.stem.lower())] = p.name
        for rel in rels:
            p = Path(rel)
            chip = raw.get((p.parent, p.stem.lower()))
            if rel not in out and p.suffix.lower() in (".jpg", ".jpeg") and chip:
                out[rel] = f"preview: JPEG preview of raw chip {chip}"
        return out

    def read(self, unit: FileUnit) -> list[Sample]:
        data = unit.data()
        kind = sniff(data[:600])
        if kind == "phoenix":
            return [self._read_raw(unit, data)]
        if kind == "jpeg":
            return [self._read_jpeg(unit, data)]
        raise RejectFile("bad_format", f"neither a Phoenix chip nor a JPEG (content sniffed as {kind})")

    def _read_raw(self, unit: FileUnit, data: bytes) -> Sample:
        chip = parse_phoenix(data, verify_md5=self.options.verify_md5)
        h = chip.header
        target = h.get("TargetType", "").lower()
        if target in CALIBRATION_TARGETS:
            raise SkipFile("calibration", f"TargetType={target} is the SLICY calibration object, not a class")
        label = TARGET_TYPES.get(target)
        if label is None:
            raise RejectFile("unknown_class", f"TargetType={target!r} is not one of {sorted(TARGET_TYPES)}")
        meta: dict = {
            "target_type": target,
            "serial": h.get("TargetSerNum"),
            "measured_depression": parse_float(h.get("MeasuredDepression")),
            "collection_date": h.get("CollectionDate"),
            "center_frequency": h.get("CenterFrequency"),
            "header_filename": h.get("Filename"),
            "radiometry_note": "img = linear magnitude; cplx = magnitude * exp(i * phase)",
        }
        folder_classes = {c for c in (canonical_class(x) for x in unit.parts[:-1]) if c}
        if folder_classes and label not in folder_classes:
            meta["warning"] = f"folder class {sorted(folder_classes)} disagrees with TargetType {target}"
        depression = parse_float(h.get("DesiredDepression"))
        folder_deg = next((p.split("_")[0] for p in unit.parts if p.upper().endswith("_DEG")), None)
        if folder_deg is not None:
            meta["folder_depression"] = folder_deg
        split = SPLIT_BY_DEPRESSION.get(int(round(depression)) if depression is not None else -1, "pool")
        mag, cplx = chip.magnitude, (chip.magnitude * np.exp(1j * chip.phase)).astype(np.complex64)
        return Sample(
            arrays={"img": mag[None], "cplx": cplx[None]},
            split=split,
            label_name=label,
            columns={
                "radiometry": "amplitude",
                "scale": "linear",
                "sensor": h.get("SensorName") or "MSTAR",
                "band": "X",
                "pol": h.get("Polarization") or "HH",
                "depression_deg": depression,
                "azimuth_deg": parse_float(h.get("TargetAz")),
                "pixel_spacing_m": [
                    parse_float(h.get("RangePixelSpacing")),
                    parse_float(h.get("CrossRangePixelSpacing")),
                ],
            },
            meta=meta,
        )

    def _read_jpeg(self, unit: FileUnit, data: bytes) -> Sample:
        folders = unit.parts[:-1]
        label = next((c for c in (canonical_class(f) for f in reversed(folders)) if c), None)
        if label is None:
            raise RejectFile(
                "unknown_class",
                f"no MSTAR class folder in {'/'.join(folders) or '(root)'}; expected one of "
                "2S1 BMP2 BRDM_2 BTR60 BTR70 D7 T62 T72 ZIL131 ZSU_23_4",
            )
        split = next((f.lower() for f in reversed(folders) if f.lower() in ("train", "test")), "pool")
        img, meta = decode_image(data, expect=("jpeg",))
        return Sample(
            arrays={"img": img},
            split=split,
            label_name=label,
            columns={"radiometry": "display8", "scale": "uint8", "sensor": "MSTAR", "band": "X", "pol": "HH"},
            meta=meta,
        )
