"""Sample key rules (``data-contract.md`` §1.2–1.3).

``<source>_<slug>``: slug = source-relative path (+ ``-<token>`` for multi-sample files), lower-cased, every run
outside ``[a-z0-9]`` replaced by ``-``. Too long or colliding → truncated and suffixed with ``-`` + 10 hex digits
of sha256(relative path + ``#`` + sub-index).
"""

from __future__ import annotations

import hashlib
import re

KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,79}$")
MAX_KEY = 80
_NON_SLUG = re.compile(r"[^a-z0-9]+")


def slugify(text: str) -> str:
    return _NON_SLUG.sub("-", text.lower()).strip("-")


def make_key(source_id: str, rel: str, token: str | None = None, sub_index: int | None = None) -> str:
    """Build the key of a sample (hash-suffixed only when the plain form is longer than 80 characters)."""
    key = f"{source_id}_{slugify(rel + (f'-{token}' if token else '')) or 'x'}"
    if len(key) > MAX_KEY:
        key = hashed_key(key, source_id, rel, sub_index)
    if not KEY_RE.match(key):
        raise ValueError(f"cannot build a valid key from {rel!r} (got {key!r})")
    return key


def hashed_key(key: str, source_id: str, rel: str, sub_index: int | None) -> str:
    """Truncate ``key`` and suffix it with 10 hex digits of sha256(rel#sub_index): used for long keys and to
    separate keys that collide (e.g. ``A.jpg`` and ``a.jpg``)."""
    prefix = f"{source_id}_"
    digest = hashlib.sha256(f"{rel}#{'' if sub_index is None else sub_index}".encode("utf-8", "surrogateescape"))
    room = MAX_KEY - len(prefix) - 11
    return f"{prefix}{key[len(prefix) :][:room].rstrip('-')}-{digest.hexdigest()[:10]}"
