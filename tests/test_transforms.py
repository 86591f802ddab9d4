"""Joint augmentation: geometry shared by image and precomputed GR, exact where GR commutes (gr-targets.md §5)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sardata.errors import ConfigError
from sardata.features.gr import GR_RADII, gr_maps
from sardata.ingest import ingest
from sardata.shards.build import BuildConfig, build_shards
from sardata.sim.sar_targets import write_demo_dataset
from sardata.stream.dataset import ShardIterable
from sardata.stream.transforms import JointAugment

MARGIN = max(GR_RADII)


@pytest.fixture(scope="module")
def gr_ds(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("aug")
    write_demo_dataset(base / "data", per_class=2, size=64)
    ingest("mstar", base / "data" / "jpeg", base / "ingest")
    build_shards([base / "ingest"], base / "ds", BuildConfig(targets=("gr",)))
    return base / "ds"


def online_gr(img: np.ndarray) -> np.ndarray:
    return gr_maps(torch.from_numpy(np.ascontiguousarray(img))[None])[0].numpy()


def samples(ds: Path, aug: JointAugment) -> list[dict]:
    it = ShardIterable(ds, 1, shuffle=False, transform=aug, collate_fn=lambda b: b[0], keys="torchgeo")
    return list(it)


def test_flip_is_exact_jointly(gr_ds: Path) -> None:
    aug = JointAugment(size=1024, resize=False, hflip=True, seed=1)  # crop = the whole (64 x 64 or 64 x 65) image
    out = samples(gr_ds, aug)
    assert {s["aug"]["flip"] for s in out} == {True, False}
    for s in out:
        assert np.array_equal(s["gr"], online_gr(s["image"]))  # bit-exact, flipped or not


def test_crop_without_resize_is_exact_away_from_the_new_borders(gr_ds: Path) -> None:
    aug = JointAugment(size=48, resize=False, hflip=True, seed=2)
    for s in samples(gr_ds, aug):
        assert s["image"].shape == (1, 48, 48) and s["gr"].shape == (4, 48, 48)
        inner = (slice(None), slice(MARGIN, -MARGIN), slice(MARGIN, -MARGIN))
        np.testing.assert_allclose(s["gr"][inner], online_gr(s["image"])[inner], atol=1e-6, rtol=0)
        assert not np.allclose(s["gr"], online_gr(s["image"]), atol=1e-6)  # but not at the new borders


def test_photometry_touches_the_image_only(gr_ds: Path) -> None:
    plain = samples(gr_ds, JointAugment(size=1024, resize=False, hflip=False, seed=3))
    jitter = samples(gr_ds, JointAugment(size=1024, resize=False, hflip=False, contrast=0.5, seed=3))
    for a, b in zip(plain, jitter, strict=True):
        assert np.array_equal(a["gr"], b["gr"]) and not np.array_equal(a["image"], b["image"])


def test_online_mode_and_approximate_resize_rules(gr_ds: Path) -> None:
    with pytest.raises(ConfigError, match="allow_approx_joint"):
        JointAugment(size=32)
    online = samples(gr_ds, JointAugment(size=32, mode="online", seed=4))
    assert all("gr" not in s and s["image"].shape == (1, 32, 32) and 0 <= s["image"].min() for s in online)
    approx = samples(gr_ds, JointAugment(size=32, allow_approx_joint=True, seed=4))
    assert all(s["gr"].shape == (4, 32, 32) for s in approx)


def test_views_are_reproducible_for_any_worker_count(gr_ds: Path) -> None:
    from torch.utils.data import DataLoader

    aug = JointAugment(size=40, resize=False, seed=5)
    a = [s["aug"] for batch in ShardIterable(gr_ds, 4, transform=aug, collate_fn=list, keys="torchgeo") for s in batch]
    loader = DataLoader(
        ShardIterable(gr_ds, 4, num_workers=2, transform=aug, collate_fn=list, keys="torchgeo"),
        batch_size=None,
        num_workers=2,
    )
    b = [s["aug"] for batch in loader for s in batch]
    assert a == b
