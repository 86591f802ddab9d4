"""The byte transports behind :class:`~sardata.stream.cache.ShardCache`: HTTP(S) through urllib, S3 through s3fs,
local files by seek — and which of their errors another try can fix.

Why apart from the cache: the cache decides *what* bytes are trusted (sha256, size, LRU); this module only moves
them, so a new transport never touches the verification logic.

S3 (optional extra ``pip install sardata[remote]``) goes through ``s3fs``. The endpoint comes from
``SARDATA_S3_ENDPOINT_URL`` when set (MinIO, SeaweedFS, Ceph...), otherwise from botocore's own configuration
(``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL``, profiles); credentials follow botocore's usual chain, and
``SARDATA_S3_ANON=1`` requests anonymous access to public buckets.
"""

from __future__ import annotations

import errno
import http.client
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from sardata import __version__
from sardata.errors import DependencyNotFoundError, ShardIntegrityError
from sardata.location import url_scheme

S3_ENDPOINT_ENV = "SARDATA_S3_ENDPOINT_URL"
S3_ANON_ENV = "SARDATA_S3_ANON"
HTTP_TIMEOUT_S = 60.0
CHUNK = 1 << 20
TRANSIENT = (OSError, http.client.HTTPException)  # what a transport raises; is_permanent() tells which to retry

Opener = Callable[[str], IO[bytes]]
S3Key = tuple[str | None, bool]  # (endpoint URL or None, anonymous): the settings an s3fs client was made for


class _HttpRedirect(urllib.request.HTTPRedirectHandler):
    """Follow redirects between http and https only (urllib would also follow ftp)."""

    def redirect_request(
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        if url_scheme(newurl) not in ("http", "https"):
            raise ShardIntegrityError(f"{req.full_url}: redirect to {newurl!r} refused (only http/https)")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_HTTP = urllib.request.build_opener(_HttpRedirect())


def http_open(url: str, headers: dict[str, str] | None = None) -> Any:
    """A GET response for ``url`` with sardata's User-Agent and timeout; redirects stay on http(s)."""
    request = urllib.request.Request(url, headers={"User-Agent": f"sardata/{__version__}", **(headers or {})})
    return _HTTP.open(request, timeout=HTTP_TIMEOUT_S)


def s3_path(url: str) -> str:
    """``s3://bucket/key`` as the ``bucket/key`` path s3fs expects."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.netloc}/{parts.path.lstrip('/')}"


def import_s3fs() -> Any:
    """The optional ``s3fs`` module, or a :class:`DependencyNotFoundError` naming the extra to install."""
    try:
        import s3fs
    except ImportError as exc:
        raise DependencyNotFoundError("s3:// shards need fsspec and s3fs: pip install 'sardata[remote]'") from exc
    return s3fs


def s3_settings() -> S3Key:
    """The S3 endpoint and anonymity the environment asks for now (a change needs a new client)."""
    return os.environ.get(S3_ENDPOINT_ENV) or None, os.environ.get(S3_ANON_ENV, "") in ("1", "true", "yes")


def new_s3fs(key: S3Key) -> Any:
    """An s3fs filesystem for ``key`` (never s3fs' instance cache: settings may change between calls)."""
    s3fs = import_s3fs()
    kwargs: dict[str, Any] = {"anon": key[1], "skip_instance_cache": True}
    if key[0]:
        kwargs["endpoint_url"] = key[0]
    return s3fs.S3FileSystem(**kwargs)


def read_exact(fh: IO[bytes], size: int) -> bytes:
    """Read up to ``size`` bytes, looping over short reads of raw streams; fewer only at end of stream."""
    parts, got = [], 0
    while got < size and (block := fh.read(min(CHUNK, size - got))):
        parts.append(block)
        got += len(block)
    return b"".join(parts)


def is_permanent(exc: BaseException) -> bool:
    """Errors that another try cannot fix (missing object, denied, client errors other than timeouts)."""
    if isinstance(exc, urllib.error.HTTPError):
        return 400 <= exc.code < 500 and exc.code not in (408, 429)
    if isinstance(exc, OSError) and exc.errno == errno.EINVAL:  # s3fs: InvalidRange (416) and other bad requests
        return True
    return isinstance(exc, (FileNotFoundError, PermissionError))


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


def http_range(url: str, offset: int, size: int) -> bytes:
    """One ``Range: bytes=a-b`` GET; a server that answers 200 (ignoring Range) or another range is an error."""
    end = offset + size - 1
    with http_open(url, {"Range": f"bytes={offset}-{end}"}) as resp:
        if resp.status != 206:
            raise ShardIntegrityError(
                f"{url}: server answered HTTP {resp.status} to a Range request; map-style access needs a server "
                "with range support (or use the cache for whole shards)"
            )
        content_range = resp.headers.get("Content-Range", "")
        if not content_range.startswith(f"bytes {offset}-"):
            raise ShardIntegrityError(f"{url}: asked for bytes {offset}-{end}, got Content-Range {content_range!r}")
        return read_exact(resp, size)


__all__ = [
    "CHUNK",
    "HTTP_TIMEOUT_S",
    "S3_ANON_ENV",
    "S3_ENDPOINT_ENV",
    "TRANSIENT",
    "Opener",
    "http_open",
    "http_range",
    "import_s3fs",
    "is_permanent",
    "new_s3fs",
    "read_exact",
    "read_local",
    "s3_path",
    "s3_settings",
]
