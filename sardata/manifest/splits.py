"""Split and view builders (``sar-jepa.md`` §3, issue #5): deterministic functions of the manifest and seeds.

Every random choice is a permutation drawn from ``np.random.default_rng(SeedSequence([dataset_id, seed,
class_id + 1]))`` over the class's keys **sorted by key**, so results are identical on every machine and never
depend on row order. ``dataset_id`` is the first 8 hex digits of sha256(source id) as an integer.

* :func:`assign_splits` — samples in ``pool`` go to test / val / train per class: the first ``round(r·n)`` of the
  permutation are test, the next are val, the rest train (SAR-ACD: ``test_ratio=0.9``). Official splits stay.
* :func:`fewshot_columns` — ``split_fewshot_k<K>_s<S>``: per seed and class, the train pool is permuted,
  ``round(0.2·n)`` form the validation pool, the rest the few-shot pool; the first ``K`` of the few-shot pool are
  ``train`` (all if fewer) and the first ``min(K, 10)`` of the validation pool ``val``; others null. Prefixes of one
  permutation, so K=10 ⊂ K=20 ⊂ K=40 for a seed, and test is never touched.
* :func:`long_tail_column` — ``split_longtail``: the first ``counts[label]`` of each class's train pool.
* :func:`radarpos_column` — ``split_radarpos20k`` (``radar.md`` §1.3): the first ``per_class`` (4,000) of each
  class's train-pool permutation are ``train``, others null — RadarPos's "RadChar, 5 types, 20,000".
* :func:`holdout_column` — ``split_holdout_<col>_<value>``: ``test`` where the column equals the value, else
  ``train`` (train on one mode/sensor, test on another).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from sardata.errors import ConfigError

VAL_FRACTION = 0.2
MAX_VAL = 10


def dataset_id(source: str) -> int:
    return int(hashlib.sha256(source.encode()).hexdigest()[:8], 16)


def _permuted(keys: list[str], source: str, seed: int, label: int | None) -> list[str]:
    keys = sorted(keys)
    class_id = -1 if label is None or pd.isna(label) else int(label)
    rng = np.random.default_rng(np.random.SeedSequence([dataset_id(source), seed, class_id + 1]))
    return [keys[i] for i in rng.permutation(len(keys))]


def _groups(df: pd.DataFrame, mask: pd.Series) -> list[tuple[str, int | None, list[str]]]:
    sub = df[mask]
    out = []
    for (source, label), g in sub.groupby(["source", sub["label"].fillna(-1)], sort=True):
        out.append((source, None if label == -1 else int(label), g["key"].tolist()))
    return out


def assign_splits(df: pd.DataFrame, test_ratio: float = 0.0, val_ratio: float = 0.0, seed: int = 0) -> pd.Series:
    """Return the ``split`` column with ``pool`` samples assigned to test / val / train."""
    if not (0 <= test_ratio <= 1 and 0 <= val_ratio <= 1 and test_ratio + val_ratio <= 1):
        raise ConfigError(f"split ratios test={test_ratio} val={val_ratio} must be in [0, 1] and sum to <= 1")
    split = df["split"].copy()
    for source, label, keys in _groups(df, df["split"] == "pool"):
        perm = _permuted(keys, source, seed, label)
        n_test, n_val = round(test_ratio * len(perm)), round(val_ratio * len(perm))
        names = {k: "test" for k in perm[:n_test]} | {k: "val" for k in perm[n_test : n_test + n_val]}
        idx = df.index[df["key"].isin(keys)]
        split.loc[idx] = [names.get(k, "train") for k in df.loc[idx, "key"]]
    return split


def fewshot_columns(df: pd.DataFrame, shots: list[int], seeds: list[int]) -> dict[str, pd.Series]:
    """``split_fewshot_k<K>_s<S>`` columns (``train`` / ``val`` / None) drawn from the train split only."""
    cols: dict[str, pd.Series] = {}
    groups = _groups(df, df["split"] == "train")
    for s in seeds:
        orders = {}
        for source, label, keys in groups:
            perm = _permuted(keys, source, s, label)
            n_val = round(VAL_FRACTION * len(perm))
            orders[(source, label)] = (perm[:n_val], perm[n_val:])
        for k in shots:
            member: dict[str, str] = {}
            for val_pool, shot_pool in orders.values():
                member.update({key: "val" for key in val_pool[: min(k, MAX_VAL)]})
                member.update({key: "train" for key in shot_pool[:k]})
            cols[f"split_fewshot_k{k}_s{s}"] = df["key"].map(member)
    return cols


def long_tail_column(df: pd.DataFrame, counts: list[int], seed: int = 0) -> pd.Series:
    """``split_longtail``: ``counts[label]`` samples per class from the train split (fewer if unavailable)."""
    member: dict[str, str] = {}
    for source, label, keys in _groups(df, df["split"] == "train"):
        if label is None or label >= len(counts):
            continue
        member.update({k: "train" for k in _permuted(keys, source, seed, label)[: counts[label]]})
    return df["key"].map(member)


RADARPOS_PER_CLASS = 4000


def radarpos_column(df: pd.DataFrame, per_class: int = RADARPOS_PER_CLASS, seed: int = 0) -> pd.Series:
    """``split_radarpos20k``: a class-stratified seeded subset of the train split, ``per_class`` keys per class
    (all of a class that has fewer). The index list lives in the manifest as this column, so the subset never
    depends on re-drawing at load time."""
    if per_class < 1:
        raise ConfigError(f"radarpos per_class must be positive, got {per_class}")
    member: dict[str, str] = {}
    for source, label, keys in _groups(df, df["split"] == "train"):
        if label is None:
            continue
        member.update({k: "train" for k in _permuted(keys, source, seed, label)[:per_class]})
    return df["key"].map(member)


def holdout_column(df: pd.DataFrame, spec: str) -> tuple[str, pd.Series]:
    """``column=value`` → (column name, series of ``test`` where equal else ``train``)."""
    col, sep, value = spec.partition("=")
    if not sep or col not in df.columns:
        raise ConfigError(f"--holdout {spec!r}: expected COLUMN=VALUE with a manifest column (e.g. sensor=GF-3)")
    name = "split_holdout_" + "".join(c if c.isalnum() else "_" for c in f"{col}_{value}".lower())
    return name, df[col].astype(str).eq(value).map({True: "test", False: "train"})
