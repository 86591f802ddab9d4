"""Key rules (``data-contract.md`` §1.2–1.3), exact examples and properties."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sardata.manifest.keys import KEY_RE, hashed_key, make_key


def test_spec_examples() -> None:
    assert make_key("mstar", "train/BMP2/hb03787.jpeg") == "mstar_train-bmp2-hb03787-jpeg"
    assert make_key("mstar", "BMP2_HB03787.000") == "mstar_bmp2-hb03787-000"
    assert make_key("radchar", "RadChar-Tiny.h5", "00001234") == "radchar_radchar-tiny-h5-00001234"
    assert make_key("geotiff", "S1_scene.tif", "r000512-c001024") == "geotiff_s1-scene-tif-r000512-c001024"


def test_long_paths_are_truncated_with_hash() -> None:
    rel = "a" * 200 + ".jpg"
    key = make_key("sar-acd", rel)
    assert len(key) == 80 and KEY_RE.match(key)
    assert key != make_key("sar-acd", "a" * 201 + ".jpg")


def test_collision_suffix_differs_per_path() -> None:
    a, b = make_key("x", "A.jpg"), make_key("x", "a.jpg")
    assert a == b  # collide after lower-casing...
    assert hashed_key(a, "x", "A.jpg", None) != hashed_key(b, "x", "a.jpg", None)  # ...and are separated


@given(st.text(min_size=1, max_size=300), st.one_of(st.none(), st.integers(0, 10**9)))
def test_any_path_gives_a_valid_deterministic_key(rel: str, sub: int | None) -> None:
    token = None if sub is None else f"{sub:08d}"
    key = make_key("src", rel, token, sub)
    assert KEY_RE.match(key) and len(key) <= 80
    assert key == make_key("src", rel, token, sub)
