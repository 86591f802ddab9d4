"""Integrity checks on the read path: every byte a loader, ``manifest show``/``diff`` or ``merge`` uses is first
checked against a hash the index already holds, so a flipped byte raises instead of reaching the user.

Policy (README, *Integrity policy*):

* **Tables** (``samples``/``shards``/``sources.parquet``) are hashed on open and compared with the card's
  ``tables.<name>.sha256`` (:func:`open_verified_table`); a table is small next to its shards.
* **Shards**, ``verify="shard"`` (the default): a shard is hashed in full and compared with ``shards.parquet``
  before its first byte is used. Why whole shards: a shard hashed once serves every later read. Which hash: the
  shard's **XXH3-128** (column ``xxh3_128``, schema 1.1), else (a dataset written before 1.1) its sha256. Why not
  sha256 always: sha256 runs at ≈1.6 GB/s on one core here (SHA-NI) while the loader delivers ≈2 GB/s from the
  page cache, so a shard's first use cost 20–30 % of the loader's throughput; XXH3 runs at ≈10 GB/s. XXH3-128 is
  not a cryptographic hash: it catches corruption (media, transfer, truncation, stray edits; a random change
  passes with probability 2^-128), not a forger who rewrites shard bytes to a chosen collision while leaving the
  card-verified tables alone. Against that threat use ``verify="sample"`` (sha256 per sample on every read) or
  ``sardata manifest verify`` (sha256 of every shard); remote shards are sha256-checked as they download. A verified shard is
  remembered by its identity (device, inode, size, mtime_ns, ctime_ns) in this process and in a marker directory
  (``$SARDATA_VERIFIED_DIR``, default ``~/.cache/sardata/verified``), so DataLoader workers and later runs do not
  re-hash an unchanged file. Any write through the file system changes mtime/ctime and forces a re-hash; a file
  modified less than :data:`RACY_S` seconds before its check is never remembered (timestamps are coarse: git's
  "racily clean" rule). Media corruption that bypasses the file system is not covered by the marker: use
  ``verify="sample"`` or ``manifest verify`` for that. ``ShardIterable`` hashes the next shards of its sequence on
  a background thread (:func:`verify_ahead`) while the current one is delivered; a shard is still read only after
  its own check returned (:func:`await_verified`), and its error is raised when the loader reaches it.
* ``verify="sample"``: every read hashes the whole sample (all its members) against ``sample_sha256``, every time
  — for random access to a few samples of large shards, or for paranoia.
* ``verify="off"``: no hashing of shards (tables are still checked; dtypes and shapes still are).

A mismatch raises :class:`ShardIntegrityError` naming the shard, the sample key and the member.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pyarrow as pa
import xxhash

from sardata.atomic import hash_file, sha256_file
from sardata.errors import ChecksumError, ConfigError, ShardIntegrityError

VERIFY_MODES = ("shard", "sample", "off")
RACY_S = 2.0  # a file modified this recently may change again within the timestamps' resolution
_VERIFIED: set[tuple] = set()  # identities of shards this process has hashed and found intact
_HASHER: tuple[int, queue.SimpleQueue] | None = None  # (pid, queue of the background hashing thread)


def check_mode(verify: str) -> str:
    """``verify`` if it is a known mode, else a :class:`ConfigError` listing them."""
    if verify not in VERIFY_MODES:
        raise ConfigError(f"verify={verify!r}: expected one of {VERIFY_MODES}")
    return verify


def open_verified_table(root: str | os.PathLike[str], name: str, card: dict[str, Any] | None = None) -> pa.Table:
    """``<root>/<name>.parquet`` after checking its sha256 against the card (then its schema, as ``read_table``).

    Raises:
        ChecksumError: the table's bytes differ from the card, or the card records no hash for it.
    """
    from sardata.manifest.io import read_card, read_table

    root = Path(root)
    card = read_card(root) if card is None else card
    path = root / f"{name}.parquet"
    info = card.get("tables", {}).get(name)
    if path.exists():
        if not info or not info.get("sha256"):
            raise ChecksumError(f"{path}: dataset.json records no sha256 for this table; rebuild the dataset")
        actual = sha256_file(path)
        if actual != info["sha256"]:
            raise ChecksumError(
                f"{path}: sha256 {actual[:16]}… != dataset.json {info['sha256'][:16]}…; the table was modified or "
                "damaged — restore it or rebuild the dataset (sardata manifest verify names what else differs)"
            )
    return read_table(path, name)


def _identity(path: Path, sha256: str) -> tuple:
    st = path.stat()
    return (str(path.resolve()), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, sha256)


def _marker(ident: tuple) -> Path:
    base = Path(os.environ.get("SARDATA_VERIFIED_DIR") or Path.home() / ".cache" / "sardata" / "verified")
    return base / hashlib.sha256(repr(ident).encode()).hexdigest()


def _remember(ident: tuple, mtime_ns: int) -> None:
    """Record a verified shard (in this process and as a marker file), unless it was modified too recently."""
    if time.time() - mtime_ns / 1e9 < RACY_S:
        return
    _VERIFIED.add(ident)
    marker = _marker(ident)
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        tmp = marker.with_name(f".{marker.name}.{os.getpid()}")
        tmp.write_text(repr(ident[:1]) + "\n")
        os.replace(tmp, marker)
    except OSError:
        pass  # a read-only home: verification simply repeats next time


def verify_shard(path: Path, shard: dict[str, Any], rows: Callable[[], list[dict[str, Any]]] | None = None) -> tuple:
    """Check a whole shard file against its ``shards.parquet`` row (size, sha256), once per file identity.

    ``rows``: gives the index rows of this shard (``key``, ``members``, ``sample_sha256``), used on a mismatch to name
    the damaged sample and member. Returns the identity found intact; raises :class:`ShardIntegrityError`."""
    try:
        ident = _identity(path, shard["sha256"])
    except OSError as exc:
        raise ShardIntegrityError(
            f"{shard['shard']}: shard file {path} unreadable ({exc}); re-fetch or rebuild"
        ) from exc
    if ident in _VERIFIED or _marker(ident).exists():
        _VERIFIED.add(ident)
        return ident
    expected = shard.get("xxh3_128") or shard["sha256"]
    (h,) = hash_file(path, xxhash.xxh3_128() if shard.get("xxh3_128") else hashlib.sha256(), mapped=True)
    if ident[3] == shard["bytes"] and h.hexdigest() == expected:
        _remember(ident, ident[4])
        return ident
    damage = locate_damage(path, rows() if rows else [])
    where = f"{shard['shard']}:{damage[0]}: member {damage[1]}" if damage else f"{shard['shard']} ({path})"
    raise ShardIntegrityError(
        f"{where}: shard size {ident[3]} B / {h.name} {h.hexdigest()[:16]}… differ from shards.parquet "
        f"({shard['bytes']} B, {expected[:16]}…); re-fetch or rebuild the shard"
    )


def _hash_loop(jobs: queue.SimpleQueue) -> None:
    while True:
        fut, fn, args = jobs.get()
        if not fut.set_running_or_notify_cancel():
            continue  # cancelled: the loader verified it inline
        try:
            fut.set_result(fn(*args))
        except BaseException as exc:  # noqa: BLE001 - kept for the reader, raised when it reaches the shard
            fut.set_exception(exc)


def verify_ahead(path: Path, shard: dict[str, Any], rows: Callable[[], list[dict[str, Any]]] | None = None) -> Future:
    """:func:`verify_shard` on one background thread of this process, for a shard the loader will read soon.

    sha256 and file reads release the GIL, so the hash of the next shards overlaps delivery from the current one.
    The caller must wait on the future (:func:`await_verified`) before reading any byte of the shard; a
    :class:`ShardIntegrityError` is kept in the future and raised there. The thread is a daemon, created lazily and
    again after a fork (keyed by pid): a forked worker never waits on its parent's thread."""
    global _HASHER
    if _HASHER is None or _HASHER[0] != os.getpid():
        jobs: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=_hash_loop, args=(jobs,), name="sardata-verify", daemon=True).start()
        _HASHER = (os.getpid(), jobs)
    fut: Future = Future()
    _HASHER[1].put((fut, verify_shard, (path, shard, rows)))
    return fut


def await_verified(fut: Future | None, path: Path, shard: dict[str, Any],
                   rows: Callable[[], list[dict[str, Any]]] | None = None) -> None:  # fmt: skip
    """Return once ``path`` is verified: the background result if the file still has the identity that was hashed,
    else (not submitted, not started yet, or changed since) :func:`verify_shard` inline."""
    if fut is not None and not fut.cancel():  # running or done: its result (or its ShardIntegrityError)
        ident = fut.result()
        try:
            if _identity(path, shard["sha256"]) == ident:
                return
        except OSError:
            pass  # gone since: the inline check names it
    verify_shard(path, shard, rows)


def sample_digest(fh: Any, members: list[dict[str, Any]]) -> tuple[str, dict[str, bytes]]:
    """sha256 over a sample's member bytes in index order (what ``sample_sha256`` hashes) and those bytes."""
    h, data = hashlib.sha256(), {}
    for m in members:
        fh.seek(m["offset"])
        data[m["field"]] = buf = fh.read(m["size"])
        h.update(buf)
    return h.hexdigest(), data


def locate_damage(path: Path, rows: list[dict[str, Any]]) -> tuple[str, str] | None:
    """(key, member) of the first sample whose bytes differ from ``sample_sha256`` (None if none does)."""
    from sardata.shards.reader import decode_field

    with open(path, "rb") as fh:
        for row in rows:
            digest, data = sample_digest(fh, row["members"])
            if digest == row["sample_sha256"]:
                continue
            return row["key"], suspect_member(data, row, decode_field)
    return None


def suspect_member(data: dict[str, bytes], row: dict[str, Any], decode: Any) -> str:
    """The member of a damaged sample that fails to decode or disagrees with the index, else all its members.

    The index holds one hash per sample, not per member, so a payload byte flip can only be narrowed down to the
    sample; a damaged header, dtype or label is named exactly."""
    for field, buf in data.items():
        try:
            value = decode(field, bytearray(buf), "")
        except Exception:  # noqa: BLE001 - any decode failure names this member
            return field
        label = row.get("label")
        if field == "cls" and label is not None and label == label and value != int(label):  # NaN: no label
            return field
        expected = row.get("dtype")
        if field == "img.npy" and expected and str(value.dtype) != expected:
            return field
    return "one of " + ", ".join(data)


def check_sample(fh: Any, shard: str, row: dict[str, Any]) -> dict[str, bytes]:
    """The member bytes of one sample after checking them against ``sample_sha256`` (``verify="sample"``)."""
    from sardata.shards.reader import decode_field

    digest, data = sample_digest(fh, row["members"])
    if digest != row["sample_sha256"]:
        raise ShardIntegrityError(
            f"{shard}:{row['key']}: member {suspect_member(data, row, decode_field)}: bytes differ from "
            f"the index (sha256 {digest[:16]}… != {str(row['sample_sha256'])[:16]}…); re-fetch or rebuild the shard"
        )
    return data


__all__ = [
    "VERIFY_MODES",
    "await_verified",
    "check_mode",
    "check_sample",
    "open_verified_table",
    "verify_ahead",
    "verify_shard",
]
