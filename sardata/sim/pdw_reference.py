"""Trivial reference rules on raw PDW trains: what a cross-mode table must beat (``radar.md`` §2.5, issue 16).

Why here: the rules read the stored ``pdw.npy`` structured arrays (field ``rf`` in MHz), never a model's input
view, so a change of :class:`~sardata.stream.radar.RadarView` cannot move them. Pure numpy, deterministic.

* :func:`rf_centroid_predict`: the one-number rule. Each train is summarised by its **median RF** over its
  pulses (robust to the receiver's spurious pulses); each class's centroid is the mean of its training trains'
  medians; a test train takes the class of the nearest centroid (ties: the lower class index). On a set whose
  emitters sit in separate bands this rule alone scored 95.7 % mean transfer accuracy, so a table without it
  cannot tell generalisation from band lookup.
* :func:`majority_predict`: the training set's most frequent class for every test train (the floor any
  long-tail-collapsed model sits on).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def median_rf(pdws: Sequence[np.ndarray]) -> np.ndarray:
    """(N,) median RF (MHz) of each train; an empty train gives NaN (never nearest to any centroid)."""
    return np.array([float(np.median(p["rf"])) if len(p) else np.nan for p in pdws], dtype=np.float64)


def rf_centroid_predict(train: Sequence[np.ndarray], labels: np.ndarray, test: Sequence[np.ndarray]) -> np.ndarray:
    """Nearest class centroid on the median RF; classes absent from ``train`` are never predicted."""
    labels = np.asarray(labels, dtype=np.int64)
    x = median_rf(train)
    classes = np.unique(labels[~np.isnan(x)])
    if classes.size == 0:
        return majority_predict(labels, len(test))
    centroids = np.array([x[(labels == c) & ~np.isnan(x)].mean() for c in classes])
    dist = np.abs(median_rf(test)[:, None] - centroids[None, :])
    dist = np.where(np.isnan(dist), np.inf, dist)
    return classes[np.argmin(dist, axis=1)]


def majority_predict(labels: np.ndarray, n: int) -> np.ndarray:
    """The most frequent training class (ties: the lower index), ``n`` times."""
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size == 0:
        return np.zeros(n, np.int64)
    return np.full(n, int(np.bincount(labels).argmax()), np.int64)


__all__ = ["majority_predict", "median_rf", "rf_centroid_predict"]
