"""Where bytes live: the one classifier of locations (plain path or URL) and the allow-list they must pass.

Why a module of its own, below ``manifest`` and ``stream``: both decide whether a string names a local file or an
``http(s)``/``s3``/``file`` URL (relocating a dataset, resolving a shard), and two hand-written classifiers would
drift apart — one accepting what the other refuses. Why an allow-list (``data-contract.md`` §6): stock WebDataset
URLs may be shell commands (``pipe:``); nothing a manifest says is ever executed here.
"""

from __future__ import annotations

import os
import re
import urllib.parse
import urllib.request
from pathlib import Path, PurePosixPath

from sardata.errors import ConfigError, ManifestSchemaError
from sardata.safepath import check_relpath, resolve_inside

ALLOWED_SCHEMES = ("file", "http", "https", "s3")
REMOTE_SCHEMES = ("http", "https", "s3")

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_SHELLISH = re.compile(r"[|;`\x00-\x1f\x7f]|\$\(|\$\{|&&")


def url_scheme(location: str) -> str | None:
    """Lower-case URL scheme, or None for a plain path (a Windows drive letter is a path, not a scheme).

    Why one function: every "is this a URL, and of which kind" question in sardata is answered here."""
    m = _SCHEME.match(location)
    if m is None or (os.name == "nt" and len(m.group(1)) == 1):
        return None
    return m.group(1).lower()


def is_url(location: str | os.PathLike[str]) -> bool:
    """Whether ``location`` is a URL (http, https, s3, file) rather than a plain local path.

    Only ``scheme://`` counts: ``file:x`` or a ``PathLike`` is a path for relocation purposes."""
    if not isinstance(location, str):
        return False
    scheme = url_scheme(location)
    return scheme in ALLOWED_SCHEMES and location[len(scheme) + 1 :].startswith("//")


def check_location(url: str) -> None:
    """Raise :class:`ConfigError` unless ``url`` is a plain path or an allowed ``file``/``http(s)``/``s3`` URL.

    Why an allow-list: WebDataset treats ``pipe:cmd`` as a shell command, so a manifest naming one would run code
    on every reader. Shell metacharacters are refused even in otherwise valid locations for the same reason.
    """
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"shard location {url!r} is empty or not a string")
    scheme = url_scheme(url)
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
    scheme = url_scheme(base)
    if scheme is None:
        return str(resolve_inside(base, rel, "shard path", "shards.parquet"))
    sep = "" if base.endswith("/") else "/"
    if scheme == "s3":
        return base + sep + rel  # object keys are taken verbatim by s3fs
    return base + sep + urllib.parse.quote(rel, safe="/")


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
    "REMOTE_SCHEMES",
    "check_location",
    "is_url",
    "local_file",
    "resolve",
    "url_scheme",
]
