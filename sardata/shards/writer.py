"""Byte-reproducible WebDataset tar writing and one-seek sample reads (``data-contract.md`` §1–2).

Members are USTAR regular files with ``mtime = 0``, ``uid = gid = 0``, empty user/group names and mode 0644,
no directory entries and no PAX/GNU headers (names are ≤ 100 bytes); a sample's members are adjacent and sorted by
field name; the archive ends with two zero blocks padded to 10,240 bytes (``tarfile``'s record size). The file is
written to a temp name, fsynced, hashed and renamed. Offsets of every member are recorded while writing so any
field of any sample can be read back with one seek.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from sardata.atomic import atomic_path, file_digests
from sardata.errors import ShardIntegrityError

BLOCK = 512


@dataclass
class SampleRecord:
    """Where a sample landed inside its shard."""

    key: str
    offset: int  # header offset of its first member
    nbytes: int  # up to the end of its last padded member
    members: list[dict] = field(default_factory=list)  # {field, offset (data), size}
    sha256: str = ""  # over member data in field order


@dataclass
class ShardResult:
    path: Path
    nbytes: int
    sha256: str
    samples: list[SampleRecord]
    xxh3_128: str = ""  # fast whole-file check for the loaders (sardata.stream.verify)


def member_bytes(size: int) -> int:
    """Bytes a member of ``size`` data bytes occupies in a tar (header + data padded to 512)."""
    return BLOCK + -(-size // BLOCK) * BLOCK


def archive_bytes(payload: int) -> int:
    """Total shard size for ``payload`` member bytes: + two zero blocks, padded to tarfile's 10,240-byte record."""
    total = payload + 2 * BLOCK
    return -(-total // tarfile.RECORDSIZE) * tarfile.RECORDSIZE


def _info(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, 0, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info


def write_shard(path: str | os.PathLike[str], samples: list[tuple[str, dict[str, bytes]]]) -> ShardResult:
    """Write ``[(key, {field: data})]`` as one shard (temp + fsync + rename) and return offsets and hashes."""
    path = Path(path)
    records = []
    with atomic_path(path, fsync=True) as tmp:
        with tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tf:
            for key, fields in samples:
                rec = SampleRecord(key, tf.offset, 0)
                h = hashlib.sha256()
                for name in sorted(fields):
                    data = fields[name]
                    member = f"{key}.{name}"
                    if len(member.encode()) > 100:
                        raise ValueError(f"member name {member!r} longer than 100 bytes")
                    rec.members.append({"field": name, "offset": tf.offset + BLOCK, "size": len(data)})
                    tf.addfile(_info(member, len(data)), io.BytesIO(data))
                    h.update(data)
                rec.nbytes = tf.offset - rec.offset
                rec.sha256 = h.hexdigest()
                records.append(rec)
        (digest, fast), nbytes = file_digests(tmp), tmp.stat().st_size
    return ShardResult(path, nbytes, digest, records, fast)


def read_member(path: str | os.PathLike[str], offset: int, size: int) -> bytes:
    """One member's data by its recorded data offset (a single seek + read)."""
    with open(path, "rb") as fh:
        fh.seek(offset)
        data = fh.read(size)
    if len(data) != size:
        raise ShardIntegrityError(
            f"{path}: short read at offset {offset} ({len(data)} of {size} bytes); shard truncated"
        )
    return data
