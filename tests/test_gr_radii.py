"""GR radii follow the input size (issue 17 point 1): one rule for build-shards, the models and the recipes, the
radii recorded in dataset.json and checkpoints, and precomputed targets at other radii refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import FIXTURES, shared

from sardata.errors import ConfigError
from sardata.features.gr import gr_maps
from sardata.features.grcodec import GR_RADII, check_radii, scaled_radii
from sardata.models import create_model
from sardata.shards.build import BuildConfig


def test_scaled_radii_rule() -> None:
    assert scaled_radii(224) == GR_RADII == (5, 9, 13, 17)  # the paper's radii hold exactly at 224
    assert scaled_radii(64) == (1, 3, 4, 5)
    assert scaled_radii(448) == (10, 18, 26, 34)
    assert scaled_radii(32) == (1, 1, 2, 2) and scaled_radii(8) == (1, 1, 1, 1)  # at least 1, count kept
    assert check_radii([1, 3]) == (1, 3)
    for bad in ([], [0, 2], [1.5], "ab", None):
        with pytest.raises(ConfigError, match="gr_radii"):
            check_radii(bad)


def test_build_config_and_model_defaults_follow_the_size() -> None:
    assert BuildConfig(size_policy="resize", size=64, targets=("gr",)).resolved_gr_radii == (1, 3, 4, 5)
    assert BuildConfig(targets=("gr",)).resolved_gr_radii == GR_RADII  # keep: native sizes vary, paper radii
    assert BuildConfig(size_policy="resize", size=64, gr_radii=(2, 4)).resolved_gr_radii == (2, 4)
    m = create_model("test_lomar_sar", img_size=32, patch_size=8, window_size=2, num_window=3)
    assert m.gr_radii == (1, 1, 2, 2) and m.out_dim == 4 * 64
    two = create_model("test_lomar_sar", img_size=32, patch_size=8, window_size=2, num_window=3, gr_radii=[2, 3])
    assert two.out_dim == 2 * 64 and two.decoder_pred.out_features == 2 * 64
    batch = {"image": torch.rand(2, 1, 32, 32), "__key__": ["a", "b"]}
    assert two.patch_targets(batch).shape == (2, 16, 2 * 64)
    out = two.forward_loss(batch, torch.Generator().manual_seed(0))
    assert torch.isfinite(out["loss"])


@pytest.mark.real_data
def test_scaled_target_matches_the_paper_scale_target_on_real_sar_acd() -> None:
    """64 real SAR-ACD chips: GR at 64 px with the default radii vs GR at 224 px (paper radii) pooled to 64."""
    from PIL import Image

    files = sorted(shared("sar-acd").glob("images/*/*.jpg"))[::47][:64]
    assert len(files) == 64

    def load(size: int) -> torch.Tensor:
        arrays = [np.asarray(Image.open(f).convert("L").resize((size, size), Image.BICUBIC)) for f in files]
        return torch.from_numpy(np.stack(arrays).astype(np.float32) / 255)[:, None]

    reference = F.adaptive_avg_pool2d(gr_maps(load(224), GR_RADII), 64)
    small = load(64)

    def corr(radii: tuple[int, ...]) -> list[float]:
        g = gr_maps(small, radii)
        return [float(np.corrcoef(g[:, s].flatten(), reference[:, s].flatten())[0, 1]) for s in range(4)]

    assert min(corr(scaled_radii(64))) >= 0.9  # measured 0.93-0.98
    assert max(corr(GR_RADII)) < 0.6  # the old constant radii at 64 px: another target (measured 0.33-0.44)


def test_radii_recorded_and_precomputed_mismatch_refused(tmp_path: Path) -> None:
    from sardata.ingest import ingest
    from sardata.shards.build import build_shards
    from sardata.stream.dataset import ShardDataset
    from sardata.train.pretrain import PretrainConfig, pretrain

    ingest("sar-acd", FIXTURES / "sar-acd" / "SAR-ACD", tmp_path / "ing")
    ds = build_shards([tmp_path / "ing"], tmp_path / "ds", BuildConfig(size_policy="resize", size=32, targets=("gr",)))
    card = json.loads((ds.out / "dataset.json").read_text())
    assert card["features"]["gr"]["radii"] == [1, 1, 2, 2]
    sample = ShardDataset(ds.out, split=None)[0]
    expect = gr_maps(torch.from_numpy(sample["img.npy"].astype(np.float32) / 255)[None], (1, 1, 2, 2))[0]
    np.testing.assert_allclose(sample["gr.npy"], expect.numpy(), atol=1e-6)
    base = dict(kind="pretrain", name="t", model="test_lomar_sar", data=[str(ds.out)], split=None,
                model_overrides={"img_size": 32, "patch_size": 8, "window_size": 2, "num_window": 3},
                image_size=32, global_batch=4, epochs=1, warmup_epochs=0, blr=1e-3, device="cpu",
                gr_mode="precomputed", stop_at_step=1)  # fmt: skip
    with pytest.raises(ConfigError, match=r"radii \[1, 1, 2, 2\], the model uses \[5, 9, 13, 17\]; rebuild"):
        pretrain(PretrainConfig(**base, gr_radii=[5, 9, 13, 17]), tmp_path / "bad")
    pretrain(PretrainConfig(**base), tmp_path / "ok")  # default radii = the shards' radii
    ckpt = torch.load(tmp_path / "ok" / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["gr_radii"] == [1, 1, 2, 2]
