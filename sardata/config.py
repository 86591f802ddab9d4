"""Configuration helpers: canonical JSON and its sha256, and the per-sample decode budget.

The canonical form (sorted keys, no whitespace, UTF-8, no NaN) is what ``config_sha256`` hashes, so the same
configuration gives the same hash on every machine and Python version.

Decode budget: a compressed or sparse input can declare far more pixels than it holds (a 50 KB TIFF declaring
20000² float32 pixels costs 1.6 GB once read). Every reader checks the decoded size a header declares against
:func:`sample_budget_bytes` *before* allocating and rejects the file (reason ``too_large``) when it is larger.
Default 2**28 bytes (256 MiB: e.g. 8192² float32 pixels, or 16384² uint8), far above any sample in the supported
datasets; override with ``SARDATA_MAX_SAMPLE_BYTES`` (read at each check, so it also reaches worker processes).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Any

SAMPLE_BUDGET_ENV = "SARDATA_MAX_SAMPLE_BYTES"
DEFAULT_SAMPLE_BUDGET_BYTES = 2**28


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


def sample_budget_bytes() -> int:
    """Largest decoded size (bytes) one read of one input may allocate: ``SARDATA_MAX_SAMPLE_BYTES`` or 2**28.

    Raises:
        ConfigError: the variable is not a positive integer.
    """
    raw = os.environ.get(SAMPLE_BUDGET_ENV, "").strip()
    if not raw:
        return DEFAULT_SAMPLE_BUDGET_BYTES
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        from sardata.errors import ConfigError

        raise ConfigError(f"{SAMPLE_BUDGET_ENV}={raw!r}: expected a positive number of bytes (e.g. 268435456)")
    return value
