"""The byte transports behind :class:`~sardata.stream.cache.ShardCache`: every remote scheme through fsspec
(HTTP(S) with aiohttp, S3 with s3fs, and the extra schemes a program trusts: ``gs``, ``az``, ``hf``, ``memory``...),
local files by seek — and which of their errors another try can fix.

Why apart from the cache: the cache decides *what* bytes are trusted (allow-list, sha256, size, LRU); this module
only moves them, so a new transport never touches the verification logic.

Why fsspec: one interface (``open`` for a whole object, ``cat_file(path, start, end)`` for a byte range) for every
store, so adding a scheme is a name and its storage options, not a new transport. Locations are handed to the
filesystem of their (allow-listed) scheme directly, never to ``fsspec.open``/``url_to_fs``, so no location can
chain filesystems (``simplecache::``, ``zip://…::``) or pick one by itself.

Needs the optional extra ``pip install sardata[remote]`` (fsspec, s3fs and its aiohttp). S3: the endpoint comes
from ``SARDATA_S3_ENDPOINT_URL`` when set (MinIO, SeaweedFS, Ceph...), otherwise from botocore's own configuration
(``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL``, profiles); credentials follow botocore's usual chain, and
``SARDATA_S3_ANON=1`` requests anonymous access to public buckets. HTTP: sardata's User-Agent, a 60 s connect and
read timeout, proxies from the environment (as urllib did), redirects followed between http and https only.
"""

from __future__ import annotations

import errno
import http.client
import os
import sys
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from sardata import __version__
from sardata.errors import DependencyNotFoundError, ShardIntegrityError
from sardata.location import S3_ANON_ENV, S3_ENDPOINT_ENV, s3_settings, url_scheme

HTTP_TIMEOUT_S = 60.0
CHUNK = 1 << 20
TRANSIENT = (OSError, http.client.HTTPException)  # what a transport raises; is_permanent() tells which to retry
REMOTE_EXTRA = "pip install 'sardata[remote]'"

_AIOHTTP_PERMANENT = ("RedirectClientError", "NonHttpUrlClientError", "TooManyRedirects", "InvalidURL")

Opener = Callable[[str], IO[bytes]]
S3Key = tuple[str | None, bool]  # (endpoint URL or None, anonymous): the settings an s3fs client was made for


def transient() -> tuple[type[BaseException], ...]:
    """The errors a transport may raise: :data:`TRANSIENT`, plus aiohttp's once it is loaded (its disconnects and
    payload errors are not ``OSError``); :func:`is_permanent` tells which of them another try cannot fix."""
    aiohttp = sys.modules.get("aiohttp")
    return (*TRANSIENT, aiohttp.ClientError) if aiohttp is not None else TRANSIENT


def is_permanent(exc: BaseException) -> bool:
    """Errors that another try cannot fix (missing object, denied, client errors other than timeouts, bad URLs,
    redirects off http(s) or in a loop)."""
    if any(c.__module__.startswith("aiohttp") and c.__name__ in _AIOHTTP_PERMANENT for c in type(exc).__mro__):
        return True
    status = getattr(exc, "status", None) if type(exc).__module__.startswith("aiohttp") else None
    if isinstance(status, int):  # aiohttp.ClientResponseError: an HTTP status other than 404
        return 400 <= status < 500 and status not in (408, 429)
    if isinstance(exc, OSError) and exc.errno == errno.EINVAL:  # s3fs: InvalidRange (416) and other bad requests
        return True
    return isinstance(exc, (FileNotFoundError, PermissionError, ValueError))  # ValueError: aiohttp.InvalidURL


def import_s3fs() -> Any:
    """The optional ``s3fs`` module, or a :class:`DependencyNotFoundError` naming the extra to install."""
    try:
        import s3fs
    except ImportError as exc:
        raise DependencyNotFoundError(f"s3:// shards need fsspec and s3fs: {REMOTE_EXTRA}") from exc
    return s3fs


def import_fsspec(scheme: str) -> Any:
    """The optional ``fsspec`` module, or a :class:`DependencyNotFoundError` naming the extra to install."""
    try:
        import fsspec
    except ImportError as exc:
        raise DependencyNotFoundError(f"{scheme}:// locations need fsspec: {REMOTE_EXTRA}") from exc
    return fsspec


def new_s3fs(key: S3Key, options: Mapping[str, Any] | None = None) -> Any:
    """An s3fs filesystem for ``key`` (never s3fs' instance cache: settings may change between calls); ``options``
    (a program's storage options for ``s3``) override the environment's."""
    s3fs = import_s3fs()
    kwargs: dict[str, Any] = {"anon": key[1]}
    if key[0]:
        kwargs["endpoint_url"] = key[0]
    return s3fs.S3FileSystem(**(kwargs | dict(options or {}) | {"skip_instance_cache": True}))


def new_httpfs(options: Mapping[str, Any] | None = None) -> Any:
    """fsspec's HTTP filesystem with sardata's User-Agent, timeouts and the environment's proxies."""
    fsspec = import_fsspec("http(s)")
    try:
        import aiohttp
    except ImportError as exc:
        raise DependencyNotFoundError(f"http(s):// locations need fsspec and aiohttp: {REMOTE_EXTRA}") from exc
    timeout = aiohttp.ClientTimeout(sock_connect=HTTP_TIMEOUT_S, sock_read=HTTP_TIMEOUT_S)
    # trust_env costs ~0.7 ms per request (aiohttp rereads the proxy settings and ~/.netrc): only with a proxy set
    proxies = bool(urllib.request.getproxies())
    client = {"headers": {"User-Agent": f"sardata/{__version__}"}, "timeout": timeout, "trust_env": proxies}
    opts = dict(options or {})
    opts["client_kwargs"] = client | dict(opts.get("client_kwargs") or {})
    return fsspec.filesystem("http", skip_instance_cache=True, **opts)


def new_fs(scheme: str, options: Mapping[str, Any] | None = None) -> Any:
    """The fsspec filesystem of an extra (trusted) scheme; a missing implementation names what to install."""
    fsspec = import_fsspec(scheme)
    try:
        return fsspec.filesystem(scheme, skip_instance_cache=True, **dict(options or {}))
    except ImportError as exc:  # fsspec's message names the package (gcsfs, adlfs, huggingface_hub...)
        raise DependencyNotFoundError(f"{scheme}:// locations: {exc}") from exc


class Filesystems:
    """The fsspec filesystem of each scheme, made on first use in each process with its storage options.

    Why per process: fsspec's async filesystems (HTTP, S3) belong to the event loop of the process that made them
    and refuse to run in a forked DataLoader worker. Why S3 is keyed by its settings too: the endpoint and
    anonymity come from the environment, which may change between calls."""

    def __init__(self, options: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.options = {k: dict(v) for k, v in (options or {}).items()}
        self._made: dict[tuple, Any] = {}

    def preload(self, scheme: str) -> None:
        """Import the implementation of ``scheme`` now: forked loader workers then inherit it instead of each
        importing it again every epoch (fsspec's HTTP filesystem and aiohttp take ~0.13 s)."""
        if scheme == "s3":
            import_s3fs()
            return
        try:
            import_fsspec(scheme).get_filesystem_class("http" if scheme == "https" else scheme)
        except ImportError as exc:  # fsspec's message names the package (aiohttp, gcsfs, adlfs...)
            raise DependencyNotFoundError(f"{scheme}:// locations: {exc}") from exc

    def get(self, scheme: str) -> Any:
        """The filesystem for ``scheme`` (an allow-listed name; the caller has checked the location)."""
        settings = s3_settings() if scheme == "s3" else None  # an environment change needs a new client
        key = (os.getpid(), scheme, settings)
        fs = self._made.get(key)
        if fs is None:
            opts = self.options.get(scheme)
            if scheme == "s3":
                fs = new_s3fs(settings, opts)
            elif scheme in ("http", "https"):
                fs = new_httpfs(opts)
            else:
                fs = new_fs(scheme, opts)
            for old in [k for k in self._made if k[:2] == key[:2]]:  # this process's client for older settings
                del self._made[old]
            self._made[key] = fs  # a parent's clients stay untouched: closing them here would close its sockets
        return fs

    def open(self, url: str, size: int | None = None) -> IO[bytes]:
        """A readable stream of the whole object at ``url``: one streaming GET over HTTP (no HEAD when ``size`` is
        known), 8 MB ranged reads on S3, the store's own reader elsewhere."""
        scheme = url_scheme(url) or ""
        fs = self.get(scheme)
        if scheme in ("http", "https"):
            return fs.open(url, "rb", block_size=0, size=size)  # block_size=0: a plain stream, never a Range
        return fs.open(url, "rb", block_size=8 * CHUNK)

    def size(self, url: str) -> int:
        """The size in bytes of the object at ``url`` (HTTP HEAD, S3 HEAD...); OSError when the store cannot say."""
        size = self.get(url_scheme(url) or "").info(url).get("size")
        if not isinstance(size, int):
            raise OSError(f"{url}: the server does not state the object's size")
        return size

    def read_range(self, url: str, offset: int, size: int) -> bytes:
        """``size`` bytes at ``offset`` in one request (``Range: bytes=a-b`` over HTTP, a ranged GET on S3)."""
        data = self.get(url_scheme(url) or "").cat_file(url, start=offset, end=offset + size)
        if len(data) > size:  # a server that ignores Range answers the whole object
            raise ShardIntegrityError(
                f"{url}: asked for bytes {offset}-{offset + size - 1}, the server sent {len(data)} bytes; map-style "
                "access needs a server with range support (or use the cache for whole shards)"
            )
        return data


def read_exact(fh: IO[bytes], size: int) -> bytes:
    """Read up to ``size`` bytes, looping over short reads of raw streams; fewer only at end of stream."""
    parts, got = [], 0
    while got < size and (block := fh.read(min(CHUNK, size - got))):
        parts.append(block)
        got += len(block)
    return b"".join(parts)


def read_local(path: Path, offset: int, size: int) -> bytes:
    """``size`` bytes at ``offset`` of a local shard; a missing file or a short read is a ShardIntegrityError."""
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read(size)
    except FileNotFoundError as exc:
        raise ShardIntegrityError(f"{path}: shard does not exist") from exc
    if len(data) != size:
        raise ShardIntegrityError(f"{path}: short read at offset {offset} ({len(data)} of {size} bytes)")
    return data


__all__ = [
    "CHUNK",
    "HTTP_TIMEOUT_S",
    "REMOTE_EXTRA",
    "S3_ANON_ENV",
    "S3_ENDPOINT_ENV",
    "TRANSIENT",
    "Filesystems",
    "Opener",
    "import_fsspec",
    "import_s3fs",
    "is_permanent",
    "new_fs",
    "new_httpfs",
    "new_s3fs",
    "read_exact",
    "read_local",
    "s3_settings",
    "transient",
]
