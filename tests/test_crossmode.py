"""The radar training path end to end on the committed fixtures: RadChar + PDW pool shards → RadarPos pretraining
through `sardata train pretrain` → one `sardata train finetune` command producing the cross-mode table (LoRA arm
from the checkpoint, a supervised arm, the no-TOA-PE ablation)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

from sardata.errors import ConfigError
from sardata.features.pulses import PDW_DTYPE
from sardata.recipes import load_yaml
from sardata.sim.pdw_reference import majority_predict, rf_centroid_predict
from sardata.train.crossmode import Arm, CrossModeConfig, run_crossmode
from sardata.train.crossmode_loss import balanced_weights, class_counts, make_loss
from sardata.train.crossmode_table import DegenerateBenchmarkError, RawSide, check_degenerate, reference_summary
from sardata.train.pretrain import PretrainConfig, pretrain

ROOT = Path(__file__).resolve().parents[1]
PDW = ROOT / "tests" / "data" / "pdwsim" / "PDWSim"
RADCHAR = ROOT / "tests" / "data" / "radchar" / "RadChar"


@pytest.fixture(scope="module")
def radar(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from sardata.ingest import ingest
    from sardata.shards.build import BuildConfig, build_shards

    base = tmp_path_factory.mktemp("radar")
    out = {}
    for name, source, root in (("pool", "pdwsim", PDW / "pool"), ("downstream", "pdwsim", PDW / "downstream"),
                               ("radchar", "radchar", RADCHAR)):  # fmt: skip
        ingest(source, root, base / "ingest" / name, workers=1)
        out[name] = build_shards([base / "ingest" / name], base / "shards" / name, BuildConfig(), workers=1).out
    return out


def _arms(ckpt: str) -> list[Arm]:
    return [
        Arm(name="RadarPos + LoRA", model="test_radarpos_cls", checkpoint=ckpt, finetune="lora"),
        Arm(name="Transformer (scratch)", model="test_transformer_scratch", finetune="full", lr=1e-3),
    ]


def test_radarpos_pretrain_then_crossmode_table(radar: dict[str, Path], tmp_path: Path) -> None:
    cfg = PretrainConfig(kind="pretrain", name="rp", model="test_radarpos", data=[str(radar["pool"]),
                         str(radar["radchar"])], split="train,pool,unlabelled", global_batch=8, epochs=2,
                         warmup_epochs=0, lr=1e-4, device="cpu")  # fmt: skip
    res = pretrain(cfg, tmp_path / "pre")
    assert res.steps == 8  # (12 pool trains + 2 files × 10 RadChar frames) / 8 → 4 steps per epoch
    rows = [json.loads(x) for x in (tmp_path / "pre" / "metrics.jsonl").read_text().splitlines()]
    assert {"loss", "top1", "top1_pm1", "c_entropy"} <= set(rows[-1])
    ckpt = str(tmp_path / "pre" / "checkpoints" / "last.pt")
    recipe = {"kind": "crossmode", "name": "cm", "data": str(radar["downstream"]), "seeds": [1], "epochs": 2,
              "warmup_epochs": 1, "milestones": [1], "batch_size": 4,
              "arms": [vars(a) for a in _arms(ckpt)]}  # fmt: skip
    (tmp_path / "cm.yaml").write_text(yaml.safe_dump(recipe))
    cmd = [sys.executable, "-m", "sardata.cli", "train", "finetune", "-r", str(tmp_path / "cm.yaml"),
           "--out", str(tmp_path / "cm")]  # fmt: skip
    # The committed fixture's emitters sit in separate bands (``confusable=False`` on purpose): the
    # RF-only rule solves it, so the command refuses to train and writes the reference table alone.
    refused = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert refused.returncode == 1 and "benchmark is degenerate" in refused.stderr
    assert "NOT RUN" in (tmp_path / "cm" / "summary.md").read_text()
    assert not (tmp_path / "cm" / "results.jsonl").exists()
    (tmp_path / "cm.yaml").write_text(yaml.safe_dump({**recipe, "allow_degenerate": True, "input_norm": "robust"}))
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    table = (tmp_path / "cm" / "summary.md").read_text()
    assert table.startswith("DEGENERATE benchmark") and "RF-only nearest centroid" in table
    assert "majority class" in table and "min classes" in table and "fit: train acc" in table
    for transfer in ("VS→TAS", "VS→STT", "TAS→VS", "TAS→STT", "STT→VS", "STT→TAS"):
        assert transfer in table
    assert "RadarPos + LoRA" in table and "Transformer (scratch)" in table and "STT→STT" in table
    results = [json.loads(x) for x in (tmp_path / "cm" / "results.jsonl").read_text().splitlines()]
    assert len(results) == 2 * 3 * 3  # arms × source modes × target modes (one seed)
    assert all(r["n_train"] == 8 and r["n_test"] == 7 and 0 <= r["train_accuracy"] <= 100 for r in results)
    lora = {r["trainable_params"] for r in results if r["arm"] == "RadarPos + LoRA"}
    full = {r["trainable_params"] for r in results if r["arm"] == "Transformer (scratch)"}
    assert max(lora) < min(full)  # only adapters + head train under LoRA


def test_crossmode_is_reproducible_and_ablation_loads(radar: dict[str, Path], tmp_path: Path) -> None:
    cfg = PretrainConfig(kind="pretrain", name="idx", model="test_radarpos", data=[str(radar["pool"])],
                         split="unlabelled", global_batch=4, epochs=1, warmup_epochs=0, lr=1e-4, device="cpu",
                         model_overrides={"pe": "index"})  # fmt: skip
    pretrain(cfg, tmp_path / "idx")
    arm = Arm(name="w/o TOA PE", model="test_radarpos_cls", checkpoint=str(tmp_path / "idx/checkpoints/last.pt"),
              finetune="lora", model_overrides={"pe": "index"})  # fmt: skip
    cm = CrossModeConfig(kind="crossmode", name="c", data=str(radar["downstream"]), arms=[arm], seeds=[2],
                         epochs=2, warmup_epochs=1, milestones=[1], batch_size=4, device="cpu",
                         loss="logit_adjusted", allow_degenerate=True)  # fmt: skip
    a = run_crossmode(cm, tmp_path / "a").rows
    b = run_crossmode(cm, tmp_path / "b").rows
    assert [(r["accuracy"], r["macro_f1"]) for r in a] == [(r["accuracy"], r["macro_f1"]) for r in b]


def test_recipes_and_bad_arm() -> None:
    for name in ("radarpos-lora.yaml", "radarpos-lora-cpu-small.yaml"):
        cfg = load_yaml(ROOT / "pipelines" / name)
        assert any(a.finetune == "lora" for a in cfg.arms) and any("TOA" in a.name for a in cfg.arms)
    with pytest.raises(ConfigError, match="finetune"):
        Arm(name="x", model="m", finetune="adapter")


def test_long_tail_losses() -> None:
    counts = class_counts([0] * 100 + [1] * 10 + [2], 4)
    assert counts.tolist() == [100, 10, 1, 1]  # a class absent from the train set counts as 1
    logits, labels = torch.randn(6, 4, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 1, 2, 3, 0, 1])
    adjusted = make_loss("logit_adjusted", counts, tau=1.0)(logits, labels)
    prior = torch.tensor(np.log(counts / counts.sum()), dtype=torch.float32)
    assert torch.allclose(adjusted, F.cross_entropy(logits + prior, labels))
    w = balanced_weights(counts, 0.999)
    assert np.isclose(float(w.mean()), 1.0) and w[0] < w[1] < w[2] == w[3]
    assert torch.allclose(make_loss("balanced", counts)(logits, labels), F.cross_entropy(logits, labels, weight=w))
    assert make_loss("ce", counts) is F.cross_entropy
    with pytest.raises(ConfigError, match="loss"):
        make_loss("focal", counts)
    with pytest.raises(ConfigError, match="loss"):
        Arm(name="x", model="m", loss="focal")


def _trains(rfs: list[float]) -> list[np.ndarray]:
    out = []
    for rf in rfs:
        p = np.zeros(5, PDW_DTYPE)
        p["rf"] = [rf, rf, rf, rf, 99999.0]  # one spurious pulse: the median ignores it
        out.append(p)
    return out


def test_reference_rules_and_degenerate_check() -> None:
    train, labels = _trains([1000, 1010, 2000, 2010, 3000]), np.array([0, 0, 1, 1, 2])
    assert rf_centroid_predict(train, labels, _trains([1004, 2990, 1990])).tolist() == [0, 2, 1]
    assert majority_predict(np.array([2, 1, 1, 2, 0]), 3).tolist() == [1, 1, 1]  # tie: the lower class
    modes = ("VS", "TAS", "STT")
    side = RawSide(train, labels)
    solved = reference_summary({m: side for m in modes}, {m: side for m in modes}, modes, 3)
    with pytest.raises(DegenerateBenchmarkError, match="100.00 %"):
        check_degenerate(solved, modes)
    assert check_degenerate(solved, modes, allow=True).startswith("DEGENERATE")
    shuffled = RawSide(train, np.array([1, 2, 0, 2, 1]))  # labels unrelated to RF
    fair = reference_summary({m: side for m in modes}, {m: shuffled for m in modes}, modes, 3)
    assert "not degenerate" in check_degenerate(fair, modes)
    assert RawSide.from_samples([{"iq.npy": np.zeros((2, 4)), "cls": 0}]) is None  # IQ: no RF rule


def test_robust_input_norm_uses_training_statistics_and_keeps_padding_zero() -> None:
    import torch

    from sardata.train.radar_norm import CLIP, robust_stats, standardise

    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 2, 16, generator=g) * torch.tensor([0.003, 0.05]).view(1, 2, 1) + 0.4
    x[0, 0, 3] = 0.99  # a spurious pulse far out in the fixed scale
    valid = torch.ones(6, 16, dtype=torch.bool)
    valid[:, 12:] = False
    med, scale = robust_stats(x, valid)
    out = standardise({"x": x, "valid": valid}, (med, scale))["x"]
    kept = out[:, 0][valid]
    assert abs(float(kept.median())) < 0.2 and 0.6 < float(kept.abs().median() * 1.4826) < 1.5  # unit scale
    assert float(out[0, 0, 3]) == CLIP and torch.all(out[:, :, 12:] == 0)
    assert standardise({"x": x, "valid": valid}, None)["x"] is x
