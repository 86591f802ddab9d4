"""Long-tail-aware fine-tuning losses for the cross-mode protocol (issue 16 point 5; ``radar.md`` §2.5, §6.1).

Each mode's train set is 100 : 50 : 25 : 15 : 10 : 5 : 1, so plain cross-entropy learns to predict the two or
three largest classes (the first study: in-mode macro-F1 ≈ 0.27). A recipe (or one arm) picks ``loss``:

* ``ce``: plain cross-entropy (the paper's protocol, kept for its Table 3 layout).
* ``logit_adjusted`` (Menon et al., "Long-tail learning via logit adjustment", ICLR 2021, their loss form):
  train on ``CE(f(x) + τ·log π, y)`` with π the class prior of the **training counts** and τ = 1 (the paper's
  default and Fisher-consistent choice for the balanced error); predict with the plain ``argmax f(x)``. It
  leaves the network and the optimiser untouched and has no hyper-parameter to tune at τ = 1, which is why the
  CPU-small recipe uses it for every learned arm.
* ``balanced``: class-balanced CE (Cui et al., CVPR 2019) with effective-number weights
  ``w_c ∝ (1 − β) / (1 − β^{n_c})``, β = 0.999 (``balanced_beta``), normalised to mean 1 over the classes; at
  n_c ≤ 100 this is within 5 % of inverse frequency. The batch loss is torch's weighted mean
  ``Σ_i w_{y_i}·CE_i / Σ_i w_{y_i}``, so the loss scale (and with it the effective learning rate) does not
  depend on the weights' normalisation.

Counts come from the labels of the source mode's train set only (the test set is never looked at). A class
absent from it is counted as 1, so its log prior stays finite and its weight bounded (the real sets have every
class; the tiny test fixtures may not).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from sardata.errors import ConfigError

LOSSES = ("ce", "balanced", "logit_adjusted")

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def class_counts(labels: Sequence[int] | np.ndarray | torch.Tensor, n_classes: int) -> np.ndarray:
    """(n_classes,) training counts, a missing class counted as 1 (see the module docstring)."""
    y = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels, dtype=np.int64).reshape(-1)
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise ConfigError(f"training labels outside 0..{n_classes - 1}: {sorted(set(y.tolist()))}")
    return np.maximum(np.bincount(y, minlength=n_classes), 1)


def log_prior(counts: np.ndarray) -> torch.Tensor:
    """(C,) ``log π_c = log(n_c / Σ n)``, float32."""
    c = np.asarray(counts, dtype=np.float64)
    return torch.from_numpy(np.log(c / c.sum())).float()


def balanced_weights(counts: np.ndarray, beta: float = 0.999) -> torch.Tensor:
    """(C,) effective-number weights ``(1 − β) / (1 − β^{n_c})``, mean 1; β = 0 is uniform, β → 1 inverse
    frequency."""
    if not 0.0 <= beta < 1.0:
        raise ConfigError(f"balanced_beta must be in [0, 1), got {beta}")
    n = np.asarray(counts, dtype=np.float64)
    w = (1.0 - beta) / (1.0 - beta**n)
    return torch.from_numpy(w / w.mean()).float()


def make_loss(kind: str, counts: np.ndarray, tau: float = 1.0, beta: float = 0.999) -> Loss:
    """``loss(logits, labels) -> scalar`` of one kind, its constants built once from the training ``counts``."""
    if kind == "ce":
        return F.cross_entropy
    if kind == "logit_adjusted":
        shift = tau * log_prior(counts)

        def adjusted(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            return F.cross_entropy(logits + shift.to(logits.device, logits.dtype), labels)

        return adjusted
    if kind == "balanced":
        weight = balanced_weights(counts, beta)

        def balanced(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            return F.cross_entropy(logits, labels, weight=weight.to(logits.device, logits.dtype))

        return balanced
    raise ConfigError(f"loss {kind!r}; choose one of {', '.join(LOSSES)}")
