"""The SAR trainers: schedules, exact resume (in-process stop and a real kill), DDP ≡ accumulation, the
non-finite guard, few-shot fine-tune / linear probe / eval, and the CLI."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from sardata.errors import ConfigError, NonFiniteLossError
from sardata.recipes import load_yaml
from sardata.train.common import Dist, load_checkpoint
from sardata.train.finetune import FinetuneConfig, eval_view, run_fewshot
from sardata.train.metrics import aggregate, scores
from sardata.train.pretrain import PretrainConfig, _guard_finite, pretrain
from sardata.train.schedule import fewshot_lr, warmup_cosine, warmup_step_decay

ROOT = Path(__file__).resolve().parents[1]
SARDATA = [sys.executable, "-m", "sardata.cli"]


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Demo MSTAR chips (64 px, 4 classes) → ingest → shards with 5-shot views."""
    from sardata.ingest import ingest
    from sardata.shards.build import BuildConfig, build_shards
    from sardata.sim.sar_targets import write_demo_dataset

    base = tmp_path_factory.mktemp("train")
    write_demo_dataset(base / "data", per_class=12, seed=0, nonsquare=False)
    ingest("mstar", base / "data" / "jpeg", base / "ingest", workers=1)
    build_shards([base / "ingest"], base / "shards", BuildConfig(shots=(5,), seeds=(0, 1)), workers=1)
    return base / "shards"


def _cfg(shards: Path, **kw) -> PretrainConfig:
    base = dict(kind="pretrain", name="t", model="test_lomar_sar", data=[str(shards)], split="train",
                model_overrides={"img_size": 32, "patch_size": 8, "window_size": 2, "num_window": 3},
                image_size=32, global_batch=8, epochs=3, warmup_epochs=1, blr=1e-3, device="cpu",
                checkpoint_every_epochs=100, log_every_steps=1)  # fmt: skip
    base.update(kw)
    return PretrainConfig(**base)


def _losses(run: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())}


# ------------------------------------------------------------------------------------------------- schedules
def test_warmup_cosine_values() -> None:
    assert warmup_cosine(0, 100, 10, 1e-3) == 0.0
    assert warmup_cosine(5, 100, 10, 1e-3) == pytest.approx(5e-4)
    assert warmup_cosine(10, 100, 10, 1e-3) == pytest.approx(1e-3)
    assert warmup_cosine(55, 100, 10, 1e-3) == pytest.approx(5e-4)  # half-way through the cosine
    assert warmup_cosine(100, 100, 10, 1e-3, 1e-5) == pytest.approx(1e-5)
    # the paper's global batch 300 → lr 1.171875e-3
    assert PretrainConfig(kind="pretrain", name="p", model="m", data=["x"]).peak_lr == pytest.approx(1.171875e-3)


def test_fewshot_and_step_decay_values() -> None:
    assert fewshot_lr(0) == fewshot_lr(1) == 1e-5
    assert fewshot_lr(2) == pytest.approx(1e-3)
    assert fewshot_lr(22) == pytest.approx(5e-4)
    assert fewshot_lr(39) == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi * 37 / 40)))
    assert 1.3e-5 < fewshot_lr(39) < 1.5e-5  # ≈1.4e-5, never 0 (sar-jepa.md §3.7)
    assert warmup_step_decay(0, 2.5e-5) == pytest.approx(2.5e-6)
    assert warmup_step_decay(9, 2.5e-5) == pytest.approx(2.5e-5)
    assert warmup_step_decay(24, 2.5e-5) == pytest.approx(2.5e-5)
    assert warmup_step_decay(25, 2.5e-5) == pytest.approx(2.5e-6)
    assert warmup_step_decay(45, 2.5e-5) == pytest.approx(2.5e-7)


# ------------------------------------------------------------------------------------------------- pretraining
def test_pretrain_runs_and_writes_checkpoint(shards: Path, tmp_path: Path) -> None:
    res = pretrain(_cfg(shards, stop_at_step=3), tmp_path / "run")
    assert res.steps == 3 and math.isfinite(res.last_loss)
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert ckpt["step"] == 3 and ckpt["model_name"] == "test_lomar_sar"
    assert set(ckpt["loader"]) >= {"seed", "epoch", "step", "global_batch", "manifest_hash"}
    assert list(_losses(tmp_path / "run")) == [1, 2, 3]
    assert (tmp_path / "run" / "tb").is_dir()


def test_resume_in_process_is_exact(shards: Path, tmp_path: Path) -> None:
    full = pretrain(_cfg(shards, stop_at_step=7), tmp_path / "full")
    pretrain(_cfg(shards, stop_at_step=4), tmp_path / "split")
    res = pretrain(_cfg(shards, stop_at_step=7), tmp_path / "split")
    assert res.resumed_from == 4 and full.steps == res.steps == 7
    assert _losses(tmp_path / "split") == _losses(tmp_path / "full")  # bit-identical losses, step for step


def test_resume_refuses_other_config(shards: Path, tmp_path: Path) -> None:
    pretrain(_cfg(shards, stop_at_step=1), tmp_path / "r")
    with pytest.raises(ConfigError, match="another configuration"):
        pretrain(_cfg(shards, stop_at_step=2, blr=5e-4), tmp_path / "r")


def _recipe(shards: Path, path: Path, **kw) -> Path:
    import yaml

    cfg = {k: v for k, v in vars(_cfg(shards, **kw)).items()}
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.slow
def test_resume_after_kill_matches_uninterrupted(shards: Path, tmp_path: Path) -> None:
    """A real SIGKILL mid-run, then the same command again: the losses equal an uninterrupted run's."""
    recipe = _recipe(shards, tmp_path / "r.yaml", checkpoint_every_steps=1, epochs=4)
    # the reference runs as the same command in a fresh process too (same thread count → same float sums)
    subprocess.run([*SARDATA, "train", "pretrain", "-r", str(recipe), "-O", str(tmp_path / "ref")], cwd=ROOT,
                   check=True, capture_output=True)  # fmt: skip
    ref_steps = max(_losses(tmp_path / "ref"))
    cmd = [*SARDATA, "train", "pretrain", "-r", str(recipe), "-O", str(tmp_path / "killed")]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = tmp_path / "killed" / "metrics.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 3:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed; make it longer"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = load_checkpoint(tmp_path / "killed" / "checkpoints" / "last.pt")["step"]
    assert 0 < killed_at < ref_steps
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
    got = _losses(tmp_path / "killed")  # steps logged twice (after the kill, before the checkpoint) must agree
    rows = [json.loads(x) for x in metrics.read_text().splitlines()]
    for r in rows:
        assert r["loss"] == _losses(tmp_path / "ref")[r["step"]]
    assert got == _losses(tmp_path / "ref")


@pytest.mark.distributed
@pytest.mark.slow
def test_ddp_two_ranks_equals_one_rank_with_accumulation(shards: Path, tmp_path: Path) -> None:
    """torchrun (gloo, 2 CPU ranks) vs one process with accum_steps=2 at the same global batch: same masks,
    same samples, so the same gradients — compared through the weights after two AdamW steps."""
    kw = dict(stop_at_step=2, warmup_epochs=0)
    one = _recipe(shards, tmp_path / "one.yaml", accum_steps=2, **kw)
    two = _recipe(shards, tmp_path / "two.yaml", **kw)
    pretrain(load_yaml(one), tmp_path / "one")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29517",
                    "-m", "sardata.cli", "train", "pretrain", "-r", str(two), "-O", str(tmp_path / "two")],
                   cwd=ROOT, check=True, capture_output=True, env=env, timeout=300)  # fmt: skip
    a = load_checkpoint(tmp_path / "one" / "checkpoints" / "last.pt")["model"]
    b = load_checkpoint(tmp_path / "two" / "checkpoints" / "last.pt")["model"]
    moved = 0
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=2e-6, rtol=1e-5, msg=k)
        moved += int(not torch.equal(a[k], torch.zeros_like(a[k])))
    assert moved > 0
    la, lb = _losses(tmp_path / "one"), _losses(tmp_path / "two")
    assert la.keys() == lb.keys() and all(abs(la[s] - lb[s]) < 1e-5 for s in la)


def test_nonfinite_guard_names_step_rank_and_samples() -> None:
    with pytest.raises(NonFiniteLossError, match=r"step 7 on rank 0 \(samples \['a', 'b'\]\)"):
        _guard_finite(torch.tensor(float("nan")), Dist(), 7, {"__key__": ["a", "b"]})
    _guard_finite(torch.tensor(1.0), Dist(), 7, {})


def test_pretrain_rejects_classifier_model(shards: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a pretraining model"):
        pretrain(_cfg(shards, model="test_vit_irpe", model_overrides={"img_size": 32, "patch_size": 8}), tmp_path)


# ------------------------------------------------------------------------------------------------- few-shot
def test_eval_view_crop_pad_resize() -> None:
    import numpy as np

    img = np.full((1, 40, 90), 255, np.uint8)
    x = eval_view(img, crop=64, size=32)
    assert x.shape == (1, 32, 32) and x.dtype == torch.float32
    assert float(x[0, 0, 0]) == 0.0 and float(x[0, 16, 16]) == pytest.approx(1.0)  # zero pad rows, crop columns
    assert eval_view(img, crop=None, size=45).shape == (1, 45, 45)


def test_scores_and_aggregate() -> None:
    import numpy as np

    s = scores(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2]), 3)
    assert s["accuracy"] == 75.0 and s["macro_f1"] == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)
    rows = [{"dataset": "d", "protocol": "finetune", "shots": 10, "accuracy": a, "macro_f1": 0.5} for a in (50, 60)]
    (agg,) = aggregate(rows)
    assert (
        agg["accuracy_mean"] == 55
        and agg["accuracy_std"] == 5
        and agg["accuracy_std_ddof1"] == pytest.approx(math.sqrt(50))
    )
    assert agg["accuracy_ci95"] == pytest.approx(12.706204736 * math.sqrt(50) / math.sqrt(2))


def _ft(shards: Path, **kw) -> FinetuneConfig:
    base = dict(kind="finetune", name="ft", data=str(shards), model="test_vit_irpe",
                model_overrides={"patch_size": 8}, shots=[5], seeds=[0, 1], crop=None, image_size=32, epochs=3,
                batch_size=8, device="cpu")  # fmt: skip
    base.update(kw)
    return FinetuneConfig(**base)


def test_finetune_from_pretraining_checkpoint_and_eval(shards: Path, tmp_path: Path) -> None:
    pretrain(_cfg(shards, stop_at_step=2), tmp_path / "pre")
    ckpt = str(tmp_path / "pre" / "checkpoints" / "last.pt")
    res = run_fewshot(_ft(shards, checkpoint=ckpt, save_models=True), tmp_path / "ft")
    assert [(r["protocol"], r["shots"], r["seed"]) for r in res.rows] == [
        ("finetune", 5, 0), ("finetune", 5, 1), ("pixel 1-NN", 5, 0), ("nearest centroid", 5, 0),
        ("pixel 1-NN", 5, 1), ("nearest centroid", 5, 1)]  # fmt: skip
    assert all(r["n_train"] == 20 and 0 <= r["accuracy"] <= 100 and 0 <= r["train_accuracy"] <= 100
               for r in res.rows)  # fmt: skip
    assert all(r["train_accuracy"] == 100.0 for r in res.rows if r["protocol"] == "pixel 1-NN")  # its own shots
    table = (tmp_path / "ft" / "summary.md").read_text()
    assert "pixel 1-NN (reference)" in table and "nearest centroid (reference)" in table and "train acc" in table
    assert {"summary.csv", "summary.md", "fewshot.png", "results.jsonl"} <= {
        p.name for p in (tmp_path / "ft").iterdir()
    }
    # the same seed twice gives the same result; a stored classifier evaluates to the logged accuracy
    again = run_fewshot(_ft(shards, checkpoint=ckpt, seeds=[0]), tmp_path / "ft2")
    assert again.rows[0]["accuracy"] == res.rows[0]["accuracy"]
    from sardata.train.finetune import evaluate

    ev = evaluate(tmp_path / "ft" / "models" / "k5-s0.pt", str(shards))
    assert ev["accuracy"] == pytest.approx(res.rows[0]["accuracy"])


def test_linear_probe_freezes_encoder(shards: Path, tmp_path: Path) -> None:
    pretrain(_cfg(shards, stop_at_step=1), tmp_path / "pre")
    ckpt = str(tmp_path / "pre" / "checkpoints" / "last.pt")
    res = run_fewshot(_ft(shards, protocol="linear", checkpoint=ckpt, save_models=True, seeds=[0]), tmp_path / "lp")
    trained = load_checkpoint(tmp_path / "lp" / "models" / "k5-s0.pt")["model"]
    pre = load_checkpoint(ckpt)["model"]
    for k, v in trained.items():
        if not k.startswith("head") and k in pre:
            assert torch.equal(v, pre[k]), f"{k} changed under the linear probe"
    assert res.rows[0]["protocol"] == "linear"


def test_finetune_refuses_non_single_source_and_missing_view(shards: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no view 'split_fewshot_k7_s0'"):
        run_fewshot(_ft(shards, shots=[7]), tmp_path / "x")
    with pytest.raises(ConfigError):
        replace(_ft(shards), protocol="probe")


def test_cli_overrides_and_recipes_load(shards: Path, tmp_path: Path) -> None:
    for recipe in sorted((ROOT / "pipelines").glob("*.yaml")):
        if "pretrain" in recipe.name or "fewshot" in recipe.name:
            load_yaml(recipe)  # every training recipe validates
    recipe = _recipe(shards, tmp_path / "r.yaml")
    out = subprocess.run([*SARDATA, "train", "pretrain", "-r", str(recipe), "-O", str(tmp_path / "cli"),
                          "-s", "stop_at_step=1", "-s", "model_overrides.depth=1"],
                         cwd=ROOT, capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 0, out.stderr
    cfg = json.loads((tmp_path / "cli" / "config.json").read_text())["config"]
    assert cfg["model_overrides"]["depth"] == 1 and cfg["stop_at_step"] == 1


def test_bf16_autocast_step_on_cpu_and_fp16_refused(shards: Path, tmp_path: Path) -> None:
    res = pretrain(_cfg(shards, stop_at_step=1, precision="bf16"), tmp_path / "bf16")
    assert math.isfinite(res.last_loss)
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
        pretrain(_cfg(shards, stop_at_step=1, precision="fp16"), tmp_path / "fp16")


@pytest.mark.slow
def test_torch_compile_step_matches_eager_and_saves_plain_keys(shards: Path, tmp_path: Path) -> None:
    """``compile: true`` (inductor on CPU) trains the same losses as eager to float tolerance, and the checkpoint
    holds the bare model's keys (no ``_orig_mod.`` prefix), loadable into a fresh model."""
    from sardata.models import create_model

    eager = pretrain(_cfg(shards, stop_at_step=2), tmp_path / "eager")
    compiled = pretrain(_cfg(shards, stop_at_step=2, compile=True), tmp_path / "compiled")
    assert eager.steps == compiled.steps == 2
    a, b = _losses(tmp_path / "eager"), _losses(tmp_path / "compiled")
    assert a.keys() == b.keys() and all(b[k] == pytest.approx(a[k], rel=1e-4) for k in a)
    state = load_checkpoint(tmp_path / "compiled" / "checkpoints" / "last.pt")["model"]
    assert not any(k.startswith("_orig_mod") or k.startswith("module.") for k in state)
    create_model("test_lomar_sar", **_cfg(shards).model_overrides).load_state_dict(state)


def test_pixel_reference_rules() -> None:
    from sardata.train.fewshot_reference import nearest_centroid, pixel_1nn

    xtr = torch.tensor([[0.0, 0.0], [0.0, 1.0], [10.0, 10.0], [10.0, 12.0]]).reshape(4, 1, 1, 2)
    ytr = torch.tensor([3, 3, 1, 1])
    xte = torch.tensor([[0.0, 0.9], [9.0, 9.0], [5.0, 5.4]]).reshape(3, 1, 1, 2)
    assert pixel_1nn(xtr, ytr, xte).tolist() == [3, 1, 3]  # (5, 5.4): nearer (0, 1) than (10, 10)
    assert nearest_centroid(xtr, ytr, xte).tolist() == [3, 1, 3]  # centroids (0, .5) and (10, 11)
    assert pixel_1nn(xtr, ytr, xtr).tolist() == ytr.tolist()  # 1-NN fits its own shots exactly


def test_mae_checkpoint_keeps_its_positions_by_default(tmp_path: Path) -> None:
    from sardata.models import create_model
    from sardata.train.common import save_checkpoint
    from sardata.train.finetune import build_classifier, classifier_spec

    over = {"img_size": 32, "patch_size": 8}
    mae = create_model("test_mae", **over)
    save_checkpoint(tmp_path / "mae.pt", {"kind": "pretrain", "model_name": "test_mae", "model_overrides": over,
                                          "model": mae.state_dict()})  # fmt: skip
    for abs_pos, expect in ((None, True), (False, False), (True, True)):
        cfg = FinetuneConfig(kind="finetune", name="m", data="x", model="test_vit_irpe", checkpoint=str(tmp_path / "mae.pt"),
                             model_overrides={"patch_size": 8}, image_size=32, abs_pos=abs_pos)  # fmt: skip
        spec = classifier_spec(cfg)
        model = build_classifier(cfg, 3, 0, 5, *spec)
        assert model.abs_pos is expect
        if expect:
            assert torch.equal(model.pos_embed, mae.pos_embed)  # the positions MAE was pretrained with
        x = torch.rand(2, 1, 32, 32)
        assert model(x).shape == (2, 3)
    plain = build_classifier(FinetuneConfig(kind="finetune", name="s", data="x", model="test_vit_irpe",
                                            model_overrides={"patch_size": 8}, image_size=32), 3, 0, 5,
                             *classifier_spec(FinetuneConfig(kind="finetune", name="s", data="x", model="test_vit_irpe",
                                                             model_overrides={"patch_size": 8}, image_size=32)))  # fmt: skip
    assert plain.abs_pos is False and "pos_embed" not in plain.state_dict()


def test_small_sar_jepa_recipe_follows_the_paper_ratios() -> None:
    """grid 14 → window 7, 4 windows, predictor 8 blocks behind 12 (issue 17 point 3), scaled to the recipe."""
    from sardata.recipes import load_yaml

    cfg = load_yaml(Path(__file__).resolve().parents[1] / "pipelines" / "sar-jepa-pretrain-cpu-small.yaml")
    o = cfg.model_overrides
    grid = o["img_size"] // o["patch_size"]
    assert o["window_size"] == grid // 2 and o["num_window"] == 4
    assert o["decoder_depth"] == round(8 * o["depth"] / 12)
    assert cfg.gr_radii is None  # the default rule: the paper radii scaled to img_size


def test_input_norm_and_min_steps(tmp_path: Path) -> None:
    from sardata.models import create_model
    from sardata.models.layers.inputs import normalise_input
    from sardata.train.common import save_checkpoint
    from sardata.train.finetune import classifier_spec, epochs_for

    x = torch.rand(3, 1, 16, 16) * 0.2
    z = normalise_input(x, "image")
    assert torch.allclose(z.mean(dim=(1, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(z.std(dim=(1, 2, 3), unbiased=False), torch.ones(3), atol=1e-4)
    assert (normalise_input(torch.full((1, 1, 4, 4), 0.3), "image") == 0).all()  # flat image → 0
    vit = create_model("test_vit_irpe", img_size=32, patch_size=8).eval()
    with torch.no_grad():  # per-image standardisation: a gain and an offset of the input change nothing
        assert torch.allclose(vit.forward_features(x[:, :, :, :].repeat(1, 1, 2, 2)),
                              vit.forward_features(3 * x.repeat(1, 1, 2, 2) + 0.1), atol=1e-4)  # fmt: skip
    with pytest.raises(ConfigError, match="input_norm"):
        create_model("test_vit_irpe", input_norm="dataset")
    mae = create_model("test_mae", img_size=32, patch_size=8)
    for stored, expect in (({"input_norm": "image"}, "image"), ({}, "none")):  # a legacy checkpoint saw raw inputs
        save_checkpoint(tmp_path / "c.pt", {"kind": "pretrain", "model_name": "test_mae", "model": mae.state_dict(),
                                            "model_overrides": {"img_size": 32, "patch_size": 8}, **stored})  # fmt: skip
        cfg = FinetuneConfig(kind="finetune", name="m", data="x", model="test_vit_irpe", checkpoint=str(tmp_path / "c.pt"),
                             model_overrides={"patch_size": 8}, image_size=32)  # fmt: skip
        assert classifier_spec(cfg)[0]["input_norm"] == expect
    cfg = FinetuneConfig(kind="finetune", name="m", data="x", batch_size=50, epochs=40, min_steps=400)
    assert (
        epochs_for(cfg, 100) == 200 and epochs_for(cfg, 20) == 400 and epochs_for(replace(cfg, min_steps=0), 100) == 40
    )
