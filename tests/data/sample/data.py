#!/usr/bin/env python3
"""Write the tiny SAMPLE fixture (``sources.md`` §4 recipe) under ``SAMPLE_dataset_public/``.

Classes ``2s1`` and ``t72``; poses ``2s1_{real,synth}_A_elevDeg_015_azCenter_010_22_serial_b01`` and
``t72_{real,synth}_A_elevDeg_017_azCenter_079_77_serial_812``. Every pose has a 128×128 mode-L PNG in both
normalisations (``png_images/{decibel,qpm}/...``, derived from the same magnitude: dB over a 40 dB range and
quarter-power magnitude); every pose except ``t72_synth`` has a ``mat_files/.../<stem>.mat`` written by
``scipy.io.savemat`` (MATLAB v5, compressed) with all 15 variables and 128×128 complex128 images. Plus the
repo's ``README.md`` (skipped).

``savemat`` stamps the creation time into the 116-byte text header; it is overwritten with a fixed text so the
bytes are reproducible. Run ``python tests/data/sample/data.py``; prints the sha256 of every file.
"""

from __future__ import annotations

import hashlib
import io
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
TOP = "SAMPLE_dataset_public"
POSES = (  # (class, elevation, azimuth token, serial, mstar file)
    ("2s1", "015", "010_22", "b01", "HB15064.000"),
    ("t72", "017", "079_77", "812", "HB03814.015"),
)
NO_MAT = "t72_synth"
MAT_HEADER = b"MATLAB 5.0 MAT-file Platform: posix, Created on: Thu Jan  1 00:00:00 1970 (sardata fixture)"
SIZE = 128


def stem(cls: str, domain: str, elev: str, az: str, serial: str) -> str:
    return f"{cls}_{domain}_A_elevDeg_{elev}_azCenter_{az}_serial_{serial}"


def _scene(rng: np.random.Generator) -> np.ndarray:
    """Quantised clutter (compresses well) plus a target block with bright scatterers, complex128."""
    q = rng.integers(-3, 4, (2, SIZE, SIZE)) * 0.002
    img = q[0] + 1j * q[1]
    block = rng.integers(-40, 41, (2, 18, 30)) * 0.01
    img[55:73, 49:79] += block[0] + 1j * block[1]
    for y, x in rng.integers(56, 72, (4, 2)):
        img[y, x] = 1.5 * np.exp(1j * rng.uniform(0, 2 * np.pi))
    return img


def _pngs(img: np.ndarray) -> dict[str, bytes]:
    mag = np.abs(img)
    db = 20 * np.log10(mag / mag.max() + 1e-12)
    out = {"decibel": ((db.clip(-40, 0) + 40) / 40 * 255).round().astype(np.uint8)}
    qpm = np.sqrt(mag)
    out["qpm"] = (qpm / qpm.max() * 255).round().astype(np.uint8)
    encoded = {}
    for norm, arr in out.items():
        buf = io.BytesIO()
        Image.fromarray(arr, mode="L").save(buf, format="PNG")
        encoded[norm] = buf.getvalue()
    return encoded


def _mat(img: np.ndarray, cls: str, elev: str, az: str, mstar: str) -> bytes:
    from scipy.io import savemat

    variables = {
        "complex_img": img,
        "complex_img_unshifted": np.fft.ifftshift(img),
        "azimuth": float(az.replace("_", ".")),
        "elevation": float(elev),
        "bandwidth": 5.91e8,
        "center_freq": 9.6e9,
        "range_pixel_spacing": 0.202148,
        "xrange_pixel_spacing": 0.203125,
        "range_resolution": 0.3047,
        "xrange_resolution": 0.3047,
        "taylor_weights": np.array([[-35.0, 4.0]]),
        "aligned": True,
        "target_name": cls,
        "source_mstar_file": mstar,
        "explanation": "sardata fixture: synthetic stand-in for a SAMPLE pose (not AFRL data)",
    }
    buf = io.BytesIO()
    savemat(buf, variables, do_compression=True)
    data = bytearray(buf.getvalue())
    data[:116] = MAT_HEADER.ljust(116)  # drop the creation timestamp
    return bytes(data)


def generate(root: Path) -> list[Path]:
    """Write ``root/SAMPLE_dataset_public``; return the files written (sorted)."""
    rng = np.random.default_rng(1345)
    top = root / TOP
    files: dict[Path, bytes] = {top / "README.md": b"# SAMPLE dataset (sardata fixture)\n"}
    for cls, elev, az, serial, mstar in POSES:
        for domain in ("real", "synth"):
            name = stem(cls, domain, elev, az, serial)
            img = _scene(rng)
            for norm, png in _pngs(img).items():
                files[top / "png_images" / norm / domain / cls / f"{name}.png"] = png
            if f"{cls}_{domain}" != NO_MAT:
                files[top / "mat_files" / domain / cls / f"{name}.mat"] = _mat(img, cls, elev, az, mstar)
    for path, data in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return sorted(files)


def main() -> None:
    shutil.rmtree(HERE / TOP, ignore_errors=True)
    for path in generate(HERE):
        print(hashlib.sha256(path.read_bytes()).hexdigest(), path.relative_to(HERE))


if __name__ == "__main__":
    main()
