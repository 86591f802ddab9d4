"""Which real pulses of a PDW train fill the 512 input positions (``radar.md`` §3.4, revised 2026-12-04).

Why this module: the earlier input (512 consecutive pulses at a random start of a near-stationary train) left a
patch's index unrecoverable from its content, so the position pretext could not be learned. The whole-intercept
rules spread the 512 positions over the *entire* train, so where a patch sits shows in what it holds (dwell
boundaries, interleaved track CPIs, scan gaps, the start and end of illumination). Values are never
interpolated: every position takes a real pulse, and a train of L ≥ 512 pulses yields 512 **distinct** pulses in
train order (strictly increasing indices).

Rules (``RadarView.resample``):

* ``"intercept_index"``: pulses at evenly spaced index quantiles, ``round(k·(L−1)/511)`` (first and last pulse
  included). Positions follow pulse count, so τ (§3.6) bends where the pulse rate changes.
* ``"intercept_toa"``: for each position the pulse nearest to an evenly spaced time ``T_0 + k·(T_{L−1}−T_0)/511``;
  then made strictly increasing (a target inside a gap would otherwise repeat the gap's edge pulse): each index
  is raised to at least its predecessor + 1 and capped so the remaining positions still find pulses. Positions
  follow time, so τ stays close to the index (the timing is in *which* pulses are taken, not in τ).
* ``"window"``: 512 consecutive pulses from ``start`` (the pre-2026-12-04 default; random start when training).

Training jitter (``jitter`` in ``[0, 1]``, intercept rules only): each fractional target moves by
``jitter · U[−½, ½)`` of a quantile step before rounding, so a training view takes a random pulse of each
quantile bin (stratified sampling) instead of always the same 512; evaluation views use no jitter.
"""

from __future__ import annotations

import numpy as np

RULES = ("intercept_index", "intercept_toa", "window")


def strictly_increasing(idx: np.ndarray, n_pulses: int) -> np.ndarray:
    """Smallest change making int indices strictly increasing and within ``[0, n_pulses)`` (needs
    ``len(idx) ≤ n_pulses``): raise each to ≥ predecessor + 1, then cap index k at ``n_pulses − len + k``."""
    k = np.arange(len(idx))
    raised = k + np.maximum.accumulate(np.clip(idx, 0, n_pulses - 1) - k)
    return np.minimum(raised, n_pulses - len(idx) + k)


def intercept_indices(
    toa: np.ndarray, length: int, rule: str, rng: np.random.Generator | None = None, jitter: float = 1.0
) -> np.ndarray:
    """``length`` strictly increasing pulse indices spread over the whole train (``len(toa) ≥ length``).

    ``rng`` (training) jitters each target inside its quantile step; ``None`` gives the deterministic quantiles.
    """
    n = len(toa)
    k = np.arange(length, dtype=np.float64)
    if rng is not None and jitter > 0:
        k = np.clip(k + jitter * (rng.random(length) - 0.5), 0.0, length - 1.0)
    if rule == "intercept_index":
        return strictly_increasing(np.rint(k * (n - 1) / (length - 1)).astype(np.int64), n)
    if rule != "intercept_toa":
        raise ValueError(f"not an intercept rule: {rule!r}")
    t = np.asarray(toa, np.float64)
    target = t[0] + k * (t[-1] - t[0]) / (length - 1)
    right = np.clip(np.searchsorted(t, target), 1, n - 1)
    nearest = np.where(target - t[right - 1] <= t[right] - target, right - 1, right)
    return strictly_increasing(nearest.astype(np.int64), n)


def window_start(n_pulses: int, length: int, rng: np.random.Generator | None) -> int:
    """Start of a consecutive window: uniform over the train with ``rng`` (training), else 0."""
    if n_pulses <= length or rng is None:
        return 0
    return int(rng.integers(0, n_pulses - length + 1))


def fill_positions(n_selected: int, length: int, short: str) -> tuple[np.ndarray, np.ndarray]:
    """Per position, the index into the selected pulses, and the valid mask.

    ``n_selected ≥ length``: one pulse per position. Fewer (a short train): ``short="pad"`` puts them first and
    zero-pads (valid False), ``short="nearest"`` repeats them by index to fill every position (all valid).
    """
    pos = np.arange(length)
    if n_selected >= length:
        return pos, np.ones(length, bool)
    if short == "nearest" and n_selected > 0:
        return (pos * n_selected) // length, np.ones(length, bool)
    return np.minimum(pos, max(n_selected - 1, 0)), pos < n_selected


__all__ = ["RULES", "fill_positions", "intercept_indices", "strictly_increasing", "window_start"]
