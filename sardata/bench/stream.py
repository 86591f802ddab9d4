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

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from torch.utils.data import IterableDataset

from sardata.bench.nginx import loopback_nginx
from sardata.errors import ConfigError

EPOCHS = 3  # passes per configuration, so short runs still reach a steady state
SIZE = 128  # chip side in pixels (MSTAR chips are 128 px)
SHARD_BYTES = 16 << 20  # shard size of the bench's builds (and of the peers' chunks)
RAW_SUFFIXES = {".jpeg", ".jpg", ".png"}


def _hwm_mb() -> float:
    text = Path("/proc/self/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", text).group(1)) / 1024


def _raw_iter(root: Path, worker: int = 0, workers: int = 1):
    """Every ``workers``-th file from ``worker`` on, decoded and with its GR (a worker skips others' files
    *before* decoding them). Chips of another size are resized as ``build-shards --size-policy resize`` does
    (bicubic, GR at the radii scaled to SIZE): the raw side of a ``--source`` run."""
    import numpy as np
    import torch
    from PIL import Image

    from sardata.features.gr import gr_maps
    from sardata.features.grcodec import GR_RADII, scaled_radii

    torch.set_num_threads(1)
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in RAW_SUFFIXES)
    for path in files[worker::workers]:
        im, radii = Image.open(path), GR_RADII
        if im.size != (SIZE, SIZE):
            im, radii = im.convert("L").resize((SIZE, SIZE), Image.BICUBIC), scaled_radii(SIZE)
        img = np.asarray(im, dtype=np.float32) / 255
        yield img, gr_maps(torch.from_numpy(img)[None, None], radii)[0]


def _child(kind: str, data: str, workers: int, batch: int) -> None:
    """Run one configuration and print ``samples seconds peak_rss_mb`` (executed in a fresh interpreter)."""
    import torch
    from torch.utils.data import DataLoader

    torch.set_num_threads(1)
    root = Path(data)
    from sardata.bench.peers import is_peer_row, peer_loader, random_reads

    if kind.endswith("-random"):  # map-style reads of random indices: reads/s (sardata.bench.peers)
        print(*random_reads(kind, root), _hwm_mb())
        return
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
    elif is_peer_row(kind):  # shuffled rows, LitData and MDS (sardata.bench.peers)
        loader, ds = peer_loader(kind, root, workers, batch)
    elif kind.startswith("sardata-range"):  # sardata-range-urllib: the same requests with urllib, the control
        ds = _RangeReads(root / "ds", kind.endswith("-urllib"))
        loader = DataLoader(ds, batch_size=None, num_workers=0)
    else:  # "sardata" (default verify="shard") or "sardata-off" (verify="off": the cost of the integrity check)
        ds = _sardata(kind, root, workers, batch)
        loader = DataLoader(ds, batch_size=None, num_workers=workers)
    # steady state: the clock starts when the first item arrives (worker start-up excluded), that item not counted
    n, t0 = 0, None
    for epoch in range(EPOCHS):
        if kind.startswith("sardata-http"):  # every epoch fetches every shard again: the transport's cost
            shutil.rmtree(ds.index.cache.dir, ignore_errors=True)
            ds.index.cache.dir.mkdir(parents=True)
        if kind.startswith("sardata"):
            ds.set_epoch(epoch)
        for item in loader:
            if t0 is None:
                t0 = time.perf_counter()
                continue
            n += len(item["__key__"]) if kind.startswith(("sardata", "handover")) else len(item[0])  # batches
    print(n, time.perf_counter() - t0, _hwm_mb())


def _sardata(kind: str, root: Path, workers: int, batch: int) -> Any:
    """The sardata loader of ``kind``: local shards (``sardata``, ``-warm``, ``-off``) or the same shards served by
    nginx at ``$SARDATA_BENCH_BASE`` through the cache's built-in transport (``sardata-http``) or through a trusted
    opener on the standard library's urllib (``sardata-http-urllib``: the transport before fsspec, as a control)."""
    from sardata.stream.cache import ShardCache
    from sardata.stream.dataset import ShardIterable

    fields = ("img.npy", "gr.npy", "cls")  # what the other pipelines deliver
    verify = "off" if kind == "sardata-off" else "shard"  # sardata-warm: "shard", markers already there
    remote: dict[str, Any] = {}
    if kind.startswith("sardata-http"):
        opener = _urllib_open if kind == "sardata-http-urllib" else None
        cache = ShardCache(os.environ["SARDATA_BENCH_CACHE"], opener=opener)
        remote = {"base_url": os.environ["SARDATA_BENCH_BASE"], "cache": cache}
    return ShardIterable(root / "ds", batch, split=None, num_workers=workers, shuffle=False, fields=fields,
                         verify=verify, **remote)  # fmt: skip


def _urllib_open(url: str) -> Any:
    """A whole-object GET with the standard library (picklable: a module-level function)."""
    import urllib.request

    return urllib.request.urlopen(url, timeout=60)  # noqa: S310 - bench URLs are the loopback nginx's


def _urllib_range(url: str, offset: int, size: int) -> bytes:
    """One ``Range`` GET with the standard library (the transport before fsspec, as a control)."""
    import urllib.request

    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-{offset + size - 1}"})
    with urllib.request.urlopen(request, timeout=60) as resp:  # noqa: S310 - the loopback nginx
        data = resp.read()
    if resp.status != 206 or len(data) != size:
        raise RuntimeError(f"{url}: HTTP {resp.status}, {len(data)} bytes for a {size}-byte range")
    return data


class _RangeReads(IterableDataset):
    """Map-style access over HTTP: every sample's members read one ``Range`` request each through
    :meth:`ShardCache.read_range` (or with urllib: ``use_urllib``), in a shuffled order; one item per sample
    (``__key__`` only)."""

    def __init__(self, root: Path, use_urllib: bool = False) -> None:
        from sardata.manifest.io import read_table
        from sardata.stream.cache import ShardCache

        self.base = os.environ["SARDATA_BENCH_BASE"]
        self.cache = ShardCache(os.environ["SARDATA_BENCH_CACHE"])  # ranges are never cached: it stays empty
        self.samples = read_table(root / "samples.parquet", "samples").to_pylist()
        self.read = _urllib_range if use_urllib else self.cache.read_range
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        import random

        order = list(range(len(self.samples)))
        random.Random(self.epoch).shuffle(order)
        for i in order:
            s = self.samples[i]
            url = f"{self.base}/shards/{s['shard']}"
            for m in s["members"]:
                self.read(url, m["offset"], m["size"])
            yield {"__key__": [s["key"]]}


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


def _measure(kind: str, data: Path, workers: int, batch: int = 32, marks: Path | None = None,
             served: tuple[str, Path] | None = None) -> dict[str, Any]:  # fmt: skip
    """One configuration in a fresh interpreter, so its peak RSS is its own.

    ``marks``: the verified-shard marker directory (``SARDATA_VERIFIED_DIR``). ``sardata`` starts it empty (every
    shard is hashed once in the timed run: the cold cost), ``sardata-warm`` reuses it (shards verified before).
    ``served``: (base URL of the shards' dataset on the bench's nginx, cache directory) for the remote kinds."""
    env = dict(os.environ)
    if served is not None:
        env |= {"SARDATA_BENCH_BASE": served[0], "SARDATA_BENCH_CACHE": str(served[1])}
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
    build_shards([root / "ingest"], root / "ds", BuildConfig(targets=("gr",), max_shard_bytes=SHARD_BYTES), workers=2)
    return root


def make_source_data(root: Path, source: str, files: Path) -> Path:
    """A source's real files (e.g. SAR-ACD chips) → ingest → shards resized to SIZE with precomputed GR, every
    sample in one split-free dataset; ``data/jpeg`` links to the files for the raw rows."""
    from sardata.ingest import ingest
    from sardata.shards.build import BuildConfig, build_shards

    (root / "data").mkdir(parents=True)
    (root / "data" / "jpeg").symlink_to(files.resolve(), target_is_directory=True)
    ingest(source, files, root / "ingest", workers=2)
    cfg = BuildConfig(size_policy="resize", size=SIZE, targets=("gr",), max_shard_bytes=SHARD_BYTES)
    build_shards([root / "ingest"], root / "ds", cfg, workers=2)
    return root


def bench_loader(per_class: int = 64, grow: int = 10, workers: tuple[int, ...] = (0, 2), source: str | None = None,
                 files: Path | None = None, peers: bool = True) -> dict[str, Any]:  # fmt: skip
    """Rows for every (pipeline, workers) plus the sardata loader's RSS on a ``grow``× larger dataset (none when
    ``grow`` is 0 or with ``source``: the real ``files`` of that source instead of demo chips).

    ``peers``: shuffled rows, LitData and MDS rows, random access and disk footprints
    (:mod:`sardata.bench.peers`; a peer that cannot be imported is skipped with its reason).

    With nginx installed (``.ci/install-servers.sh``), the same shards are also served on loopback: rows
    ``sardata-http`` (the cache's built-in transport, every epoch fetching every shard), ``sardata-http-urllib``
    (the same through a trusted urllib opener, the control), ``sardata-range`` (one ranged read per member,
    random sample order, 0 workers) and ``sardata-range-urllib`` (the same requests with urllib, the control)."""
    tmp = Path(tempfile.mkdtemp(prefix="sardata-bench-loader-"))
    try:
        small = tmp / "small"
        if source is None:
            make_data(small, per_class)
        else:
            make_source_data(small, source, files)
        kinds = ("raw", "webdataset", "sardata", "sardata-warm", "sardata-off", "handover")
        rows = [_measure(kind, small, w, marks=tmp / f"verified-{w}") for w in workers for kind in kinds
                if kind != "handover" or w > 0]  # fmt: skip
        note = _remote_rows(rows, small, workers, tmp)
        side = None
        if peers:
            from sardata.bench.peers import peer_rows

            side = peer_rows(rows, small, workers, lambda w: tmp / f"verified-{w}", _measure, SHARD_BYTES)
        big = None
        if grow > 0 and source is None:
            large = make_data(tmp / "large", per_class * grow)
            big = _measure("sardata", large, workers[-1], marks=tmp / "verified-large")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"rows": rows, "grown": big, "grow": grow, "remote": note, "peers": side}


def _remote_rows(rows: list[dict[str, Any]], data: Path, workers: tuple[int, ...], tmp: Path) -> str:
    """Append the rows over a loopback nginx serving ``data`` (none without nginx); return what was served."""
    with loopback_nginx(data, tmp / "nginx") as base:
        if base is None:
            return "nginx not installed: no remote rows (bash .ci/install-servers.sh)"
        served = (f"{base}/ds", tmp / "cache")
        for w in workers:
            for kind in ("sardata-http", "sardata-http-urllib"):
                rows.append(_measure(kind, data, w, marks=tmp / f"verified-http-{w}", served=served))
        rows += [_measure(kind, data, 0, served=served) for kind in ("sardata-range", "sardata-range-urllib")]
    return f"shards served by nginx at {base}/ds"
