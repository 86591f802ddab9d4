"""SARSim adapter (layout unverified): SAR-JEPA unlabelled repackage and the configurable labelled parser."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES, load_generator
from PIL import Image

from sardata.errors import ConfigError
from sardata.ingest import ingest, load_ingest
from sardata.store import load_arrays

HERE = FIXTURES / "sarsim"
UNLABELLED = HERE / "SARSim"
LABELLED = HERE / "labelled"
TREE = "SARSim"
PATTERN = r"(?P<class>[a-z]+)_(?P<model>m\d+)_(?P<scene>[a-z]+)_dep(?P<depression>\d+(?:\.\d+)?)_az(?P<azimuth>\d+)"
LABELLED_OPTIONS = {"classes": "tank,truck", "pattern": PATTERN}


def _by_path(out: Path) -> tuple[dict[str, dict], dict[str, dict]]:
    samples, sources = load_ingest(out)
    return (
        {r["src_path"]: r for r in samples.to_pylist()},
        {r["src_path"]: r for r in sources.to_pylist()},
    )


def _img(out: Path, row: dict) -> np.ndarray:
    return load_arrays(out, row["store_path"])["img"]


def test_unlabelled_default_parses_scene(tmp_path: Path) -> None:
    result = ingest("sarsim", UNLABELLED, tmp_path)
    assert result.files == {"ok": 3}
    rows, _ = _by_path(tmp_path)
    assert set(rows) == {"grass_290.png", "road_17.png", "ground_3.png"}
    for rel, row in rows.items():
        meta = json.loads(row["meta"])
        scene, n = Path(rel).stem.split("_")
        assert (meta["scene"], meta["n"]) == (scene, n)
        assert row["split"] == "unlabelled" and row["label"] is None and row["label_name"] is None
        assert (row["height"], row["width"], row["channels"], row["dtype"]) == (139, 139, 1, "uint8")
        assert (row["radiometry"], row["scale"], row["band"]) == ("display8", "uint8", "X")
        assert row["depression_deg"] is None and row["azimuth_deg"] is None
        assert np.array_equal(_img(tmp_path, row)[0], np.asarray(Image.open(UNLABELLED / rel)))
    card = json.loads((tmp_path / "dataset.json").read_text())
    assert card["class_maps"] == {"sarsim": []}


def test_labelled_mode_with_regex(tmp_path: Path) -> None:
    result = ingest("sarsim", LABELLED, tmp_path, options=LABELLED_OPTIONS)
    assert result.files == {"ok": 5, "rejected": 4, "skipped": 1}
    rows, sources = _by_path(tmp_path)
    az0 = rows[f"{TREE}/tank/grass/tank_m1_grass_dep15_az000.png"]
    assert (az0["label_name"], az0["label"], az0["split"]) == ("tank", 0, "pool")
    assert (az0["depression_deg"], az0["azimuth_deg"]) == (15.0, 0.0)
    assert {k: v for k, v in json.loads(az0["meta"]).items() if k in ("scene", "model")} == {
        "scene": "grass",
        "model": "m1",
    }
    assert (az0["height"], az0["width"]) == (40, 48)
    jpg = rows[f"{TREE}/truck/ground/truck_m2_ground_dep30.5_az185.jpg"]
    assert (jpg["label_name"], jpg["label"], jpg["depression_deg"], jpg["azimuth_deg"]) == ("truck", 1, 30.5, 185.0)
    assert rows[f"{TREE}/tank/road/tank_m2_road_dep17_az355.png"]["azimuth_deg"] == 355.0
    status = {p: (r["status"], r["reason"]) for p, r in sources.items()}
    assert status[f"{TREE}/README.txt"] == ("skipped", "not_data")
    assert status[f"{TREE}/tank/grass/tank_m1_grass_dep15_az005.png"] == ("rejected", "undecodable")
    assert status[f"{TREE}/tank/road/preview.png"] == ("rejected", "name_mismatch")
    assert status[f"{TREE}/truck/road/tank_m1_road_dep15_az010.png"] == ("rejected", "class_conflict")
    assert status[f"{TREE}/bulldozer/grass/bulldozer_m1_grass_dep15_az000.png"] == ("rejected", "unknown_class")
    assert "preview" in sources[f"{TREE}/tank/road/preview.png"]["detail"]


def test_class_from_nearest_folder_without_class_group(tmp_path: Path) -> None:
    pattern = PATTERN.replace("(?P<class>[a-z]+)", "[a-z]+")
    result = ingest("sarsim", LABELLED, tmp_path, options={"classes": "Truck,Tank", "pattern": pattern})
    rows, sources = _by_path(tmp_path)
    # folder decides: the tank-named file under truck/ is a truck; bulldozer/ has no configured class folder
    assert rows[f"{TREE}/truck/road/tank_m1_road_dep15_az010.png"]["label_name"] == "Truck"
    assert rows[f"{TREE}/tank/grass/tank_m1_grass_dep15_az000.png"]["label"] == 1
    assert sources[f"{TREE}/bulldozer/grass/bulldozer_m1_grass_dep15_az000.png"]["reason"] == "unknown_class"
    assert result.files == {"ok": 6, "rejected": 3, "skipped": 1}


def test_16bit_png_and_tiff_are_float32_scaled(tmp_path: Path) -> None:
    ingest("sarsim", LABELLED, tmp_path, options=LABELLED_OPTIONS)
    rows, _ = _by_path(tmp_path)
    for rel in ("tank/road/tank_m2_road_dep17_az355.png", "truck/ground/truck_m2_ground_dep30_az180.tif"):
        row = rows[f"{TREE}/{rel}"]
        raw = np.asarray(Image.open(LABELLED / TREE / rel))
        assert raw.dtype == np.uint16
        img = _img(tmp_path, row)
        assert img.dtype == np.float32 and img.shape == (1, 40, 48)
        assert np.array_equal(np.rint(img[0].astype(np.float64) * 65535).astype(np.uint16), raw)  # lossless
        assert (row["radiometry"], row["scale"], row["dtype"]) == ("display16", "unit", "float32")
        assert json.loads(row["meta"])["bit_depth"] == 16
    png = _img(tmp_path, rows[f"{TREE}/tank/road/tank_m2_road_dep17_az355.png"])
    assert png[0, 0, :3].tolist() == [0.0, np.float32(1 / 65535), 1.0]


def test_16bit_shift8_option(tmp_path: Path) -> None:
    ingest("sarsim", LABELLED, tmp_path, options={**LABELLED_OPTIONS, "depth16": "shift8"})
    rows, _ = _by_path(tmp_path)
    rel = "tank/road/tank_m2_road_dep17_az355.png"
    img = _img(tmp_path, rows[f"{TREE}/{rel}"])
    raw = np.asarray(Image.open(LABELLED / TREE / rel))
    assert img.dtype == np.uint8 and np.array_equal(img[0], (raw >> 8).astype(np.uint8))
    assert (rows[f"{TREE}/{rel}"]["radiometry"], rows[f"{TREE}/{rel}"]["scale"]) == ("display8", "uint8")


def test_npy_is_read_without_pickle(tmp_path: Path) -> None:
    ingest("sarsim", LABELLED, tmp_path, options=LABELLED_OPTIONS)
    rows, _ = _by_path(tmp_path)
    rel = "truck/ground/truck_m1_ground_dep45_az090.npy"
    row = rows[f"{TREE}/{rel}"]
    expected = np.load(LABELLED / TREE / rel, allow_pickle=False)
    img = _img(tmp_path, row)
    assert img.dtype == np.float32 and np.array_equal(img[0], expected)
    assert (row["label_name"], row["depression_deg"], row["azimuth_deg"]) == ("truck", 45.0, 90.0)
    assert (row["radiometry"], row["scale"]) == ("unknown", "unknown")


def test_bad_npy_files_are_rejected(tmp_path: Path) -> None:
    root = tmp_path / "in"
    root.mkdir()
    np.save(root / "grass_1.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.save(root / "grass_2.npy", np.zeros((2, 3, 4), np.uint8))
    np.save(root / "grass_3.npy", np.zeros((4, 5), np.int32))
    np.save(root / "grass_4.npy", np.arange(20, dtype=np.uint16).reshape(1, 4, 5))
    ingest("sarsim", root, tmp_path / "out")
    rows, sources = _by_path(tmp_path / "out")
    status = {p: (r["status"], r["reason"]) for p, r in sources.items()}
    assert status["grass_1.npy"] == ("rejected", "undecodable")
    assert status["grass_2.npy"] == ("rejected", "bad_shape")
    assert status["grass_3.npy"] == ("rejected", "bad_dtype")
    assert _img(tmp_path / "out", rows["grass_4.npy"]).shape == (1, 4, 5)


def test_name_mismatch_can_be_skipped(tmp_path: Path) -> None:
    result = ingest("sarsim", LABELLED, tmp_path, options={**LABELLED_OPTIONS, "unmatched": "skip"})
    _, sources = _by_path(tmp_path)
    assert (sources[f"{TREE}/tank/road/preview.png"]["status"], result.files["skipped"]) == ("skipped", 2)


def test_default_pattern_rejects_the_labelled_tree_names(tmp_path: Path) -> None:
    """An unverified layout that does not fit the pattern is loud (rejected rows), never silently ingested."""
    result = ingest("sarsim", LABELLED, tmp_path)
    assert result.files == {"rejected": 9, "skipped": 1}
    _, sources = _by_path(tmp_path)
    reasons = {r["reason"] for r in sources.values() if r["status"] == "rejected"}
    assert reasons == {"name_mismatch"}
    result = ingest("sarsim", LABELLED, tmp_path / "none", options={"pattern": "none"})
    assert result.files == {"ok": 8, "rejected": 1, "skipped": 1}  # the truncated PNG only


def test_undecodable_and_unknown_bytes(tmp_path: Path) -> None:
    root = tmp_path / "in"
    root.mkdir()
    (root / "grass_1.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 10)
    (root / "grass_2.tif").write_bytes(b"not an image")
    (root / "grass_3.dat").write_bytes(b"not an image either")
    (root / "grass_4.dat").write_bytes((UNLABELLED / "road_17.png").read_bytes())  # bytes decide, not the name
    ingest("sarsim", root, tmp_path / "out")
    rows, sources = _by_path(tmp_path / "out")
    status = {p: (r["status"], r["reason"]) for p, r in sources.items()}
    assert status["grass_1.png"] == ("rejected", "undecodable")
    assert status["grass_2.tif"] == ("rejected", "bad_format")
    assert status["grass_3.dat"] == ("skipped", "not_data")
    assert status["grass_4.dat"] == ("ok", None) and rows["grass_4.dat"]["height"] == 139


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"pattern": "(?P<scene>[a-z]+_(?P<n>\\d+"}, "not a valid regex"),
        ({"pattern": "(?P<class>[a-z]+)_\\d+"}, "no classes are configured"),
        ({"pattern": "(?P<mode>[a-z]+)_\\d+"}, "reserved"),
        ({"match": "folder"}, "match='folder'"),
        ({"depth16": "uint16"}, "depth16"),
        ({"classes": "tank,Tank"}, "repeat"),
        ({"colour": "x"}, "no option"),
    ],
)
def test_bad_options_are_config_errors(tmp_path: Path, options: dict[str, str], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        ingest("sarsim", UNLABELLED, tmp_path, options=options)


def test_fixture_generator_is_deterministic(tmp_path: Path) -> None:
    gen = load_generator("sarsim")
    a, b = gen.generate(tmp_path / "a"), gen.generate(tmp_path / "b")
    assert [p.relative_to(tmp_path / "a") for p in a] == [p.relative_to(tmp_path / "b") for p in b]
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    committed = sorted(
        p for p in HERE.rglob("*") if p.is_file() and p.name != "data.py" and "__pycache__" not in p.parts
    )
    assert [p.relative_to(HERE) for p in committed] == [p.relative_to(tmp_path / "a") for p in a]
    assert [p.read_bytes() for p in committed] == [p.read_bytes() for p in a]
    with Image.open(UNLABELLED / "grass_290.png") as im:
        assert (im.mode, im.size) == ("L", (139, 139))
