"""The Hugging Face export (issue 20 point 2): ``sardata manifest export DS --format hf --out DS/README.md``, then
``datasets.load_dataset(DS)`` yields the stored arrays as ``Array3D`` features (nested lists where sizes vary), a
``ClassLabel`` with the dataset's class names and the dataset's splits, with every row equal to what the shards
hold. Offline: local files only, no Hub lookup (``HF_*_OFFLINE``), caches under the test's directory."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import FIXTURES
from typer.testing import CliRunner

from sardata.cli import app
from sardata.dataset.export_hf import ArrayLayout, array_feature, hf_dataset_info
from sardata.errors import ConfigError
from sardata.manifest.io import read_card, read_table

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")  # read when datasets is imported: set before any test imports it
os.environ.setdefault("HF_HUB_OFFLINE", "1")
datasets = pytest.importorskip("datasets")

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """SAR-ACD fixture (12 chips, 6 classes, one train and one test chip per class) built twice: resized to 32 x 32
    with GR targets (fixed shapes), and at native sizes (shapes vary per chip)."""
    from sardata.ingest import ingest
    from sardata.shards.build import BuildConfig, build_shards

    work = tmp_path_factory.mktemp("export-hf")
    ingest("sar-acd", FIXTURES / "sar-acd" / "SAR-ACD", work / "ingest")
    split = {"max_shard_samples": 3, "test_ratio": 0.5}
    build_shards([work / "ingest"], work / "gr", BuildConfig(size_policy="resize", size=32, targets=("gr",), **split))
    build_shards([work / "ingest"], work / "keep", BuildConfig(**split))
    return {"gr": work / "gr", "keep": work / "keep"}


def export_card(ds: Path) -> Path:
    result = CliRunner().invoke(app, ["manifest", "export", str(ds), "--format", "hf", "--out", str(ds / "README.md")])
    assert result.exit_code == 0, result.output
    return ds / "README.md"


def stored(ds: Path) -> dict[str, dict[str, object]]:
    """Key -> {member field: decoded value} read with tarfile, independently of sardata's loaders."""
    out: dict[str, dict[str, object]] = {}
    for shard in sorted((ds / "shards").glob("*.tar")):
        with tarfile.open(shard) as tar:
            for member in tar.getmembers():
                key, field = member.name.split(".", 1)
                data = tar.extractfile(member).read()
                out.setdefault(key, {})[field] = np.load(io.BytesIO(data)) if field.endswith(".npy") else data
    return out


def load(ds: Path, cache: Path) -> object:
    return datasets.load_dataset(str(ds), cache_dir=str(cache))


def check_rows(split: object, truth: dict[str, dict[str, object]], labels: dict[str, int]) -> None:
    """Every row equals the stored members: arrays (shape and dtype), label, metadata."""
    import json

    for row in split.with_format("numpy", dtype=None):
        want = truth[str(row["__key__"])]
        for field in ("img.npy", "gr.npy"):
            if field in want:
                got = row[field]
                assert isinstance(got, np.ndarray) and got.dtype == want[field].dtype, field
                assert got.shape == want[field].shape and np.array_equal(got, want[field]), field
        assert int(row["cls"]) == int(want["cls"]) == labels[str(row["__key__"])]
        assert row["meta.json"] == json.loads(want["meta.json"])


def test_load_dataset_yields_arrays_class_labels_and_splits(built: dict[str, Path], tmp_path: Path) -> None:
    ds = built["gr"]
    text = export_card(ds).read_text()
    header = yaml.safe_load(text.split("---\n")[1])
    assert header == hf_dataset_info(ds) and "## Sources" in text and "licence:" in text
    card = read_card(ds)
    result = load(ds, tmp_path / "hf-cache")
    assert sorted(result) == sorted(card["splits"]) == ["test", "train"]
    names = card["class_maps"]["sar-acd"]
    samples = read_table(ds / "samples.parquet", "samples").to_pandas()
    labels = dict(zip(samples["key"], samples["label"], strict=True))
    truth = stored(ds)
    for split, data in result.items():
        assert data.num_rows == card["splits"][split]["samples"] == (samples["split"] == split).sum()
        assert sorted(data["__key__"]) == sorted(samples.loc[samples["split"] == split, "key"])
        f = data.features
        assert f["img.npy"] == datasets.Array3D(shape=(1, 32, 32), dtype="uint8")
        assert f["gr.npy"] == datasets.Array3D(shape=(4, 32, 32), dtype="float32")
        assert f["cls"] == datasets.ClassLabel(names=names) and f["cls"].int2str(0) == names[0]
        assert isinstance(f["meta.json"], datasets.Json)
        check_rows(data, truth, labels)


def test_varying_sizes_load_as_nested_lists_of_the_stored_arrays(built: dict[str, Path], tmp_path: Path) -> None:
    ds = built["keep"]
    export_card(ds)
    result = load(ds, tmp_path / "hf-cache")
    samples = read_table(ds / "samples.parquet", "samples").to_pandas()
    assert samples[["height", "width"]].drop_duplicates().shape[0] > 1  # the case: Array3D cannot hold it
    labels = dict(zip(samples["key"], samples["label"], strict=True))
    truth = stored(ds)
    for split, data in result.items():
        assert data.num_rows == read_card(ds)["splits"][split]["samples"]
        assert data.features["img.npy"] == datasets.List(datasets.List(datasets.List(datasets.Value("uint8"))))
        assert "gr.npy" not in data.features
        check_rows(data, truth, labels)


@pytest.mark.parametrize(
    ("shapes", "dtype", "want"),
    [
        ({(1, 32, 32)}, "uint8", {"dtype": {"array3_d": {"shape": [1, 32, 32], "dtype": "uint8"}}}),
        ({(3, 5), (7, 5)}, "float32", {"dtype": {"array2_d": {"shape": [None, 5], "dtype": "float32"}}}),
        ({(2, 512)}, "float32", {"dtype": {"array2_d": {"shape": [2, 512], "dtype": "float32"}}}),
        ({(512,)}, "float64", {"list": "float64", "length": 512}),
        ({(3,), (9,)}, "float64", {"list": "float64"}),
        ({(1, 20, 30), (1, 40, 50)}, "float16", {"list": {"list": {"list": "float16"}}}),
        ({()}, "int32", {"dtype": "int32"}),
    ],
)
def test_array_features_follow_the_stored_shapes(shapes: set, dtype: str, want: dict) -> None:
    assert array_feature("x.npy", ArrayLayout(shapes=shapes, dtypes={dtype})) == {"name": "x.npy", **want}
    datasets.Features._from_yaml_list([{"name": "x.npy", **want}])  # a feature datasets itself parses


def test_fields_datasets_cannot_hold_are_named_not_guessed() -> None:
    assert "complex64" in array_feature("cplx.npy", ArrayLayout({(1, 8, 8)}, {"complex64"}))
    assert "structured" in array_feature("pdw.npy", ArrayLayout({(9,)}, {"void128"}, structured=True))
    assert "mixed dtypes" in array_feature("img.npy", ArrayLayout({(1, 8, 8)}, {"uint8", "float32"}))
    assert "ranks" in array_feature("img.npy", ArrayLayout({(8, 8), (1, 8, 8)}, {"uint8"}))


def test_relocated_shards_are_refused_with_the_fix(built: dict[str, Path], tmp_path: Path) -> None:
    import json
    import shutil

    ds = tmp_path / "ds"
    shutil.copytree(built["gr"], ds, ignore=shutil.ignore_patterns("README.md"))
    card = json.loads((ds / "dataset.json").read_text())
    card["base_url"] = "https://example.org/acd"
    (ds / "dataset.json").write_text(json.dumps(card))
    with pytest.raises(ConfigError, match="relocate"):
        hf_dataset_info(ds)
