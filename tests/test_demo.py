"""The embedded demo and the recipe runner, end to end on a small size."""

from __future__ import annotations

import json
import os
from pathlib import Path

from conftest import REPO

from sardata.demo import run_demo
from sardata.ingest import load_ingest
from sardata.sim.sar_targets import SHAPES, render_chip


def test_demo_end_to_end(tmp_path: Path) -> None:
    result = run_demo(tmp_path, per_class=3, workers=1, train=False)
    assert result.generated == {"raw": 24, "jpeg": 24}
    for layout in ("raw", "jpeg"):
        r = result.ingests[layout]
        assert r.files == {"ok": 24} and r.samples == 24
        df = load_ingest(r.out)[0].to_pandas()
        assert df.groupby(["split", "label_name"]).size().to_dict() == {
            (s, c): 3 for s in ("train", "test") for c in SHAPES
        }
    raw = load_ingest(tmp_path / "ingest" / "mstar-raw")[0].to_pandas()
    assert set(raw["width"]) == {64, 65} and set(raw["radiometry"]) == {"amplitude"}
    card = json.loads((tmp_path / "ingest" / "mstar-raw" / "dataset.json").read_text())
    assert card["counts"]["per_split"] == {"test": 12, "train": 12}
    assert result.build.samples == 24 and result.verified.ok and result.verified.samples_checked == 24
    shards = json.loads((tmp_path / "shards" / "dataset.json").read_text())
    assert shards["features"]["gr"]["version"] == "gr-v1" and "split_fewshot_k5_s2" in shards["views"]


def test_chips_are_seeded_and_have_target_contrast() -> None:
    import numpy as np

    rng = lambda: np.random.default_rng(np.random.SeedSequence([0, 1, 2]))  # noqa: E731
    a, b = render_chip("t72", 64, 64, rng()), render_chip("t72", 64, 64, rng())
    np.testing.assert_array_equal(a.magnitude, b.magnitude)
    centre = a.magnitude[24:40, 24:40].mean()
    border = np.concatenate([a.magnitude[:8].ravel(), a.magnitude[-8:].ravel()]).mean()
    assert centre > 2 * border


def test_pipeline_recipe_runs(tmp_path: Path) -> None:
    """pipelines/demo.yaml runs through the library's step table: no CLI involved."""
    from sardata.recipes import run_pipeline

    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert run_pipeline(REPO / "pipelines" / "demo.yaml") == [
            "simulate",
            "ingest-raw",
            "ingest-jpeg",
            "build-shards",
            "verify",
            "show",
        ]
    finally:
        os.chdir(cwd)
    assert (tmp_path / "demo-out" / "shards" / "dataset.json").exists()


def test_demo_recipe_is_the_demo() -> None:
    """The demo is defined once (sardata.demo): pipelines/demo.yaml holds its steps, plus `show`."""
    import yaml

    from sardata.demo import demo_steps

    steps = yaml.safe_load((REPO / "pipelines" / "demo.yaml").read_text())["steps"]
    assert steps == [*demo_steps("demo-out"), {"name": "show", "step": "show", "root": "demo-out/shards"}]


def test_bench_ingest_reports_ratios(tmp_path: Path) -> None:
    from sardata.bench.ingest import bench_ingest

    r = bench_ingest("sar-acd", REPO / "tests" / "data" / "sar-acd" / "SAR-ACD", workers=1)
    assert r["files"] == 12 and r["decode_files_per_s"] > 0 and r["ingest_vs_decode"] > 0


def test_bench_build_shards_reports_ratio(tmp_path: Path) -> None:
    from sardata.bench.shards import bench_build_shards
    from sardata.ingest import ingest

    ingest("sar-acd", REPO / "tests" / "data" / "sar-acd" / "SAR-ACD", tmp_path / "i")
    r = bench_build_shards([tmp_path / "i"], workers=1)
    assert r["samples"] == 12 and r["build_vs_tar"] > 0 and r["tar_mb_per_s"] > 0


def test_bench_loader_pipelines_count_the_same_samples(tmp_path: Path) -> None:
    from sardata.bench.stream import _measure, make_data

    root = make_data(tmp_path, per_class=2)  # 16 samples
    rows = [_measure(kind, root, 0, batch=4) for kind in ("raw", "webdataset", "sardata")]
    rows += [_measure(kind, root, 2, batch=4) for kind in ("raw", "sardata", "handover")]  # workers split, not copy
    assert [r["samples"] for r in rows] == [44] * 6  # 3 epochs x 16, minus the warm-up batch of 4
    assert all(r["samples_per_s"] > 0 and r["peak_rss_mb"] > 0 for r in rows)
