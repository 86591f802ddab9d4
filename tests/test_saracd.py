"""SAR-ACD adapter: fixture and the full real release."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import FIXTURES, shared

from sardata.errors import ConfigError
from sardata.ingest import ingest, load_ingest

ROOT = FIXTURES / "sar-acd" / "SAR-ACD"
REAL_COUNTS = {"A220": 464, "A320321": 510, "A330": 512, "ARJ21": 514, "Boeing737": 528, "Boeing787": 504}


def test_fixture_counts_sizes_and_readme(tmp_path: Path) -> None:
    result = ingest("sar-acd", ROOT, tmp_path)
    assert result.files == {"ok": 12, "skipped": 1}
    samples, sources = load_ingest(tmp_path)
    df = samples.to_pandas()
    assert (df.groupby("label_name").size() == 2).all() and len(df) == 12
    assert set(df["split"]) == {"pool"}
    a220 = df.set_index("src_path").loc["images/A220/001.jpg"]
    assert (a220["width"], a220["height"], a220["label"]) == (76, 68, 0)
    assert "images/ARJ21/0002.jpg" in set(df["src_path"])
    readme = sources.to_pandas().set_index("src_path").loc["README.md"]
    assert readme["status"] == "skipped"


def test_five_class_option(tmp_path: Path) -> None:
    result = ingest("sar-acd", ROOT, tmp_path, options={"classes": "5class"})
    assert result.files == {"ok": 10, "skipped": 3}
    samples, sources = load_ingest(tmp_path)
    df = samples.to_pandas()
    assert "A320321" not in set(df["label_name"])
    assert dict(zip(df["label_name"], df["label"], strict=True))["Boeing787"] == 4
    skipped = sources.to_pandas().query("status == 'skipped'")
    assert set(skipped["reason"]) == {"not_data", "class_not_selected"}


def test_bad_class_option_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown classes"):
        ingest("sar-acd", ROOT, tmp_path, options={"classes": "A220,B52"})


@pytest.mark.real_data
def test_real_sar_acd_counts(tmp_path: Path) -> None:
    root = shared("sar-acd")
    result = ingest("sar-acd", root, tmp_path, workers=2)
    assert result.files["ok"] == 3032 and result.n_rejected == 0
    df = load_ingest(tmp_path)[0].to_pandas()
    assert df.groupby("label_name").size().to_dict() == REAL_COUNTS
    assert df["key"].is_unique
    assert df["width"].between(35, 200).all() and df["height"].between(32, 150).all()
    arj = df[df["label_name"] == "ARJ21"]
    assert (arj["width"] != arj["height"]).all()  # ARJ21 has no square image
