#!/usr/bin/env python3
"""Write the tiny OpenSARShip fixture (``sources.md`` §8 recipe) into ``OpenSARShip/``.

Two scene zips: a GRDH 1SDV zip with a top folder + ``Metedata.xml`` and a ``(1)`` in its name, and a flat SLC
1SDV zip (4-band I/Q patches); 2–3 ships each incl. ``Other Type``; a ``Patch_RGB`` ``.tif`` holding PNG bytes;
``Ship.xml`` closed with the real files' ``<\\ShipList>`` quirk. Seeded; zip entries carry a fixed timestamp.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
GRD = "S1A_IW_GRDH_1SDV_20160131T101646_20160131T101715_009737_00E392_36F7"
SLC = "S1A_IW_SLC__1SDV_20160606T221231_20160606T221258_011596_011B8A_3FF3"


def _tiff(arr: np.ndarray) -> bytes:
    from rasterio.io import MemoryFile

    with MemoryFile() as mem:
        with mem.open(
            driver="GTiff", width=arr.shape[2], height=arr.shape[1], count=arr.shape[0], dtype=arr.dtype
        ) as ds:
            ds.write(arr)
        return mem.read()


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr, mode="L").save(buf, format="PNG")
    return buf.getvalue()


def _ship_xml(ships: list[tuple[int, int, str]]) -> bytes:
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\r\n<ShipList>\r\n']
    for x, y, name in ships:
        parts.append(
            f"\t<ship>\r\n\t\t<SARShipInformation>\r\n\t\t\t<Center_x>{x}</Center_x>\r\n\t\t\t<Center_y>{y}</Center_y>\r\n"
            f"\t\t\t<Incidence>{30 + x % 7}.5</Incidence>\r\n\t\t</SARShipInformation>\r\n\t\t<AISShipInformation>\r\n"
            f"\t\t\t<MMSI>{100000000 + x}</MMSI>\r\n\t\t\t<Name>{name}</Name>\r\n\t\t</AISShipInformation>\r\n\t</ship>\r\n"
        )
    parts.append("<\\ShipList>")  # sic: the real files close with a backslash
    return "".join(parts).encode()


def _zip(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(members):
            info = zipfile.ZipInfo(name, date_time=(2016, 1, 31, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, members[name])


def generate(root: Path) -> list[Path]:
    rng = np.random.default_rng(8)
    root.mkdir(parents=True, exist_ok=True)
    grd: dict[str, bytes] = {f"{GRD}/Metedata.xml": b"<product/>", f"{GRD}/ReadMe.pdf": b"%PDF-1.4\n"}
    grd_ships = [(101, 202, "Cargo"), (303, 404, "Other Type"), (505, 606, "Tanker")]
    for x, y, cls in grd_ships:
        n = 13 + x % 5
        stem = f"{cls}_x{x}_y{y}"
        grd[f"{GRD}/Patch_Cal/{stem}.tif"] = _tiff(rng.exponential(0.01, (2, n, n)).astype(np.float32))
        grd[f"{GRD}/Patch/{stem}.tif"] = _tiff(np.round(rng.exponential(80, (2, n, n))).astype(np.float32))
        for pol in ("vh", "vv"):
            grd[f"{GRD}/Patch_Uint8/Visual_{stem}_{pol}.tif"] = _tiff(rng.integers(0, 255, (1, n, n), dtype=np.uint8))
            grd[f"{GRD}/Patch_RGB/{stem}_{pol}.tif"] = _png(rng.integers(0, 255, (n, n), dtype=np.uint8))  # PNG bytes
    grd[f"{GRD}/Ship.xml"] = _ship_xml(grd_ships)
    slc: dict[str, bytes] = {f"{SLC}.xml": b"<product/>"}
    slc_ships = [(25277, 9768, "Cargo"), (25333, 9930, "Other Type")]
    for x, y, cls in slc_ships:
        stem = f"{cls}_x{x}_y{y}"
        slc[f"Patch_Cal/{stem}.tif"] = _tiff(rng.exponential(0.02, (2, 16, 16)).astype(np.float32))
        slc[f"Patch/{stem}.tif"] = _tiff(np.round(rng.normal(0, 500, (4, 16, 16))).astype(np.float32))  # I,Q,I,Q
        slc[f"Patch_RGB/{stem}_vh.png"] = _png(rng.integers(0, 255, (16, 16), dtype=np.uint8))
    slc["Ship.xml"] = _ship_xml(slc_ships)
    _zip(root / f"{GRD}(1).zip", grd)
    _zip(root / f"{SLC}.zip", slc)
    return sorted(root.glob("*.zip"))


def main() -> None:
    shutil.rmtree(HERE / "OpenSARShip", ignore_errors=True)
    for path in generate(HERE / "OpenSARShip"):
        print(hashlib.sha256(path.read_bytes()).hexdigest(), path.relative_to(HERE))


if __name__ == "__main__":
    main()
