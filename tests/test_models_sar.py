"""SAR model family (``sar-jepa.md`` §1, §6, §7): iRPE, attention, LoMaR-SAR/pix, MAE, the iRPE classifier."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import REPO

from sardata.errors import ConfigError
from sardata.features.gr import gr_maps, gr_patch_targets
from sardata.models import create_model, list_models
from sardata.models.layers.attention import Attention
from sardata.models.layers.irpe import CLS_BUCKET, NUM_BUCKETS, bucket_ids, piecewise_index
from sardata.models.vit_irpe import MAE_ALLOW_MISSING, load_pretrained
from sardata.recipes import ModelPreset, load_yaml

SAR_TINY = ("test_lomar_sar", "test_lomar_pix", "test_mae", "test_vit_irpe")
SAR_BASE = (
    "lomar_sar_vit_base_patch16",
    "lomar_pix_vit_base_patch16",
    "mae_vit_base_patch16_1ch",
    "vit_irpe_base_patch16_1ch",
)
SAR_PRESETS = [REPO / "models" / f"{name}.yaml" for name in SAR_BASE]


#: a small non-default grid (8x8 patches of 8 px, 4x4 windows) for tests that only need the mechanics
SMALL_GRID = dict(img_size=64, patch_size=8, window_size=4)


def _gen(seed: int, device: str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def _images(n: int, size: int = 224, seed: int = 0) -> torch.Tensor:
    return torch.rand((n, 1, size, size), generator=_gen(seed))


def _tiny(name: str, small: bool = False):  # type: ignore[no-untyped-def]
    """A tiny registered model; ``small`` → the 64 px / 8 px grid (windows 4×4 for LoMaR) to save CPU time."""
    torch.manual_seed(0)  # init only; forward randomness comes from the explicit generator
    if not small:
        return create_model(name)
    return create_model(name, **(SMALL_GRID if "lomar" in name else dict(img_size=64, patch_size=8)))


# ------------------------------------------------------------------------------------------------ registry
def test_sar_models_registered() -> None:
    names = list_models()
    for name in (*SAR_TINY, *SAR_BASE):
        assert name in names


@pytest.mark.parametrize("name", [n for n in list_models("test_*") if n in SAR_TINY])
def test_tiny_model_shapes(name: str) -> None:
    model = _tiny(name)
    assert model.modality == "sar_image"
    images = _images(3)
    if model.task == "classify":
        model.reset_classifier(5, "finetune")
        assert model.forward_features({"image": images}).shape == (3, model.num_features)
        assert model(images).shape == (3, 5)
        return
    assert model.task == "pretrain"
    out = model.forward_loss({"image": images}, _gen(0))
    assert out["loss"].ndim == 0 and torch.isfinite(out["loss"])
    if name == "test_mae":
        assert out["pred"].shape == (3, 196, 256) and out["mask"].shape == (3, 196)
        assert (out["mask"].sum(1) == 147).all()
    else:
        feats = 1024 if name == "test_lomar_sar" else 256
        assert out["pred"].shape == (12, 49, feats) and out["mask"].shape == (12, 49)
        assert out["windows"].shape == (3, 4, 2)


@pytest.mark.parametrize("name", ["test_lomar_sar", "test_lomar_pix"])
def test_lomar_non_default_grid(name: str) -> None:
    model = create_model(name, img_size=64, patch_size=8, window_size=4, num_window=3, mask_ratio=0.5)
    out = model.forward_loss({"image": _images(2, 64)}, _gen(1))
    feats = 4 * 64 if name == "test_lomar_sar" else 64
    assert out["pred"].shape == (6, 16, feats)
    assert (out["mask"].sum(1) == 8).all()
    assert int(out["windows"].max()) <= 8 - 4
    clf = create_model("test_vit_irpe", img_size=64, patch_size=8, num_classes=3)
    assert clf(_images(2, 64)).shape == (2, 3)
    load_pretrained(clf, model.state_dict())


def test_bad_configs_raise() -> None:
    with pytest.raises(ConfigError, match="num_window"):
        create_model("test_lomar_sar", num_window=9)
    with pytest.raises(ConfigError, match="window_sampling"):
        create_model("test_lomar_sar", window_sampling="sometimes")
    with pytest.raises(ConfigError, match="linear decoder"):
        create_model("test_lomar_pix", decoder_depth=4)
    with pytest.raises(ConfigError, match="unexpected keyword"):
        create_model("test_mae", window_size=7)


# ---------------------------------------------------------------------------------------------------- iRPE
def test_piecewise_index_values() -> None:
    d = torch.arange(-20, 21)
    expected = [0 if x == 0 else int(math.copysign(1 if abs(x) == 1 else 2 if abs(x) <= 3 else 3, x)) for x in d]
    assert piecewise_index(d).tolist() == expected


def test_bucket_table() -> None:
    b = bucket_ids(50)  # cls + 7x7 window
    assert b.shape == (50, 50) and b.unique().numel() == NUM_BUCKETS == 50
    assert (b[0] == CLS_BUCKET).all() and (b[:, 0] == CLS_BUCKET).all() and CLS_BUCKET == 49
    assert (b[1:, 1:] < 49).all()
    assert (b.diagonal()[1:] == 24).all()  # zero offset: (0+3)*7 + (0+3)
    # sign convention d = query − key (microsoft/Cream iRPE): query (0,0), key (1,2) → rows −1, cols −2
    assert int(b[1 + 0, 1 + 1 * 7 + 2]) == (-1 + 3) * 7 + (-2 + 3)
    assert int(b[1 + 1 * 7 + 2, 1 + 0]) == (1 + 3) * 7 + (2 + 3)
    # saturation: query (0,0), key (6,5) → rows −6 → −3, cols −5 → −3
    assert int(b[1, 1 + 6 * 7 + 5]) == 0
    big = bucket_ids(197)  # fine-tuning grid 14x14: same 50 buckets, nothing interpolated
    assert big.unique().numel() == 50 and (big[0] == 49).all()
    assert bucket_ids(49).unique().numel() == 49  # no skip token → no cls bucket


def test_sdpa_matches_explicit_reference() -> None:
    torch.manual_seed(0)
    attn = Attention(32, 4)
    with torch.no_grad():
        attn.rpe_k.lookup_table_weight.normal_(0, 0.5)
    x = torch.randn(3, 50, 32)
    got = attn(x)
    b, n, c = x.shape
    q, k, v = attn.qkv(x).reshape(b, n, 3, 4, 8).permute(2, 0, 3, 1, 4)
    w_b = attn.rpe_k.lookup_table_weight[:, bucket_ids(n)]  # (hd, L, L)
    logits = q @ k.transpose(-2, -1) * 8**-0.5 + torch.einsum("bhid,dij->bhij", q, w_b)
    ref = attn.proj((logits.softmax(-1) @ v).transpose(1, 2).reshape(b, n, c))
    torch.testing.assert_close(got, ref, atol=1e-6, rtol=0)


def test_upstream_shared_head_table_loads() -> None:
    attn = Attention(32, 4)
    sd = attn.state_dict()
    sd["rpe_k.lookup_table_weight"] = torch.ones(1, 8, 50)  # Cream's (num_heads=1, head_dim, buckets)
    attn.load_state_dict(sd)
    assert attn.rpe_k.lookup_table_weight.shape == (8, 50) and bool((attn.rpe_k.lookup_table_weight == 1).all())


# ------------------------------------------------------------------------------------ windows and masking
def test_exactly_39_masked_per_sequence() -> None:
    model = create_model("test_lomar_sar", embed_dim=16, depth=1, num_heads=1, decoder_embed_dim=16,
                         decoder_depth=1, decoder_num_heads=1)  # fmt: skip
    assert model.num_mask == 39
    mask = model.sample_mask(500, _gen(3), torch.device("cpu"))
    assert (mask.sum(1) == 39).all()
    assert mask.float().mean(0).min() > 0.6  # every position gets masked: uniform, not a fixed pattern
    assert create_model("test_lomar_sar", window_size=5, mask_ratio=0.6).num_mask == 15


@pytest.mark.parametrize("sampling", ["per_batch", "per_image"])
def test_every_image_paired_with_every_window(sampling: str) -> None:
    model = create_model("test_lomar_pix", depth=1, window_sampling=sampling)
    n, w, s, g = 64, 4, 49, 14
    windows = model.sample_windows(n, _gen(5), torch.device("cpu"))
    assert windows.shape == (n, w, 2) and int(windows.min()) >= 0 and int(windows.max()) <= g - 7
    for img in range(n):  # 4 distinct windows per image (tops are distinct by construction)
        assert len({tuple(t) for t in windows[img].tolist()}) == 4
    if sampling == "per_batch":
        assert (windows == windows[:1]).all()
    else:
        assert len({tuple(map(tuple, win)) for win in windows.tolist()}) > 1
    # values identifying (image, patch) gathered per sequence n·4 + w
    ids = torch.stack(torch.meshgrid(torch.arange(n), torch.arange(g * g), indexing="ij"), -1).float()  # (N, L, 2)
    seq = model.gather_windows(ids, windows)  # (N·4, 49, 2)
    assert seq.shape == (n * w, s, 2)
    for img, win in [(0, 0), (1, 1), (2, 2), (3, 3), (63, 1), (17, 2)]:
        top, left = windows[img, win].tolist()
        rows, cols = torch.meshgrid(torch.arange(top, top + 7), torch.arange(left, left + 7), indexing="ij")
        assert (seq[img * w + win, :, 0] == img).all()
        assert seq[img * w + win, :, 1].long().tolist() == (rows * g + cols).reshape(-1).tolist()
    out = model.forward_loss({"image": _images(n)}, _gen(5))
    assert (out["windows"] == windows).all()


# ---------------------------------------------------------------------------------------------------- loss
@pytest.mark.parametrize("name", ["test_lomar_sar", "test_lomar_pix", "test_mae"])
def test_loss_ignores_visible_tokens(name: str) -> None:
    model = _tiny(name, small=True)
    batch = {"image": _images(2, 64)}
    with torch.no_grad():
        ref = model.forward_loss(batch, _gen(7))
    visible = ~ref["mask"]
    assert visible.any()

    def perturb(_module, _inputs, output):  # type: ignore[no-untyped-def]
        out = output.clone()
        out[:, 1:][visible] += 1e3
        out[:, 1:][visible] *= float("inf")
        return out

    handle = model.decoder_pred.register_forward_hook(perturb)
    with torch.no_grad():
        got = model.forward_loss(batch, _gen(7))
    handle.remove()
    assert torch.isinf(got["pred"][visible]).all()
    assert torch.equal(got["mask"], ref["mask"])
    assert float(got["loss"]) == float(ref["loss"])
    # and the loss is the masked mean of the per-token squared error
    if name != "test_mae":
        target = model.gather_windows(model.patch_targets(batch), ref["windows"])
        per_token = (ref["pred"] - target).square().mean(-1)
        torch.testing.assert_close(ref["loss"], per_token[ref["mask"]].mean())


def test_gr_patch_target_layout() -> None:
    model = create_model("test_lomar_sar", depth=1, decoder_depth=1)
    images = _images(2)
    tgt = model.patch_targets({"image": images})
    assert tgt.shape == (2, 196, 1024) and tgt.dtype == torch.float32
    assert torch.equal(tgt, gr_patch_targets(images, 16))
    gr = gr_maps(images)
    b, s, ph, pw, py, px = 1, 2, 3, 5, 7, 11
    assert tgt[b, ph * 14 + pw, s * 256 + py * 16 + px] == gr[b, s, ph * 16 + py, pw * 16 + px]


def test_precomputed_gr_matches_online() -> None:
    model = create_model("test_lomar_sar", **SMALL_GRID)
    images = _images(2, 64, seed=4)
    with torch.no_grad():
        online = model.forward_loss({"image": images}, _gen(9))["loss"]
        pre = model.forward_loss({"image": images, "gr": gr_maps(images, model.gr_radii)}, _gen(9))["loss"]
    assert float(online) == float(pre)
    with pytest.raises(ConfigError, match="batch\\['gr'\\]"):
        model.forward_loss({"image": images, "gr": torch.zeros(2, 3, 64, 64)}, _gen(9))


def test_seed_determinism() -> None:
    model = create_model("test_lomar_sar", **SMALL_GRID)
    batch = {"image": _images(2, 64)}
    with torch.no_grad():
        a = model.forward_loss(batch, _gen(11))
        b = model.forward_loss(batch, _gen(11))
        c = model.forward_loss(batch, _gen(12))
    assert float(a["loss"]) == float(b["loss"]) and torch.equal(a["mask"], b["mask"])
    assert not torch.equal(a["mask"], c["mask"])
    # the global RNG is never touched
    mae = _tiny("test_mae", small=True)
    state = torch.random.get_rng_state()
    with torch.no_grad():
        model.forward_loss(batch, _gen(13))
        mae.forward_loss(batch, _gen(13))
    assert torch.equal(torch.random.get_rng_state(), state)


@pytest.mark.parametrize("name", ["test_lomar_sar", "test_lomar_pix", "test_mae"])
def test_one_adamw_step_decreases_loss(name: str) -> None:
    model = _tiny(name, small=True)
    batch = {"image": _images(4, 64, seed=2)}
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.05)
    before = model.forward_loss(batch, _gen(21))["loss"]
    before.backward()
    opt.step()
    with torch.no_grad():
        after = model.forward_loss(batch, _gen(21))["loss"]
    assert float(after) < float(before.detach())


# ------------------------------------------------------------------------------------- transfer and heads
def test_pretraining_checkpoint_loads_into_classifier() -> None:
    pre = _tiny("test_lomar_sar")
    clf = create_model("test_vit_irpe", num_classes=10)
    sd = {f"module._orig_mod.{k}": v for k, v in pre.state_dict().items()}  # DDP + compile prefixes
    missing, unexpected = load_pretrained(clf, sd)
    assert sorted(missing) == ["head.bias", "head.weight"]
    assert "mask_token" in unexpected and "encoder_pred.weight" in unexpected
    own = clf.state_dict()
    for k, v in pre.state_dict().items():
        if k in own:
            assert torch.equal(own[k], v), k

    mae = _tiny("test_mae")
    with pytest.raises(ConfigError, match="rpe_k"):
        load_pretrained(create_model("test_vit_irpe"), mae.state_dict())
    missing, unexpected = load_pretrained(clf, mae.state_dict(), allow_missing=MAE_ALLOW_MISSING)
    assert "pos_embed" in unexpected and all(k.startswith("head.") or ".rpe_k." in k for k in missing)
    assert torch.equal(clf.state_dict()["blocks.1.mlp.fc2.weight"], mae.state_dict()["blocks.1.mlp.fc2.weight"])

    wide = create_model("test_lomar_sar", embed_dim=32)
    with pytest.raises(ConfigError, match="do not fit"):
        load_pretrained(clf, wide.state_dict())


def test_heads_and_frozen_encoder() -> None:
    clf = _tiny("test_vit_irpe")
    clf.reset_classifier(4, "finetune")
    assert isinstance(clf.head, torch.nn.Linear) and float(clf.head.weight.detach().std()) < 1e-4
    assert all(p.requires_grad for p in clf.parameters())

    clf.reset_classifier(4, "linear")
    bn, fc = clf.head
    assert isinstance(bn, torch.nn.BatchNorm1d) and not bn.affine and bn.eps == 1e-6
    assert 0.005 < float(fc.weight.detach().std()) < 0.02
    trainable = clf.freeze_encoder()
    assert {id(p) for p in trainable} == {id(p) for p in clf.head.parameters()}
    clf.train()
    assert clf.head.training and not clf.blocks.training and not clf.norm.training
    before = {k: v.clone() for k, v in clf.state_dict().items() if not k.startswith("head.")}
    opt = torch.optim.AdamW(trainable, lr=1e-2)
    F.cross_entropy(clf(_images(4)), torch.tensor([0, 1, 2, 3])).backward()
    opt.step()
    assert all(torch.equal(v, clf.state_dict()[k]) for k, v in before.items())
    assert int(clf.head[0].num_batches_tracked) == 1

    clf.reset_classifier(4, "finetune")
    clf.train()
    assert clf.blocks.training and all(p.requires_grad for p in clf.parameters())


# ----------------------------------------------------------------------------------------------- presets
@pytest.mark.parametrize("path", SAR_PRESETS, ids=lambda p: p.name)
def test_model_preset_builds_with_card_param_count(path: Path) -> None:
    preset = load_yaml(path)
    assert isinstance(preset, ModelPreset) and preset.name == path.stem
    with torch.device("meta"):
        model = create_model(preset.name, **preset.overrides)
    assert sum(p.numel() for p in model.parameters()) == preset.card["params"]


# ------------------------------------------------------------------------------------------------------ GPU
@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_lomar_sar_pretraining_steps() -> None:
    """20 pretraining steps of the paper model with online GR on the GPU; reports the step time."""
    device = torch.device("cuda")
    torch.manual_seed(0)
    model = create_model("lomar_sar_vit_base_patch16").to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.05)
    batch = {"image": torch.rand((32, 1, 224, 224), generator=_gen(0, "cuda"), device=device)}
    losses, times = [], []
    for step in range(20):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = model.forward_loss(batch, _gen(step, "cuda"))
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        opt.step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
        losses.append(float(out["loss"]))
    assert all(math.isfinite(x) for x in losses) and losses[-1] < losses[0]
    print(f"lomar_sar_vit_base_patch16 batch 32 step time {sorted(times[5:])[7] * 1e3:.1f} ms (median of 15)")
