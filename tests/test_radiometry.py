"""Normalisation policy (sardata.radiometry) and its use in build-shards: reversible, explicit, refuses the unknown."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sardata.errors import ConfigError
from sardata.ingest import ingest, load_ingest
from sardata.manifest.io import read_table
from sardata.radiometry import from_unit_magnitude, to_unit_magnitude
from sardata.shards.build import BuildConfig, build_shards
from sardata.shards.reader import read_sample
from sardata.store import load_arrays

CASES = [("amplitude", "linear"), ("sigma0", "linear"), ("intensity", "linear"), ("sigma0", "db")]


@settings(max_examples=50, deadline=None)
@given(st.sampled_from(CASES), arrays(np.float32, (1, 6, 7), elements=st.floats(0.125, 50, width=32)))
def test_round_trip_and_unit_range(case: tuple[str, str], x: np.ndarray) -> None:
    radiometry, scale = case
    if scale == "db":
        x = x - 25  # dB values are signed
    m, ref = to_unit_magnitude(x, radiometry, scale)
    assert m.dtype == np.float32 and 0 <= m.min() and m.max() == pytest.approx(1.0)
    np.testing.assert_allclose(from_unit_magnitude(m, ref, radiometry, scale), x, rtol=2e-6, atol=2e-5)


def test_display8_is_divided_by_255_and_unknown_is_refused() -> None:
    x = np.array([[[0, 128, 255]]], np.uint8)
    m, ref = to_unit_magnitude(x, "display8", "uint8")
    assert ref == 1.0 and m.tolist() == [[[0.0, np.float32(128 / 255), 1.0]]]
    np.testing.assert_allclose(from_unit_magnitude(m, ref, "display8", "uint8"), x, atol=1e-4)
    with pytest.raises(ConfigError, match="declare it at ingest"):
        to_unit_magnitude(x.astype(np.float32), "unspecified", "unspecified")


def test_build_mixes_sources_only_with_normalisation(tmp_path: Path) -> None:
    ingest("mstar", FIXTURES / "mstar" / "raw", tmp_path / "raw")
    ingest("mstar", FIXTURES / "mstar" / "jpeg", tmp_path / "jpeg")
    inputs = [tmp_path / "raw", tmp_path / "jpeg"]
    with pytest.raises(ConfigError, match="--normalise unit-magnitude"):
        build_shards(inputs, tmp_path / "x", BuildConfig())
    build_shards(inputs, tmp_path / "ds", BuildConfig(normalise="unit-magnitude"))
    df = read_table(tmp_path / "ds" / "samples.parquet", "samples").to_pandas()
    assert set(df["radiometry"]) == {"magnitude"} and set(df["x_src_radiometry"]) == {"amplitude", "display8"}
    raw = {r["key"]: r for r in load_ingest(tmp_path / "raw")[0].to_pylist()}
    for row in df[df["x_src_radiometry"] == "amplitude"].to_dict("records"):
        img = read_sample(tmp_path / "ds", row)["img.npy"]
        original = load_arrays(tmp_path / "raw", raw[row["key"]]["store_path"])["img"]
        np.testing.assert_allclose(img * row["x_norm_scale"], original, rtol=1e-6)  # reversible from the manifest


def test_channel_view_by_polarisation_name(tmp_path: Path) -> None:
    ingest("opensarship", FIXTURES / "opensarship" / "OpenSARShip", tmp_path / "o")
    with pytest.raises(ConfigError, match="--channel"):
        build_shards([tmp_path / "o"], tmp_path / "x", BuildConfig(targets=("gr",), size_policy="resize", size=32))
    build_shards([tmp_path / "o"], tmp_path / "ds", BuildConfig(channel="VV"))
    src = {r["key"]: r for r in load_ingest(tmp_path / "o")[0].to_pylist()}
    df = read_table(tmp_path / "ds" / "samples.parquet", "samples").to_pandas()
    assert set(df["channels"]) == {1} and set(df["x_channel"]) == {"VV"}
    row = df.iloc[0].to_dict()
    full = load_arrays(tmp_path / "o", src[row["key"]]["store_path"])
    out = read_sample(tmp_path / "ds", row)
    np.testing.assert_array_equal(out["img.npy"][0], full["img"][1])  # VH, VV -> VV is channel 1
    if "cplx.npy" in out:
        np.testing.assert_array_equal(out["cplx.npy"][0], full["cplx"][1])
