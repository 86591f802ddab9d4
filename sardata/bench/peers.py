"""Peer loaders beside sardata in ``sardata bench loader``: LitData and MosaicML Streaming (MDS), same samples, same run.

The samples of the bench's built dataset (``img.npy``, ``gr.npy``, ``cls``, read back from its shards) are written
once into LitData's optimized format (``litdata.optimize``) and into MDS (``streaming.MDSWriter``), uncompressed, in
chunks of the shards' size. Rows, each in a fresh process (``sardata.bench.stream._measure``):

- ``<peer>`` / ``<peer>-shuffled``: collated batches of the three fields through each library's own loader
  (LitData's ``StreamingDataLoader``, MDS's ``StreamingDataset`` in a ``DataLoader``), shuffle off / on, at every
  worker count; ``webdataset-shuffled`` (shard shuffle + a 1,000-sample buffer) and ``sardata-shuffled``
  (``ShardIterable(shuffle=True)``, shards verified before, as ``sardata-warm``) beside them;
- ``<loader>-random``: map-style reads of random indices (``ds[i]``), one process, reads/s (stock webdataset has no
  random access);

plus each format's footprint on disk. A peer that cannot be imported is skipped with a one-line reason (the peers
live in their own environment: ``make bench-peers-env``, ``benchmarks/peers.lock``).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch.utils.data import IterableDataset

PEERS = {"litdata": "litdata", "mds": "streaming"}  # row prefix -> module
HINTS = {  # how to get each peer (benchmarks/peers.lock)
    "litdata": "make bench-peers-env, then .venv-peers/bin/sardata bench loader",
    "mds": "mosaicml-streaming 0.13.0 (latest) needs numpy<2.2, xxhash<4, transformers<5, which requirements.lock "
    "does not allow",
}
FIELDS = ("img.npy", "gr.npy", "cls")  # what every pipeline delivers
SHUFFLE_BUFFER = 1000  # webdataset's sample shuffle buffer (its documented habit)
RANDOM_SEED = 0


def is_peer_row(kind: str) -> bool:
    """Whether :func:`peer_loader` builds the loader of row ``kind``."""
    return kind.endswith("-shuffled") or kind.split("-")[0] in PEERS


def peer_status() -> dict[str, str | None]:
    """Each peer -> None when its library imports, else the one-line reason its rows are skipped."""
    import importlib

    out: dict[str, str | None] = {}
    for name, module in PEERS.items():
        try:
            importlib.import_module(module)
            out[name] = None
        except Exception as exc:  # noqa: BLE001 - an ABI clash (numpy pin) raises more than ImportError
            first = (str(exc).strip().splitlines() or [""])[0]
            out[name] = f"{module} cannot be imported ({type(exc).__name__}: {first}); {HINTS[name]}"
    return out


def footprint_mb(path: Path, pattern: str = "*") -> float:
    """Bytes of the files under ``path`` matching ``pattern``, in MB."""
    return sum(p.stat().st_size for p in path.rglob(pattern) if p.is_file()) / 1e6


@functools.lru_cache(maxsize=1)
def _source(ds: str) -> Any:
    from sardata.stream.dataset import ShardDataset

    return ShardDataset(ds, split=None, fields=FIELDS, verify="off")


def _sample(ds: str, i: int) -> tuple[Any, Any, int]:
    """Sample ``i`` of the built dataset as LitData stores it (a tuple, delivered as one)."""
    s = _source(ds)[i]
    return s["img.npy"], s["gr.npy"], int(s["cls"])


def write_litdata(ds: Path, out: Path, chunk_bytes: int) -> None:
    from litdata import optimize

    n = len(_source(str(ds)))
    optimize(fn=functools.partial(_sample, str(ds)), inputs=list(range(n)), output_dir=str(out),
             chunk_bytes=chunk_bytes, num_workers=1, start_method="fork", verbose=False, mode="overwrite")  # fmt: skip


def write_mds(ds: Path, out: Path, chunk_bytes: int) -> None:
    from streaming import MDSWriter

    columns = {"img": "ndarray", "gr": "ndarray", "cls": "int"}
    with MDSWriter(out=str(out), columns=columns, size_limit=chunk_bytes) as writer:
        for i in range(len(_source(str(ds)))):
            img, gr, cls = _sample(str(ds), i)
            writer.write({"img": img, "gr": gr, "cls": cls})


class _Tuples(IterableDataset):
    """An MDS dataset's dict samples as (img, gr, cls), the form webdataset's ``to_tuple`` and LitData deliver."""

    def __init__(self, ds: Any) -> None:
        self.ds = ds

    def __iter__(self):
        for s in self.ds:
            yield s["img"], s["gr"], s["cls"]


def _mds(root: Path, shuffle: bool, batch: int) -> Any:
    from streaming import StreamingDataset
    from streaming.base.util import clean_stale_shared_memory

    clean_stale_shared_memory()
    return StreamingDataset(local=str(root / "mds"), shuffle=shuffle, shuffle_seed=RANDOM_SEED, batch_size=batch)


def peer_loader(kind: str, root: Path, workers: int, batch: int) -> tuple[Any, Any]:
    """(loader, sardata dataset or None) for a peer row or a shuffled row of ``kind``."""
    from torch.utils.data import DataLoader

    shuffle = kind.endswith("-shuffled")
    if kind.startswith("litdata"):
        from litdata import StreamingDataLoader, StreamingDataset

        ds = StreamingDataset(str(root / "litdata"), shuffle=shuffle, seed=RANDOM_SEED)
        return StreamingDataLoader(ds, batch_size=batch, num_workers=workers), None
    if kind.startswith("mds"):
        return DataLoader(_Tuples(_mds(root, shuffle, batch)), batch_size=batch, num_workers=workers), None
    if kind == "webdataset-shuffled":
        import webdataset as wds

        urls = sorted(str(p) for p in (root / "ds" / "shards").glob("*.tar"))
        stock = wds.WebDataset(urls, shardshuffle=len(urls), seed=RANDOM_SEED, empty_check=False,
                               workersplitter=wds.split_by_worker)  # fmt: skip
        pipe = stock.shuffle(SHUFFLE_BUFFER).decode().to_tuple(*FIELDS)
        return DataLoader(pipe, batch_size=batch, num_workers=workers), None
    if kind == "sardata-shuffled":
        from sardata.stream.dataset import ShardIterable

        ds = ShardIterable(root / "ds", batch, split=None, num_workers=workers, shuffle=True, fields=FIELDS)
        return DataLoader(ds, batch_size=None, num_workers=workers), ds
    raise ValueError(f"not a peer row: {kind}")


def random_reads(kind: str, root: Path) -> tuple[int, float]:
    """(reads, seconds) of ``ds[i]`` over one dataset's worth of random indices (seeded), after one untimed read."""
    import random

    if kind == "sardata-random":
        from sardata.stream.dataset import ShardDataset

        ds = ShardDataset(root / "ds", split=None, fields=FIELDS)
    elif kind == "litdata-random":
        from litdata import StreamingDataset

        ds = StreamingDataset(str(root / "litdata"))
    elif kind == "mds-random":
        ds = _mds(root, False, 1)
    else:
        raise ValueError(f"not a random-access row: {kind}")
    rng = random.Random(RANDOM_SEED)
    order = [rng.randrange(len(ds)) for _ in range(len(ds))]
    ds[order[0]]
    t0 = time.perf_counter()
    for i in order[1:]:
        ds[i]
    return len(order) - 1, time.perf_counter() - t0


def peer_rows(rows: list[dict[str, Any]], data: Path, workers: tuple[int, ...], marks: Callable[[int], Path],
              measure: Callable[..., dict[str, Any]], chunk_bytes: int) -> dict[str, Any]:  # fmt: skip
    """Convert ``data``'s samples for the importable peers, append the shuffled, peer and random-access rows to
    ``rows`` (``measure``: the bench's one-configuration runner; ``marks(w)``: the verified-shard markers the
    ``sardata`` row with ``w`` workers left) and return the skipped peers with reasons and the footprints (MB)."""
    status = peer_status()
    names = [n for n, reason in status.items() if reason is None]
    writers = {"litdata": write_litdata, "mds": write_mds}
    for name in names:
        writers[name](data / "ds", data / name, chunk_bytes)
    _source.cache_clear()
    for w in workers:
        for kind in ("webdataset-shuffled", "sardata-shuffled", *[f"{n}{o}" for n in names for o in ("", "-shuffled")]):
            rows.append(measure(kind, data, w, marks=marks(w)))
    for kind in ("sardata-random", *[f"{n}-random" for n in names]):
        rows.append(measure(kind, data, 0, marks=marks(0)))
    disk = {"sardata": footprint_mb(data / "ds"), "webdataset": footprint_mb(data / "ds" / "shards", "*.tar")}
    disk |= {n: footprint_mb(data / n) for n in names}
    return {"skipped": {n: r for n, r in status.items() if r is not None}, "footprint_mb": disk}
