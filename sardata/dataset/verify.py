"""``sardata manifest verify`` and ``diff``: integrity of a built dataset, and what changed between two."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sardata.atomic import file_digests, sha256_file
from sardata.manifest.io import read_card, read_table
from sardata.safepath import resolve_inside


@dataclass
class VerifyReport:
    root: Path
    shards_ok: int = 0
    samples_checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(root: str | os.PathLike[str], samples: bool = False, base_url: str | None = None) -> VerifyReport:
    """Check tables against the card, every shard's size and sha256, and (on mismatch, or with ``samples``)
    each sample's member hash — so a corrupted byte is reported with its shard **and** sample key.

    ``root`` may be a URL and the shards may live under the card's ``base_url`` (or ``base_url`` given here):
    remote shards are downloaded into a temporary cache, so the check is against the served bytes, not an
    earlier cached copy (:mod:`sardata.stream.locate`)."""
    import tempfile

    from sardata.stream.cache import ShardCache
    from sardata.stream.locate import locate

    with tempfile.TemporaryDirectory(prefix="sardata-verify-") as tmp:
        local, base, cache = locate(root, base_url, ShardCache(tmp))  # fresh cache: check the served bytes
        return _verify(local, samples, base, cache)


def _verify(root: Path, samples: bool, base: str | None, cache: object) -> VerifyReport:
    report = VerifyReport(root)
    card = read_card(root)
    for name, info in sorted(card.get("tables", {}).items()):
        table = resolve_inside(root, f"{name}.parquet", "table name", "dataset.json")
        if not table.is_file():
            report.problems.append(f"{name}.parquet: listed in dataset.json but missing ({table})")
            continue
        actual = sha256_file(table)
        if actual != info["sha256"]:
            report.problems.append(f"{name}.parquet: sha256 {actual[:16]}… != card {info['sha256'][:16]}…")
    if report.problems:
        return report
    shards = read_table(root / "shards.parquet", "shards").to_pylist()
    index = read_table(root / "samples.parquet", "samples").select(["key", "shard", "members", "sample_sha256"])
    by_shard: dict[str, list[dict[str, Any]]] = {}
    for row in index.to_pylist():
        by_shard.setdefault(row["shard"], []).append(row)
    for s in shards:
        path = (
            resolve_inside(root, s["path"], "shard path", "shards.parquet")
            if base is None
            else _fetch(base, s, cache, report)
        )
        if path is None:
            continue
        if not path.exists():
            report.problems.append(f"{s['shard']}: missing ({path})")
            continue
        sha, fast = file_digests(path)
        recorded_fast = s.get("xxh3_128")  # null in a dataset written before schema 1.1
        bad = path.stat().st_size != s["bytes"] or sha != s["sha256"] or bool(recorded_fast and fast != recorded_fast)
        if bad:
            report.problems.append(f"{s['shard']}: sha256/xxh3/size mismatch (expected {s['sha256'][:16]}…, "
                                   f"{s['bytes']} B)")  # fmt: skip
        else:
            report.shards_ok += 1
        if bad or samples:
            report.problems += _check_samples(path, s["shard"], by_shard.get(s["shard"], []), report)
    return report


def _fetch(base: str, shard: dict[str, Any], cache: Any, report: VerifyReport) -> Path | None:
    """The shard under ``base``: a local path, or a verified download (a failed one becomes a problem line)."""
    from sardata.errors import SardataError
    from sardata.location import local_file, resolve

    url = resolve(base, shard["path"])
    local = local_file(url)
    if local is not None:
        return local
    try:
        return cache.local_path(url, shard["sha256"], shard["bytes"])
    except SardataError as exc:
        report.problems.append(f"{shard['shard']}: {exc}")
        return None


def _check_samples(path: Path, shard: str, rows: list[dict[str, Any]], report: VerifyReport) -> list[str]:
    problems = []
    with open(path, "rb") as fh:
        for row in rows:
            h = hashlib.sha256()
            for m in row["members"]:
                fh.seek(m["offset"])
                h.update(fh.read(m["size"]))
            report.samples_checked += 1
            if h.hexdigest() != row["sample_sha256"]:
                fields = ", ".join(m["field"] for m in row["members"])
                problems.append(f"{shard}: sample {row['key']} content differs from the index (fields {fields})")
    return problems


def diff(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> dict[str, Any]:
    """Samples added / removed / changed (by content hash) and configuration keys that differ."""
    a, b = Path(a), Path(b)
    from sardata.stream.verify import open_verified_table  # tables checked against their cards first

    ca, cb = read_card(a), read_card(b)
    cols = ["key", "content_sha256", "sample_sha256", "split", "label_name"]
    ta = {r["key"]: r for r in open_verified_table(a, "samples", ca).select(cols).to_pylist()}
    tb = {r["key"]: r for r in open_verified_table(b, "samples", cb).select(cols).to_pylist()}
    changed = sorted(k for k in ta.keys() & tb.keys() if ta[k] != tb[k])
    return {
        "added": sorted(tb.keys() - ta.keys()),
        "removed": sorted(ta.keys() - tb.keys()),
        "changed": changed,
        "unchanged": len(ta.keys() & tb.keys()) - len(changed),
        "config": _dict_diff(ca.get("config", {}), cb.get("config", {})),
    }


def _dict_diff(x: Any, y: Any, path: str = "") -> list[str]:
    if isinstance(x, dict) and isinstance(y, dict):
        out = []
        for k in sorted(x.keys() | y.keys(), key=str):
            out += _dict_diff(x.get(k), y.get(k), f"{path}.{k}" if path else str(k))
        return out
    return [] if x == y else [f"{path}: {x!r} -> {y!r}"]
