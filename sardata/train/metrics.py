"""Classification metrics and their aggregation over seeds, shared by the few-shot and cross-mode protocols."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def scores(pred: np.ndarray, true: np.ndarray, n_classes: int) -> dict[str, float]:
    """Accuracy (%) and macro-F1 over the classes present in ``true``."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (true, pred), 1)
    tp = np.diag(cm).astype(float)
    prec = np.divide(tp, cm.sum(0), out=np.zeros_like(tp), where=cm.sum(0) > 0)
    rec = np.divide(tp, cm.sum(1), out=np.zeros_like(tp), where=cm.sum(1) > 0)
    f1 = np.divide(2 * prec * rec, prec + rec, out=np.zeros_like(tp), where=(prec + rec) > 0)
    present = cm.sum(1) > 0
    return {"accuracy": float(100.0 * tp.sum() / max(cm.sum(), 1)), "macro_f1": float(f1[present].mean())}


def aggregate(rows: list[dict[str, Any]], by: Sequence[str] = ("dataset", "protocol", "shots")) -> list[dict[str, Any]]:
    """Mean ± std (ddof 0, the reference's convention, and ddof 1) and the 95 % t-interval of accuracy and
    macro-F1 per group of ``by`` columns."""
    from scipy import stats

    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r[b] for b in by), []).append(r)
    out = []
    for key, rs in sorted(groups.items()):
        row: dict[str, Any] = {**dict(zip(by, key, strict=True)), "runs": len(rs)}
        for metric in ("accuracy", "macro_f1"):
            v = np.array([r[metric] for r in rs], dtype=float)
            sd1 = float(v.std(ddof=1)) if len(v) > 1 else math.nan
            half = float(stats.t.ppf(0.975, len(v) - 1) * sd1 / math.sqrt(len(v))) if len(v) > 1 else math.nan
            row.update({f"{metric}_mean": float(v.mean()), f"{metric}_std": float(v.std(ddof=0)),
                        f"{metric}_std_ddof1": sd1, f"{metric}_ci95": half})  # fmt: skip
        out.append(row)
    return out
