"""Where a dataset's shards live: relative paths, the card's ``base_url``, and manifests served over HTTP/S3.

Every path in ``shards.parquet`` is relative to the card (``data-contract.md``, intro), so a dataset moves by
setting ``base_url`` alone (:func:`sardata.dataset.relocate.relocate`). The loaders find the shards here, with
this precedence, highest first:

1. an explicit ``base_url`` passed by the caller (``ShardIterable(..., base_url=...)``);
2. the card's ``base_url`` (a URL, or a local path — a relative one is relative to the card's directory);
3. the card's own location: the directory holding ``dataset.json``, local or a URL.

A dataset whose card is itself a URL (``http(s)://host/ds``, ``s3://bucket/ds``, or a scheme the cache was given,
``memory://ds``, ``gs://bucket/ds``) is opened by downloading
``dataset.json`` and the tables it names into ``<cache>/manifests/<card sha256>/``; each table must match the
sha256 recorded in the card (the card is the root of trust) before it is used.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import urllib.parse
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sardata.atomic import atomic_write_bytes, sha256_file
from sardata.errors import ManifestSchemaError, ShardIntegrityError
from sardata.location import check_location, is_url
from sardata.manifest.io import CARD_NAME, read_card
from sardata.safepath import check_relpath, resolve_inside
from sardata.stream.cache import ShardCache
from sardata.stream.transport import transient

BASE_KEY = "base_url"


def _join(root: str, rel: str) -> str:
    """``rel`` (a relative base) against a card location that may be a URL or a local directory."""
    if is_url(root):
        return urllib.parse.urljoin(root.rstrip("/") + "/", rel)
    return str((Path(root) / rel).resolve())


def card_base(card: dict[str, Any], root: str | os.PathLike[str], schemes: Iterable[str] | None = None) -> str | None:
    """The card's ``base_url`` made absolute (relative paths are relative to ``root``), or None when unset.
    ``schemes``: the extra schemes the reading cache was given (None: those the process trusts).

    Raises:
        ConfigError: the card names a location outside the allow-list (``pipe:``, ``gs://`` unless trusted, shell
            syntax...).
    """
    base = card.get(BASE_KEY)
    if not base:
        return None
    base = str(base)
    check_location(base, schemes)  # a card naming pipe: or an untrusted scheme is refused, never run
    if is_url(base, schemes) or os.path.isabs(base):
        return base
    return _join(str(root), base)


def locate(
    root: str | os.PathLike[str], base_url: str | None = None, cache: Any = None
) -> tuple[Path, str | None, Any]:
    """Resolve a dataset location into (local manifest directory, shard base or None for "next to the card",
    cache). ``root`` may be a URL: its manifests are fetched through ``cache`` (a default
    :class:`~sardata.stream.cache.ShardCache` when None). A remote shard base also gets a default cache."""
    schemes = getattr(cache, "schemes", None)
    if "://" in str(root):
        check_location(str(root), schemes)  # gs://... without a cache given gs: the refusal, not "no such file"
    if is_url(str(root), schemes) and not str(root).lower().startswith("file://"):
        cache = cache if cache is not None else ShardCache()
        local = fetch_manifest(str(root), cache)
        card = read_card(local)
        schemes = getattr(cache, "schemes", None)
        served = card_base(card, str(root), schemes)
        if served is not None and (not is_url(served, schemes) or served.lower().startswith("file:")):
            raise ManifestSchemaError(
                f"{root}/{CARD_NAME}: base_url {card.get(BASE_KEY)!r} names a local location; a served card may "
                "only point at remote shards (pass base_url= yourself to read local copies)"
            )
        base = base_url or served or str(root).rstrip("/")
    else:
        local = Path(urllib.parse.urlsplit(str(root)).path) if str(root).lower().startswith("file://") else Path(root)
        card = read_card(local)
        base = base_url or card_base(card, local, schemes)
    if base is not None and is_url(base, schemes) and not base.lower().startswith("file://"):
        cache = cache if cache is not None else ShardCache()
        if hasattr(cache, "prepare"):
            cache.prepare(base)  # its transport loaded here, inherited by forked loader workers
    return local, base, cache


def fetch_manifest(url: str, cache: Any) -> Path:
    """Download ``<url>/dataset.json`` and the tables it lists into the cache; verify each table's sha256.

    Raises:
        ManifestSchemaError: the card cannot be fetched or parsed.
        ShardIntegrityError: a fetched table does not match the card's sha256.
    """
    base = url.rstrip("/")
    card_bytes = _get(cache, f"{base}/{CARD_NAME}")
    try:
        card = json.loads(card_bytes)
    except ValueError as exc:
        raise ManifestSchemaError(f"{base}/{CARD_NAME}: not valid JSON ({exc})") from exc
    tables = _checked_tables(card, f"{base}/{CARD_NAME}")  # before any local path is built from a served name
    local = Path(cache.dir) / "manifests" / hashlib.sha256(card_bytes).hexdigest()
    if (local / CARD_NAME).exists():
        return local  # written last, after every table was verified
    for name, info in tables:
        target = resolve_inside(local, f"{name}.parquet", "table name", f"{base}/{CARD_NAME}")
        if target.exists() and sha256_file(target) == info["sha256"]:
            continue
        data = _get(cache, f"{base}/{urllib.parse.quote(name)}.parquet")
        actual = hashlib.sha256(data).hexdigest()
        if actual != info["sha256"]:
            raise ShardIntegrityError(
                f"{base}/{name}.parquet: sha256 {actual} != {info['sha256']} recorded in {base}/{CARD_NAME}; "
                "the served copy is stale or damaged (copy the dataset folder again)"
            )
        atomic_write_bytes(target, data, fsync=True)
    atomic_write_bytes(local / CARD_NAME, card_bytes, fsync=True)
    return local


def _checked_tables(card: Any, where: str) -> list[tuple[str, dict[str, Any]]]:
    """The card's ``tables`` as (name, info) pairs after checking every name with :func:`check_relpath` (a
    served ``../../x`` must never become a file outside the cache) and every sha256 as 64 hex digits."""
    if not isinstance(card, dict) or not isinstance(card.get("tables", {}), dict):
        raise ManifestSchemaError(f"{where}: not a dataset card (expected an object with a tables mapping)")
    out = []
    for name, info in sorted(card.get("tables", {}).items()):
        check_relpath(name, "table name", where)
        sha = info.get("sha256") if isinstance(info, dict) else None
        if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{64}", sha):
            raise ManifestSchemaError(f"{where}: table {name!r} has no valid sha256 (64 lower-case hex digits)")
        out.append((name, info))
    return out


def _get(cache: Any, url: str) -> bytes:
    """One whole object (HTTP GET / S3 GET...) through the cache's transports; errors name the URL."""
    try:
        with cache.open_url(url) as fh:  # the cache's allow-listed transports (fsspec / trusted opener)
            return fh.read()
    except (*transient(), ValueError) as exc:
        raise ManifestSchemaError(f"{url}: cannot fetch ({type(exc).__name__}: {exc}); is the dataset there?") from exc


__all__ = ["BASE_KEY", "card_base", "fetch_manifest", "locate"]
