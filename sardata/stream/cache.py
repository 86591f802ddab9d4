"""A verified, size-limited LRU cache of remote shards on local disk (``data-contract.md`` §6).

Why this exists: stock WebDataset caches name files after URLs (so collisions and stale copies go unnoticed),
partial downloads are left behind and size limits are ignored or deadlock. Here:

* cached files are named by the shard's sha256 from ``shards.parquet``, written under a temp name while being
  hashed, fsynced and renamed; a file is only used once its size and hash match the index;
* eviction is LRU over the cache directory only (last use = file mtime, so processes sharing the directory see
  each other's use), never touches pinned shards (the read-ahead window) or datasets read in place, and a limit
  that cannot hold a shard is a :class:`ConfigError`, never a wait;
* several processes may share one cache without locks: renames are atomic and every copy of a name holds the
  same verified bytes, so a duplicate download is only wasted work.

Locations pass the allow-list of :mod:`sardata.location` (plus the extra fsspec schemes this cache was given by
the program, never by a manifest); the bytes move through :mod:`sardata.stream.transport` (fsspec) or a trusted
``opener`` callable.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from sardata.atomic import fsync_dir, sha256_file
from sardata.errors import ConfigError, SardataError, ShardIntegrityError
from sardata.location import REMOTE_SCHEMES, check_location, local_file, scheme_names, trust_schemes, url_scheme
from sardata.stream.temps import remove_dead_temps, temp_path
from sardata.stream.transport import (
    CHUNK,
    Filesystems,
    Opener,
    import_fsspec,
    is_permanent,
    read_exact,
    read_local,
    transient,
)

Schemes = Mapping[str, Mapping[str, Any]] | Iterable[str]  # extra scheme names, or names -> fsspec storage options

CACHE_ENV = "SARDATA_CACHE"

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def check_sha(sha256: str) -> str:
    """Shard hashes become file names, so anything but 64 lower-case hex digits is refused (no path tricks)."""
    if not isinstance(sha256, str) or not _SHA256.match(sha256):
        raise ConfigError(f"shard sha256 {sha256!r} is not 64 lower-case hex digits")
    return sha256


class ShardCache:
    """Verified local copies of remote shards, keyed by sha256, with an LRU size limit and pinning.

    Args:
        cache_dir: directory of cached shards; default ``$SARDATA_CACHE`` or ``~/.cache/sardata/shards``.
        limit_bytes: size limit of the cached shards (None = unlimited).
        retries: tries per shard or range before :class:`ShardIntegrityError`.
        backoff_s: sleep before the second try, doubled for each further try.
        opener: trusted callable ``url -> binary file-like`` used for every remote URL instead of fsspec (never
            taken from a manifest). It must be picklable if the cache is sent to loader workers.
        schemes: extra schemes this cache reads, e.g. ``{"gs": {"token": "anon"}}`` or ``["memory"]``: fsspec
            protocols with their storage options (through fsspec), or the schemes ``opener`` serves. Built-in
            ``http``/``https``/``s3`` may be listed to give storage options (``{"s3": {"profile": "lab"}}``). The
            extra names are trusted in this process (:func:`sardata.location.trust_schemes`) so that a card or
            ``base_url`` may name them; nothing read from data can add one.
    """

    def __init__(
        self,
        cache_dir: str | os.PathLike[str] | None = None,
        limit_bytes: int | None = None,
        retries: int = 3,
        backoff_s: float = 0.2,
        opener: Opener | None = None,
        schemes: Schemes | None = None,
    ) -> None:
        if retries < 1:
            raise ConfigError(f"cache retries must be >= 1, got {retries}")
        if limit_bytes is not None and limit_bytes <= 0:
            raise ConfigError(f"cache limit must be a positive number of bytes, got {limit_bytes}")
        default = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "sardata" / "shards"
        self.dir = Path(cache_dir or default).expanduser()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.limit_bytes, self.retries, self.backoff_s, self.opener = limit_bytes, retries, backoff_s, opener
        self.schemes = _check_schemes(schemes, opener)
        self._init_process_state()
        self.removed_temps = remove_dead_temps(self.dir)
        with self._lock:
            self._evict(0, keep=None, strict=False)  # a lowered limit applies at once

    def _init_process_state(self) -> None:
        """State that belongs to one process: pins, hashes verified here, the lock and the fsspec clients; the
        extra schemes are trusted again (a spawned loader worker starts with none)."""
        trust_schemes(self.schemes)
        self._lock = threading.RLock()
        self._pins: dict[str, int] = {}
        self._verified: set[str] = set()
        self._fs = Filesystems(self.schemes)

    def __getstate__(self) -> dict[str, Any]:
        keep = ("dir", "limit_bytes", "retries", "backoff_s", "opener", "schemes", "removed_temps")
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
        sha = check_sha(sha256)
        with self._lock:
            self._pins[sha] = self._pins.get(sha, 0) + 1

    def unpin(self, sha256: str) -> None:
        """Release one pin; unpinning a shard that is not pinned does nothing."""
        sha = check_sha(sha256)
        with self._lock:
            n = self._pins.pop(sha, 0) - 1
            if n > 0:
                self._pins[sha] = n

    # ------------------------------------------------------------------ whole shards
    def check(self, url: str) -> None:
        """Raise :class:`ConfigError` unless this cache may read ``url``: the built-in allow-list plus its own
        ``schemes`` (not those other caches of the process were given)."""
        check_location(url, self.schemes)

    def prepare(self, url: str) -> None:
        """Load the transport of a remote ``url`` before reading (a loader calls this in the main process, so forked
        workers inherit it); a refused location or a missing package is reported here, before any worker starts."""
        self.check(url)
        scheme = url_scheme(url)
        if self.opener is None and scheme not in (None, "file"):
            self._fs.preload(scheme)

    def local_path(self, url: str, sha256: str, nbytes: int) -> Path:
        """A local file holding the shard: the file itself for local locations, else a verified cached copy.

        Raises:
            ConfigError: disallowed location, bad hash string, or a shard the limit cannot hold.
            ShardIntegrityError: a local shard of the wrong size, or no matching bytes after ``retries`` tries.
        """
        self.check(url)
        local = local_file(url)
        if local is not None:
            return self._in_place(local, nbytes)
        sha = check_sha(sha256)
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
            except transient() as exc:
                if is_permanent(exc):
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
        tmp = temp_path(self.dir, sha)
        digest, size = hashlib.sha256(), 0
        try:
            with self.open_url(url, nbytes) as src, open(tmp, "wb") as dst:
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
    def open_url(self, url: str, size: int | None = None) -> Iterator[IO[bytes]]:
        """A readable stream of the whole remote object (trusted opener, else fsspec: one HTTP GET, S3 GET...);
        ``size``, when known, spares HTTP a HEAD request. The location must pass :meth:`check`.

        Why public: fetching a served manifest (:mod:`sardata.stream.locate`) uses the same allow-listed
        transports as the shards."""
        self.check(url)
        fh = self.opener(url) if self.opener is not None else self._fs.open(url, size)
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
        self.check(url)
        if offset < 0 or size < 0:
            raise ConfigError(f"{url}: invalid byte range offset={offset} size={size}")
        if size == 0:
            return b""
        local = local_file(url)
        if local is not None:
            return read_local(local, offset, size)
        error: BaseException | None = None
        for attempt in range(self.retries):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                data = self._remote_range(url, offset, size)
            except SardataError:
                raise
            except transient() as exc:
                if is_permanent(exc):
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
        """One ranged read through the trusted opener or fsspec; the retries are :meth:`read_range`'s."""
        if self.opener is not None:
            with contextlib.closing(self.opener(url)) as fh:
                if fh.seekable():
                    fh.seek(offset)
                else:
                    read_exact(fh, offset)
                return read_exact(fh, size)
        return self._fs.read_range(url, offset, size)

    # ------------------------------------------------------------------ internals

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


def _check_schemes(schemes: Schemes | None, opener: Opener | None) -> dict[str, dict[str, Any]]:
    """``schemes`` as {name: storage options}, each name one that may be trusted (:func:`scheme_names`) and,
    without an opener, one that fsspec knows (its implementation, e.g. gcsfs, is only imported on first use).
    Nothing is trusted here: :meth:`ShardCache._init_process_state` does it once all names passed."""
    if schemes is None:
        return {}
    if isinstance(schemes, str):
        schemes = [schemes]
    items = schemes.items() if isinstance(schemes, Mapping) else ((name, {}) for name in schemes)
    out = {name: dict(opts or {}) for name, opts in items}
    names = scheme_names(out)
    out = {name: out[raw] for name, raw in zip(names, out, strict=True)}
    extra = sorted(set(out) - set(REMOTE_SCHEMES))
    if opener is None and extra:
        unknown = sorted(set(extra) - set(import_fsspec("/".join(extra)).available_protocols()))
        if unknown:
            raise ConfigError(f"schemes {unknown}: not fsspec protocols; pass an opener that serves them")
    return out


def _touch(path: Path) -> None:
    """Mark a cached shard as just used (its mtime is the LRU clock shared by all processes)."""
    with contextlib.suppress(OSError):
        os.utime(path)


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


__all__ = ["CACHE_ENV", "ShardCache", "check_sha"]
