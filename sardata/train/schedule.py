"""Learning-rate schedules as pure functions of the global step (or epoch), never of a loader's length at run
time: resuming, changing the GPU count at a fixed global batch or capping a run with ``stop_at_step`` cannot move
the curve."""

from __future__ import annotations

import math


def warmup_cosine(step: int, total_steps: int, warmup_steps: int, lr: float, min_lr: float = 0.0) -> float:
    """MAE-style schedule (sar-jepa.md §2): linear warm-up from 0 to ``lr`` over ``warmup_steps``, then a
    half-cosine from ``lr`` to ``min_lr`` at ``total_steps``. Fractional epochs are implied by the step counts."""
    if step < warmup_steps:
        return lr * step / warmup_steps
    if total_steps <= warmup_steps:
        return lr
    t = min(1.0, (step - warmup_steps) / (total_steps - warmup_steps))
    return min_lr + (lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * t))


def fewshot_lr(epoch: int, lr: float = 1e-3, warmup_lr: float = 1e-5, warmup_epochs: int = 2,
               epochs: int = 40) -> float:  # fmt: skip
    """Few-shot protocol (sar-jepa.md §3.7): constant ``warmup_lr`` for the first epochs, then a per-epoch cosine
    ``lr·½(1 + cos(π(e − warmup)/epochs))`` — which never reaches 0 inside the run (≈1.4e-5 at epoch 39)."""
    if epoch < warmup_epochs:
        return warmup_lr
    return lr * 0.5 * (1.0 + math.cos(math.pi * (epoch - warmup_epochs) / epochs))


def warmup_step_decay(epoch: float, lr: float, warmup_epochs: float = 10, milestones: tuple[int, ...] = (25, 40),
                      gamma: float = 0.1) -> float:  # fmt: skip
    """RadarPos LoRA schedule (radar.md §4.3): linear warm-up over ``warmup_epochs``, then ×``gamma`` at each
    milestone epoch."""
    if epoch < warmup_epochs:
        return lr * (epoch + 1) / warmup_epochs
    return lr * gamma ** sum(epoch >= m for m in milestones)
