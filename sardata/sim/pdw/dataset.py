"""Datasets of simulated trains (``radar.md`` §2.5): the pretraining pool and the cross-mode downstream set as
HDF5 files (the ``pdwsim`` source's layout), written in parallel, resumable, byte-reproducible."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sardata.errors import ConfigError
from sardata.sim.pdw.intercept import MAX_PULSES
from sardata.sim.pdw.receiver import ReceiverConfig
from sardata.sim.pdw.simulate import simulate
from sardata.sim.pdw.types import DOWNSTREAM_BASE, SIM_VERSION, downstream_type_ids, draw_type
from sardata.sources.pdwsim import H5_FORMAT, H5_FORMAT_VERSION, INDEX_DTYPE, MODES, PDW_DTYPE

# ----------------------------------------------------------------------------------------------- datasets
#: HDF5 layout written by this module and read by the ``pdwsim`` source.
LONGTAIL_COUNTS = (100, 50, 25, 15, 10, 5, 1)
TEST_TOTAL = 200
TEST_INDEX_BASE = 1_000_000  # test sample_idx = TEST_INDEX_BASE + j: independent of the train counts


@dataclass(frozen=True)
class SampleKey:
    """One row of a dataset plan: the simulator key plus where the sample goes."""

    type_id: int
    mode: int
    sample_idx: int
    split: str = "unlabelled"
    label: int = -1


@dataclass(frozen=True)
class FileJob:
    """One HDF5 file of a dataset: its rows, simulated and written by one worker."""

    rel: str
    keys: tuple[SampleKey, ...]
    global_seed: int
    confusable: bool = False
    n_pulses: int = 576
    t_max: float = 2.0
    classes: tuple[str, ...] = ()
    recipe: str = "{}"
    compression: str | None = None  # "gzip" (level 1, +shuffle) ≈ halves the files for ≈25 % more CPU
    stop: str = "intercept"  # or "detections" (n_pulses): sardata.sim.pdw.intercept
    max_pulses: int = MAX_PULSES


def pool_plan(n_types: int = 300, per_type_mode: int = 8, types_per_file: int = 10) -> list[list[SampleKey]]:
    """Pretraining pool ``n_types × 3 modes × per_type_mode`` as rows grouped into files of ``types_per_file``
    types (files are the unit of parallel writing and of ingest)."""
    if n_types < 1 or per_type_mode < 1 or types_per_file < 1 or n_types > DOWNSTREAM_BASE:
        raise ConfigError(f"pool: need 1 ≤ n_types ≤ {DOWNSTREAM_BASE}, per_type_mode ≥ 1, types_per_file ≥ 1")
    files = []
    for first in range(0, n_types, types_per_file):
        files.append([SampleKey(t, m, i) for t in range(first, min(n_types, first + types_per_file))
                      for m in range(3) for i in range(per_type_mode)])  # fmt: skip
    return files


def split_test_counts(n_classes: int, total: int = TEST_TOTAL, per_class: bool = False) -> list[int]:
    """Test samples per class and mode: ``total`` split as evenly as possible, earlier classes getting the
    remainder (200 over 7 → 29, 29, 29, 29, 28, 28, 28); ``per_class=True`` → ``total`` for every class."""
    if per_class:
        return [total] * n_classes
    q, r = divmod(total, n_classes)
    return [q + (c < r) for c in range(n_classes)]


def longtail_counts(global_seed: int, counts: tuple[int, ...] = LONGTAIL_COUNTS,
                    permute_seed: int | None = None) -> list[int]:  # fmt: skip
    """Train samples per class (same for every mode): class c gets ``counts[perm[c]]``; the permutation is the
    identity unless ``permute_seed`` is given (``SeedSequence([global_seed, permute_seed, 7])``)."""
    if permute_seed is None:
        return list(counts)
    perm = np.random.default_rng(np.random.SeedSequence([global_seed, permute_seed, len(counts)])).permutation(
        len(counts)
    )
    return [int(counts[p]) for p in perm]


def downstream_plan(global_seed: int = 0, counts: tuple[int, ...] = LONGTAIL_COUNTS, test_total: int = TEST_TOTAL,
                    test_per_class: bool = False, permute_seed: int | None = None) -> list[list[SampleKey]]:  # fmt: skip
    """Cross-mode downstream set (``radar.md`` §2.5.2): ``len(counts)`` unseen emitters × 3 modes, one file per
    mode holding that mode's long-tailed train rows and its test rows. Labels are emitter indices (``e<k>``)."""
    n = len(counts)
    ids = downstream_type_ids(n)
    train = longtail_counts(global_seed, counts, permute_seed)
    test = split_test_counts(n, test_total, test_per_class)
    files = []
    for m in range(3):
        rows = [SampleKey(ids[c], m, j, "train", c) for c in range(n) for j in range(train[c])]
        rows += [SampleKey(ids[c], m, TEST_INDEX_BASE + j, "test", c) for c in range(n) for j in range(test[c])]
        files.append(rows)
    return files


def simulate_key(job: FileJob, key: SampleKey, receiver: ReceiverConfig | None = None) -> tuple[np.ndarray, dict]:
    """Simulate one planned row (the regeneration entry point of integrity checks)."""
    return simulate(job.global_seed, key.type_id, key.mode, key.sample_idx, receiver=receiver,
                    n_pulses=job.n_pulses, t_max=job.t_max, confusable=job.confusable, stop=job.stop,
                    max_pulses=job.max_pulses)  # fmt: skip


def write_h5(path: str | Any, job: FileJob, trains: list[np.ndarray], metas: list[dict]) -> None:
    """Write one dataset file: a flat ``pulses`` table (chunked), ``offsets`` (n + 1), the ``index`` table and
    per-sample ``meta`` JSON strings. Temp file + atomic rename; no timestamps, so bytes are reproducible."""

    import h5py

    from sardata.atomic import atomic_path

    n = len(job.keys)
    lengths = np.fromiter((len(t) for t in trains), np.int64, n)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    pulses = np.concatenate(trains) if trains else np.empty(0, PDW_DTYPE)
    index = np.empty(n, INDEX_DTYPE)
    index["type_id"] = [k.type_id for k in job.keys]
    index["mode"] = [k.mode for k in job.keys]
    index["sample_idx"] = [k.sample_idx for k in job.keys]
    index["label"] = [k.label for k in job.keys]
    index["split"] = [k.split.encode() for k in job.keys]
    types = sorted({k.type_id for k in job.keys})
    comp = {"compression": job.compression, "shuffle": True} if job.compression else {}
    if job.compression == "gzip":
        comp["compression_opts"] = 1  # fast: the writer must keep up with the simulator
    with atomic_path(path) as tmp, h5py.File(tmp, "w", libver=("earliest", "v108"), track_order=False) as f:
        f.create_dataset("pulses", data=pulses, chunks=(max(1, min(len(pulses), 65536)),), track_times=False, **comp)
        f.create_dataset("offsets", data=offsets, track_times=False)
        f.create_dataset("index", data=index, track_times=False)
        f.create_dataset("meta", data=[json.dumps(m, sort_keys=True, separators=(",", ":"), allow_nan=False)
                                       for m in metas], dtype=h5py.string_dtype("utf-8"), track_times=False)  # fmt: skip
        f.attrs["format"] = H5_FORMAT
        f.attrs["format_version"] = H5_FORMAT_VERSION
        f.attrs["sim_version"] = SIM_VERSION
        f.attrs["global_seed"] = job.global_seed
        f.attrs["classes"] = json.dumps(list(job.classes))
        f.attrs["recipe"] = job.recipe
        f.attrs["types"] = json.dumps([draw_type(job.global_seed, t, job.confusable).to_dict() for t in types],
                                      sort_keys=True, separators=(",", ":"))  # fmt: skip


def _done(path: Any, job: FileJob) -> bool:
    """A finished file of the same job (same recipe, rows and keys) is kept: reruns resume. Files only ever
    appear complete (atomic rename), so a file that exists and matches is whole."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("recipe") != job.recipe or f.attrs.get("format") != H5_FORMAT:
                return False
            idx = f["index"][()]
    except (OSError, KeyError):
        return False
    keys = [(k.type_id, k.mode, k.sample_idx) for k in job.keys]
    return len(idx) == len(keys) and list(zip(idx["type_id"].tolist(), idx["mode"].tolist(),
                                              idx["sample_idx"].tolist(), strict=True)) == keys  # fmt: skip


def run_job(job: FileJob, out: str | Any) -> int:
    """Simulate every row of ``job`` and write ``out/job.rel`` (skipped when an identical finished file is
    there); returns the number of rows."""

    if (Path(out) / job.rel).exists() and _done(Path(out) / job.rel, job):
        return len(job.keys)
    trains, metas = [], []
    for key in job.keys:
        pdw, meta = simulate_key(job, key)
        meta["split"] = key.split
        trains.append(pdw)
        metas.append(meta)
    write_h5(Path(out) / job.rel, job, trains, metas)
    return len(job.keys)


def _run_job_star(args: tuple[FileJob, str]) -> int:
    return run_job(*args)


def run_jobs(jobs: list[FileJob], out: str | Any, workers: int = 2, progress: Any = None) -> int:
    """Write ``jobs`` on the local process pool (one file per task); ``progress(done_rows, total_rows)``."""
    from sardata.engines import map_units

    total = sum(len(j.keys) for j in jobs)
    done = 0
    for n in map_units(None, (), _run_job_star, [(j, str(out)) for j in jobs], workers):
        done += n
        if progress:
            progress(done, total)
    return done


def write_dataset(
    out: str | Any,
    *,
    kind: str = "pool",
    global_seed: int = 0,
    n_types: int = 300,
    per_type_mode: int = 8,
    types_per_file: int = 10,
    confusable: bool = True,
    test_per_class: bool = False,
    permute_seed: int | None = None,
    counts: tuple[int, ...] = LONGTAIL_COUNTS,
    test_total: int = TEST_TOTAL,
    n_pulses: int = 576,
    t_max: float = 2.0,
    stop: str = "intercept",
    max_pulses: int = MAX_PULSES,
    compression: str | None = None,
    workers: int = 2,
    progress: Any = None,
) -> dict[str, Any]:
    """Write the pretraining pool (``kind="pool"``: ``out/pool/pdw-pool-tNNNNNN.h5``) or the cross-mode downstream
    set (``kind="downstream"``: ``out/downstream/pdw-downstream-{vs,tas,stt}.h5``) plus ``out/<kind>-types.json``
    (the recipe and every type's drawn parameters). Ingest with ``sardata ingest pdwsim out/<kind>``.

    Files are uncompressed by default: the simulator is the bottleneck and ingest copies the trains anyway;
    ``compression="gzip"`` (level 1 + shuffle) makes files ≈2.3× smaller for ≈0.35 ms CPU per train. A rerun
    into the same directory keeps finished files of the same recipe (resume)."""
    from pathlib import Path

    from sardata.atomic import atomic_write_bytes

    recipe = {"kind": kind, "global_seed": global_seed, "stop": stop, "t_max_s": t_max, "sim_version": SIM_VERSION,
              **({"n_pulses": n_pulses} if stop == "detections" else {"max_pulses": max_pulses})}  # fmt: skip
    if kind == "pool":
        recipe.update(n_types=n_types, per_type_mode=per_type_mode, types_per_file=types_per_file)
        groups = pool_plan(n_types, per_type_mode, types_per_file)
        rels = [f"pool/pdw-pool-t{g[0].type_id:06d}.h5" for g in groups]
        classes: tuple[str, ...] = ()
        confusable = False
    elif kind == "downstream":
        recipe.update(confusable=confusable, test_per_class=test_per_class, permute_seed=permute_seed,
                      counts=list(counts), test_total=test_total)  # fmt: skip
        groups = downstream_plan(global_seed, counts, test_total, test_per_class, permute_seed)
        rels = [f"downstream/pdw-downstream-{MODES[m].lower()}.h5" for m in range(3)]
        classes = tuple(f"e{c}" for c in range(len(counts)))
    else:
        raise ConfigError(f"dataset kind {kind!r}; choose pool or downstream")
    rjson = json.dumps(recipe, sort_keys=True, separators=(",", ":"))
    jobs = [FileJob(rel, tuple(g), global_seed, confusable, n_pulses, t_max, classes, rjson, compression, stop,
                    max_pulses)
            for rel, g in zip(rels, groups, strict=True)]  # fmt: skip
    out = Path(out)
    n = run_jobs(jobs, out, workers, progress)
    type_ids = sorted({k.type_id for g in groups for k in g})
    doc = {"recipe": recipe, "classes": list(classes), "files": rels,
           "types": [draw_type(global_seed, t, confusable).to_dict() for t in type_ids]}  # fmt: skip
    atomic_write_bytes(out / f"{kind}-types.json", json.dumps(doc, sort_keys=True, indent=1).encode())
    return {"samples": n, "files": len(jobs), "root": str(out / kind), "recipe": recipe}
