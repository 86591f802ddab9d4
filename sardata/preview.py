"""Contact sheets (matplotlib, Agg backend) for looking at ingested data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from sardata.manifest.io import read_table
from sardata.store import load_arrays


def display_image(img: np.ndarray, scale: str | None) -> np.ndarray:
    """A 2-D array for display: 8-bit data as is, linear amplitude/intensity in dB over a 50 dB range."""
    plane = img[0].astype(np.float64)
    if scale == "uint8" or img.dtype == np.uint8:
        return plane
    db = 20 * np.log10(np.maximum(plane, 1e-8))
    return np.clip(db, db.max() - 50, None)


def sample_sheet(root: str | os.PathLike[str], out: str | os.PathLike[str], per_class: int = 6) -> Path:
    """Write a PNG grid of ``per_class`` samples (first by key) per class of an ingest output."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    root, out = Path(root), Path(out)
    df = (
        read_table(root / "samples.parquet", "samples").select(["key", "label_name", "store_path", "scale"]).to_pandas()
    )
    df["label_name"] = df["label_name"].fillna("(none)")
    groups = {name: g.head(per_class) for name, g in df.groupby("label_name", sort=True)}
    fig, axes = plt.subplots(len(groups), per_class, figsize=(1.6 * per_class, 1.7 * len(groups)), squeeze=False)
    for r, (name, g) in enumerate(groups.items()):
        for c in range(per_class):
            ax = axes[r][c]
            ax.axis("off")
            if c < len(g):
                row = g.iloc[c]
                ax.imshow(display_image(load_arrays(root, row.store_path)["img"], row.scale), cmap="gray")
                if c == 0:
                    ax.set_title(name, fontsize=8, loc="left")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
