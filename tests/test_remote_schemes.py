# ruff: noqa: F811 - the server fixtures of test_remote.py are imported and requested by name
"""Remote schemes through fsspec (issue #20 point 11): a program may add fsspec schemes (``memory://`` here; ``gs``,
``az``, ``hf`` take the same path) through ``ShardCache(schemes=...)`` or a trusted opener; data never can. HTTP and
S3 go through fsspec too, against the real nginx and SeaweedFS servers of ``test_remote.py``.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import fsspec
import numpy as np
import pytest
import torch
from test_remote import (  # noqa: F401 - fixtures requested by name
    BUCKET,
    Dataset,
    Nginx,
    S3Server,
    dataset,
    nginx,
    s3_env,
    seaweed,
)

from sardata import location
from sardata.errors import ConfigError, ShardIntegrityError
from sardata.location import check_location, resolve, trust_schemes
from sardata.stream.cache import ShardCache
from sardata.stream.dataset import ShardDataset, ShardIterable

pytestmark = [pytest.mark.remote, pytest.mark.timeout(180)]


@pytest.fixture(autouse=True)
def _fresh_trust(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every test starts in a process that trusts no extra scheme (trust is per process) and leaves none behind;
    default caches go to the test's directory."""
    monkeypatch.setattr(location, "_TRUSTED", {})
    monkeypatch.setenv("SARDATA_CACHE", str(tmp_path / "default-cache"))


@pytest.fixture
def memory_ds(dataset: Dataset) -> Iterator[str]:
    """The dataset folder (card, tables, shards) copied into fsspec's in-memory store; its ``memory://`` URL."""
    fs = fsspec.filesystem("memory")
    for path in (p for p in dataset.root.rglob("*") if p.is_file()):
        fs.pipe(f"memory://bucket/ds/{path.relative_to(dataset.root).as_posix()}", path.read_bytes())
    yield "memory://bucket/ds"
    fs.rm("memory://bucket", recursive=True)


def same(a: object, b: object) -> bool:
    """Equal batch fields: stacked tensors, or lists of arrays (chips of different sizes)."""
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def images(ds: ShardDataset) -> list[tuple[str, bytes]]:
    return [(s["__key__"], s["img.npy"].tobytes()) for s in (ds[i] for i in range(len(ds)))]


# ----------------------------------------------------------------------------------------------- extra schemes
def test_memory_scheme_through_fsspec(dataset: Dataset, memory_ds: str, tmp_path: Path) -> None:
    """``ShardCache(schemes=["memory"])``: verified whole shards, ranges, a relocated base and a served card."""
    cache = ShardCache(tmp_path / "cache", schemes={"memory": {}})
    for row in dataset.shards:
        path = cache.local_path(resolve(memory_ds, row["path"]), row["sha256"], row["bytes"])
        assert path == tmp_path / "cache" / row["sha256"] and path.read_bytes() == dataset.shard_bytes(row)
    member = dataset.samples[0]["members"][0]
    url = resolve(memory_ds, f"shards/{dataset.samples[0]['shard']}")
    data = (dataset.root / "shards" / dataset.samples[0]["shard"]).read_bytes()
    assert cache.read_range(url, member["offset"], member["size"]) == data[member["offset"] :][: member["size"]]
    local = images(ShardDataset(dataset.root, split=None))
    assert images(ShardDataset(dataset.root, split=None, base_url=memory_ds, cache=cache)) == local
    assert images(ShardDataset(memory_ds, split=None, cache=ShardCache(tmp_path / "c2", schemes=["memory"]))) == local


def test_trusted_opener_adds_a_scheme(dataset: Dataset, tmp_path: Path) -> None:
    """The issue's case: an opener for gs:// (here serving local files) was refused by the allow-list; with
    ``schemes=["gs"]`` the loaders read through it, with the cache's checks, also in forked workers."""
    from torch.utils.data import DataLoader

    base, row = "gs://bucket/ds", dataset.shards[0]
    opener = functools.partial(_open_mapped, dataset.root, base)
    with pytest.raises(ConfigError, match=r"not allowed.*schemes="):  # the opener alone does not widen the list
        ShardCache(tmp_path / "c0", opener=opener).local_path(f"{base}/{row['path']}", row["sha256"], row["bytes"])
    cache = ShardCache(tmp_path / "cache", opener=functools.partial(_open_mapped, dataset.root, base), schemes=["gs"])
    local = list(ShardIterable(dataset.root, 4, split=None, seed=3))
    it = ShardIterable(dataset.root, 4, split=None, seed=3, num_workers=2, base_url=base, cache=cache)
    served = list(DataLoader(it, batch_size=None, num_workers=2))
    assert [b["__key__"] for b in served] == [b["__key__"] for b in local]
    assert all(same(a["img.npy"], b["img.npy"]) for a, b in zip(local, served, strict=True))
    with pytest.raises(ShardIntegrityError, match="no valid copy"):  # the opener's bytes are verified as any
        ShardCache(tmp_path / "bad", opener=lambda url: open(dataset.root / dataset.shards[1]["path"], "rb"),  # noqa: SIM115
                   schemes=["gs"], backoff_s=0.0).local_path(f"{base}/{row['path']}", row["sha256"], row["bytes"])  # fmt: skip


def _open_mapped(root: Path, base: str, url: str):  # noqa: ANN202 - a binary file
    """A trusted opener: ``<base>/<rel>`` served from ``root/<rel>`` (picklable through functools.partial)."""
    return open(root / url.removeprefix(base + "/"), "rb")  # noqa: SIM115


def test_extra_schemes_are_refused_without_the_program(dataset: Dataset, memory_ds: str, tmp_path: Path) -> None:
    """Data cannot choose a scheme: untrusted in the process, untrusted by this cache, chained, pipe or file."""
    url = f"{memory_ds}/{dataset.shards[0]['path']}"
    row = dataset.shards[0]
    for bad in (url, "gs://b/a.tar", "hf://datasets/x/a.tar", "az://c/a.tar"):
        with pytest.raises(ConfigError, match=r"not allowed.*ShardCache\(schemes="):
            check_location(bad)
        with pytest.raises(ConfigError, match="not allowed"):
            ShardCache(tmp_path / "c").local_path(bad, row["sha256"], row["bytes"])
    with pytest.raises(ConfigError, match="not allowed"):  # a URL root: the refusal, not "no dataset.json"
        ShardDataset(memory_ds, split=None)
    with pytest.raises(ConfigError, match="not allowed"):
        ShardDataset(dataset.root, split=None, base_url=memory_ds)[0]
    ShardCache(tmp_path / "trusting", schemes=["memory"])  # the process now trusts memory://...
    check_location(url)
    with pytest.raises(ConfigError, match="not allowed"):  # ...but a cache not given it still refuses it
        ShardCache(tmp_path / "c").local_path(url, row["sha256"], row["bytes"])
    with pytest.raises(ConfigError, match="not allowed"):
        ShardDataset(dataset.root, split=None, base_url=memory_ds)[0]  # the default cache
    for chained in (f"{url}::file:///etc/passwd", "s3://b/k.tar::http://x/y", "memory://b/x::simplecache::s3://b/k"):
        with pytest.raises(ConfigError, match="chaining"):
            check_location(chained)
    for name in ("pipe", "PIPE", "file", "g s", "gs:", "", "1x"):
        with pytest.raises(ConfigError, match="cannot be trusted"):
            trust_schemes([name])
    with pytest.raises(ConfigError, match="not fsspec protocols"):
        ShardCache(tmp_path / "c", schemes=["nosuchproto"])
    assert location.trusted_schemes() == ("memory",)


def test_card_may_name_a_trusted_scheme_only(dataset: Dataset, memory_ds: str, tmp_path: Path) -> None:
    """A local card's ``base_url`` on memory:// is refused until the program trusts memory, then read."""
    import json

    ds = tmp_path / "ds"
    ds.mkdir()
    for name in ("dataset.json", "samples.parquet", "shards.parquet", "sources.parquet"):
        if (dataset.root / name).exists():
            shutil.copy(dataset.root / name, ds / name)
    card = json.loads((ds / "dataset.json").read_text())
    (ds / "dataset.json").write_text(json.dumps(card | {"base_url": memory_ds}))
    with pytest.raises(ConfigError, match="not allowed"):
        ShardDataset(ds, split=None)
    cache = ShardCache(tmp_path / "cache", schemes=["memory"])
    assert images(ShardDataset(ds, split=None, cache=cache)) == images(ShardDataset(dataset.root, split=None))


# ----------------------------------------------------------------------------------------------- http / s3 via fsspec
def test_http_goes_through_fsspec(dataset: Dataset, nginx: Nginx, tmp_path: Path) -> None:
    """One GET per shard (no HEAD) with sardata's User-Agent, ranges as 206; a served card read by forked workers
    after the parent fetched its manifests (fsspec clients are per process)."""
    from torch.utils.data import DataLoader

    cache = ShardCache(tmp_path / "cache")
    assert type(cache._fs.get("http")).__module__ == "fsspec.implementations.http"
    row = dataset.shards[0]
    cache.local_path(f"{nginx.base}/ds/{row['path']}", row["sha256"], row["bytes"])
    cache.read_range(f"{nginx.base}/ds/{row['path']}", 512, 100)
    lines = [line for line in nginx.access_log.read_text().splitlines() if f"/ds/{row['path']} " in line]
    assert [line.split('"')[1].split()[0] for line in lines] == ["GET", "GET"]
    assert [line.split('"')[2].split()[0] for line in lines] == ["200", "206"]
    assert all('"sardata/' in line for line in lines)
    shutil.copytree(dataset.root, nginx.www / "full")
    it = ShardIterable(f"{nginx.base}/full", 4, split=None, seed=3, num_workers=2, cache=ShardCache(tmp_path / "c2"))
    served = list(DataLoader(it, batch_size=None, num_workers=2))
    assert [b["__key__"] for b in served] == [b["__key__"] for b in ShardIterable(dataset.root, 4, split=None, seed=3)]


def test_s3_storage_options_from_the_program(dataset: Dataset, seaweed: S3Server, tmp_path: Path) -> None:
    """``schemes={"s3": {...}}`` gives s3fs its endpoint and keys without environment variables."""
    opts = {"endpoint_url": seaweed.endpoint, "key": "sardata", "secret": "sardata-test"}
    cache = ShardCache(tmp_path / "cache", schemes={"s3": opts})
    assert location.trusted_schemes() == ()  # built-in: options only, nothing added to the allow-list
    for row in dataset.shards:
        url = f"s3://{BUCKET}/ds/{row['path']}"
        assert cache.local_path(url, row["sha256"], row["bytes"]).read_bytes() == dataset.shard_bytes(row)
    assert cache.read_range(url, 512, 100) == dataset.shard_bytes(row)[512:612]


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Python's file server (it ignores Range) plus ``/redirect/<n>``: a 302 to ``file:///etc/passwd``."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path.startswith("/redirect/"):
            self.send_response(302)
            self.send_header("Location", "file:///etc/passwd")
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def plain_server(dataset: Dataset) -> Iterator[str]:
    handler = functools.partial(_Handler, directory=str(dataset.root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_http_refusals(dataset: Dataset, plain_server: str, tmp_path: Path) -> None:
    """A server ignoring Range is an error naming it (not a wrong slice); a redirect off http(s) is not followed."""
    row = dataset.shards[0]
    cache = ShardCache(tmp_path / "cache", backoff_s=0.0)
    with pytest.raises(ShardIntegrityError, match="range support"):
        cache.read_range(f"{plain_server}/{row['path']}", 512, 100)
    with pytest.raises(ShardIntegrityError, match="cannot fetch shard"):
        cache.local_path(f"{plain_server}/redirect/{row['path']}", row["sha256"], row["bytes"])
    assert list((tmp_path / "cache").iterdir()) == []
    assert cache.local_path(f"{plain_server}/{row['path']}", row["sha256"], row["bytes"]).exists()


def test_missing_fsspec_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """HTTP needs the remote extra now (fsspec + aiohttp); the error says so instead of a traceback."""
    from sardata.errors import DependencyNotFoundError

    monkeypatch.setitem(sys.modules, "fsspec", None)  # import fsspec now raises ImportError
    with pytest.raises(DependencyNotFoundError, match=r"sardata\[remote\]"):
        ShardCache(tmp_path).local_path("http://127.0.0.1:9/ds/a.tar", "0" * 64, 10240)


def test_gs_az_hf_take_the_same_path(dataset: Dataset, tmp_path: Path) -> None:
    """gs://, az://, hf:// are allowed through the same path as memory:// (no real service here): the cache reaches
    fsspec's filesystem for the scheme, and a missing implementation package is named, before any worker starts."""
    import importlib.util

    from sardata.errors import DependencyNotFoundError

    cache = ShardCache(tmp_path / "cache", schemes={"gs": {"token": "anon"}, "az": {}, "hf": {}})
    assert location.trusted_schemes() == ("gs", "az", "hf")
    row = dataset.shards[0]
    for scheme, package in (("gs", "gcsfs"), ("az", "adlfs"), ("hf", "huggingface_hub")):
        url = f"{scheme}://bucket/ds/{row['path']}"
        check_location(url)
        if importlib.util.find_spec(package) is None:
            with pytest.raises(DependencyNotFoundError, match=package):
                cache.local_path(url, row["sha256"], row["bytes"])
            with pytest.raises(DependencyNotFoundError, match=package):
                ShardDataset(dataset.root, split=None, base_url=f"{scheme}://bucket/ds", cache=cache)
        else:
            assert type(cache._fs.get(scheme)).__module__.split(".")[0] in (package, "fsspec", "huggingface_hub")
