#!/usr/bin/env python3
"""Write the tiny SARSim fixture (``sources.md`` §3 recipe; the real layout is unverified).

Two trees, so each form is ingested on its own:

* ``SARSim/`` — the SAR-JEPA repackage (unlabelled): ``grass_290.png``, ``road_17.png``, ``ground_3.png``,
  139×139 mode L, exactly as the recipe lists them.
* ``labelled/SARSim/<class>/<scene>/<class>_<model>_<scene>_dep<deg>_az<deg>.<ext>`` — only for testing the
  configurable parser (``-o classes=tank,truck -o pattern=...``): 8-bit PNG, 16-bit PNG, 16-bit TIFF, JPEG,
  float32 ``.npy``, plus files that must end as rows with a reason: a truncated PNG (``undecodable``), a name
  outside the pattern (``name_mismatch``), a class outside the list (``unknown_class``), a folder/name
  disagreement (``class_conflict``) and a README (skipped). Chips are 48 wide × 40 high (non-square, so a
  transposition shows).

Run ``python tests/data/sarsim/data.py``; prints the sha256 of every file. Seeded and deterministic.
"""

from __future__ import annotations

import hashlib
import io
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
UNLABELLED = ("grass_290.png", "road_17.png", "ground_3.png")
SIZE = 139
W, H = 48, 40
TREE = "labelled/SARSim"


def _speckle(rng: np.random.Generator, h: int, w: int, peak: float) -> np.ndarray:
    """Rayleigh-like clutter with one bright scatterer, as float64 in [0, peak]."""
    img = np.sqrt(rng.exponential(1.0, (h, w))) * peak / 4
    img[h // 2, w // 2] = peak
    return img.clip(0, peak)


def _png(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def generate(root: Path) -> list[Path]:
    """Write both trees under ``root``; return the files written (sorted)."""
    rng = np.random.default_rng(3024)
    files: dict[str, bytes] = {}
    for name in UNLABELLED:
        files[f"SARSim/{name}"] = _png(_speckle(rng, SIZE, SIZE, 255).astype(np.uint8))

    u8 = _speckle(rng, H, W, 255).astype(np.uint8)
    u16 = _speckle(rng, H, W, 65535).astype(np.uint16)
    u16[0, :3] = (0, 1, 65535)  # extremes of the 16-bit range
    tif16 = io.BytesIO()
    Image.fromarray(_speckle(rng, H, W, 65535).astype(np.uint16)).save(tif16, format="TIFF")
    jpg = io.BytesIO()
    Image.fromarray(_speckle(rng, H, W, 255).astype(np.uint8)).save(jpg, format="JPEG", quality=90)
    npy = io.BytesIO()
    np.save(npy, _speckle(rng, H, W, 2.0).astype(np.float32), allow_pickle=False)
    good = _png(_speckle(rng, H, W, 255).astype(np.uint8))
    files.update(
        {
            f"{TREE}/README.txt": b"SARSim fixture: labelled tree for the configurable name parser.\n",
            f"{TREE}/tank/grass/tank_m1_grass_dep15_az000.png": _png(u8),
            f"{TREE}/tank/grass/tank_m1_grass_dep15_az005.png": good[: len(good) // 2],  # truncated
            f"{TREE}/tank/road/tank_m2_road_dep17_az355.png": _png(u16),
            f"{TREE}/tank/road/preview.png": good,  # outside the pattern
            f"{TREE}/truck/ground/truck_m1_ground_dep45_az090.npy": npy.getvalue(),
            f"{TREE}/truck/ground/truck_m2_ground_dep30_az180.tif": tif16.getvalue(),
            f"{TREE}/truck/ground/truck_m2_ground_dep30.5_az185.jpg": jpg.getvalue(),
            f"{TREE}/truck/road/tank_m1_road_dep15_az010.png": good,  # folder truck, name tank
            f"{TREE}/bulldozer/grass/bulldozer_m1_grass_dep15_az000.png": good,  # class not configured
        }
    )
    written = []
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append(path)
    return sorted(written)


def main() -> None:
    shutil.rmtree(HERE / "SARSim", ignore_errors=True)
    shutil.rmtree(HERE / "labelled", ignore_errors=True)
    for path in generate(HERE):
        print(hashlib.sha256(path.read_bytes()).hexdigest(), path.relative_to(HERE))


if __name__ == "__main__":
    main()
