"""``sardata bench build-shards``: build throughput against a plain sequential tar write, same run.

Baseline: the exact member bytes of every sample (read from the built dataset beforehand, held in memory) written
sequentially with ``tarfile`` into one archive — no planning, hashing, fsync, index or splits, no decoding. With
``--targets gr`` the baseline also computes every sample's GR maps first, in the same process, exactly as the
build does (from the built ``img.npy``: :func:`sardata.radiometry.gr_input`, :func:`sardata.features.gr.gr_maps`
on one thread, :func:`~sardata.features.gr.encode_gr`), and writes those bytes: tar write + the same GR
computation. sardata's build does everything: reads the sample store, encodes, plans, writes reproducible
shards with offsets and sha256 (fsynced, atomic), and the index, with ``workers`` processes.

With ``engine="ray"`` the same build also runs through Ray Data (:mod:`sardata.engines.ray`) on the same data in
the same run: Ray's start-up (``ray.init`` of a local instance, or connecting to ``RAY_ADDRESS``) is timed
separately, each Ray build includes its actor-pool start, and the Ray output is compared byte for byte with the
local one (``ray_identical``).
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

from sardata.engines import check_engine, import_ray
from sardata.manifest.io import read_table
from sardata.shards.build import BuildConfig, build_shards
from sardata.shards.writer import read_member


def bench_build_shards(ingest_dirs: list[str | os.PathLike[str]], workers: int = 2, repeat: int = 1,
                       cfg: BuildConfig | None = None, engine: str = "local") -> dict[str, Any]:  # fmt: skip
    """Time a full build and the sequential-tar baseline on the same payload (and, with ``engine="ray"``, the
    Ray build of the same data); return figures and ratios."""
    check_engine(engine)
    cfg = cfg or BuildConfig()
    tmp = Path(tempfile.mkdtemp(prefix="sardata-bench-"))
    try:
        best = float("inf")
        for _ in range(max(1, repeat)):
            shutil.rmtree(tmp / "ds", ignore_errors=True)
            t0 = time.perf_counter()
            result = build_shards(ingest_dirs, tmp / "ds", cfg, workers=workers)
            best = min(best, time.perf_counter() - t0)
        payload = _payload(tmp / "ds")
        nbytes = sum(len(d) for _, d in payload)
        base = float("inf")
        for _ in range(max(1, repeat)):
            t0 = time.perf_counter()
            members = _with_gr(payload, cfg) if "gr" in cfg.targets else payload
            with tarfile.open(tmp / "plain.tar", "w") as tf:
                for name, data in members:
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    tf.addfile(info, io.BytesIO(data))
            base = min(base, time.perf_counter() - t0)
        ray = (
            _bench_ray(ingest_dirs, tmp, cfg, workers, repeat, result.samples, nbytes, best) if engine == "ray" else {}
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ray | {
        "samples": result.samples, "shards": result.shards, "payload_mb": nbytes / 1e6, "workers": workers,
        "build_samples_per_s": result.samples / best, "build_mb_per_s": nbytes / 1e6 / best,
        "tar_samples_per_s": result.samples / base, "tar_mb_per_s": nbytes / 1e6 / base,
        "build_vs_tar": base / best,
    }  # fmt: skip


def _bench_ray(ingest_dirs: list[str | os.PathLike[str]], tmp: Path, cfg: BuildConfig, workers: int, repeat: int,
               samples: int, nbytes: int, local_s: float) -> dict[str, Any]:  # fmt: skip
    """Ray start-up and the best of ``repeat`` Ray builds into ``tmp/ds-ray``; compared with ``tmp/ds``."""
    ray = import_ray()
    started = not ray.is_initialized()
    t0 = time.perf_counter()
    if started:
        ray.init(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    startup = time.perf_counter() - t0
    try:
        cpus = int(ray.cluster_resources().get("CPU", 0))
        best = float("inf")
        for _ in range(max(1, repeat)):
            shutil.rmtree(tmp / "ds-ray", ignore_errors=True)
            t0 = time.perf_counter()
            build_shards(ingest_dirs, tmp / "ds-ray", cfg, workers=workers, engine="ray")
            best = min(best, time.perf_counter() - t0)
    finally:
        if started:
            ray.shutdown()
    return {
        "ray_startup_s": startup, "ray_cpus": cpus, "ray_samples_per_s": samples / best,
        "ray_mb_per_s": nbytes / 1e6 / best, "ray_vs_local": local_s / best,
        "ray_identical": _same_output(tmp / "ds", tmp / "ds-ray"),
    }  # fmt: skip


def _same_output(a: Path, b: Path) -> bool:
    """Shards and tables byte-identical (the card differs only in its wall-clock ``created_at``)."""
    names = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file() and p.name != "dataset.json")
    others = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file() and p.name != "dataset.json")
    return names == others and all((a / n).read_bytes() == (b / n).read_bytes() for n in names)


def _with_gr(payload: list[tuple[str, bytes]], cfg: BuildConfig) -> list[tuple[str, bytes]]:
    """The payload with every ``gr.npy`` computed again from its sample's ``img.npy`` (the build's computation,
    one thread): the GR half of the baseline."""
    import numpy as np
    import torch

    from sardata.features.gr import encode_gr, gr_maps
    from sardata.radiometry import gr_input
    from sardata.shards.codecs import decode_npy, encode_npy

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        images = {name.rsplit(".", 2)[0]: data for name, data in payload if name.endswith(".img.npy")}
        out = []
        for name, data in payload:
            if name.endswith(".gr.npy"):
                key = name.rsplit(".", 2)[0]
                img = decode_npy(images[key])
                plane = img[0] if cfg.normalise else gr_input(img)
                tensor = torch.from_numpy(np.ascontiguousarray(plane))[None, None]
                data = encode_npy(
                    encode_gr(gr_maps(tensor, cfg.resolved_gr_radii, keys=[key])[0].numpy(), cfg.gr_codec)
                )
            out.append((name, data))
        return out
    finally:
        torch.set_num_threads(threads)


def _payload(root: Path) -> list[tuple[str, bytes]]:
    out = []
    for row in read_table(root / "samples.parquet", "samples").select(["key", "shard", "members"]).to_pylist():
        path = root / "shards" / row["shard"]
        out += [(f"{row['key']}.{m['field']}", read_member(path, m["offset"], m["size"])) for m in row["members"]]
    return out
