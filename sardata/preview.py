"""Contact sheets (matplotlib, Agg backend) for looking at ingested data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from sardata.manifest.io import read_table
from sardata.radiometry import gr_input
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


def _load_for_gr(source: Path, n: int) -> list[tuple[str, np.ndarray]]:
    """(label, [0,1] image) pairs from an ingest directory or from image files."""
    if source.is_dir():
        df = read_table(source / "samples.parquet", "samples").select(["key", "store_path"]).to_pandas()
        return [(row.key, gr_input(load_arrays(source, row.store_path)["img"])) for row in df.head(n).itertuples()]
    from sardata.sources import decode_image

    img, _ = decode_image(source.read_bytes())
    return [(source.name, gr_input(img))]


def gr_sheet(sources: list[str | os.PathLike[str]], out: str | os.PathLike[str], n: int = 4) -> Path:
    """PNG contact sheet: each row an image and its four GR maps (radii 5, 9, 13, 17), one shared colour scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from sardata.features.gr import GR_RADII, gr_maps

    items = [item for src in sources for item in _load_for_gr(Path(src), n)][:n]
    maps = [gr_maps(torch.from_numpy(img)[None, None])[0].numpy() for _, img in items]
    vmax = max(float(m.max()) for m in maps) if maps else 1.0
    fig, axes = plt.subplots(
        len(items), 1 + len(GR_RADII), figsize=(2.2 * (1 + len(GR_RADII)), 2.3 * len(items)), squeeze=False
    )
    for r, ((name, img), m) in enumerate(zip(items, maps, strict=True)):
        axes[r][0].imshow(img, cmap="gray", vmin=0, vmax=1)
        axes[r][0].set_title(name[-28:], fontsize=7)
        for s, k in enumerate(GR_RADII):
            axes[r][s + 1].imshow(m[s], cmap="magma", vmin=0, vmax=vmax)
            axes[r][s + 1].set_title(f"GR k={k}", fontsize=8)
        for ax in axes[r]:
            ax.axis("off")
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
