#!/usr/bin/env python3
"""Write the tiny SAR-ACD fixture (``sources.md`` §7 recipe): ``SAR-ACD/images/<6 classes>/NNN.jpg`` + README.

Run ``python tests/data/sar-acd/data.py``; prints the sha256 of every file. Seeded and deterministic.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
CLASSES = ("A220", "A320321", "A330", "ARJ21", "Boeing737", "Boeing787")
SIZES = [(76, 68), (200, 150), (35, 32), (64, 48), (50, 41), (90, 70)]  # (width, height), mostly non-square


def generate(root: Path) -> list[Path]:
    rng = np.random.default_rng(7)
    written = []
    for ci, cls in enumerate(CLASSES):
        names = ("001.jpg", "0002.jpg") if cls == "ARJ21" else ("001.jpg", "002.jpg")  # 4-digit history
        for ni, name in enumerate(names):
            w, h = SIZES[(ci + ni) % len(SIZES)]
            path = root / "images" / cls / name
            path.parent.mkdir(parents=True, exist_ok=True)
            img = (np.sqrt(rng.exponential(1.0, (h, w))) * 60).clip(0, 255).astype(np.uint8)
            Image.fromarray(img, mode="L").save(path, quality=90)
            written.append(path)
    readme = root / "README.md"
    readme.write_text("# SAR-ACD (fixture)\nSix classes of civil aircraft.\n")
    return sorted([*written, readme])


def main() -> None:
    shutil.rmtree(HERE / "SAR-ACD", ignore_errors=True)
    for path in generate(HERE / "SAR-ACD"):
        print(hashlib.sha256(path.read_bytes()).hexdigest(), path.relative_to(HERE))


if __name__ == "__main__":
    main()
