"""Radar model family (``radar.md`` §4, §6, §7): RadarPos pretraining loss, classifier, LoRA, baselines."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from sardata.errors import ConfigError
from sardata.models import baselines_1d, radarpos
from sardata.models.layers.lora import (
    LoRALinear,
    apply_lora,
    lora_target_names,
    trainable_parameter_count,
)
from sardata.models.layers.seq import patch_valid, patchify_1d, toa_pos_embed, unpatchify_1d
from sardata.recipes import ModelPreset, load_yaml

REPO = Path(__file__).resolve().parents[1]

RADAR_MODELS = {
    "radarpos_base": radarpos,
    "test_radarpos": radarpos,
    "radarpos_cls_base": radarpos,
    "test_radarpos_cls": radarpos,
    "transformer_scratch": baselines_1d,
    "test_transformer_scratch": baselines_1d,
    "resnet1d": baselines_1d,
    "test_resnet1d": baselines_1d,
    "mae1d": baselines_1d,
    "mae1d_base": baselines_1d,
    "test_mae1d": baselines_1d,
}


def build(name: str, **overrides):
    return getattr(RADAR_MODELS[name], name)(**overrides)


def make_batch(lengths: list[int], seed: int = 0, warp: bool = True) -> dict[str, torch.Tensor]:
    """Frames with ``lengths[n]`` valid samples (rest zero padding) and a jittered τ over the valid patches."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 8]))
    n = len(lengths)
    x = rng.random((n, 2, 512), dtype=np.float32)
    valid = np.zeros((n, 512), dtype=bool)
    tau = np.zeros((n, 64), dtype=np.float32)
    for i, length in enumerate(lengths):
        valid[i, :length] = True
        x[i, :, length:] = 0
        n_p = math.ceil(length / 8)
        t = np.cumsum(rng.uniform(0.5, 1.5, n_p)) if warp else np.arange(n_p, dtype=float)
        t = (n_p - 1) * (t - t[0]) / (t[-1] - t[0]) if n_p > 1 else t * 0
        tau[i, :n_p] = t
    return {"x": torch.from_numpy(x), "tau": torch.from_numpy(tau), "valid": torch.from_numpy(valid)}


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------------------------------- shapes


FULL_SIZE = sorted(n for n in RADAR_MODELS if not n.startswith("test_"))


@pytest.mark.parametrize("name", FULL_SIZE)
def test_full_size_models_build(name: str) -> None:
    """Structure on the meta device (no memory, no init cost); aliases build the same network."""
    with torch.device("meta"):
        model = build(name)
        twin = {"transformer_scratch": "radarpos_cls_base", "mae1d": "mae1d_base"}.get(name, name)
        same = build(twin)
    assert model.modality == "radar" and model.task in ("pretrain", "classify")
    assert type(model) is type(same)
    assert [(k, v.shape) for k, v in model.state_dict().items()] == [(k, v.shape) for k, v in same.state_dict().items()]


SHAPE_MODELS = sorted(n for n in RADAR_MODELS if n.startswith("test_")) + ["radarpos_base", "radarpos_cls_base"]


@pytest.mark.parametrize("name", SHAPE_MODELS)
def test_every_radar_model_shapes(name: str) -> None:
    model = build(name).eval()
    assert model.modality == "radar" and model.task in ("pretrain", "classify")
    batch = make_batch([512, 300])
    if model.task == "pretrain":
        out = model.forward_loss(batch, gen(0))
        assert out["loss"].ndim == 0 and torch.isfinite(out["loss"])
        assert all(math.isfinite(float(v.detach())) for v in out.values())
    else:
        with torch.no_grad():
            feats = model.forward_features(batch)
            logits = model(batch)
            bare = model(batch["x"])
        assert feats.shape == (2, model.num_features)
        assert logits.shape == (2, 7) and bare.shape == (2, 7)
        model.reset_classifier(5, "linear")
        with torch.no_grad():
            assert model(batch).shape == (2, 5)


def test_registry_creates_radar_models() -> None:
    from sardata.models._registry import MODEL_MODULES

    for module in MODEL_MODULES:  # sibling families may still be in progress
        pytest.importorskip(module)
    from sardata.models import create_model, list_models

    assert set(RADAR_MODELS) <= set(list_models())
    model = create_model("test_radarpos", alpha_pos=0.5)
    assert model.alpha_pos == 0.5 and model.task == "pretrain"
    with pytest.raises(ConfigError, match="test_radarpos"):
        create_model("test_radarpos", no_such_option=1)


@pytest.mark.parametrize(
    "overrides",
    [
        {"pe": "index"},
        {"pe": "none"},
        {"weighting": "uniform"},
        {"weighting_pass": "extra"},
        {"projector": "mlp"},
        {"content_mask_ratio": 0.5},
        {"qkv": "separate", "sigma": 0.0},
        {"smooth_dist": "tau"},
        {"smooth_dist": "tau", "sigma": 0.0},
        {"decoder_depth": 0},
        {"decoder_depth": 1, "content_mask_ratio": 0.5},
    ],
    ids=str,
)
def test_radarpos_flags_run(overrides: dict) -> None:
    out = build("test_radarpos", **overrides).forward_loss(make_batch([512, 100]), gen(1))
    assert torch.isfinite(out["loss"]) and out["loss"] > 0


@pytest.mark.parametrize("name", ["test_radarpos", "test_mae1d", "test_radarpos_cls", "test_resnet1d"])
def test_filler_samples_stay_finite(name: str) -> None:
    """A loader's ``pad="mask"`` filler sample is all-invalid: no NaN, no crash, gradients still flow."""
    batch = make_batch([512])
    batch = {k: torch.cat([v, torch.zeros_like(v)]) for k, v in batch.items()}  # sample 1: nothing valid
    model = build(name)
    if model.task == "pretrain":
        out = model.forward_loss(batch, gen(0))
        only_filler = model.forward_loss({k: v[1:] for k, v in batch.items()}, gen(0))["loss"]
        assert float(only_filler.detach()) == 0.0
        only_filler.backward()
    else:
        out = {"logits": model(batch)}
    assert all(torch.isfinite(v).all() for v in out.values())


def test_bad_input_shape_names_expected_layout() -> None:
    batch = make_batch([512])
    batch["x"] = batch["x"][:, :1]
    with pytest.raises(ConfigError, match=r"expects \(N, 2, 512\)"):
        build("test_radarpos").forward_loss(batch, gen(0))
    with pytest.raises(ConfigError, match="'tau'"):
        build("test_radarpos_cls")({"x": batch["x"]})


def test_init_is_seeded_and_leaves_global_rng_alone() -> None:
    state = torch.get_rng_state()
    a, b, c = build("test_radarpos", seed=0), build("test_radarpos", seed=0), build("test_radarpos", seed=1)
    a.forward_loss(make_batch([512]), gen(0))  # masks come from the passed generator only
    apply_lora(build("test_radarpos_cls", seed=2), backend="builtin", seed=0)
    assert torch.equal(state, torch.get_rng_state())
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["blocks.0.attn.qkv.weight"], sc["blocks.0.attn.qkv.weight"])
    torch.manual_seed(5)
    d = build("test_radarpos")  # seed=None: the caller's (trainer's) seeded global RNG decides
    torch.manual_seed(5)
    assert torch.equal(d.cls_token, build("test_radarpos").cls_token)


# ------------------------------------------------------------------------------------------ 1-D pieces and PE


def test_patchify_pe_and_patch_validity() -> None:
    x = torch.arange(2 * 2 * 512, dtype=torch.float32).reshape(2, 2, 512)
    tokens = patchify_1d(x, 8)
    assert tokens.shape == (2, 64, 16)
    assert torch.equal(tokens[0, 1], torch.cat([x[0, 0, 8:16], x[0, 1, 8:16]]))  # channel-major
    assert torch.equal(unpatchify_1d(tokens, 2), x)
    valid = torch.zeros(1, 512, dtype=torch.bool)
    valid[0, :17] = True  # patches 0, 1 full, patch 2 partial → valid; the rest fully padded
    assert patch_valid(valid, 8)[0].tolist() == [True] * 3 + [False] * 61
    tau = torch.tensor([[0.0, 0.7, 2.5]])
    pe = toa_pos_embed(tau, 8).numpy()
    for i, t in enumerate(tau[0].tolist()):
        for m in range(4):
            assert pe[0, i, 2 * m] == pytest.approx(math.sin(t / 10000 ** (2 * m / 8)), abs=1e-6)
            assert pe[0, i, 2 * m + 1] == pytest.approx(math.cos(t / 10000 ** (2 * m / 8)), abs=1e-6)


def test_smoothing_matrix_rows_sum_to_one() -> None:
    q = radarpos.smoothing_matrix(64, 0.9).double().numpy()
    np.testing.assert_allclose(q.sum(axis=1), 1.0, atol=1e-6)
    i = np.arange(64.0)
    w = np.exp(-((i[:, None] - i[None, :]) ** 2) / 0.81)
    np.testing.assert_allclose(q, w / w.sum(axis=1, keepdims=True), atol=1e-6)
    assert q[0, 0] > q[0, 1] > q[0, 2] and q[0].sum() == pytest.approx(1.0)  # edge row renormalised, not clipped
    assert torch.equal(radarpos.smoothing_matrix(8, 0.0), torch.eye(8))
    tau = torch.arange(64.0).expand(2, 64)
    torch.testing.assert_close(radarpos.tau_targets(tau, 0.9), radarpos.smoothing_matrix(64, 0.9).expand(2, 64, 64))
    warped = radarpos.tau_targets(torch.full((1, 64), 2.4), 0.9)
    assert torch.allclose(warped.sum(-1), torch.ones(1, 64)) and int(warped[0, 0].argmax()) == 2


@pytest.mark.parametrize("name", ["test_radarpos_cls", "test_resnet1d"])
def test_linear_head_freezes_the_encoder(name: str) -> None:
    model = build(name)
    model.reset_classifier(3, "linear")
    assert {n for n, p in model.named_parameters() if p.requires_grad} == {"head.fc.weight", "head.fc.bias"}
    model.train()
    assert model.head.training and not any(m.training for n, m in model.named_children() if n != "head")
    model.reset_classifier(4, "finetune")
    model.train()
    assert all(p.requires_grad for p in model.parameters()) and all(m.training for m in model.modules())
    with pytest.raises(ConfigError, match="head kind"):
        model.reset_classifier(4, "mlp")


@pytest.mark.parametrize("stem", ["radarpos_base", "mae1d_base", "resnet1d"])
def test_radar_presets_build_with_card_param_count(stem: str) -> None:
    preset = load_yaml(REPO / "models" / f"{stem}.yaml")
    assert isinstance(preset, ModelPreset) and preset.name == stem
    with torch.device("meta"):
        model = build(preset.name, **preset.overrides)
    assert sum(p.numel() for p in model.parameters()) == preset.card["params"]
    assert model.task == preset.card["task"]


# ----------------------------------------------------------------------------------------- RadarPos pretext


LENGTHS = [512, 300, 45, 8]  # 64, 38, 6, 1 valid patches


def test_exactly_m_positions_masked_and_never_padding() -> None:
    model = build("test_radarpos")
    batch = make_batch(LENGTHS)
    out = model.forward_outputs(batch, gen(3))
    n_valid = [64, 38, 6, 1]
    assert out["valid"].sum(1).tolist() == n_valid
    assert out["masked"].sum(1).tolist() == [math.floor(0.75 * n + 0.5) for n in n_valid] == [48, 29, 5, 1]
    assert not (out["masked"] & ~out["valid"]).any()
    again = model.forward_outputs(batch, gen(3))["masked"]
    other = model.forward_outputs(batch, gen(4))["masked"]
    assert torch.equal(again, out["masked"]) and not torch.equal(other, out["masked"])


def test_masked_tau_never_reaches_the_encoder() -> None:
    model = build("test_radarpos").eval()
    batch = make_batch([512, 300])
    out = model.forward_outputs(batch, gen(5))
    masked, valid = out["masked"], out["valid"]
    hidden = {**batch, "tau": batch["tau"] + 7.0 * masked}  # move only the dropped positions
    assert torch.allclose(model.forward_outputs(hidden, gen(5))["logits"], out["logits"], atol=1e-6)
    seen = {**batch, "tau": batch["tau"] + 7.0 * (valid & ~masked)}
    assert not torch.allclose(model.forward_outputs(seen, gen(5))["logits"], out["logits"], atol=1e-3)


def hand_loss(out: dict[str, torch.Tensor], sigma: float, temperature: float) -> tuple[float, float, float]:
    """§4.2 in numpy float64 from the pass's logits and z: (loss, top1, C entropy)."""
    logits = out["logits"].detach().double().numpy()
    z = out["z"].detach().double().numpy()
    masked, valid = out["masked"].numpy(), out["valid"].numpy()
    p = logits.shape[1]
    i = np.arange(p, dtype=float)
    w = np.exp(-((i[:, None] - i[None, :]) ** 2) / sigma**2)
    q = w / w.sum(axis=1, keepdims=True)
    losses, hits, ents = [], [], []
    for n in range(logits.shape[0]):
        cls, tok = z[n, 0], z[n, 1:]
        cos = tok @ cls / (np.linalg.norm(tok, axis=1) * np.linalg.norm(cls))
        e = np.where(valid[n], np.exp(cos / temperature), 0.0)
        c = e / e.sum()
        ents.append(-(c[valid[n]] * np.log(c[valid[n]])).sum())
        ls = logits[n] - logits[n].max(axis=1, keepdims=True)
        logp = ls - np.log(np.exp(ls).sum(axis=1, keepdims=True))
        ce = -(q * logp).sum(axis=1)
        m = masked[n]
        if m.any():
            losses.append((c[m] * ce[m]).sum() / c[m].sum())
            hits.extend((logits[n].argmax(axis=1) == i)[m])
    return float(np.mean(losses)), float(np.mean(hits)), float(np.mean(ents))


def test_radarpos_loss_equals_hand_computation() -> None:
    model = build("test_radarpos", sigma=0.9, temperature=0.95)
    batch = make_batch(LENGTHS)
    out = model.forward_outputs(batch, gen(7))
    loss, top1, ent = hand_loss(out, 0.9, 0.95)
    got = model.forward_loss(batch, gen(7))
    assert float(got["loss"].detach()) == pytest.approx(loss, rel=1e-5)
    assert float(got["top1"]) == pytest.approx(top1, abs=1e-6)
    assert float(got["c_entropy"]) == pytest.approx(ent, rel=1e-5)
    assert 0.0 <= float(got["top1"]) <= float(got["top1_pm1"]) <= 1.0


def test_c_has_no_gradient() -> None:
    model = build("test_radarpos")
    batch = make_batch([512, 300])
    out = model.forward_outputs(batch, gen(2))
    assert not out["weights"].requires_grad
    q = radarpos.smoothing_matrix(64, model.sigma)
    loss, _ = radarpos.position_loss(out["logits"], q, out["masked"], out["weights"])
    constant = out["weights"].clone()  # a leaf constant: the loss may only flow through ℓ
    manual = (
        (constant * out["masked"] * -(q[None] * out["logits"].log_softmax(-1)).sum(-1)).sum(1)
        / (constant * out["masked"]).sum(1)
    ).mean()
    params = [p for p in model.parameters() if p.requires_grad]
    g_model = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    g_manual = torch.autograd.grad(manual, params, allow_unused=True)
    for a, b in zip(g_model, g_manual, strict=True):
        assert (a is None and b is None) or torch.allclose(a, b, atol=1e-6, rtol=1e-5)


def test_one_adamw_step_decreases_the_loss() -> None:
    model = build("test_radarpos")
    batch = make_batch([512, 512, 300, 200])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    before = model.forward_loss(batch, gen(11))["loss"]
    before.backward()
    opt.step()
    with torch.no_grad():
        after = model.forward_loss(batch, gen(11))["loss"]
    assert float(after) < float(before.detach())


@pytest.mark.parametrize("pretrain", ["test_radarpos", "test_mae1d"])
def test_pretrain_state_dict_loads_into_the_classifier(pretrain: str) -> None:
    source = build(pretrain, seed=3)
    target = build("test_radarpos_cls")
    result = target.load_state_dict(source.state_dict(), strict=False)
    assert sorted(result.missing_keys) == ["head.fc.bias", "head.fc.weight", "head.norm.bias", "head.norm.weight"]
    extra = {"test_radarpos": {"mask_pos_token", "projector", "decoder"},
             "test_mae1d": {"mask_token", "decoder_pred"}}[pretrain]  # fmt: skip
    assert {k.split(".")[0] for k in result.unexpected_keys} == extra
    assert torch.equal(target.blocks[1].attn.qkv.weight, source.blocks[1].attn.qkv.weight)


# ---------------------------------------------------------------------------------------------------- decoder


def test_decoder_sits_between_encoder_and_projector() -> None:
    """§4.2.4: ``decoder_depth`` encoder-width blocks (named like the encoder's) feed the projector; C is still
    read from the encoder output z, so the decoder changes the logits and nothing else."""
    model = build("test_radarpos", seed=5)
    assert model.decoder.depth == 2 and len(model.decoder.blocks) == 2
    names = {n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    for i in range(2):
        assert {f"decoder.blocks.{i}.attn.qkv", f"decoder.blocks.{i}.attn.proj", f"decoder.blocks.{i}.mlp.fc1",
                f"decoder.blocks.{i}.mlp.fc2"} <= names  # fmt: skip
    assert model.decoder.blocks[0].attn.qkv.in_features == model.embed_dim
    batch = make_batch(LENGTHS)
    before = model.forward_outputs(batch, gen(3))
    with torch.no_grad():
        model.decoder.blocks[1].mlp.fc2.bias.add_(1.0)
    after = model.forward_outputs(batch, gen(3))
    assert not torch.allclose(before["logits"], after["logits"])
    assert torch.equal(before["z"], after["z"]) and torch.equal(before["weights"], after["weights"])
    loss = model.forward_loss(batch, gen(3))["loss"]
    loss.backward()
    assert model.decoder.blocks[0].attn.qkv.weight.grad.abs().sum() > 0
    shallow = build("test_radarpos", decoder_depth=0)
    assert not [n for n, _ in shallow.named_parameters() if n.startswith("decoder.")]
    assert torch.isfinite(shallow.forward_loss(batch, gen(3))["loss"])
    with pytest.raises(ConfigError, match="decoder_depth"):
        build("test_radarpos", decoder_depth=-1)


def test_base_decoder_depth_is_a_flag() -> None:
    with torch.device("meta"):
        base, three = radarpos.radarpos_base(), radarpos.radarpos_base(decoder_depth=3)
    per_block = sum(p.numel() for p in base.blocks[0].parameters())
    assert len(base.decoder.blocks) == 2 and len(three.decoder.blocks) == 3
    n = sum(p.numel() for p in base.parameters())
    assert sum(p.numel() for p in three.parameters()) - n == per_block
    assert "decoder_depth" not in radarpos.ENCODER_KEYS  # never reaches a classifier's constructor


def _decoder_names(model: torch.nn.Module) -> list[str]:
    return [n for n in [*model.state_dict(), *(k for k, _ in model.named_parameters())] if "decoder" in n]


@pytest.mark.parametrize("finetune", ["lora", "full", "linear"])
def test_fine_tuned_model_holds_no_decoder(finetune: str) -> None:
    """Fine-tuning drops decoder and projector (§4.2.4): the classifier built from a pretraining state_dict
    holds no decoder tensor in any protocol, and ``encoder_state`` strips every pretraining-only key."""
    source = build("test_radarpos", seed=3)
    assert _decoder_names(source)
    state = radarpos.encoder_state(source.state_dict())
    assert not [k for k in state if k.startswith(("decoder.", "projector.", "mask_pos_token"))]
    model = build("test_radarpos_cls")
    result = model.load_state_dict(state, strict=False)
    assert result.unexpected_keys == [] and all(k.startswith("head.") for k in result.missing_keys)
    model.reset_classifier(7, "linear" if finetune == "linear" else "finetune")
    if finetune == "lora":
        model = apply_lora(model, backend="builtin")
    assert _decoder_names(model) == []
    assert not any("projector" in n or "mask_pos" in n for n in model.state_dict())


# ----------------------------------------------------------------------------------------------------- MAE-1D


def test_mae1d_reconstructs_masked_valid_samples_only() -> None:
    model = build("test_mae1d")
    batch = make_batch(LENGTHS)
    out = model.forward_outputs(batch, gen(9))
    assert out["masked"].sum(1).tolist() == [48, 29, 5, 1]
    pred = out["pred"].detach().double().numpy()  # (N, P, 16)
    x, valid, masked = batch["x"].double().numpy(), batch["valid"].numpy(), out["masked"].numpy()
    num = den = 0.0
    for n in range(x.shape[0]):
        for p in np.flatnonzero(masked[n]):
            for ch in range(2):
                seg, ok = x[n, ch, 8 * p : 8 * p + 8], valid[n, 8 * p : 8 * p + 8]
                mean, var = seg[ok].mean(), seg[ok].var()
                target = (seg - mean) / np.sqrt(var + 1e-6)
                num += (((pred[n, p, 8 * ch : 8 * ch + 8] - target) ** 2) * ok).sum()
                den += ok.sum()
    got = model.forward_loss(batch, gen(9))
    assert float(got["loss"].detach()) == pytest.approx(num / den, rel=1e-5)


# ------------------------------------------------------------------------------------------------------- LoRA

BASE_ATTN = [f"blocks.{i}.attn.{m}" for i in range(6) for m in ("qkv", "proj")]


def lora_count(d: int, depth: int, classes: int, r: int = 8, mlp: float | None = None) -> int:
    """Adapter parameters r·(in + out) per targeted Linear, plus the LayerNorm + Linear head."""
    per_block = r * (d + 3 * d) + r * (d + d)
    if mlp is not None:
        h = int(d * mlp)
        per_block += 2 * r * (d + h)
    return depth * per_block + 2 * d + d * classes + classes


def test_peft_targets_exactly_the_attention_linears() -> None:
    peft = pytest.importorskip("peft")
    assert peft.__version__
    model = apply_lora(radarpos.radarpos_cls_base())
    assert sorted(model.base_model.targeted_module_names) == sorted(BASE_ATTN)
    assert len(model.base_model.targeted_module_names) == 12
    assert _decoder_names(model) == []  # the classifier never builds the pretext decoder
    assert trainable_parameter_count(model) == lora_count(512, 6, 7)
    assert model.task == "classify" and model.num_features == 512  # the wrapper forwards the contract
    batch = make_batch([512])
    assert model.forward_features(batch).shape == (1, 512) and model(batch).shape == (1, 7)


def test_lora_regex_never_targets_decoder_blocks() -> None:
    """The target regex is matched against the whole qualified name (``re.fullmatch``, as peft does for a string),
    so ``decoder.blocks.{i}.attn.*`` stays out even on a model that has a decoder."""
    with torch.device("meta"):
        pre = radarpos.radarpos_base()
    assert lora_target_names(pre, "attn") == BASE_ATTN
    peft = pytest.importorskip("peft")
    from sardata.models.layers.lora import TARGET_PATTERNS

    tiny = build("test_radarpos")
    wrapped = peft.get_peft_model(tiny, peft.LoraConfig(r=4, target_modules=TARGET_PATTERNS["attn"]))
    targeted = sorted(wrapped.base_model.targeted_module_names)
    assert targeted == sorted(f"blocks.{i}.attn.{m}" for i in range(2) for m in ("qkv", "proj"))


@pytest.mark.parametrize("backend", ["peft", "builtin"])
@pytest.mark.parametrize("targets", ["attn", "attn+mlp"])
def test_lora_trains_only_adapters_and_head(backend: str, targets: str) -> None:
    if backend == "peft":
        pytest.importorskip("peft")
    model = apply_lora(build("test_radarpos_cls"), targets=targets, backend=backend)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n or "head" in n for n in trainable)
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    for part in ("patch_embed.weight", "cls_token", "norm.weight", "norm1.weight", "attn.qkv.base_layer.weight"):
        assert any(n.endswith(part) for n in frozen), part
    assert trainable_parameter_count(model) == lora_count(64, 2, 7, mlp=2.0 if targets == "attn+mlp" else None)


def test_lora_qv_arm_needs_separate_projections() -> None:
    with pytest.raises(ConfigError, match="qv"):
        lora_target_names(build("test_radarpos_cls"), "qv")
    with pytest.raises(ConfigError, match="targets='qv'"):
        lora_target_names(build("test_radarpos_cls", qkv="separate"), "attn")
    names = lora_target_names(build("test_radarpos_cls", qkv="separate"), "qv")
    assert names == ["blocks.0.attn.q", "blocks.0.attn.v", "blocks.1.attn.q", "blocks.1.attn.v"]


def test_builtin_lora_equals_peft() -> None:
    pytest.importorskip("peft")
    base = build("test_radarpos_cls")
    with_peft = apply_lora(copy.deepcopy(base), backend="peft")
    builtin = apply_lora(copy.deepcopy(base), backend="builtin")
    batch = make_batch([512, 200])
    rng = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name in lora_target_names(base):
            ours = builtin.get_submodule(name)
            theirs = with_peft.base_model.model.get_submodule(name)
            assert isinstance(ours, LoRALinear) and theirs.scaling["default"] == ours.scaling == 2.0
            theirs.lora_B["default"].weight.copy_(torch.randn(theirs.lora_B["default"].weight.shape, generator=rng))
            ours.lora_A.weight.copy_(theirs.lora_A["default"].weight)
            ours.lora_B.weight.copy_(theirs.lora_B["default"].weight)
        with_peft.eval(), builtin.eval()
        a, b = with_peft(batch), builtin(batch)
        assert not torch.allclose(a, base.eval()(batch), atol=1e-4)  # the adapters do change the output
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_lora_linear_merges_and_starts_at_identity() -> None:
    lin = torch.nn.Linear(6, 4)
    lora = LoRALinear(copy.deepcopy(lin), r=2, alpha=4, dropout=0.0)
    x = torch.randn(3, 6, generator=gen(0))
    torch.testing.assert_close(lora(x), lin(x))  # B = 0
    with torch.no_grad():
        lora.lora_B.weight.normal_(generator=gen(1))
    torch.testing.assert_close(lora.merged()(x), lora(x))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_radarpos_bf16_on_gpu() -> None:
    model = build("test_radarpos").cuda()
    batch = {k: v.cuda() for k, v in make_batch(LENGTHS).items()}
    g = torch.Generator(device="cuda").manual_seed(0)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = model.forward_loss(batch, g)
    out["loss"].backward()
    assert torch.isfinite(out["loss"])
    assert out["loss"].dtype == torch.float32
    cls = apply_lora(build("test_radarpos_cls").cuda())
    with torch.autocast("cuda", dtype=torch.bfloat16):
        assert cls(batch).shape == (4, 7)


def test_robust_input_norm_calibrates_once_and_travels_with_the_checkpoint() -> None:
    """issue 16: ``input_norm="robust"`` rescales channels by a median/MAD of the first batch, kept as buffers; a
    classifier built from the checkpoint's overrides inherits them and never recalibrates; the default adds no
    state (old checkpoints load unchanged)."""
    from sardata.models import create_model
    from sardata.models.radarpos import encoder_overrides, encoder_state

    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 2, 512, generator=g) * torch.tensor([0.003, 0.05]).view(1, 2, 1) + 0.4
    batch = {"x": x, "tau": torch.arange(64.0).repeat(4, 1), "valid": torch.ones(4, 512, dtype=torch.bool)}
    pre = create_model("test_radarpos", input_norm="robust", seed=0)
    assert not bool(pre.input_scale.calibrated)
    pre.forward_loss(batch, torch.Generator().manual_seed(1))
    med = pre.input_scale.median.clone()
    torch.testing.assert_close(med, x.permute(1, 0, 2).reshape(2, -1).median(dim=1).values)
    pre.forward_loss({**batch, "x": batch["x"] + 1.0}, torch.Generator().manual_seed(1))
    torch.testing.assert_close(pre.input_scale.median, med)  # calibrated once
    cls = create_model("test_radarpos_cls", num_classes=3, **encoder_overrides({"input_norm": "robust"}))
    missing, unexpected = cls.load_state_dict(encoder_state(pre.state_dict()), strict=False)
    assert unexpected == [] and all(k.startswith("head") for k in missing)
    assert bool(cls.input_scale.calibrated) and torch.equal(cls.input_scale.median, med)
    assert not any(k.startswith("input_scale") for k in create_model("test_radarpos", seed=0).state_dict())
    res = create_model("test_resnet1d", num_classes=3, input_norm="robust")
    assert res(batch).shape == (4, 3) and bool(res.input_scale.calibrated)
