"""Bad input never crashes a run and is never dropped: a rejected row with a precise reason, or one clear error."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import FIXTURES

from sardata.errors import SourceNotFoundError, TooManyErrorsError
from sardata.ingest import ingest, load_ingest


@pytest.fixture
def acd(tmp_path: Path) -> Path:
    root = tmp_path / "acd"
    shutil.copytree(FIXTURES / "sar-acd" / "SAR-ACD", root)
    return root


def _status(out: Path) -> dict[str, tuple[str, str | None]]:
    sources = load_ingest(out)[1].to_pylist()
    return {r["src_path"]: (r["status"], r["reason"]) for r in sources}


def test_each_bad_file_is_a_rejected_row(acd: Path, tmp_path: Path) -> None:
    img = acd / "images"
    (img / "A220" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00garbage" * 20)
    (img / "A220" / "empty.jpg").write_bytes(b"")
    (img / "A220" / "notes.jpg").write_bytes(b"this is not an image at all")
    (img / "F16").mkdir()
    shutil.copy(img / "A220" / "001.jpg", img / "F16" / "001.jpg")
    os.symlink("loop.jpg", img / "A330" / "loop.jpg")
    bad_name = os.fsencode(str(img / "A330")) + b"/caf\xe9.jpg"
    with open(bad_name, "wb") as fh:
        fh.write((img / "A330" / "001.jpg").read_bytes())

    out = tmp_path / "out"
    result = ingest("sar-acd", acd, out)
    status = _status(out)
    n_files = sum(len(files) for _, _, files in os.walk(acd))
    assert len(status) == n_files == 19  # every file exactly once
    assert status["images/A220/broken.jpg"] == ("rejected", "undecodable")
    assert status["images/A220/empty.jpg"] == ("rejected", "empty_file")
    assert status["images/A220/notes.jpg"] == ("rejected", "bad_format")
    assert status["images/F16/001.jpg"] == ("rejected", "unknown_class")
    assert status["images/A330/loop.jpg"] == ("rejected", "unreadable")
    assert status["images/A330/caf\\xe9.jpg"] == ("rejected", "bad_filename")
    assert result.files == {"ok": 12, "rejected": 6, "skipped": 1}
    reasons = dict((p, d) for p, _, d in result.rejected)
    assert "rename" in reasons["images/A330/caf\\xe9.jpg"]
    assert "F16" in reasons["images/F16/001.jpg"] and "A220" in reasons["images/F16/001.jpg"]


def test_png_bytes_behind_a_jpg_name_are_read(acd: Path, tmp_path: Path) -> None:
    from PIL import Image

    path = acd / "images" / "A220" / "001.jpg"
    Image.open(path).save(acd / "images" / "A220" / "003.jpg", format="PNG")
    result = ingest("sar-acd", acd, tmp_path / "out")
    assert result.files["ok"] == 13


def test_empty_root_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceNotFoundError, match="no files found"):
        ingest("sar-acd", tmp_path / "empty", tmp_path / "out")
    with pytest.raises(SourceNotFoundError, match="does not exist"):
        ingest("sar-acd", tmp_path / "missing", tmp_path / "out")


def test_unknown_source_lists_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(SourceNotFoundError, match="available: fusar-ship, geotiff, hrsid, msar, mstar"):
        ingest("nope", tmp_path, tmp_path / "out")


def test_max_errors_stops_then_rerun_resumes(acd: Path, tmp_path: Path) -> None:
    for i in range(3):
        (acd / "images" / "A220" / f"bad{i}.jpg").write_bytes(b"nope")
    out = tmp_path / "out"
    with pytest.raises(TooManyErrorsError, match="--max-errors 2"):
        ingest("sar-acd", acd, out, max_errors=2)
    assert not (out / "dataset.json").exists()
    result = ingest("sar-acd", acd, out)
    assert result.files == {"ok": 12, "rejected": 3, "skipped": 1}


def test_truncated_jpeg_is_rejected_even_if_a_library_made_pillow_lenient() -> None:
    """sarpy's NITF module sets Pillow's LOAD_TRUNCATED_IMAGES on import; our decoders must still reject a cut
    file (found when the sicd tests ran before the SAR-ACD and SARSim ones in one process)."""
    import io

    import numpy as np
    from PIL import Image, ImageFile

    from sardata.errors import RejectFile
    from sardata.sources._image import decode_image

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)).save(buf, "JPEG")
    cut = buf.getvalue()[: len(buf.getvalue()) // 2]
    before = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    try:
        with pytest.raises(RejectFile) as info:
            decode_image(cut)
        assert info.value.reason == "undecodable" and ImageFile.LOAD_TRUNCATED_IMAGES is True  # restored
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = before
