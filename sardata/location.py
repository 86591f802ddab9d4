"""Where bytes live: the one classifier of locations (plain path or URL) and the allow-list they must pass.

Why a module of its own, below ``manifest`` and ``stream``: both decide whether a string names a local file or an
``http(s)``/``s3``/``file`` URL (relocating a dataset, resolving a shard), and two hand-written classifiers would
drift apart — one accepting what the other refuses. Why an allow-list (``data-contract.md`` §6): stock WebDataset
URLs may be shell commands (``pipe:``); nothing a manifest says is ever executed here.

Extra schemes (``gs``, ``az``, ``hf``, ``memory``... any fsspec protocol) are a decision of the calling program, never
of data: :func:`trust_schemes` (called by ``ShardCache(schemes=...)``) adds them to this process's allow-list, so a
card or table may then name them; the bytes still move only through a cache that was given them.
"""

from __future__ import annotations

import os
import re
import urllib.parse
import urllib.request
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from sardata.errors import ConfigError, ManifestSchemaError
from sardata.safepath import check_relpath, resolve_inside

ALLOWED_SCHEMES = ("file", "http", "https", "s3")
REMOTE_SCHEMES = ("http", "https", "s3")
S3_ENDPOINT_ENV = "SARDATA_S3_ENDPOINT_URL"  # a non-AWS S3 (MinIO, SeaweedFS...), for s3fs and GDAL's /vsis3/ alike
S3_ANON_ENV = "SARDATA_S3_ANON"  # "1": anonymous access to public buckets

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_SCHEME_NAME = re.compile(r"^[a-z][a-z0-9+.-]*$")
_SHELLISH = re.compile(r"[|;`\x00-\x1f\x7f]|\$\(|\$\{|&&")
NEVER_TRUSTED = ("pipe", "file")  # a command, and local files (read in place, never through a transport)
_TRUSTED: dict[str, None] = {}  # extra schemes the program trusted in this process (insertion-ordered set)


def scheme_names(schemes: Iterable[str]) -> tuple[str, ...]:
    """``schemes`` lower-cased, each a scheme name that may be trusted (not ``pipe`` or ``file``), else ConfigError."""
    names = []
    for scheme in schemes:
        name = str(scheme).lower()
        if not _SCHEME_NAME.match(name) or name in NEVER_TRUSTED:
            raise ConfigError(f"scheme {scheme!r} cannot be trusted (a scheme name such as 'gs', not pipe or file)")
        names.append(name)
    return tuple(names)


def trust_schemes(schemes: Iterable[str]) -> tuple[str, ...]:
    """Let locations name these extra schemes in this process; return them lower-cased (:func:`scheme_names`).

    Only code calls this (``ShardCache(schemes=...)`` does, also in each loader worker), never with a string read
    from a card or a table. The built-in schemes need no call; ``pipe`` and ``file`` cannot be trusted."""
    names = scheme_names(schemes)
    for name in names:
        if name not in REMOTE_SCHEMES:
            _TRUSTED[name] = None
    return tuple(names)


def trusted_schemes() -> tuple[str, ...]:
    """The extra schemes this process trusts (:func:`trust_schemes`), besides the built-in ones."""
    return tuple(_TRUSTED)


def _allowed(schemes: Iterable[str] | None) -> tuple[str, ...]:
    """The built-in schemes plus ``schemes`` (a cache's own), or plus the process's trusted ones when None."""
    return ALLOWED_SCHEMES + tuple(_TRUSTED if schemes is None else schemes)


def url_scheme(location: str) -> str | None:
    """Lower-case URL scheme, or None for a plain path (a Windows drive letter is a path, not a scheme).

    Why one function: every "is this a URL, and of which kind" question in sardata is answered here."""
    m = _SCHEME.match(location)
    if m is None or (os.name == "nt" and len(m.group(1)) == 1):
        return None
    return m.group(1).lower()


def is_url(location: str | os.PathLike[str], schemes: Iterable[str] | None = None) -> bool:
    """Whether ``location`` is a URL (http, https, s3, file, or an extra scheme: ``schemes``, else those this
    process trusts) rather than a plain local path.

    Only ``scheme://`` counts: ``file:x`` or a ``PathLike`` is a path for relocation purposes."""
    if not isinstance(location, str):
        return False
    scheme = url_scheme(location)
    return scheme in _allowed(schemes) and location[len(scheme) + 1 :].startswith("//")


def check_location(url: str, schemes: Iterable[str] | None = None) -> None:
    """Raise :class:`ConfigError` unless ``url`` is a plain path, an allowed ``file``/``http(s)``/``s3`` URL or a URL
    of an extra scheme the program trusted: ``schemes`` (a cache's own), else those of :func:`trust_schemes`.

    Why an allow-list: WebDataset treats ``pipe:cmd`` as a shell command, so a manifest naming one would run code
    on every reader. Shell metacharacters are refused even in otherwise valid locations for the same reason, and
    so is fsspec's chaining syntax (``::``), so that no location can wrap one filesystem in another.
    """
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"shard location {url!r} is empty or not a string")
    scheme = url_scheme(url)
    if scheme is not None and scheme not in _allowed(schemes):
        raise ConfigError(
            f"shard location {url!r}: scheme {scheme + ':'!r} is not allowed; use a relative path, file://, "
            "http(s):// or s3:// (commands such as pipe: are never run); a program reads another fsspec scheme "
            f"with ShardCache(schemes={{{scheme!r}: {{...storage options}}}}), or with a trusted opener callable "
            f"and schemes=[{scheme!r}]"
        )
    if _SHELLISH.search(url) or url.startswith("-"):
        raise ConfigError(f"shard location {url!r} contains shell syntax (|, ;, `, $(, &&, control characters)")
    if scheme is None:
        return
    parts = urllib.parse.urlsplit(url)
    if scheme != "file" and not parts.netloc:
        raise ConfigError(f"shard location {url!r} names no host or bucket")
    if scheme == "file" and parts.netloc not in ("", "localhost"):
        raise ConfigError(f"shard location {url!r}: file:// URLs must be local (file:///path)")
    if "::" in f"{parts.path}?{parts.query}":
        raise ConfigError(f"shard location {url!r}: '::' (fsspec URL chaining) is not allowed in a location")


def _relative(path: str) -> str:
    """``path`` as a clean relative POSIX path (:func:`sardata.safepath.check_relpath`): absolute paths, URLs and
    ``..`` are refused, so no shard name from a table can point outside the dataset root, locally or remotely."""
    try:
        return PurePosixPath(check_relpath(path, "shard path", "shards.parquet")).as_posix()
    except ManifestSchemaError as exc:
        raise ConfigError(f"{exc} (shard paths are relative to the dataset root; no leading /, .. or URL)") from exc


def resolve(base: str, path: str) -> str:
    """Join a dataset location (local dir, file://, http(s)://, s3:// URL, or a trusted extra scheme) with a
    relative path from shards.parquet. Rejects any other scheme, notably `pipe:`, and any path leaving the root
    with ConfigError.

    Why: a ``base_url`` override relocates a dataset without rewriting its tables (``data-contract.md`` intro);
    a table naming an absolute location would instead let a served or edited manifest choose any file.
    """
    check_location(path)
    check_location(base)
    rel = _relative(path)
    scheme = url_scheme(base)
    if scheme is None:
        return str(resolve_inside(base, rel, "shard path", "shards.parquet"))
    sep = "" if base.endswith("/") else "/"
    if scheme in ("file", "http", "https"):
        return base + sep + urllib.parse.quote(rel, safe="/")
    return base + sep + rel  # object keys (s3, gs, az, memory...) are taken verbatim by their filesystems


def s3_settings() -> tuple[str | None, bool]:
    """The S3 endpoint and anonymity the environment asks for now: ``$SARDATA_S3_ENDPOINT_URL`` (None: the S3
    client's own configuration) and ``$SARDATA_S3_ANON``. Shared by every reader of ``s3://`` locations."""
    return os.environ.get(S3_ENDPOINT_ENV) or None, os.environ.get(S3_ANON_ENV, "") in ("1", "true", "yes")


VSI_PREFIXES = {"http": "/vsicurl/", "https": "/vsicurl/", "s3": "/vsis3/", "gs": "/vsigs/", "az": "/vsiaz/"}


def from_vsi(location: str) -> str:
    """A GDAL virtual path of a remote object as the URL it names (``/vsicurl/https://h/x`` → ``https://h/x``,
    ``/vsis3/b/k`` → ``s3://b/k``, also ``/vsigs/``, ``/vsiaz/``); any other string unchanged. Another ``/vsi``
    prefix (``/vsizip/``, ``/vsicurl?``, ``/vsistdin/``, ``/vsimem/``...) is refused: it would let a location choose a
    GDAL reader."""
    if not location.startswith("/vsi"):
        return location
    if location.startswith("/vsicurl/"):
        url = location[len("/vsicurl/") :]
        if url_scheme(url) in ("http", "https"):
            return url
    for scheme, prefix in VSI_PREFIXES.items():
        if prefix != "/vsicurl/" and location.startswith(prefix):
            return f"{scheme}://{location[len(prefix) :]}"
    raise ConfigError(
        f"location {location!r}: of GDAL's virtual paths only /vsicurl/http(s)://, /vsis3/, /vsigs/ and /vsiaz/ "
        "are accepted"
    )


def to_vsi(url: str) -> str:
    """An allowed remote URL as GDAL's virtual path (``https://h/x`` → ``/vsicurl/https://h/x``, ``s3://b/k`` →
    ``/vsis3/b/k``); ConfigError for a scheme GDAL cannot read (``memory://``, ``hf://``...)."""
    check_location(url)
    scheme = url_scheme(url) or ""
    prefix = VSI_PREFIXES.get(scheme)
    if prefix is None:
        raise ConfigError(f"location {url!r}: GDAL has no reader for {scheme}:// (use http(s)://, s3://, gs://, az://)")
    return prefix + (url if prefix == "/vsicurl/" else url.split("://", 1)[1])


def local_file(url: str) -> Path | None:
    """The local file a location names, or None for a remote URL."""
    scheme = url_scheme(url)
    if scheme is None:
        return Path(url)
    if scheme == "file":
        return Path(urllib.request.url2pathname(urllib.parse.urlsplit(url).path))
    return None


__all__ = [
    "ALLOWED_SCHEMES",
    "NEVER_TRUSTED",
    "REMOTE_SCHEMES",
    "S3_ANON_ENV",
    "S3_ENDPOINT_ENV",
    "VSI_PREFIXES",
    "check_location",
    "from_vsi",
    "is_url",
    "local_file",
    "resolve",
    "s3_settings",
    "scheme_names",
    "trust_schemes",
    "to_vsi",
    "trusted_schemes",
    "url_scheme",
]
