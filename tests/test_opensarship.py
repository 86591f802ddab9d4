"""OpenSARShip: zips read in place, every member accounted, SLC I/Q → complex, Ship.xml joined."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES, shared

from sardata.ingest import ingest, load_ingest
from sardata.store import load_arrays

pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
ROOT = FIXTURES / "opensarship" / "OpenSARShip"


def _n_entries(root: Path) -> int:
    return sum(len([i for i in zipfile.ZipFile(z).infolist() if not i.is_dir()]) for z in root.rglob("*.zip"))


def test_fixture_samples_members_and_join(tmp_path: Path) -> None:
    result = ingest("opensarship", ROOT, tmp_path)
    samples, sources = (t.to_pandas() for t in load_ingest(tmp_path))
    assert result.files == {"ok": 2} and len(samples) == 5
    assert samples["label_name"].value_counts().to_dict() == {"Cargo": 2, "Other Type": 2, "Tanker": 1}
    members = sources[sources["src_member"].notna()]
    assert len(members) == _n_entries(ROOT)  # every zip entry exactly once
    assert members.groupby("status").size().to_dict() == {"ok": 7, "skipped": 22}  # 5 samples + 2 SLC I/Q companions
    previews = members[members["reason"] == "preview"]
    assert previews["detail"].str.contains("png bytes behind a .tif name").sum() == 6
    grd = samples[samples["src_path"].str.contains("GRDH")].iloc[0]
    assert grd["src_path"].endswith("(1).zip") and grd["pol"] == "VH,VV" and grd["fields"].tolist() == ["img"]
    assert (grd["radiometry"], grd["scale"], grd["channels"]) == ("sigma0", "linear", 2)
    meta = json.loads(grd["meta"])
    assert (
        meta["AISShipInformation"]["MMSI"] == str(100000000 + meta["x"])
        and grd["incidence_deg"] == 30 + meta["x"] % 7 + 0.5
    )
    other = samples[samples["label_name"] == "Other Type"]
    assert sorted(json.loads(m)["patch"] for m in other["meta"]) == ["Other Type_x25333_y9930", "Other Type_x303_y404"]


def test_slc_iq_pairs_become_complex(tmp_path: Path) -> None:
    import rasterio

    ingest("opensarship", ROOT, tmp_path)
    samples = load_ingest(tmp_path)[0].to_pandas()
    slc = samples[samples["src_path"].str.contains("SLC")].iloc[0]
    arrays = load_arrays(tmp_path, slc["store_path"])
    assert arrays["cplx"].shape == (2, 16, 16) and arrays["cplx"].dtype == np.complex64
    with (
        zipfile.ZipFile(ROOT / slc["src_path"]) as zf,
        rasterio.MemoryFile(zf.read(slc["src_member"].replace("Patch_Cal", "Patch"))) as m,
    ):
        iq = m.open().read()
    np.testing.assert_array_equal(arrays["cplx"][1].real, iq[2])
    np.testing.assert_array_equal(arrays["cplx"][1].imag, iq[3])


def test_corrupt_patch_and_broken_zip_are_rejected(tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "in"
    shutil.copytree(ROOT, root)
    src = next(root.glob("*SLC*.zip"))
    with zipfile.ZipFile(src) as zf:
        entries = {i.filename: zf.read(i) for i in zf.infolist()}
    name = next(n for n in entries if n.startswith("Patch_Cal/Cargo"))
    entries[name] = entries[name][:40]  # truncated TIFF
    with zipfile.ZipFile(src, "w") as zf:
        for n, d in entries.items():
            zf.writestr(n, d)
    (root / "broken.zip").write_bytes(b"PK\x03\x04 not really a zip")
    result = ingest("opensarship", root, tmp_path / "out")
    sources = load_ingest(tmp_path / "out")[1].to_pandas()
    rejected = sources[sources["status"] == "rejected"]
    assert set(rejected["reason"]) == {"undecodable"} and len(rejected) == 2
    assert rejected["src_member"].dropna().tolist() == [name]
    assert result.files == {"ok": 2, "rejected": 1}


@pytest.mark.real_data
def test_real_opensarship_every_patch_accounted(tmp_path: Path) -> None:
    root = shared("opensarship")
    result = ingest("opensarship", root, tmp_path, workers=2)
    samples, sources = (t.to_pandas() for t in load_ingest(tmp_path))
    assert result.files == {"ok": 8} and len(samples) == 351 and samples["key"].is_unique
    assert samples["label_name"].value_counts().to_dict() == {
        "Cargo": 194, "Tanker": 112, "Other Type": 39, "Passenger": 2, "Tug": 2,
        "Law Enforcement": 1, "Search and Rescue vessel": 1,
    }  # fmt: skip
    members = sources[sources["src_member"].notna()]
    assert len(members) == _n_entries(root) and (members["status"] != "rejected").all()
    assert members.loc[members["reason"] == "preview", "detail"].str.contains("png bytes").sum() == 104
    slc = samples[samples["src_path"].str.contains("SLC")]
    assert len(slc) == 65 and slc["fields"].map(lambda f: list(f) == ["cplx", "img"]).all()
    assert (members["reason"] == "companion").sum() == 65
    assert set(samples.loc[samples["src_path"].str.contains("1SDV"), "pol"]) == {"VH,VV"}
