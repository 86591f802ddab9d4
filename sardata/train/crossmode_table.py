"""The cross-mode table (``summary.csv`` / ``summary.md``) with its reference rows and collapse diagnostics.

Every table carries two reference rows computed from the same raw PDW trains the arms train and test on
(``radar.md`` §2.5, issue 16 point 3): **RF-only nearest centroid** (median RF of a train, centroids from the
source mode's train set) and **majority class** (the source train set's most frequent class). Their predictions
come from :mod:`sardata.sim.pdw_reference` (pure numpy on the stored ``pdw.npy`` arrays, so the rule never goes
through the model's input view); accuracy and macro-F1 are scored here with :func:`sardata.train.metrics.scores`,
exactly as the arms are, so the rows are comparable cell by cell.

A set on which the RF-only rule exceeds ``degenerate_above`` (65 % by default, spec value; the paper's best
method scores ≈ 62 %) mean transfer accuracy is degenerate: one number solves it, so the table would not measure
cross-mode generalisation. :func:`check_degenerate` raises :class:`DegenerateBenchmarkError` (exit 1 in the CLI)
unless the recipe sets ``allow_degenerate: true``, in which case the table says so in its first line.

Collapse diagnostics (issue 16 point 5: in-mode macro-F1 ≥ 0.40 and at least 6 of the 7 classes predicted):
every result row records ``classes_predicted``, the number of distinct classes the run predicts on its test set;
the summary keeps its minimum and mean over seeds, and the in-mode table shows, per arm, the mean in-mode macro-F1
over modes and seeds, the minimum classes predicted over every in-mode run (the strict reading: one collapsed
seed fails), and whether both hold (``n_classes − 1`` classes, i.e. 6 of 7).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sardata.errors import ConfigError
from sardata.train.metrics import scores

RF_ROW = "RF-only nearest centroid"
MAJORITY_ROW = "majority class"
REFERENCES = (RF_ROW, MAJORITY_ROW)
#: spec threshold (radar.md §2.5), in percent
DEGENERATE_ABOVE = 65.0
#: no-collapse gate of issue 16 point 5
GATE_MACRO_F1 = 0.40


class DegenerateBenchmarkError(ConfigError):
    """The RF-only reference solves the cross-mode set: the benchmark cannot rank methods."""


@dataclass(frozen=True)
class RawSide:
    """The raw PDW trains (structured ``pdw.npy`` arrays) and integer labels of one (mode, split) side."""

    pdws: list[np.ndarray]
    labels: np.ndarray

    @classmethod
    def from_samples(cls, samples: Sequence[dict[str, Any]]) -> RawSide | None:
        """From loader samples; ``None`` when a sample has no ``pdw.npy`` (IQ data: no RF reference exists)."""
        if not samples or any("pdw.npy" not in s or "cls" not in s for s in samples):
            return None
        return cls([np.asarray(s["pdw.npy"]) for s in samples], np.array([int(s["cls"]) for s in samples]))


def transfer_pairs(modes: Sequence[str]) -> list[tuple[str, str]]:
    """The cross-mode pairs in table order (VS→TAS, VS→STT, TAS→VS, …)."""
    return [(a, b) for a in modes for b in modes if a != b]


def _predict(name: str, train: RawSide, test: RawSide) -> np.ndarray:
    from sardata.sim import pdw_reference

    if name == RF_ROW:
        return np.asarray(pdw_reference.rf_centroid_predict(train.pdws, train.labels, test.pdws))
    return np.asarray(pdw_reference.majority_predict(train.labels, len(test.labels)))


def reference_summary(train: dict[str, RawSide], test: dict[str, RawSide], modes: Sequence[str],
                      n_classes: int) -> list[dict[str, Any]]:  # fmt: skip
    """Summary rows (the arms' columns; deterministic, so ``runs`` 1 and std 0) of both reference rules on every
    (source, target) pair, in-mode diagonal included."""
    rows = []
    for name in REFERENCES:
        for src in modes:
            for dst in modes:
                pred = _predict(name, train[src], test[dst])
                s = scores(pred, test[dst].labels, n_classes)
                k = int(len(np.unique(pred)))
                row: dict[str, Any] = {"arm": name, "src": src, "dst": dst, "runs": 1, "kind": "reference",
                                       "loss": "", "classes_predicted_min": k, "classes_predicted_mean": float(k)}  # fmt: skip
                for m in ("accuracy", "macro_f1"):
                    row.update({f"{m}_mean": s[m], f"{m}_std": 0.0, f"{m}_std_ddof1": float("nan"),
                                f"{m}_ci95": float("nan")})  # fmt: skip
                rows.append(row)
    return rows


def mean_transfer(summary: list[dict[str, Any]], arm: str, modes: Sequence[str], metric: str = "accuracy") -> float:
    """Mean over the 6 transfers of one row's ``<metric>_mean``."""
    cell = {(r["src"], r["dst"]): r for r in summary if r["arm"] == arm}
    return float(np.mean([cell[p][f"{metric}_mean"] for p in transfer_pairs(modes)]))


def check_degenerate(references: list[dict[str, Any]], modes: Sequence[str], threshold: float = DEGENERATE_ABOVE,
                     allow: bool = False) -> str:  # fmt: skip
    """Raise :class:`DegenerateBenchmarkError` when the RF-only rule's mean transfer accuracy exceeds
    ``threshold`` % (unless ``allow``); returns the table's verdict line either way."""
    acc = mean_transfer(references, RF_ROW, modes)
    score = f"the RF-only nearest-centroid rule scores {acc:.2f} % mean transfer accuracy"
    if acc <= threshold:
        return f"Reference check: {score} (≤ {threshold:g} %: not degenerate)"
    if allow:
        return f"DEGENERATE benchmark, run with allow_degenerate: true: {score} (> {threshold:g} %)"
    raise DegenerateBenchmarkError(
        f"benchmark is degenerate: {score} (> {threshold:g} %), so one number solves this set; draw the "
        "downstream set with confusable emitters (`sardata sim pdw --downstream`, the default) or set "
        "allow_degenerate: true (-s allow_degenerate=true) for an experiment"
    )


def classes_summary(rows: list[dict[str, Any]]) -> dict[tuple[str, str, str], tuple[int, float]]:
    """(arm, src, dst) → (min, mean) of ``classes_predicted`` over seeds."""
    groups: dict[tuple[str, str, str], list[int]] = {}
    for r in rows:
        groups.setdefault((r["arm"], r["src"], r["dst"]), []).append(int(r["classes_predicted"]))
    return {k: (min(v), float(np.mean(v))) for k, v in groups.items()}


def gate(cell: dict[tuple[str, str, str], dict[str, Any]], arm: str, modes: Sequence[str],
         n_classes: int) -> tuple[float, int, bool]:  # fmt: skip
    """(mean in-mode macro-F1, min classes predicted in-mode, passes the no-collapse gate)."""
    diag = [cell[(arm, m, m)] for m in modes]
    f1 = float(np.mean([r["macro_f1_mean"] for r in diag]))
    k = min(int(r["classes_predicted_min"]) for r in diag)
    return f1, k, f1 >= GATE_MACRO_F1 and k >= n_classes - 1


def write_crossmode_summary(out: Path, summary: list[dict[str, Any]], arms: Sequence[str],
                            modes: Sequence[str], seeds: Sequence[int], n_classes: int,
                            verdict: str = "") -> None:  # fmt: skip
    """``summary.csv`` (every row, arms and references) and ``summary.md``: Table 3 layout (accuracy % / macro-F1,
    mean ± std over seeds, ddof 0), the reference rows under a rule, then the in-mode diagonal with the collapse
    diagnostics. ``arms`` gives the arms' row order; reference rows are shown when present in ``summary``."""
    import pandas as pd

    pd.DataFrame(summary).to_csv(out / "summary.csv", index=False)
    cell = {(r["arm"], r["src"], r["dst"]): r for r in summary}
    refs = [n for n in REFERENCES if (n, modes[0], modes[0]) in cell]
    loss = {r["arm"]: r.get("loss", "") for r in summary}
    pairs = transfer_pairs(modes)

    def label(name: str) -> str:
        return f"{name} ({loss[name]})" if loss.get(name) else name

    lines = [verdict, ""] if verdict else []
    lines += [f"Cross-mode: accuracy % / macro-F1, mean ± std over seeds {list(seeds)}; arm losses in brackets", "",
              "| method | " + " | ".join(f"{a}→{b}" for a, b in pairs) + " | mean of transfers |",
              "|" + " --- |" * (len(pairs) + 2)]  # fmt: skip
    for i, name in enumerate([*arms, *refs]):
        if i == len(arms) and refs and arms:
            lines.append("| *reference rules (same data)* |" + " |" * (len(pairs) + 1))
        cells = [f"{cell[(name, a, b)]['accuracy_mean']:.2f}±{cell[(name, a, b)]['accuracy_std']:.2f} / "
                 f"{cell[(name, a, b)]['macro_f1_mean']:.4f}" for a, b in pairs]  # fmt: skip
        mean = f"{mean_transfer(summary, name, modes):.2f} / {mean_transfer(summary, name, modes, 'macro_f1'):.4f}"
        lines.append(f"| {label(name)} | " + " | ".join(cells) + f" | {mean} |")
    lines += ["", f"In-mode sanity diagonal (train and test in the same mode): accuracy % / macro-F1 / classes "
              f"predicted (min over seeds, of {n_classes}); gate: mean in-mode macro-F1 ≥ {GATE_MACRO_F1:.2f} and "
              f"every in-mode run predicts ≥ {n_classes - 1} classes", "",
              "| method | " + " | ".join(f"{m}→{m}" for m in modes)
              + " | mean macro-F1 | min classes | gate | fit: train acc % (min over modes) |",
              "|" + " --- |" * (len(modes) + 5)]  # fmt: skip
    for name in [*arms, *refs]:
        diag = [cell[(name, m, m)] for m in modes]
        f1, k, ok = gate(cell, name, modes, n_classes)
        fit = min((r.get("train_accuracy_mean", float("nan")) for r in diag), default=float("nan"))
        lines.append(f"| {label(name)} | " + " | ".join(
            f"{r['accuracy_mean']:.2f} / {r['macro_f1_mean']:.4f} / {r['classes_predicted_min']}" for r in diag)
            + f" | {f1:.4f} | {k} | {'—' if name in REFERENCES else 'pass' if ok else 'FAIL'} | "
            + ("—" if name in REFERENCES else f"{fit:.1f}") + " |")  # fmt: skip
    (out / "summary.md").write_text("\n".join(lines) + "\n")
