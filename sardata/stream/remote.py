"""Shard locations and a verified, size-limited LRU cache for remote shards (``data-contract.md`` §6).

Why this exists: stock WebDataset URLs may be shell commands (``pipe:``), caches name files after URLs (so
collisions and stale copies go unnoticed), partial downloads are left behind and size limits are ignored or
deadlock. Here:

* locations are an allow-list — relative paths, ``file://``, ``http(s)://``, ``s3://`` — and nothing a manifest
  says is ever executed; a caller who needs something else passes a trusted ``opener`` callable;
* cached files are named by the shard's sha256 from ``shards.parquet``, written under a temp name while being
  hashed, fsynced and renamed; a file is only used once its size and hash match the index;
* eviction is LRU over the cache directory only (last use = file mtime, so processes sharing the directory see
  each other's use), never touches pinned shards (the read-ahead window) or datasets read in place, and a limit
  that cannot hold a shard is a :class:`ConfigError`, never a wait;
* several processes may share one cache without locks: renames are atomic and every copy of a name holds the
  same verified bytes, so a duplicate download is only wasted work.

S3 (optional extra ``pip install sardata[remote]``) goes through ``s3fs``. The endpoint comes from
``SARDATA_S3_ENDPOINT_URL`` when set (MinIO, SeaweedFS, Ceph...), otherwise from botocore's own configuration
(``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL``, profiles); credentials follow botocore's usual chain, and
``SARDATA_S3_ANON=1`` requests anonymous access to public buckets.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import http.client
import os
import re
import secrets
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import IO, Any

from sardata import __version__
from sardata.atomic import fsync_dir, sha256_file
from sardata.errors import (
    ConfigError,
    DependencyNotFoundError,
    ManifestSchemaError,
    SardataError,
    ShardIntegrityError,
)
from sardata.safepath import check_relpath, resolve_inside

ALLOWED_SCHEMES = ("file", "http", "https", "s3")
REMOTE_SCHEMES = ("http", "https", "s3")
CACHE_ENV = "SARDATA_CACHE"
S3_ENDPOINT_ENV = "SARDATA_S3_ENDPOINT_URL"
S3_ANON_ENV = "SARDATA_S3_ANON"
TMP_PREFIX = ".tmp-"
STALE_TEMP_S = 3600.0  # a temp file untouched this long is dead even if we cannot tell whose it was
HTTP_TIMEOUT_S = 60.0
CHUNK = 1 << 20

Opener = Callable[[str], IO[bytes]]

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SHELLISH = re.compile(r"[|;`\x00-\x1f\x7f]|\$\(|\$\{|&&")
_TRANSIENT = (OSError, http.client.HTTPException)
_HOST = re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname()) or "host"


# ----------------------------------------------------------------------------------------------- locations
def _scheme(url: str) -> str | None:
    """Lower-case URL scheme, or None for a plain path (a Windows drive letter is a path, not a scheme)."""
    m = _SCHEME.match(url)
    if m is None or (os.name == "nt" and len(m.group(1)) == 1):
        return None
    return m.group(1).lower()


def check_location(url: str) -> None:
    """Raise :class:`ConfigError` unless ``url`` is a plain path or an allowed ``file``/``http(s)``/``s3`` URL.

    Why an allow-list: WebDataset treats ``pipe:cmd`` as a shell command, so a manifest naming one would run code
    on every reader. Shell metacharacters are refused even in otherwise valid locations for the same reason.
    """
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"shard location {url!r} is empty or not a string")
    scheme = _scheme(url)
    if scheme is not None and scheme not in ALLOWED_SCHEMES:
        raise ConfigError(
            f"shard location {url!r}: scheme {scheme + ':'!r} is not allowed; use a relative path, file://, "
            "http(s):// or s3:// (commands such as pipe: are never run; pass a trusted opener callable instead)"
        )
    if _SHELLISH.search(url) or url.startswith("-"):
        raise ConfigError(f"shard location {url!r} contains shell syntax (|, ;, `, $(, &&, control characters)")
    if scheme is None:
        return
    parts = urllib.parse.urlsplit(url)
    if scheme in REMOTE_SCHEMES and not parts.netloc:
        raise ConfigError(f"shard location {url!r} names no host or bucket")
    if scheme == "file" and parts.netloc not in ("", "localhost"):
        raise ConfigError(f"shard location {url!r}: file:// URLs must be local (file:///path)")


def _relative(path: str) -> str:
    """``path`` as a clean relative POSIX path (:func:`sardata.safepath.check_relpath`): absolute paths, URLs and
    ``..`` are refused, so no shard name from a table can point outside the dataset root, locally or remotely."""
    try:
        return PurePosixPath(check_relpath(path, "shard path", "shards.parquet")).as_posix()
    except ManifestSchemaError as exc:
        raise ConfigError(f"{exc} (shard paths are relative to the dataset root; no leading /, .. or URL)") from exc


def resolve(base: str, path: str) -> str:
    """Join a dataset location (local dir, file://, http(s)://, s3:// URL) with a relative path from
    shards.parquet. Rejects any other scheme, notably `pipe:`, and any path leaving the root with ConfigError.

    Why: a ``base_url`` override relocates a dataset without rewriting its tables (``data-contract.md`` intro);
    a table naming an absolute location would instead let a served or edited manifest choose any file.
    """
    check_location(path)
    check_location(base)
    rel = _relative(path)
    scheme = _scheme(base)
    if scheme is None:
        return str(resolve_inside(base, rel, "shard path", "shards.parquet"))
    sep = "" if base.endswith("/") else "/"
    if scheme == "s3":
        return base + sep + rel  # object keys are taken verbatim by s3fs
    return base + sep + urllib.parse.quote(rel, safe="/")


def local_file(url: str) -> Path | None:
    """The local file a location names, or None for a remote URL."""
    scheme = _scheme(url)
    if scheme is None:
        return Path(url)
    if scheme == "file":
        return Path(urllib.request.url2pathname(urllib.parse.urlsplit(url).path))
    return None


def _check_sha(sha256: str) -> str:
    """Shard hashes become file names, so anything but 64 lower-case hex digits is refused (no path tricks)."""
    if not isinstance(sha256, str) or not _SHA256.match(sha256):
        raise ConfigError(f"shard sha256 {sha256!r} is not 64 lower-case hex digits")
    return sha256


# ----------------------------------------------------------------------------------------------- transports
class _HttpRedirect(urllib.request.HTTPRedirectHandler):
    """Follow redirects between http and https only (urllib would also follow ftp)."""

    def redirect_request(
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        if _scheme(newurl) not in ("http", "https"):
            raise ShardIntegrityError(f"{req.full_url}: redirect to {newurl!r} refused (only http/https)")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_HTTP = urllib.request.build_opener(_HttpRedirect())


def _http_open(url: str, headers: dict[str, str] | None = None) -> Any:
    request = urllib.request.Request(url, headers={"User-Agent": f"sardata/{__version__}", **(headers or {})})
    return _HTTP.open(request, timeout=HTTP_TIMEOUT_S)


def _s3_path(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.netloc}/{parts.path.lstrip('/')}"


def _import_s3fs() -> Any:
    try:
        import s3fs
    except ImportError as exc:
        raise DependencyNotFoundError("s3:// shards need fsspec and s3fs: pip install 'sardata[remote]'") from exc
    return s3fs


def _read_exact(fh: IO[bytes], size: int) -> bytes:
    """Read up to ``size`` bytes, looping over short reads of raw streams; fewer only at end of stream."""
    parts, got = [], 0
    while got < size and (block := fh.read(min(CHUNK, size - got))):
        parts.append(block)
        got += len(block)
    return b"".join(parts)


def _is_permanent(exc: BaseException) -> bool:
    """Errors that another try cannot fix (missing object, denied, client errors other than timeouts)."""
    if isinstance(exc, urllib.error.HTTPError):
        return 400 <= exc.code < 500 and exc.code not in (408, 429)
    if isinstance(exc, OSError) and exc.errno == errno.EINVAL:  # s3fs: InvalidRange (416) and other bad requests
        return True
    return isinstance(exc, (FileNotFoundError, PermissionError))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # another user's process, or a number no process can have: keep the file
        return True
    return True


def _temp_is_stale(name: str, mtime: float, now: float) -> bool:
    """Temp names are ``.tmp-<pid>-<token>-<sha256>@<host>``: dead if the same host has no such pid, or old."""
    if now - mtime > STALE_TEMP_S:
        return True
    body, _, host = name[len(TMP_PREFIX) :].rpartition("@")
    pid = body.split("-", 1)[0]
    return host == _HOST and pid.isdigit() and not _pid_alive(int(pid))


def remove_dead_temps(cache_dir: Path) -> int:
    """Delete temp files left by dead downloads in ``cache_dir`` (not those of live processes); return count."""
    removed, now = 0, time.time()
    for entry in os.scandir(cache_dir):
        if not entry.name.startswith(TMP_PREFIX):
            continue
        with contextlib.suppress(FileNotFoundError):
            if _temp_is_stale(entry.name, entry.stat().st_mtime, now):
                os.unlink(entry.path)
                removed += 1
    return removed


# ----------------------------------------------------------------------------------------------- cache
class ShardCache:
    """Verified local copies of remote shards, keyed by sha256, with an LRU size limit and pinning.

    Args:
        cache_dir: directory of cached shards; default ``$SARDATA_CACHE`` or ``~/.cache/sardata/shards``.
        limit_bytes: size limit of the cached shards (None = unlimited).
        retries: tries per shard or range before :class:`ShardIntegrityError`.
        backoff_s: sleep before the second try, doubled for each further try.
        opener: trusted callable ``url -> binary file-like`` used for every remote URL instead of urllib/s3fs
            (never taken from a manifest). It must be picklable if the cache is sent to loader workers.
    """

    def __init__(
        self,
        cache_dir: str | os.PathLike[str] | None = None,
        limit_bytes: int | None = None,
        retries: int = 3,
        backoff_s: float = 0.2,
        opener: Opener | None = None,
    ) -> None:
        if retries < 1:
            raise ConfigError(f"cache retries must be >= 1, got {retries}")
        if limit_bytes is not None and limit_bytes <= 0:
            raise ConfigError(f"cache limit must be a positive number of bytes, got {limit_bytes}")
        default = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "sardata" / "shards"
        self.dir = Path(cache_dir or default).expanduser()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.limit_bytes, self.retries, self.backoff_s, self.opener = limit_bytes, retries, backoff_s, opener
        self._init_process_state()
        self.removed_temps = remove_dead_temps(self.dir)
        with self._lock:
            self._evict(0, keep=None, strict=False)  # a lowered limit applies at once

    def _init_process_state(self) -> None:
        """State that belongs to one process: pins, hashes verified here, the lock and the S3 client."""
        self._lock = threading.RLock()
        self._pins: dict[str, int] = {}
        self._verified: set[str] = set()
        self._fs: Any = None
        self._fs_key: tuple[str | None, bool] | None = None

    def __getstate__(self) -> dict[str, Any]:
        keep = ("dir", "limit_bytes", "retries", "backoff_s", "opener", "removed_temps")
        return {k: self.__dict__[k] for k in keep}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_process_state()  # a new process re-verifies what it uses and pins its own window

    def __repr__(self) -> str:
        return f"ShardCache({str(self.dir)!r}, limit_bytes={self.limit_bytes})"

    # ------------------------------------------------------------------ limits and pins
    def check_limit(self, largest_shard_bytes: int) -> None:
        """Refuse at start a limit that could never hold the largest shard (instead of deadlocking later)."""
        if self.limit_bytes is not None and largest_shard_bytes > self.limit_bytes:
            raise ConfigError(
                f"cache limit {self.limit_bytes} bytes is below the largest shard ({largest_shard_bytes} bytes); "
                f"raise cache_limit_bytes to at least {largest_shard_bytes} (better: a read-ahead window of shards)"
            )

    def pin(self, sha256: str) -> None:
        """Protect a shard of the current read-ahead window from eviction (counted: pin twice, unpin twice)."""
        sha = _check_sha(sha256)
        with self._lock:
            self._pins[sha] = self._pins.get(sha, 0) + 1

    def unpin(self, sha256: str) -> None:
        """Release one pin; unpinning a shard that is not pinned does nothing."""
        sha = _check_sha(sha256)
        with self._lock:
            n = self._pins.pop(sha, 0) - 1
            if n > 0:
                self._pins[sha] = n

    # ------------------------------------------------------------------ whole shards
    def local_path(self, url: str, sha256: str, nbytes: int) -> Path:
        """A local file holding the shard: the file itself for local locations, else a verified cached copy.

        Raises:
            ConfigError: disallowed location, bad hash string, or a shard the limit cannot hold.
            ShardIntegrityError: a local shard of the wrong size, or no matching bytes after ``retries`` tries.
        """
        check_location(url)
        local = local_file(url)
        if local is not None:
            return self._in_place(local, nbytes)
        sha = _check_sha(sha256)
        self.check_limit(nbytes)
        path = self.dir / sha
        if self._usable(path, sha, nbytes):
            _touch(path)
            return path
        return self._fetch(url, sha, nbytes)

    @staticmethod
    def _in_place(path: Path, nbytes: int) -> Path:
        """Local datasets are read where they are (never copied, never evicted); only the size is checked here,
        the full hash is ``sardata verify``'s job."""
        try:
            size = path.stat().st_size
        except FileNotFoundError as exc:
            raise ShardIntegrityError(f"{path}: shard listed in shards.parquet does not exist") from exc
        if size != nbytes:
            raise ShardIntegrityError(f"{path}: shard has {size} bytes, shards.parquet says {nbytes}")
        return path

    def _usable(self, path: Path, sha: str, nbytes: int) -> bool:
        """Whether a cached copy may be used: size always, sha256 once per process; a bad copy is deleted."""
        try:
            if path.stat().st_size == nbytes and (sha in self._verified or sha256_file(path) == sha):
                self._verified.add(sha)
                return True
        except FileNotFoundError:
            return False
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        self._verified.discard(sha)
        return False

    def _fetch(self, url: str, sha: str, nbytes: int) -> Path:
        """Download with retries and backoff until the bytes match the index, else ShardIntegrityError."""
        actual: tuple[str | None, int] | None = None
        error: BaseException | None = None
        for attempt in range(self.retries):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            with self._lock:
                self._evict(nbytes, keep=sha, strict=True)
            try:
                actual = self._download(url, sha, nbytes)
            except SardataError:
                raise
            except _TRANSIENT as exc:
                if _is_permanent(exc):
                    raise ShardIntegrityError(f"{url}: cannot fetch shard: {type(exc).__name__}: {exc}") from exc
                error = exc
                continue
            if actual == (sha, nbytes):
                path = self.dir / sha
                with self._lock:
                    self._verified.add(sha)
                    self._evict(0, keep=sha, strict=False)  # other processes may have filled the cache meanwhile
                return path
        raise ShardIntegrityError(_fetch_failure(url, sha, nbytes, self.retries, actual, error)) from error

    def _download(self, url: str, sha: str, nbytes: int) -> tuple[str | None, int]:
        """Stream ``url`` to a temp file while hashing; keep it (fsync + rename) only if hash and size match.

        Returns the actual (sha256, size); the hash is None when the source holds more bytes than the index says
        (reading stops there instead of downloading without bound)."""
        tmp = self.dir / f"{TMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}-{sha}@{_HOST}"
        digest, size = hashlib.sha256(), 0
        try:
            with self._open(url) as src, open(tmp, "wb") as dst:
                while size <= nbytes and (block := src.read(min(CHUNK, nbytes + 1 - size))):
                    digest.update(block)
                    dst.write(block)
                    size += len(block)
                dst.flush()
                os.fsync(dst.fileno())
            actual = digest.hexdigest() if size <= nbytes else None
            if actual == sha and size == nbytes:
                os.replace(tmp, self.dir / sha)
                fsync_dir(self.dir)
            return actual, size
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    @contextlib.contextmanager
    def _open(self, url: str) -> Iterator[IO[bytes]]:
        """A readable stream of the whole object (trusted opener, HTTP GET or S3 GET)."""
        if self.opener is not None:
            fh = self.opener(url)
        elif _scheme(url) == "s3":
            fh = self._s3().open(_s3_path(url), "rb", block_size=8 * CHUNK)
        else:
            fh = _http_open(url)
            if fh.status != 200:
                fh.close()
                raise ShardIntegrityError(f"{url}: HTTP {fh.status} instead of 200 for a whole-shard GET")
        try:
            yield fh
        finally:
            fh.close()

    # ------------------------------------------------------------------ byte ranges
    def read_range(self, url: str, offset: int, size: int) -> bytes:
        """``size`` bytes at ``offset`` of a shard: local seek, HTTP Range request or S3 ranged GET.

        Why: map-style access (``data-contract.md`` §5.8) reads one sample without fetching its whole shard.
        Short reads (truncated shard, wrong index) raise :class:`ShardIntegrityError` after the retries.
        """
        check_location(url)
        if offset < 0 or size < 0:
            raise ConfigError(f"{url}: invalid byte range offset={offset} size={size}")
        if size == 0:
            return b""
        local = local_file(url)
        if local is not None:
            return _read_local(local, offset, size)
        error: BaseException | None = None
        for attempt in range(self.retries):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                data = self._remote_range(url, offset, size)
            except SardataError:
                raise
            except _TRANSIENT as exc:
                if _is_permanent(exc):
                    raise ShardIntegrityError(
                        f"{url}: range {offset}+{size} failed: {type(exc).__name__}: {exc}"
                    ) from exc
                error = exc
                continue
            if len(data) == size:
                return data
            error = ShardIntegrityError(f"short read: {len(data)} of {size} bytes (shard truncated or index wrong)")
        raise ShardIntegrityError(f"{url}: range {offset}+{size} failed after {self.retries} tries: {error}")

    def _remote_range(self, url: str, offset: int, size: int) -> bytes:
        if self.opener is not None:
            with contextlib.closing(self.opener(url)) as fh:
                if fh.seekable():
                    fh.seek(offset)
                else:
                    _read_exact(fh, offset)
                return _read_exact(fh, size)
        if _scheme(url) == "s3":
            return self._s3().cat_file(_s3_path(url), start=offset, end=offset + size)
        return _http_range(url, offset, size)

    # ------------------------------------------------------------------ internals
    def _s3(self) -> Any:
        """The s3fs filesystem for the current endpoint settings (created lazily, once per process)."""
        key = (os.environ.get(S3_ENDPOINT_ENV) or None, os.environ.get(S3_ANON_ENV, "") in ("1", "true", "yes"))
        if self._fs is None or self._fs_key != key:
            s3fs = _import_s3fs()
            kwargs: dict[str, Any] = {"anon": key[1], "skip_instance_cache": True}
            if key[0]:
                kwargs["endpoint_url"] = key[0]
            self._fs, self._fs_key = s3fs.S3FileSystem(**kwargs), key
        return self._fs

    def _entries(self) -> list[tuple[int, int, str]]:
        """(last use in ns, size, name) of every cached shard; temp files and foreign files are ignored."""
        out = []
        for entry in os.scandir(self.dir):
            if _SHA256.match(entry.name):
                with contextlib.suppress(FileNotFoundError):
                    st = entry.stat()
                    out.append((st.st_mtime_ns, st.st_size, entry.name))
        return out

    def _evict(self, incoming: int, keep: str | None, strict: bool) -> None:
        """Delete least recently used unpinned shards until ``incoming`` more bytes fit under the limit.

        With ``strict``, raise :class:`ConfigError` when pinned shards leave no room: waiting for an unpin that
        the caller cannot make would be a deadlock."""
        if self.limit_bytes is None:
            return
        entries = sorted(self._entries())
        total = sum(size for _, size, _ in entries)
        protected = set(self._pins) | {keep}
        for _, size, name in entries:
            if total + incoming <= self.limit_bytes:
                break
            if name in protected:
                continue
            with contextlib.suppress(FileNotFoundError):
                (self.dir / name).unlink()
            self._verified.discard(name)
            total -= size
        if strict and total + incoming > self.limit_bytes:
            raise ConfigError(
                f"cache limit {self.limit_bytes} bytes cannot hold the next shard ({incoming} bytes): "
                f"{total} bytes are pinned (read-ahead window) or in use; raise cache_limit_bytes or shrink "
                "the read-ahead window"
            )


def _touch(path: Path) -> None:
    """Mark a cached shard as just used (its mtime is the LRU clock shared by all processes)."""
    with contextlib.suppress(OSError):
        os.utime(path)


def _read_local(path: Path, offset: int, size: int) -> bytes:
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read(size)
    except FileNotFoundError as exc:
        raise ShardIntegrityError(f"{path}: shard does not exist") from exc
    if len(data) != size:
        raise ShardIntegrityError(f"{path}: short read at offset {offset} ({len(data)} of {size} bytes)")
    return data


def _http_range(url: str, offset: int, size: int) -> bytes:
    """One ``Range: bytes=a-b`` GET; a server that answers 200 (ignoring Range) or another range is an error."""
    end = offset + size - 1
    with _http_open(url, {"Range": f"bytes={offset}-{end}"}) as resp:
        if resp.status != 206:
            raise ShardIntegrityError(
                f"{url}: server answered HTTP {resp.status} to a Range request; map-style access needs a server "
                "with range support (or use the cache for whole shards)"
            )
        content_range = resp.headers.get("Content-Range", "")
        if not content_range.startswith(f"bytes {offset}-"):
            raise ShardIntegrityError(f"{url}: asked for bytes {offset}-{end}, got Content-Range {content_range!r}")
        return _read_exact(resp, size)


def _fetch_failure(
    url: str, sha: str, nbytes: int, tries: int, actual: tuple[str | None, int] | None, error: BaseException | None
) -> str:
    """The message of a failed fetch: URL, expected and actual hash (and size), last transport error."""
    msg = f"{url}: no valid copy after {tries} tries: expected sha256 {sha} ({nbytes} bytes)"
    if actual is not None:
        got = actual[0] or f"not computed, more than {nbytes} bytes served"
        msg += f", got sha256 {got} ({actual[1]} bytes)"
    if error is not None:
        msg += f"; last error: {error}"
    return msg + "; the bad copy was deleted"


__all__ = ["ALLOWED_SCHEMES", "ShardCache", "check_location", "remove_dead_temps", "resolve"]
