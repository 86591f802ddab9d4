"""Configuration helpers: canonical JSON and its sha256.

The canonical form (sorted keys, no whitespace, UTF-8, no NaN) is what ``config_sha256`` hashes, so the same
configuration gives the same hash on every machine and Python version.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any


def _plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def canonical_json(obj: Any) -> str:
    """Serialise ``obj`` (dataclasses, dicts, lists, scalars) to canonical JSON."""
    return json.dumps(_plain(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def config_sha256(obj: Any) -> str:
    """sha256 hex digest of :func:`canonical_json`."""
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()
