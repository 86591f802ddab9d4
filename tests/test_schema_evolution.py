"""Schema evolution (``schema_version`` semver): the committed 1.0.0 dataset keeps loading, an older minor version
loads with later columns as nulls, a newer minor warns, a newer major fails naming the sardata release to install.

``tests/data/manifest_v1/ds`` was written by ``tests/data/manifest_v1/data.py`` under schema 1.0.0 and is never
regenerated: it is the "old manifest" every later version must read.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import FIXTURES

from sardata.dataset.inspect import validate_dir
from sardata.dataset.verify import verify
from sardata.errors import ManifestSchemaError
from sardata.manifest import io
from sardata.manifest.schema import SAMPLES
from sardata.stream.dataset import ShardDataset, ShardIterable

V1 = FIXTURES / "manifest_v1" / "ds"


def test_committed_v1_fixture_loads_verifies_and_streams() -> None:
    card = io.read_card(V1)
    assert card["schema_version"] == "1.0.0"
    for name in ("samples", "shards", "sources"):
        assert pq.read_schema(V1 / f"{name}.parquet").metadata[b"sardata.schema_version"] == b"1.0.0"
    assert len(validate_dir(V1)) == 3
    report = verify(V1, samples=True)
    assert report.ok, report.problems
    ds = ShardDataset(V1, split=None)
    assert len(ds) == card["tables"]["samples"]["rows"] == 12
    first = ds[0]
    assert first["img.npy"].dtype == np.uint8 and first["img.npy"].ndim == 3 and isinstance(first["cls"], int)
    batches = list(ShardIterable(V1, 4, split=None, seed=1))
    assert sorted(k for b in batches for k in b["__key__"]) == sorted(r.key for r in ds.index.rows)


def test_older_minor_version_loads_with_later_columns_null(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend this sardata is at schema 1.2.0, which added a nullable samples column: 1.0.0 files still load
    (the real 1.1.0 column ``shards.xxh3_128`` is absent from them too)."""
    newer = SAMPLES.append(pa.field("look_angle_deg", pa.float32()))
    monkeypatch.setattr(io, "SCHEMA_VERSION", "1.2.0")
    monkeypatch.setattr(io, "TABLES", {**io.TABLES, "samples": newer})
    monkeypatch.setattr(io, "COLUMNS_SINCE", {**io.COLUMNS_SINCE, "samples": {"look_angle_deg": "1.2.0"}})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an older minor version is not even a warning
        table = io.read_table(V1 / "samples.parquet", "samples")
        assert table.schema.names == newer.names
        assert table.column("look_angle_deg").null_count == table.num_rows == 12
        assert len(ShardDataset(V1, split=None)) == 12
    # a column the file's own version should have is still an error
    monkeypatch.setattr(io, "COLUMNS_SINCE", {**io.COLUMNS_SINCE, "samples": {"look_angle_deg": "1.0.0"}})
    with pytest.raises(ManifestSchemaError, match=r"missing columns \['look_angle_deg'\]"):
        io.read_table(V1 / "samples.parquet", "samples")


def _copy_with_card(tmp_path: Path, **changes: object) -> Path:
    root = tmp_path / "ds"
    shutil.copytree(V1, root)
    card = json.loads((root / "dataset.json").read_text())
    card.update(changes)
    (root / "dataset.json").write_text(json.dumps(card))
    return root


def test_newer_minor_warns_but_loads(tmp_path: Path) -> None:
    root = _copy_with_card(tmp_path, schema_version="1.7.0")
    with pytest.warns(UserWarning, match="newer than"):
        ds = ShardDataset(root, split=None)
    assert len(ds) == 12


def test_newer_major_fails_naming_the_release_to_install(tmp_path: Path) -> None:
    root = _copy_with_card(tmp_path, schema_version="2.0.0", sardata_version="3.1.0")
    with pytest.raises(ManifestSchemaError, match=r"schema_version 2\.0\.0 .*install sardata>=3\.1\.0") as err:
        ShardDataset(root, split=None)
    assert "dataset.json" in str(err.value) and "pip install 'sardata>=3.1.0'" in str(err.value)
    # a table of a newer major names the release from the card beside it
    table = pq.read_table(root / "shards.parquet")
    meta = {**table.schema.metadata, b"sardata.schema_version": b"2.0.0"}
    pq.write_table(table.replace_schema_metadata(meta), root / "shards.parquet")
    with pytest.raises(ManifestSchemaError, match=r"shards\.parquet: .*install sardata>=3\.1\.0"):
        io.read_table(root / "shards.parquet", "shards")


def test_malformed_version_is_a_clear_error(tmp_path: Path) -> None:
    root = _copy_with_card(tmp_path, schema_version="one")
    with pytest.raises(ManifestSchemaError, match="malformed schema_version 'one'"):
        io.read_card(root)
