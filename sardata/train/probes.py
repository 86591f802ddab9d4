"""Can the RadarPos pretext be learned from an input design? Probes on :class:`~sardata.stream.radar.RadarView`
outputs (issue 16, ``radar.md`` §3.4, §3.6).

Why: the position pretext asks a model to say where a patch sits; if a patch's content says nothing about its
index, no trunk can do better than ruling out the visible positions (the study's 0.020 masked top-1). Three
cheap checks tell an input design apart before any pretraining run:

* :func:`position_probe`: a small seeded classifier (logistic regression or a one-hidden-layer MLP, torch) that
  predicts a patch's index (0…63) from that patch's own C·8 values, split train/held-out **by sample** (a
  held-out train is never seen), scored by held-out top-1 (chance = 1/64).
* :func:`toa_index_cosine`: the mean cosine between the TOA PE and the index PE (sin-cos, D = 512, §3.7). At
  ≥ 0.9 the two encodings are nearly the same, so a "without TOA PE" ablation cannot differ (§3.6).
* :func:`pretext_top1`: a short pretraining run of a registered RadarPos model (default ``test_radarpos``,
  default constructor) on the views, scored by held-out masked top-1 (the ramp control of the tests, and the
  "pretext top-1" column of the ablation table).

Inputs for measurements: :func:`pool_samples` (simulated pretraining-pool trains over 300 types × 3 modes with
the simulator's defaults) and :func:`radchar_samples` (RadChar-format IQ frames); ``benchmarks/radar_probe.py``
builds the ablation table from them. A *view* here is one output dict of ``RadarView`` (``x``, ``tau``,
``patch_valid``, ``valid``); the probes read nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from sardata.errors import ConfigError
from sardata.train.common import seeded

PATCHES, PATCH, PE_DIM = 64, 8, 512
View = dict[str, Any]


# ----------------------------------------------------------------------------------------------- inputs
def pool_samples(n: int, seed: int = 0, n_types: int = 300, global_seed: int = 0) -> list[dict[str, Any]]:
    """``n`` pretraining-pool trains as loader-style sample dicts: (type, mode) drawn uniformly (seeded) from
    ``n_types × 3`` and ``sample_idx`` = draw number, using the simulator's default stop rule."""
    from sardata.sim.pdw import simulate

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        type_id, mode = int(rng.integers(n_types)), int(rng.integers(3))
        pdw, meta = simulate(global_seed, type_id, mode, i)
        out.append({"pdw.npy": pdw, "meta.json": meta, "__key__": f"pool-{type_id}-{mode}-{i}", "__index__": i,
                    "__epoch__": 0, "valid": True})  # fmt: skip
    return out


def radchar_samples(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` RadChar-format synthetic IQ frames (``radar.md`` §1.6) as sample dicts (IQ-only data)."""
    from sardata.sim.radchar_fixture import frames

    iq, labels = frames(n, seed=seed)
    return [{"iq.npy": np.stack([x.real, x.imag]).astype(np.float32), "cls": int(lab["signal_type"]),
             "__key__": f"radchar-{i}", "__index__": i, "__epoch__": 0, "valid": True}
            for i, (x, lab) in enumerate(zip(iq, labels, strict=True))]  # fmt: skip


def ramp_views(n: int, seed: int = 0, channels: int = 2, noise: float = 0.05) -> list[View]:
    """``n`` control views whose content encodes position: channel 0 is a ramp over the 512 positions (slope
    and offset drawn per view, so a patch's level alone is ambiguous but its level *and* slope are not), the
    other channels noise; τ = patch index. The pretext must learn this: it guards the loss, the labels and the
    optimiser (issue 16 test: ≥ 0.25 masked top-1 in 150 steps), independently of any radar input design."""
    rng = np.random.default_rng(seed)
    pos = np.arange(PATCHES * PATCH, dtype=np.float64) / (PATCHES * PATCH - 1)
    views = []
    for _ in range(n):
        x = rng.normal(0.5, noise, (channels, PATCHES * PATCH))
        x[0] = rng.uniform(0.0, 0.1) + rng.uniform(0.8, 0.9) * pos + rng.normal(0, noise / 5, pos.size)
        views.append({"x": x.astype(np.float32), "tau": np.arange(PATCHES, dtype=np.float32),
                      "valid": np.ones(PATCHES * PATCH, bool), "patch_valid": np.ones(PATCHES, bool)})  # fmt: skip
    return views


def apply_view(view: Callable[[dict[str, Any]], View], samples: Sequence[dict[str, Any]]) -> list[View]:
    """``[view(s) for s in samples]`` (a name for the benchmark's one-liners)."""
    return [view(s) for s in samples]


def batch(views: Sequence[View]) -> dict[str, torch.Tensor]:
    """Stack views into the radar batch the models take: ``x`` (N, C, 512), ``tau`` (N, 64), ``valid``."""
    return {
        "x": torch.from_numpy(np.stack([v["x"] for v in views]).astype(np.float32)),
        "tau": torch.from_numpy(np.stack([v["tau"] for v in views]).astype(np.float32)),
        "valid": torch.from_numpy(np.stack([v["valid"] for v in views]).astype(bool)),
    }


def patch_table(views: Sequence[View]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every non-padded patch as a row: features (n, C·8) channel-major as the model's tokens, its index
    (n,) and the sample it came from (n,)."""
    if not views:
        raise ConfigError("no views to probe")
    x = np.stack([v["x"] for v in views]).astype(np.float32)  # (N, C, 512)
    n, c, s = x.shape
    tokens = x.reshape(n, c, PATCHES, s // PATCHES).transpose(0, 2, 1, 3).reshape(n, PATCHES, -1)
    pv = np.stack([v["patch_valid"] for v in views]).astype(bool)  # (N, 64)
    rows, cols = np.nonzero(pv)
    return tokens[rows, cols], cols.astype(np.int64), rows.astype(np.int64)


# ----------------------------------------------------------------------------------------------- probes
@dataclass(frozen=True)
class ProbeResult:
    """Held-out top-1 and ±1-patch accuracy of the index-from-content probe; ``chance`` = 1/64."""

    top1: float
    top1_pm1: float
    chance: float
    n_train: int
    n_test: int


def _split(n_samples: int, holdout: float, seed: int) -> np.ndarray:
    """Boolean held-out mask over samples (seeded permutation, at least one sample on each side)."""
    if n_samples < 2:
        raise ConfigError(f"need at least 2 samples for a train/held-out split, got {n_samples}")
    k = min(max(1, round(holdout * n_samples)), n_samples - 1)
    test = np.zeros(n_samples, bool)
    test[np.random.default_rng(seed).permutation(n_samples)[:k]] = True
    return test


def position_probe(
    views: Sequence[View],
    *,
    hidden: int = 128,
    steps: int = 600,
    batch_size: int = 2048,
    lr: float = 3e-3,
    holdout: float = 0.25,
    seed: int = 0,
) -> ProbeResult:
    """Predict each patch's index from its own values; held-out top-1 over patches of unseen samples.

    ``hidden=0`` is multinomial logistic regression; otherwise Linear → ReLU → Linear. Features are
    standardised with the training rows' mean/std. AdamW on seeded minibatches; everything is a pure function
    of ``seed`` (the global torch RNG is left as it was).
    """
    feats, idx, owner = patch_table(views)
    test = _split(len(views), holdout, seed)[owner]
    xtr, ytr = torch.from_numpy(feats[~test]), torch.from_numpy(idx[~test])
    xte, yte = torch.from_numpy(feats[test]), torch.from_numpy(idx[test])
    mu, sd = xtr.mean(0), xtr.std(0).clamp_min(1e-6)
    xtr, xte = (xtr - mu) / sd, (xte - mu) / sd
    d = feats.shape[1]
    with seeded(seed):
        layers = [nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, PATCHES)] if hidden else [nn.Linear(d, PATCHES)]
        net = nn.Sequential(*layers)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        pick = torch.randint(len(xtr), (min(batch_size, len(xtr)),), generator=gen)
        loss = nn.functional.cross_entropy(net(xtr[pick]), ytr[pick])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        err = (net(xte).argmax(1) - yte).abs()
    return ProbeResult(top1=float((err == 0).float().mean()), top1_pm1=float((err <= 1).float().mean()),
                       chance=1 / PATCHES, n_train=len(xtr), n_test=len(xte))  # fmt: skip


def toa_index_cosine(views: Sequence[View], dim: int = PE_DIM) -> float:
    """Mean over samples of the mean over valid patches of cos(PE(τ_i), PE(i)), sin-cos PE of width ``dim``.

    Each sin/cos pair contributes cos((τ_i − i)·ω_m), so the cosine is ``(2/D)·Σ_m cos((τ_i − i)·ω_m)`` with
    ω_m = 10000^(−2m/D): exactly the cosine of ``sardata.models.layers.seq.toa_pos_embed`` rows. Per-sample
    averaging keeps a few long trains from dominating. 1.0 means the TOA PE is the index PE (IQ input).
    """
    freq = np.power(10000.0, -np.arange(0, dim, 2, dtype=np.float64) / dim)  # (D/2,)
    per_sample = []
    for v in views:
        pv = np.asarray(v["patch_valid"], bool)
        if not pv.any():
            continue
        delta = np.asarray(v["tau"], np.float64)[pv] - np.flatnonzero(pv)
        per_sample.append(float(np.cos(delta[:, None] * freq).mean()))
    if not per_sample:
        raise ConfigError("no view with a valid patch")
    return float(np.mean(per_sample))


@dataclass(frozen=True)
class PretextResult:
    """Held-out masked top-1 / ±1 after a short pretraining run, the last training loss and its top-1."""

    top1: float
    top1_pm1: float
    loss: float
    train_top1: float
    steps: int


def pretext_top1(
    train_views: Sequence[View],
    test_views: Sequence[View],
    *,
    model: str = "test_radarpos",
    overrides: dict[str, Any] | None = None,
    steps: int = 150,
    batch_size: int = 32,
    lr: float = 1e-3,
    seed: int = 0,
) -> PretextResult:
    """Pretrain ``model`` (registered name, its default constructor plus ``overrides``; ``in_chans`` follows
    the views) for ``steps`` AdamW steps at constant ``lr`` on seeded minibatches of ``train_views``, then score
    ``forward_loss``'s masked top-1 on ``test_views`` (eval mode, fixed mask generator)."""
    from sardata.models import create_model

    train, test = batch(train_views), batch(test_views)
    kw = {"in_chans": int(train["x"].shape[1]), **(overrides or {})}
    with seeded(seed):
        net = create_model(model, **kw)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.05)
    gen, mask_gen = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed + 1)
    n = len(train["x"])
    net.train()
    tail_loss, tail_top1 = [], []
    for step in range(steps):
        pick = torch.randint(n, (min(batch_size, n),), generator=gen)
        out = net.forward_loss({k: v[pick] for k, v in train.items()}, mask_gen)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        opt.step()
        if step >= steps - 10:
            tail_loss.append(float(out["loss"].detach()))
            tail_top1.append(float(out["top1"]))
    net.eval()
    top1, pm1, weight = 0.0, 0.0, 0
    with torch.no_grad():
        eval_gen = torch.Generator().manual_seed(seed + 2)
        for lo in range(0, len(test["x"]), 256):
            part = {k: v[lo : lo + 256] for k, v in test.items()}
            out = net.forward_loss(part, eval_gen)
            m = len(part["x"])
            top1, pm1, weight = top1 + float(out["top1"]) * m, pm1 + float(out["top1_pm1"]) * m, weight + m
    return PretextResult(top1=top1 / weight, top1_pm1=pm1 / weight, loss=float(np.mean(tail_loss or [np.nan])),
                         train_top1=float(np.mean(tail_top1 or [np.nan])), steps=steps)  # fmt: skip


__all__ = ["PretextResult", "ProbeResult", "apply_view", "batch", "patch_table", "pool_samples", "position_probe",
           "pretext_top1", "radchar_samples", "ramp_views", "toa_index_cosine"]  # fmt: skip
