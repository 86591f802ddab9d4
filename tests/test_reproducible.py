"""Byte-reproducibility claims against committed hashes, and the lock file CI installs from.

What is claimed byte for byte (``data-contract.md`` §2, ``sardata.sim.pdw``): shard tars (with and without GR),
the content of every table, the Parquet bytes for a fixed pyarrow, and regenerated PDW pulses. The expected
hashes live in ``tests/golden/reproducible.json`` together with the dependency versions they were recorded
with. When a hash moves, the failure names the dependencies it rests on that changed since then, so a drift
reads as "pyarrow 26.0.1 -> 27.0.0", not as a flaky test. Refresh after an intended change:
``SARDATA_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_reproducible.py`` and commit the JSON.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
from importlib import metadata

import pytest
from conftest import FIXTURES, REPO

from sardata.config import canonical_json
from sardata.ingest import ingest
from sardata.manifest.io import read_table
from sardata.shards.build import BuildConfig, build_shards
from sardata.sim.pdw import FileJob, SampleKey, simulate_key

GOLDEN = REPO / "tests" / "golden" / "reproducible.json"
LOCK = REPO / "requirements.lock"
UPDATE = os.environ.get("SARDATA_UPDATE_GOLDEN") == "1"
#: Distributions whose versions the hashes are recorded with (everything a hashed byte passes through).
TRACKED = ("numpy", "pyarrow", "pandas", "pillow", "torch", "scipy", "h5py", "rasterio")
TABLES = ("samples", "shards", "sources")


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "absent"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> dict[str, tuple[str, tuple[str, ...]]]:
    """name -> (sha256, the distributions its bytes pass through)."""
    tmp = tmp_path_factory.mktemp("golden")
    ingest("sar-acd", FIXTURES / "sar-acd" / "SAR-ACD", tmp / "ing")
    out: dict[str, tuple[str, tuple[str, ...]]] = {}
    builds = {
        "plain": (BuildConfig(test_ratio=0.5, shots=(1,), seeds=(0,), max_shard_samples=4), ("numpy", "pillow")),
        "gr": (BuildConfig(size_policy="resize", size=32, targets=("gr",)), ("numpy", "pillow", "torch", "scipy")),
    }
    for name, (cfg, deps) in builds.items():
        build_shards([tmp / "ing"], tmp / name, cfg)
        tars = sorted((tmp / name / "shards").glob("*.tar"))
        out[f"{name}/shards"] = (_sha(b"".join(_sha(p.read_bytes()).encode() for p in tars)), deps)
        for table in TABLES:
            path = tmp / name / f"{table}.parquet"
            rows = read_table(path, table).to_pylist()
            out[f"{name}/{table}.content"] = (_sha(canonical_json(rows).encode()), (*deps, "pyarrow"))
            out[f"{name}/{table}.parquet"] = (_sha(path.read_bytes()), (*deps, "pyarrow"))
    job = FileJob("x", (), 7, False, 256)
    pulses = b"".join(
        simulate_key(job, SampleKey(t, m, i))[0].tobytes() for t in (0, 3) for m in range(3) for i in (0, 9)
    )
    out["pdw/pulses"] = (_sha(pulses), ("numpy",))
    return out


def _drift_message(name: str, got: str, want: str, deps: tuple[str, ...], recorded: dict[str, str]) -> str:
    changed = [f"{d} {recorded.get(d, '?')} -> {_version(d)}" for d in deps if recorded.get(d) != _version(d)]
    cause = (
        "dependencies it rests on that changed since the hashes were recorded: " + ", ".join(changed)
        if changed
        else f"no dependency it rests on ({', '.join(deps)}) changed: the change is in sardata itself, or in "
        f"CPU-dependent math (recorded on {recorded.get('machine', '?')}, now {platform.machine()})"
    )
    return (
        f"{name} is not byte-reproducible: sha256 {got[:16]}… != recorded {want[:16]}…; {cause}. If intended, "
        "refresh with SARDATA_UPDATE_GOLDEN=1 pytest tests/test_reproducible.py and commit tests/golden/."
    )


def test_outputs_match_committed_hashes(artifacts: dict[str, tuple[str, tuple[str, ...]]]) -> None:
    if UPDATE:
        versions = {d: _version(d) for d in TRACKED} | {"machine": platform.machine()}
        doc = {"recorded_with": versions, "sha256": {k: v[0] for k, v in sorted(artifacts.items())}}
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    golden = json.loads(GOLDEN.read_text())
    recorded, want = golden["recorded_with"], golden["sha256"]
    assert set(want) == set(artifacts), "artifact list changed: refresh tests/golden/reproducible.json"
    problems = [_drift_message(k, h, want[k], deps, recorded) for k, (h, deps) in artifacts.items() if h != want[k]]
    assert not problems, "\n".join(problems)


def test_drift_message_names_the_dependency() -> None:
    msg = _drift_message(
        "x/shards", "a" * 64, "b" * 64, ("numpy", "pyarrow"), {"numpy": "0.0.1", "pyarrow": _version("pyarrow")}
    )
    assert f"numpy 0.0.1 -> {_version('numpy')}" in msg and "pyarrow" not in msg.split("recorded:")[-1]
    assert "sardata itself" in _drift_message("x", "a" * 64, "b" * 64, ("pyarrow",), {"pyarrow": _version("pyarrow")})


def _lock() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in LOCK.read_text().splitlines():
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==(\S+)", line.strip())
        if m:
            pins[re.sub(r"[-_.]+", "-", m.group(1)).lower()] = m.group(2)
    return pins


def test_installed_versions_match_the_lock() -> None:
    """CI and ``make`` install with ``-c requirements.lock``; anything else installed is drift, named here."""
    pins = _lock()
    assert {"numpy", "torch", "pyarrow", "pandas", "scipy", "h5py", "pillow"} <= set(pins)
    drift = []
    for dist in metadata.distributions():
        name = re.sub(r"[-_.]+", "-", dist.metadata["Name"]).lower()
        if name in pins and pins[name] != dist.version:
            drift.append(f"{name} {dist.version} installed, requirements.lock pins {pins[name]}")
    assert not drift, (
        "dependency drift (reinstall with `make test`, or refresh the lock with `make lock`): " + "; ".join(drift)
    )
