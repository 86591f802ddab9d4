"""Contact sheets (matplotlib, Agg backend) for looking at ingested data and built datasets.

Both sheets take an ingest output *or* a built dataset (``build-shards`` output: arrays are read from the shards
through the index) and show what is stored: a built dataset's ``gr.npy`` is decoded and drawn at the radii its
card records; GR is computed only where nothing is stored (an ingest output, a build without ``--targets gr``, or
image files), at the paper's radii, and the panel titles say which.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from sardata.manifest.io import read_card, read_table
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
    table = read_table(root / "samples.parquet", "samples")
    df = table.to_pandas() if is_built(root) else table.select(["key", "label_name", "store_path", "scale"]).to_pandas()
    df["label_name"] = df["label_name"].fillna("(none)")
    groups = {name: g.head(per_class) for name, g in df.groupby("label_name", sort=True)}
    fig, axes = plt.subplots(len(groups), per_class, figsize=(1.6 * per_class, 1.7 * len(groups)), squeeze=False)
    for r, (name, g) in enumerate(groups.items()):
        for c in range(per_class):
            ax = axes[r][c]
            ax.axis("off")
            if c < len(g):
                row = g.iloc[c]
                ax.imshow(display_image(_arrays(root, row)["img"], row.scale), cmap="gray")
                if c == 0:
                    ax.set_title(name, fontsize=8, loc="left")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def is_built(root: Path) -> bool:
    """A ``build-shards`` output (arrays in shards) rather than an ingest output (arrays in the store)."""
    return (root / "shards.parquet").is_file()


def _arrays(root: Path, row: object) -> dict[str, np.ndarray]:
    """A sample's arrays by field stem (``img``, ``gr``…), from the store or from the shards."""
    if not is_built(root):
        return load_arrays(root, row.store_path)  # type: ignore[attr-defined]
    from sardata.shards.reader import read_sample

    record = {"shard": row.shard, "key": row.key, "members": list(row.members)}  # type: ignore[attr-defined]
    return {k.split(".")[0]: v for k, v in read_sample(root, record).items() if k.endswith(".npy")}


def gr_items(source: Path, n: int) -> list[tuple[str, np.ndarray, np.ndarray | None, tuple[int, ...]]]:
    """(label, [0,1] image, stored GR maps or None, their radii) from an ingest output, a built dataset or image
    files."""
    from sardata.features.grcodec import GR_RADII, decode_gr

    if source.is_dir():
        df = read_table(source / "samples.parquet", "samples").to_pandas().head(n)
        card = read_card(source) if is_built(source) else {}
        radii = tuple(card.get("features", {}).get("gr", {}).get("radii") or GR_RADII)
        out = []
        for row in df.itertuples():
            arrays = _arrays(source, row)
            gr = decode_gr(arrays["gr"]) if "gr" in arrays else None
            out.append((row.key, gr_input(arrays["img"]), gr, radii if gr is not None else GR_RADII))
        return out
    from sardata.sources import decode_image

    img, _ = decode_image(source.read_bytes())
    return [(source.name, gr_input(img), None, GR_RADII)]


def gr_sheet(sources: list[str | os.PathLike[str]], out: str | os.PathLike[str], n: int = 4) -> Path:
    """PNG contact sheet: each row an image and its GR maps (stored ones where a built dataset has them, else
    computed at the paper's radii 5, 9, 13, 17), one shared colour scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from sardata.features.gr import gr_maps

    items = [item for src in sources for item in gr_items(Path(src), n)][:n]
    maps = [gr if gr is not None else gr_maps(torch.from_numpy(img)[None, None], radii)[0].numpy()
            for _, img, gr, radii in items]  # fmt: skip
    vmax = max(float(m.max()) for m in maps) if maps else 1.0
    cols = 1 + max((len(r) for *_, r in items), default=4)
    fig, axes = plt.subplots(len(items), cols, figsize=(2.2 * cols, 2.3 * len(items)), squeeze=False)
    for r, ((name, img, gr, radii), m) in enumerate(zip(items, maps, strict=True)):
        axes[r][0].imshow(img, cmap="gray", vmin=0, vmax=1)
        axes[r][0].set_title(name[-28:], fontsize=7)
        for s, k in enumerate(radii):
            axes[r][s + 1].imshow(m[s], cmap="magma", vmin=0, vmax=vmax)
            axes[r][s + 1].set_title(f"GR k={k} ({'stored' if gr is not None else 'computed'})", fontsize=7)
        for ax in axes[r]:
            ax.axis("off")
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
