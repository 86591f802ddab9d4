"""SAMPLE adapter: PNG unit + .mat companion, both normalisations, v7.3 (HDF5) .mat, bad inputs, generator."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES, REPO, load_generator

from sardata.errors import ConfigError
from sardata.ingest import ingest, load_ingest
from sardata.sources.sample import SAMPLE
from sardata.store import load_arrays

HERE = FIXTURES / "sample"
ROOT = HERE / "SAMPLE_dataset_public"
S2S1 = "2s1_real_A_elevDeg_015_azCenter_010_22_serial_b01"
T72 = "t72_synth_A_elevDeg_017_azCenter_079_77_serial_812"
PNG_2S1 = f"png_images/decibel/real/2s1/{S2S1}.png"
MAT_2S1 = f"mat_files/real/2s1/{S2S1}.mat"


def _rows(out: Path) -> tuple[dict[str, dict], dict[str, dict]]:
    samples, sources = load_ingest(out)
    return {r["src_path"]: r for r in samples.to_pylist()}, {r["src_path"]: r for r in sources.to_pylist()}


def _n_files(root: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(root))


def _loadmat(path: Path) -> dict:
    from scipy.io import loadmat

    return loadmat(path)


def _decibel_pngs() -> list[str]:
    return [p.relative_to(ROOT).as_posix() for p in sorted((ROOT / "png_images" / "decibel").rglob("*.png"))]


#: the 15 variables of a SAMPLE .mat (``sources.md`` §4, from the release's verify.py)
SAMPLE_VARS = (
    "complex_img", "complex_img_unshifted", "azimuth", "elevation", "bandwidth", "center_freq",
    "range_pixel_spacing", "xrange_pixel_spacing", "range_resolution", "xrange_resolution", "taylor_weights",
    "aligned", "target_name", "source_mstar_file", "explanation",
)  # fmt: skip


def test_fixture_every_file_once_with_a_reason(tmp_path: Path) -> None:
    result = ingest("sample", ROOT, tmp_path)
    assert result.files == {"ok": 4, "skipped": 8} and result.n_rejected == 0
    samples, sources = _rows(tmp_path)
    assert len(sources) == _n_files(ROOT) == 12
    reasons = {}
    for rel, row in sources.items():
        reasons.setdefault(row["reason"], []).append(rel)
    assert {k: len(v) for k, v in reasons.items()} == {None: 4, "other_normalisation": 4, "companion": 3, "not_data": 1}
    assert all("/qpm/" in r for r in reasons["other_normalisation"])
    assert sources[MAT_2S1]["detail"] == f"read as cplx of {PNG_2S1}"
    assert set(samples) == set(reasons[None]) and all(r.startswith("png_images/decibel/") for r in samples)


def test_labels_angles_and_mat_metadata(tmp_path: Path) -> None:
    ingest("sample", ROOT, tmp_path)
    samples, _ = _rows(tmp_path)
    real = samples[PNG_2S1]
    assert (real["label_name"], real["label"], real["split"]) == ("2s1", 0, "pool")
    assert (real["height"], real["width"], real["channels"], real["dtype"]) == (128, 128, 1, "uint8")
    assert (real["radiometry"], real["scale"], real["sensor"], real["band"], real["pol"]) == (
        "display8", "uint8", "MSTAR", "X", "HH",
    )  # fmt: skip
    assert real["depression_deg"] == 15.0 and real["azimuth_deg"] == pytest.approx(10.22)
    assert real["incidence_deg"] is None and real["pixel_spacing_m"] == pytest.approx([0.202148, 0.203125])
    assert real["fields"] == ["cplx", "img"]
    meta = json.loads(real["meta"])
    assert (meta["domain"], meta["normalisation"], meta["serial"], meta["mat_format"]) == (
        "real",
        "decibel",
        "b01",
        "v5",
    )
    assert (meta["center_freq"], meta["bandwidth"], meta["range_resolution"]) == (9.6e9, 5.91e8, 0.3047)
    assert (meta["target_name"], meta["source_mstar_file"], meta["taylor_weights"]) == (
        "2s1",
        "HB15064.000",
        [-35.0, 4.0],
    )
    assert (meta["azimuth"], meta["elevation"], meta["aligned"]) == (10.22, 15.0, 1)
    assert "mat_missing" not in meta and "warnings" not in meta and meta["mat_path"] == MAT_2S1
    synth = samples[PNG_2S1.replace("real", "synth")]
    assert meta["twin_key"] == synth["key"] and json.loads(synth["meta"])["twin_key"] == real["key"]
    assert meta["twin_present"] is True and synth["sensor"] == "SAMPLE-synthetic"
    t72 = samples[f"png_images/decibel/synth/t72/{T72}.png"]  # the pose without a .mat
    assert (t72["label_name"], t72["label"], t72["depression_deg"]) == ("t72", 8, 17.0)
    assert t72["azimuth_deg"] == pytest.approx(79.77) and t72["fields"] == ["img"]
    assert t72["pixel_spacing_m"] is None and json.loads(t72["meta"])["mat_path"] is None
    assert json.loads(t72["meta"])["serial"] == "812"


def test_arrays_match_an_independent_decode(tmp_path: Path) -> None:
    from PIL import Image

    ingest("sample", ROOT, tmp_path)
    samples, _ = _rows(tmp_path)
    for rel, row in samples.items():
        arrays = load_arrays(tmp_path, row["store_path"])
        np.testing.assert_array_equal(arrays["img"][0], np.asarray(Image.open(ROOT / rel)))
        mat_path = json.loads(row["meta"])["mat_path"]
        if mat_path:
            expected = _loadmat(ROOT / mat_path)["complex_img"]
            assert expected.dtype == np.complex128 and arrays["cplx"].dtype == np.complex64
            np.testing.assert_array_equal(arrays["cplx"][0], expected.astype(np.complex64))


def test_qpm_normalisation_option(tmp_path: Path) -> None:
    from PIL import Image

    result = ingest("sample", ROOT, tmp_path, options={"normalisation": "qpm"})
    assert result.files == {"ok": 4, "skipped": 8}
    samples, sources = _rows(tmp_path)
    qpm = PNG_2S1.replace("decibel", "qpm")
    assert set(samples) == {r.replace("decibel", "qpm") for r in _decibel_pngs()}
    assert sources[PNG_2S1]["reason"] == "other_normalisation" and sources[MAT_2S1]["detail"].endswith(qpm)
    img = load_arrays(tmp_path, samples[qpm]["store_path"])["img"][0]
    np.testing.assert_array_equal(img, np.asarray(Image.open(ROOT / qpm)))
    assert samples[qpm]["key"] != samples[qpm.replace("real", "synth")]["key"]


def test_bad_option_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="normalisation must be one of"):
        ingest("sample", ROOT, tmp_path, options={"normalisation": "linear"})


def write_mat73(path: Path, variables: dict) -> None:
    """A MATLAB v7.3 file as MATLAB writes it: 512-byte text userblock, HDF5 with reversed (transposed) axes,
    complex as a ``real``/``imag`` compound, char as uint16."""
    import h5py

    with h5py.File(path, "w", userblock_size=512) as f:
        for name, value in variables.items():
            if isinstance(value, str):
                ds = f.create_dataset(name, data=np.array([[ord(c) for c in value]], dtype=np.uint16).T)
                ds.attrs["MATLAB_class"] = np.bytes_("char")
                continue
            arr = np.atleast_2d(np.asarray(value))
            if np.iscomplexobj(arr):
                comp = np.empty(arr.shape, dtype=[("real", arr.real.dtype), ("imag", arr.real.dtype)])
                comp["real"], comp["imag"] = arr.real, arr.imag
                arr = comp
            ds = f.create_dataset(name, data=arr.T)
            ds.attrs["MATLAB_class"] = np.bytes_("double")
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Thu Jan  1 00:00:00 1970 HDF5 schema 1.00 ."
    with open(path, "r+b") as fh:
        fh.write(header.ljust(116) + b"\x00" * 8 + b"\x00\x02IM")


def test_v73_hdf5_mat_is_read_with_h5py_and_transposed(tmp_path: Path) -> None:
    root = tmp_path / "sample"
    shutil.copytree(ROOT, root)
    original = _loadmat(ROOT / MAT_2S1)
    variables = {k: v for k, v in original.items() if not k.startswith("__")}
    variables |= {k: str(variables[k][0]) for k in ("target_name", "source_mstar_file", "explanation")}
    write_mat73(root / MAT_2S1, variables)
    assert (root / MAT_2S1).read_bytes()[512:516] == b"\x89HDF"
    result = ingest("sample", root, tmp_path / "out")
    assert result.files == {"ok": 4, "skipped": 8}
    samples, _ = _rows(tmp_path / "out")
    row = samples[PNG_2S1]
    cplx = load_arrays(tmp_path / "out", row["store_path"])["cplx"][0]
    np.testing.assert_array_equal(cplx, original["complex_img"].astype(np.complex64))  # transposed back
    meta = json.loads(row["meta"])
    assert (meta["mat_format"], meta["target_name"], meta["center_freq"]) == ("v7.3", "2s1", 9.6e9)
    assert meta["taylor_weights"] == [-35.0, 4.0] and "mat_missing" not in meta


def test_complex64_mat_is_accepted(tmp_path: Path) -> None:
    from scipy.io import savemat

    root = tmp_path / "sample"
    shutil.copytree(ROOT, root)
    variables = {k: v for k, v in _loadmat(ROOT / MAT_2S1).items() if not k.startswith("__")}
    variables["complex_img"] = variables["complex_img"].astype(np.complex64)
    savemat(root / MAT_2S1, variables)
    ingest("sample", root, tmp_path / "out")
    samples, _ = _rows(tmp_path / "out")
    cplx = load_arrays(tmp_path / "out", samples[PNG_2S1]["store_path"])["cplx"][0]
    np.testing.assert_array_equal(cplx, variables["complex_img"])


def test_bad_inputs_are_rows_with_reasons(tmp_path: Path) -> None:
    root = tmp_path / "sample"
    shutil.copytree(ROOT, root)
    good_png = (root / PNG_2S1).read_bytes()
    dec = root / "png_images" / "decibel"
    # a truncated companion .mat rejects its pose (never a sample silently lacking cplx)
    (root / MAT_2S1).write_bytes((root / MAT_2S1).read_bytes()[:3000])
    t72_real = f"png_images/decibel/real/t72/{T72.replace('synth', 'real')}.png"
    (root / t72_real).write_bytes(good_png[:400])  # truncated PNG
    (dec / "real" / "bmp3").mkdir()
    (dec / "real" / "bmp3" / "bmp3_real_A_elevDeg_015_azCenter_011_00_serial_x1.png").write_bytes(good_png)
    (dec / "real" / "2s1" / "2s1_preview.png").write_bytes(good_png)
    (dec / "real" / "2s1" / "notes.png").write_bytes(b"GIF89a not a png")
    (dec / "real" / "2s1" / "lfs.png").write_bytes(b"version https://git-lfs.github.com/spec/v1\noid sha256:00\n")
    (root / "extras").mkdir()
    (root / "extras" / f"{S2S1}.png").write_bytes(good_png)  # outside png_images/<norm>/
    (root / "mat_files" / "synth" / "t72").mkdir()
    (root / "mat_files" / "synth" / "t72" / f"{T72}x.mat").write_bytes(b"MATLAB 5.0 MAT-file")  # no PNG for it
    (root / "LICENSE").write_bytes(b"Distribution A\n")

    result = ingest("sample", root, tmp_path / "out")
    _, sources = _rows(tmp_path / "out")
    assert len(sources) == _n_files(root) == 19  # every file exactly once
    status = {k: (v["status"], v["reason"]) for k, v in sources.items()}
    assert status[PNG_2S1] == ("rejected", "bad_mat")
    assert MAT_2S1 in sources[PNG_2S1]["detail"]
    assert status[t72_real] == ("rejected", "undecodable")
    assert status["png_images/decibel/real/bmp3/bmp3_real_A_elevDeg_015_azCenter_011_00_serial_x1.png"] == (
        "rejected",
        "unknown_class",
    )
    assert status["png_images/decibel/real/2s1/2s1_preview.png"] == ("rejected", "bad_name")
    assert status["png_images/decibel/real/2s1/notes.png"] == ("rejected", "bad_format")
    assert status["png_images/decibel/real/2s1/lfs.png"] == ("rejected", "lfs_pointer")
    assert status[f"extras/{S2S1}.png"] == ("rejected", "bad_layout")
    assert status[f"mat_files/synth/t72/{T72}x.mat"] == ("skipped", "no_png")
    assert status["LICENSE"] == ("skipped", "not_data")
    assert result.files == {"ok": 2, "rejected": 7, "skipped": 10}


def test_source_card_matches_the_adapter() -> None:
    from sardata.recipes import load_yaml

    card = load_yaml(REPO / "manifests" / "sources" / "sample.yaml")
    assert card.id == SAMPLE.id and card.classes == list(SAMPLE.classes)


def test_fixture_generator_is_deterministic(tmp_path: Path) -> None:
    gen = load_generator("sample")
    a, b = gen.generate(tmp_path / "a"), gen.generate(tmp_path / "b")
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]  # PNG and .mat (timestamp overwritten)
    committed = sorted(p for p in HERE.rglob("*") if p.is_file() and p.name != "data.py")
    assert [p.relative_to(HERE) for p in committed] == [p.relative_to(tmp_path / "a") for p in a]
    mats = [p for p in a if p.suffix == ".mat"]
    assert len(mats) == 3
    for p in mats:
        assert sorted(k for k in _loadmat(p) if not k.startswith("__")) == sorted(SAMPLE_VARS)
