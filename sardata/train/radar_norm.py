"""Robust per-dataset standardisation of radar inputs in the cross-mode trainer (issue 16, fit check).

Why: the spec's fixed physical ranges (``radar.md`` §3.3: RF over 500–18,000 MHz, log10 ΔTOA over [−6, −2])
squash what tells confusable emitters apart. The seven downstream emitters sit within ±60 MHz of one centre, a
spread of 0.003 in the fixed scale, and a from-scratch transformer trained on one mode's 206 trains never left the
majority class (train accuracy 53 %, test 18 % after 600 steps at lr 1e-3). A mean/std z-score is no cure: spurious
pulses across 0.5–18 GHz inflate the RF std to ≈1.4 GHz. The median and MAD of the *training* set's valid
positions, per channel, put the emitters' differences at unit scale. Values are clipped to ±5 MADs, so spurious
pulses saturate instead of dominating. Measured with the same model and budget: train 100 %, in-mode test 41 %
(RESULTS.md §2.3).

Here the statistics come from the whole source training set of each run (never the test side, computed on the
deterministic view). The encoders can also do it themselves (``input_norm="robust"`` on a radar model:
:class:`sardata.models.layers.inputs.RobustInputScale`, calibrated buffers that travel with the checkpoint), which
is what a pretrained encoder needs. ``input_norm="fixed"`` keeps the spec's default input.
"""

from __future__ import annotations

import torch

from sardata.models.layers.inputs import CLIP_MADS as CLIP
from sardata.models.layers.inputs import RADAR_INPUT_NORMS as INPUT_NORMS
from sardata.models.layers.inputs import robust_scale, robust_stats


def standardise(
    batch: dict[str, torch.Tensor], stats: tuple[torch.Tensor, torch.Tensor] | None
) -> dict[str, torch.Tensor]:
    """``batch`` with ``x`` robustly standardised (``stats`` None: unchanged); padded positions stay 0."""
    if stats is None:
        return batch
    return {**batch, "x": robust_scale(batch["x"], batch["valid"], *stats)}


__all__ = ["CLIP", "INPUT_NORMS", "robust_stats", "standardise"]
