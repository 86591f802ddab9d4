"""``sardata bench loader``: samples/s and peak RSS of three ways to feed the same training samples, same run.

(a) **raw**: the original JPEG files → PIL decode → /255 → GR on the CPU, one sample at a time (what a trainer does
    without shards); (b) **webdataset**: stock ``webdataset.WebDataset`` over the same shards, decoding ``img.npy``,
    the precomputed ``gr.npy`` and ``cls``; (c) **sardata**: :class:`~sardata.stream.dataset.ShardIterable` with the
    same fields. Each with 0 and 2 DataLoader workers, each in a fresh process so its peak RSS (``VmHWM`` of the
    main process) is its own; throughput is steady state (timed from the first delivered item, which is not
    counted, so worker start-up is excluded). The data are the synthetic demo chips (ingest + build-shards with GR),
    at two sizes to show RSS stays flat.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from torch.utils.data import IterableDataset

from sardata.errors import ConfigError

EPOCHS = 3  # passes per configuration, so short runs still reach a steady state
SIZE = 128  # chip side in pixels (MSTAR chips are 128 px)


def _hwm_mb() -> float:
    text = Path("/proc/self/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", text).group(1)) / 1024


def _raw_iter(root: Path, worker: int = 0, workers: int = 1):
    """Every ``workers``-th file from ``worker`` on, decoded and with its GR (a worker skips others' files
    *before* decoding them)."""
    import numpy as np
    import torch
    from PIL import Image

    from sardata.features.gr import gr_maps

    torch.set_num_threads(1)
    for path in sorted(root.rglob("*.jpeg"))[worker::workers]:
        img = np.asarray(Image.open(path), dtype=np.float32) / 255
        yield img, gr_maps(torch.from_numpy(img)[None, None])[0]


def _child(kind: str, data: str, workers: int, batch: int) -> None:
    """Run one configuration and print ``samples seconds peak_rss_mb`` (executed in a fresh interpreter)."""
    import torch
    from torch.utils.data import DataLoader

    torch.set_num_threads(1)
    root = Path(data)
    if kind == "raw":

        class Raw(IterableDataset):
            def __iter__(self):
                info = torch.utils.data.get_worker_info()
                yield from _raw_iter(root / "data" / "jpeg", *((0, 1) if info is None else (info.id, info.num_workers)))

        loader = DataLoader(Raw(), batch_size=batch, num_workers=workers)
    elif kind == "webdataset":
        try:
            import webdataset as wds
        except ImportError as exc:
            raise ConfigError(
                "the stock-webdataset baseline needs the bench extra: pip install 'sardata[bench]'"
            ) from exc

        urls = sorted(str(p) for p in (root / "ds" / "shards").glob("*.tar"))
        stock = wds.WebDataset(urls, shardshuffle=False, empty_check=False, workersplitter=wds.split_by_worker)
        loader = DataLoader(stock.decode().to_tuple("img.npy", "gr.npy", "cls"), batch_size=batch, num_workers=workers)
    elif kind == "handover":
        loader = DataLoader(_Handover(root / "ds", batch), batch_size=None, num_workers=workers)
    else:  # "sardata" (default verify="shard") or "sardata-off" (verify="off": the cost of the integrity check)
        from sardata.stream.dataset import ShardIterable

        fields = ("img.npy", "gr.npy", "cls")  # what the other two deliver
        verify = "off" if kind == "sardata-off" else "shard"  # sardata-warm: "shard", markers already there
        ds = ShardIterable(root / "ds", batch, split=None, num_workers=workers, shuffle=False, fields=fields,
                           verify=verify)  # fmt: skip
        loader = DataLoader(ds, batch_size=None, num_workers=workers)
    # steady state: the clock starts when the first item arrives (worker start-up excluded), that item not counted
    n, t0 = 0, None
    for epoch in range(EPOCHS):
        if kind.startswith("sardata"):
            ds.set_epoch(epoch)
        for item in loader:
            if t0 is None:
                t0 = time.perf_counter()
                continue
            n += len(item["__key__"]) if kind.startswith(("sardata", "handover")) else len(item[0])  # batches
    print(n, time.perf_counter() - t0, _hwm_mb())


class _Handover(IterableDataset):
    """sardata's batches with nothing read: in each worker, tensors of the same shapes and dtypes (the small ones
    sharing one storage, as the loader does) are allocated in shared memory and filled, then handed over. Its rate
    is what moving these bytes from workers to the main process costs on this machine — the ceiling of any
    worker-based loader that delivers them."""

    def __init__(self, root: Path, batch: int) -> None:
        from sardata.stream.dataset import ShardIndex, read_stacked

        index = ShardIndex(root, None, fields=("img.npy", "gr.npy", "cls"))
        self.steps = len(index) // batch
        extras = [{"valid": True, "__index__": i, "__epoch__": 0} for i in range(batch)]
        self.template = read_stacked([(index, i) for i in range(batch)], extras)

    def __iter__(self):
        import numpy as np
        import torch

        from sardata.stream.dataset import batch_tensor, one_storage

        info = torch.utils.data.get_worker_info()
        worker, n = (0, 1) if info is None else (info.id, info.num_workers)
        for _ in range(worker, self.steps, n):
            out, small = {}, {}
            for k, v in self.template.items():
                if not isinstance(v, torch.Tensor):
                    out[k] = list(v)
                elif v.nbytes > 1 << 16:
                    out[k] = batch_tensor(tuple(v.shape), np.dtype(v.numpy().dtype), info is not None).fill_(1)
                else:
                    small[k] = v.clone()
            yield out | (one_storage(small) if info is not None else small)


def _measure(kind: str, data: Path, workers: int, batch: int = 32, marks: Path | None = None) -> dict[str, Any]:
    """One configuration in a fresh interpreter, so its peak RSS is its own.

    ``marks``: the verified-shard marker directory (``SARDATA_VERIFIED_DIR``). ``sardata`` starts it empty (every
    shard is hashed once in the timed run: the cold cost), ``sardata-warm`` reuses it (shards verified before)."""
    import os

    env = dict(os.environ)
    if marks is not None:
        if kind == "sardata":
            shutil.rmtree(marks, ignore_errors=True)
        env["SARDATA_VERIFIED_DIR"] = str(marks)
    code = f"from sardata.bench.stream import _child; _child({kind!r}, {str(data)!r}, {workers}, {batch})"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=1800, env=env)
    if out.returncode:
        raise RuntimeError(f"bench {kind} with {workers} workers failed: {out.stderr.strip()[-800:]}")
    n, secs, hwm = out.stdout.split()[-3:]
    return {"kind": kind, "workers": workers, "samples": int(n), "samples_per_s": int(n) / float(secs),
            "peak_rss_mb": float(hwm)}  # fmt: skip


def make_data(root: Path, per_class: int) -> Path:
    """Demo chips (JPEG layout) → ingest → shards with precomputed GR."""
    from sardata.ingest import ingest
    from sardata.shards.build import BuildConfig, build_shards
    from sardata.sim.sar_targets import write_demo_dataset

    write_demo_dataset(root / "data", per_class=per_class, size=SIZE, nonsquare=False)  # stackable batches
    ingest("mstar", root / "data" / "jpeg", root / "ingest", workers=2)
    build_shards([root / "ingest"], root / "ds", BuildConfig(targets=("gr",), max_shard_bytes=16 << 20), workers=2)
    return root


def bench_loader(per_class: int = 64, grow: int = 10, workers: tuple[int, ...] = (0, 2)) -> dict[str, Any]:
    """Rows for every (pipeline, workers) plus the sardata loader's RSS on a ``grow``× larger dataset."""
    tmp = Path(tempfile.mkdtemp(prefix="sardata-bench-loader-"))
    try:
        small = make_data(tmp / "small", per_class)
        kinds = ("raw", "webdataset", "sardata", "sardata-warm", "sardata-off", "handover")
        rows = [_measure(kind, small, w, marks=tmp / f"verified-{w}") for w in workers for kind in kinds
                if kind != "handover" or w > 0]  # fmt: skip
        large = make_data(tmp / "large", per_class * grow)
        big = _measure("sardata", large, workers[-1], marks=tmp / "verified-large")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"rows": rows, "grown": big, "grow": grow}
