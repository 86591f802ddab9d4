"""``build-shards``: ingest outputs → WebDataset shards + Parquet index + ``dataset.json`` (issue #5).

Steps: read and validate the ingest manifests → select (``where``) → refuse mixed radiometry/scale → assign
splits and views → compute each sample's output fields and their exact sizes → plan shards (manifest only) →
write shards in parallel (one worker per shard, temp + fsync + rename, then a sidecar in ``_work/`` as commit
marker) → merge the index → ``dataset.json`` last.

A rerun after ``kill -9`` reuses every shard whose sidecar matches its plan and whose bytes still hash to the
recorded sha256, rebuilds the rest, and ends byte-identical to an uninterrupted run (shards and tables).

Image policies (``size_policy``): ``keep`` (native size), ``resize`` (to size × size, bicubic), ``center-crop``
(size × size around the centre, zero padding where the image is smaller), ``resize-crop`` (shorter side to size,
bicubic, then centre crop — the SAR-JEPA ``gr_view``); resampled float images are clipped to their input's
range (bicubic ringing never invents values). ``cplx`` and geometric fields (boxes, masks) are only kept with
``keep``. ``--channel`` picks one channel (index or polarisation name) and ``--normalise unit-magnitude`` converts
every source to float32 magnitude in [0, 1] (:mod:`sardata.radiometry`, reversible through ``x_norm_scale``), which
also allows mixing radiometries. GR targets are computed on the stored image in [0, 1]: the normalised image,
else 8-bit data / 255 and radiometric data / its own maximum (recorded in ``dataset.json``).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import multiprocessing as mp
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

import sardata
from sardata.atomic import atomic_path, remove_stale_temps, sha256_file
from sardata.config import config_sha256
from sardata.engines import check_engine
from sardata.errors import ConfigError, ShardIntegrityError
from sardata.manifest import splits as splitlib
from sardata.manifest.io import CARD_NAME, read_card, read_table, write_card, write_table
from sardata.manifest.schema import SAMPLES, SCHEMA_VERSION, SHARDS, SOURCES
from sardata.outlock import output_lock
from sardata.shards.codecs import FIELDS, encode_json, encode_npy, npy_nbytes
from sardata.shards.plan import ShardPlan, plan_shards
from sardata.shards.writer import write_shard
from sardata.store import load_arrays, stored_sizes

SIZE_POLICIES = ("keep", "resize", "center-crop", "resize-crop")
WORK = "_work"


@dataclass(frozen=True)
class BuildConfig:
    """Everything that determines the bytes of a build (hashed into ``config_sha256``)."""

    where: str | None = None
    size_policy: str = "keep"
    size: int | None = None
    targets: tuple[str, ...] = ()
    gr_codec: str = "float32"
    gr_radii: tuple[int, ...] | None = None  # None: the paper's radii scaled to `size` (keep: the paper's)
    test_ratio: float = 0.0
    val_ratio: float = 0.0
    split_seed: int = 0
    shots: tuple[int, ...] = ()
    seeds: tuple[int, ...] = ()
    long_tail: tuple[int, ...] = ()
    long_tail_seed: int = 0
    holdout: str | None = None
    max_shard_bytes: int = 256 << 20
    max_shard_samples: int | None = None
    shuffle_seed: int | None = None
    normalise: str | None = None  # None | "unit-magnitude" (sardata.radiometry)
    channel: str | None = None  # channel index or polarisation name (from the ``pol`` column) for a 1-channel view
    radarpos20k: bool = False  # split_radarpos20k view: 4,000 per class, seeded (radar.md §1.3)
    radarpos_seed: int = 0

    def __post_init__(self) -> None:
        from sardata.features.grcodec import GR_CODECS, check_radii

        if self.size_policy not in SIZE_POLICIES:
            raise ConfigError(f"size policy {self.size_policy!r}; choose from {SIZE_POLICIES}")
        if self.size_policy != "keep" and not self.size:
            raise ConfigError(f"size policy {self.size_policy} needs --size")
        if set(self.targets) - {"gr"}:
            raise ConfigError(f"unknown targets {sorted(set(self.targets) - {'gr'})}; available: gr")
        if self.gr_codec not in GR_CODECS:
            raise ConfigError(f"GR codec {self.gr_codec!r}; choose from {sorted(GR_CODECS)}")
        if self.gr_radii is not None:
            object.__setattr__(self, "gr_radii", check_radii(self.gr_radii))
        if self.normalise not in (None, "unit-magnitude"):
            raise ConfigError(f"normalise {self.normalise!r}; choose unit-magnitude (or leave unset)")
        if self.max_shard_bytes < 10240:
            raise ConfigError("max shard size must be at least 10240 bytes")

    @property
    def resolved_gr_radii(self) -> tuple[int, ...]:
        """The radii GR targets are computed with: ``gr_radii``, else the paper's scaled to the output ``size``
        (``grcodec.scaled_radii``); with ``size_policy="keep"`` sizes vary per sample, so the paper's radii."""
        from sardata.features.grcodec import GR_RADII, scaled_radii

        if self.gr_radii is not None:
            return self.gr_radii
        return GR_RADII if self.size_policy == "keep" else scaled_radii(self.size)


@dataclass
class BuildResult:
    out: Path
    samples: int = 0
    shards: int = 0
    bytes: int = 0
    reused_shards: int = 0
    splits: dict[str, int] = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------- inputs
def _load_inputs(ingest_dirs: list[Path]) -> tuple[pd.DataFrame, pa.Table, list[dict], dict[str, list[str]]]:
    frames, sources, identities, class_maps = [], [], [], {}
    for d in ingest_dirs:
        card = read_card(d)
        samples = read_table(d / "samples.parquet", "samples").to_pandas()
        samples["ingest_root"] = str(d)
        frames.append(samples)
        sources.append(read_table(d / "sources.parquet", "sources"))
        identities += [{**src, "ingest_config_sha256": card["config_sha256"],
                        "samples_sha256": card["tables"]["samples"]["sha256"]} for src in card["sources"]]  # fmt: skip
        for src, names in card.get("class_maps", {}).items():
            if class_maps.setdefault(src, names) != names:
                raise ConfigError(f"{d}: class map of {src} differs from another input; ingest with the same options")
    df = pd.concat(frames, ignore_index=True)
    dup = df["key"][df["key"].duplicated()]
    if len(dup):
        raise ConfigError(f"key {dup.iloc[0]!r} occurs in more than one input; build each source once")
    return df, pa.concat_tables(sources), identities, class_maps


def _select(df: pd.DataFrame, cfg: BuildConfig, dirs: list[Path]) -> pd.DataFrame:
    if cfg.where:
        try:
            from sardata.manifest.where import filter_frame

            df = filter_frame(df, cfg.where)  # no code runs: sardata.manifest.where, not DataFrame.query
        except Exception as exc:  # pandas raises many types for a bad expression
            raise ConfigError(f"--where {cfg.where!r}: {exc} (columns: {', '.join(SAMPLES.names)})") from exc
    if df.empty:
        inputs = ", ".join(str(d / "samples.parquet") for d in dirs)
        raise ConfigError(f"the selection is empty ({inputs}); check --where and that the inputs hold ok samples")
    scales = sorted({f"{r}/{s}" for r, s in zip(df["radiometry"], df["scale"], strict=True)})
    if len(scales) > 1 and cfg.normalise is None:
        raise ConfigError(
            f"the selection mixes radiometry/scale {scales}; select one with --where (e.g. \"scale == 'uint8'\") "
            "or convert them with --normalise unit-magnitude"
        )
    return df.sort_values("key").reset_index(drop=True)


def _add_splits(df: pd.DataFrame, cfg: BuildConfig) -> pd.DataFrame:
    df = df.copy()
    df["split"] = splitlib.assign_splits(df, cfg.test_ratio, cfg.val_ratio, cfg.split_seed)
    for name, col in splitlib.fewshot_columns(df, list(cfg.shots), list(cfg.seeds)).items():
        df[name] = col
    if cfg.long_tail:
        df["split_longtail"] = splitlib.long_tail_column(df, list(cfg.long_tail), cfg.long_tail_seed)
    if cfg.radarpos20k:
        df["split_radarpos20k"] = splitlib.radarpos_column(df, seed=cfg.radarpos_seed)
    if cfg.holdout:
        name, col = splitlib.holdout_column(df, cfg.holdout)
        df[name] = col
    return df


# ----------------------------------------------------------------------------------------------- per sample
def _out_shape(row: Any, cfg: BuildConfig) -> tuple[int, int]:
    if cfg.size_policy == "keep":
        return int(row.height), int(row.width)
    return int(cfg.size), int(cfg.size)


def _field_sizes(row: Any, cfg: BuildConfig) -> dict[str, int]:
    """Exact data size of every member of a sample: stored arrays from the unit file's member sizes (the encoded
    ``.npy`` bytes themselves), views that change ``img``/``cplx`` and ``gr`` from their shapes, ``meta.json`` and
    ``cls`` by encoding."""
    sizes = {f"{name}.npy": n for name, n in stored_sizes(row.ingest_root, row.store_path).items()}
    if _is_radar(row):
        _check_radar(row, cfg)
        return {**sizes, **_label_sizes(row)}
    h, w = _out_shape(row, cfg)
    channels = 1 if cfg.channel is not None else int(row.channels)
    if cfg.size_policy != "keep" or cfg.normalise or cfg.channel is not None:
        sizes["img.npy"] = npy_nbytes((channels, h, w), "float32" if cfg.normalise else row.dtype)
    if "cplx.npy" in sizes and cfg.size_policy != "keep":
        del sizes["cplx.npy"]
    elif "cplx.npy" in sizes and cfg.channel is not None:
        sizes["cplx.npy"] = npy_nbytes((1, h, w), "complex64")
    if "gr" in cfg.targets:
        sizes["gr.npy"] = npy_nbytes((4, h, w), cfg.gr_codec)
    return {**sizes, **_label_sizes(row)}


def _label_sizes(row: Any) -> dict[str, int]:
    sizes = {"meta.json": len(_meta_bytes(row))}
    if not pd.isna(row.label):
        sizes["cls"] = len(str(int(row.label)))
    return sizes


RADAR_MODALITIES = ("iq", "pdw")


def _is_radar(row: Any) -> bool:
    return row.modality in RADAR_MODALITIES


def _check_radar(row: Any, cfg: BuildConfig) -> None:
    """Radar rows pass their arrays through unchanged: image-only options are a configuration error."""
    if "gr" in cfg.targets:
        raise ConfigError(
            f"{row.key}: --targets gr needs SAR images, this is {row.modality} radar data ({row.source}); "
            "drop --targets gr or select images with --where \"modality == 'sar_image'\""
        )
    if cfg.size_policy != "keep" or cfg.normalise or cfg.channel is not None:
        raise ConfigError(
            f"{row.key}: --size-policy/--normalise/--channel apply to images; radar data ({row.modality}) is stored "
            "as ingested (2x512 inputs are built by the loader: sardata.stream.radar.RadarView)"
        )


def _radar_fields(row: Any, cfg: BuildConfig) -> dict[str, bytes]:
    """Members of a radar sample: every stored array (``iq``/``iqc``/``pdw``/``toa``…) as ingested, meta, cls."""
    _check_radar(row, cfg)
    out = {f"{name}.npy": encode_npy(arr) for name, arr in load_arrays(row.ingest_root, row.store_path).items()}
    out["meta.json"] = _meta_bytes(row)
    if not pd.isna(row.label):
        out["cls"] = str(int(row.label)).encode()
    return out


def _channel_index(row: Any, cfg: BuildConfig, n: int) -> int | None:
    """Resolve ``--channel`` (an index, or a name from the comma-separated ``pol`` column) for one sample."""
    if cfg.channel is None:
        return None
    if cfg.channel.isdigit():
        idx = int(cfg.channel)
    else:
        names = [p.strip().upper() for p in (row.pol or "").split(",")] if isinstance(row.pol, str) else []
        if cfg.channel.upper() not in names:
            raise ConfigError(f"{row.key}: channel {cfg.channel!r} not in its channels {names or '(unnamed)'}")
        idx = names.index(cfg.channel.upper())
    if idx >= n:
        raise ConfigError(f"{row.key}: channel {idx} requested but the sample has {n} channel(s)")
    return idx


def _meta_bytes(row: Any) -> bytes:
    meta = json.loads(row.meta) if isinstance(row.meta, str) else {}
    meta.update(
        source=row.source, src_path=row.src_path, label_name=None if pd.isna(row.label_name) else row.label_name
    )
    return encode_json(meta)


def _transform(img: np.ndarray, cfg: BuildConfig) -> np.ndarray:
    if cfg.size_policy == "keep":
        return img
    from PIL import Image

    size = int(cfg.size)
    planes = []
    for plane in img:
        im = Image.fromarray(plane)  # L for uint8, F for float32
        if cfg.size_policy == "resize":
            im = im.resize((size, size), Image.BICUBIC)
        elif cfg.size_policy == "resize-crop":
            w, h = im.size
            scale = size / min(w, h)
            im = im.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BICUBIC)
        arr = np.asarray(im)
        if cfg.size_policy in ("center-crop", "resize-crop"):
            arr = _center_crop(arr, size)
        if np.issubdtype(img.dtype, np.floating):  # bicubic rings past the input range; uint8 is clipped by PIL
            arr = np.clip(arr, float(plane.min()), float(plane.max()))
        planes.append(arr.astype(img.dtype, copy=False))
    return np.ascontiguousarray(np.stack(planes))


def _center_crop(arr: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros((size, size), arr.dtype)
    h, w = arr.shape
    sy, sx = max(0, (h - size) // 2), max(0, (w - size) // 2)
    dy, dx = max(0, (size - h) // 2), max(0, (size - w) // 2)
    ch, cw = min(size, h), min(size, w)
    out[dy : dy + ch, dx : dx + cw] = arr[sy : sy + ch, sx : sx + cw]
    return out


def _sample_fields(row: Any, cfg: BuildConfig) -> tuple[dict[str, bytes], dict[str, Any]]:
    """All members of one output sample, and its per-sample extra columns (``x_*``)."""
    if _is_radar(row):
        return _radar_fields(row, cfg), {}
    arrays = load_arrays(row.ingest_root, row.store_path)
    img, extras = arrays["img"], {}
    idx = _channel_index(row, cfg, img.shape[0])
    if idx is not None:
        img = img[idx : idx + 1]
    if cfg.normalise:
        from sardata.radiometry import to_unit_magnitude

        img, ref = to_unit_magnitude(img, row.radiometry, row.scale)
        extras = {"x_norm_scale": ref, "x_src_radiometry": row.radiometry, "x_src_scale": row.scale}
    img = _transform(img, cfg)
    out = {"img.npy": encode_npy(img), "meta.json": _meta_bytes(row)}
    if "cplx" in arrays and cfg.size_policy == "keep":
        cplx = arrays["cplx"]
        out["cplx.npy"] = encode_npy(cplx if idx is None else cplx[idx : idx + 1])
    for name, arr in arrays.items():
        if name not in ("img", "cplx"):
            if cfg.size_policy != "keep":
                raise ConfigError(f"{row.key}: field {name} cannot follow size policy {cfg.size_policy}; use keep")
            out[f"{name}.npy"] = encode_npy(arr)
    if "gr" in cfg.targets:
        import torch

        from sardata.features.gr import encode_gr, gr_maps

        if img.shape[0] != 1:
            raise ConfigError(
                f"{row.key}: GR needs one channel, the image has {img.shape[0]}; choose one with --channel"
            )
        from sardata.radiometry import gr_input

        plane = img[0] if cfg.normalise else gr_input(img)
        tensor = torch.from_numpy(np.ascontiguousarray(plane))[None, None]
        maps = gr_maps(tensor, cfg.resolved_gr_radii, keys=[row.key])[0].numpy()
        out["gr.npy"] = encode_npy(encode_gr(maps, cfg.gr_codec))
    if not pd.isna(row.label):
        out["cls"] = str(int(row.label)).encode()
    return out, extras


# ----------------------------------------------------------------------------------------------- shards
_W: dict[str, Any] = {}


def _init(rows: pd.DataFrame, cfg: BuildConfig, out: str, cfg_sha: str) -> None:
    _W.update(rows={r.key: r for r in rows.itertuples(index=False)}, cfg=cfg, out=Path(out), cfg_sha=cfg_sha)
    if "gr" in cfg.targets:
        import torch

        torch.set_num_threads(1)  # one shard per worker process; no oversubscription


def _plan_hash(plan: ShardPlan, cfg_sha: str) -> str:
    return hashlib.sha256(f"{cfg_sha}:{plan.name}:{','.join(plan.keys)}".encode()).hexdigest()


def _build_one(plan: ShardPlan) -> dict[str, Any]:
    out, cfg, cfg_sha = _W["out"], _W["cfg"], _W["cfg_sha"]
    sidecar = out / WORK / f"{plan.name}.json"
    shard = out / "shards" / plan.name
    phash = _plan_hash(plan, cfg_sha)
    if sidecar.exists() and shard.exists():
        done = json.loads(sidecar.read_text())
        if (
            done["plan_hash"] == phash
            and done.get("xxh3_128")
            and done["nbytes"] == shard.stat().st_size
            and sha256_file(shard) == done["sha256"]
        ):
            return {**done, "reused": True}
    rows = _W["rows"]
    built = {k: _sample_fields(rows[k], cfg) for k in plan.keys}
    result = write_shard(shard, [(k, built[k][0]) for k in plan.keys])
    if result.nbytes != plan.nbytes:
        raise ShardIntegrityError(f"{shard}: wrote {result.nbytes} bytes, plan said {plan.nbytes} (bug: report it)")
    done = {"plan_hash": phash, "name": plan.name, "sha256": result.sha256, "xxh3_128": result.xxh3_128,
            "nbytes": result.nbytes,
            "samples": [vars(s) for s in result.samples], "extras": {k: built[k][1] for k in plan.keys}}  # fmt: skip
    with atomic_path(sidecar) as tmp:
        tmp.write_text(json.dumps(done))
    return {**done, "reused": False}


def build_shards(
    ingest_dirs: list[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    cfg: BuildConfig | None = None,
    workers: int = 1,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
    engine: str = "local",
) -> BuildResult:
    """Build a dataset directory from ingest outputs (resumable; byte-identical for any ``workers``).

    ``engine``: ``local`` (process pool) or ``ray`` (the same ``_build_one`` per shard as Ray Data tasks,
    :mod:`sardata.engines.ray`); shards, tables and card (but ``created_at``) are byte-identical either way.

    Raises:
        ConfigError: bad configuration, empty or mixed selection, ``out`` built with another configuration.
        ShardIntegrityError: a shard's bytes do not match the plan.
        DependencyNotFoundError: ``engine="ray"`` without Ray installed (``pip install 'sardata[ray]'``).
        OutputLockedError: another process is writing ``out`` (stale temps are only cleared under the lock).
    """
    check_engine(engine)  # a missing engine is refused before the output directory (and its lock) exists
    with output_lock(out, "build-shards"):
        return _build_shards(ingest_dirs, out, cfg, workers, overwrite, progress, engine)


def _build_shards(
    ingest_dirs: list[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    cfg: BuildConfig | None,
    workers: int,
    overwrite: bool,
    progress: Callable[[int, int], None] | None,
    engine: str,
) -> BuildResult:
    """:func:`build_shards` while holding the output lock."""
    check_engine(engine)
    cfg = cfg or BuildConfig()
    out = Path(out)
    dirs = [Path(d) for d in ingest_dirs]
    df, sources, identities, class_maps = _load_inputs(dirs)
    config = {"build": dataclasses.asdict(cfg), "inputs": identities}
    cfg_sha = config_sha256(config)
    if (out / CARD_NAME).exists():
        card = read_card(out)
        if card.get("config_sha256") == cfg_sha:
            # A kill -9 between writing the card (the commit point) and removing the work dir leaves sidecars
            # behind: finish that cleanup, so the resumed output equals an uninterrupted one file for file.
            shutil.rmtree(out / WORK, ignore_errors=True)
            remove_stale_temps(out)
            return _result_from_card(out, card)
        if not overwrite:
            raise ConfigError(f"{out} holds a dataset built with another configuration; use a new --out or --overwrite")
    if overwrite:
        for sub in ("shards", WORK):
            shutil.rmtree(out / sub, ignore_errors=True)
        (out / CARD_NAME).unlink(missing_ok=True)
    (out / "shards").mkdir(parents=True, exist_ok=True)
    (out / WORK).mkdir(exist_ok=True)
    remove_stale_temps(out)

    df = _add_splits(_select(df, cfg, dirs), cfg)
    sizes = {r.key: list(_field_sizes(r, cfg).values()) for r in df.itertuples()}
    plans = plan_shards([(k, s, sizes[k]) for k, s in zip(df["key"], df["split"], strict=True)],
                        cfg.max_shard_bytes, cfg.max_shard_samples, cfg.shuffle_seed)  # fmt: skip
    stale = {p.name for p in (out / "shards").glob("*.tar")} - {p.name for p in plans}
    for name in stale:
        (out / "shards" / name).unlink()

    results = list(_run(plans, df, cfg, out, cfg_sha, workers, progress, engine))
    return _merge(out, df, sources, plans, results, cfg, config, cfg_sha, identities, class_maps)


def _run(plans, df, cfg, out, cfg_sha, workers, progress, engine="local"):
    if engine == "ray":
        from sardata.engines.ray import map_units

        yield from map_units(_init, (df, cfg, str(out), cfg_sha), _build_one, plans, workers, progress)
        return
    if workers <= 1 or len(plans) <= 1:
        _init(df, cfg, str(out), cfg_sha)
        it = map(_build_one, plans)
        pool = None
    else:
        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        pool = ctx.Pool(min(workers, len(plans)), initializer=_init, initargs=(df, cfg, str(out), cfg_sha))
        it = pool.imap_unordered(_build_one, plans)
    try:
        for i, r in enumerate(it, 1):
            if progress:
                progress(i, len(plans))
            yield r
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()


def _merge(out, df, sources, plans, results, cfg, config, cfg_sha, identities, class_maps) -> BuildResult:
    from sardata.features.grcodec import GR_EPS, GR_VERSION

    by_name = {r["name"]: r for r in results}
    loc: dict[str, dict] = {}
    for plan in plans:
        r = by_name[plan.name]
        for pos, s in enumerate(r["samples"]):
            loc[s["key"]] = {"shard": plan.name, "shard_pos": pos, "sample_offset": s["offset"],
                             "sample_bytes": s["nbytes"], "members": s["members"], "sample_sha256": s["sha256"]}  # fmt: skip
    df = df.copy()
    for col in ("shard", "shard_pos", "sample_offset", "sample_bytes", "members", "sample_sha256"):
        df[col] = df["key"].map(lambda k, c=col: loc[k][c])
    df["fields"] = df["members"].map(lambda ms: sorted(m["field"].split(".")[0] for m in ms))
    if cfg.size_policy != "keep":
        df["height"] = df["width"] = int(cfg.size)
    if cfg.channel is not None:
        df["x_channel"] = cfg.channel
        df["channels"] = 1
    if cfg.normalise:
        extras = {k: e for r in results for k, e in r["extras"].items()}
        for col in ("x_norm_scale", "x_src_radiometry", "x_src_scale"):
            df[col] = df["key"].map(lambda k, c=col: extras[k][c])
        df["radiometry"], df["scale"], df["dtype"] = "magnitude", "unit", "float32"
    df["gr_version"] = GR_VERSION if "gr" in cfg.targets else None
    df["store_path"] = None
    df = df.drop(columns=["ingest_root"])
    samples = pa.Table.from_pandas(df, preserve_index=False)
    write_table(samples, out / "samples.parquet", "samples", cfg_sha)
    shard_rows = [{"shard": p.name, "path": f"shards/{p.name}", "split": p.split, "shard_index": p.index,
                   "n_samples": len(p.keys), "bytes": by_name[p.name]["nbytes"], "sha256": by_name[p.name]["sha256"],
                   "xxh3_128": by_name[p.name]["xxh3_128"], "first_key": p.keys[0], "last_key": p.keys[-1]} for p in plans]  # fmt: skip
    write_table(pa.Table.from_pylist(shard_rows, schema=SHARDS), out / "shards.parquet", "shards", cfg_sha)
    write_table(sources.cast(SOURCES), out / "sources.parquet", "sources", cfg_sha)
    per_split = {
        s: {"samples": int((df["split"] == s).sum()), "shards": sum(p.split == s for p in plans),
            "bytes": sum(by_name[p.name]["nbytes"] for p in plans if p.split == s)}
        for s in sorted(df["split"].unique())
    }  # fmt: skip
    card = {
        "kind": "dataset",
        "schema_version": SCHEMA_VERSION,
        "sardata_version": sardata.__version__,
        "git_sha": _git_sha(),
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "config": config,
        "config_sha256": cfg_sha,
        "sources": identities,
        "splits": per_split,
        "fields": {
            name: {"encoding": FIELDS[name.split(".")[0]].encoding, "meaning": FIELDS[name.split(".")[0]].meaning}
            for name in sorted({m["field"] for ms in df["members"] for m in ms})
        },  # fmt: skip
        "features": {
            "gr": {
                "version": GR_VERSION,
                "radii": list(cfg.resolved_gr_radii),
                "eps": GR_EPS,
                "padding": "reflect",
                "dtype": cfg.gr_codec,
                "mode": "precomputed",
                "normalisation": "uint8/255; radiometric/max",
            }
        }
        if "gr" in cfg.targets
        else {},  # fmt: skip
        "class_maps": class_maps,
        "normalisation": _normalisation_card(cfg),
        "views": sorted(c for c in df.columns if c.startswith("split_")),
        "view_warnings": _short_views(df),
        "counts": {
            "per_split_class": {
                f"{s}/{c}": int(n)
                for (s, c), n in df.groupby(["split", df["label_name"].fillna("(none)")]).size().items()
            }
        },  # fmt: skip
        "tables": {
            name: {"rows": rows, "sha256": sha256_file(out / f"{name}.parquet")}
            for name, rows in (("samples", len(df)), ("shards", len(plans)), ("sources", sources.num_rows))
        },  # fmt: skip
    }
    write_card(out, card)
    shutil.rmtree(out / WORK, ignore_errors=True)
    return BuildResult(out, len(df), len(plans), sum(r["nbytes"] for r in results),
                       sum(bool(r["reused"]) for r in results), {s: v["samples"] for s, v in per_split.items()})  # fmt: skip


def _normalisation_card(cfg: BuildConfig) -> dict[str, Any]:
    if not cfg.normalise:
        return {"policy": None, "gr_input": "uint8/255; radiometric/max"}
    from sardata.radiometry import POLICY

    return {"policy": POLICY, "per_sample_reference": "x_norm_scale", "source_columns": ["x_src_radiometry", "x_src_scale"],
            "inverse": "sardata.radiometry.from_unit_magnitude(img, x_norm_scale, x_src_radiometry, x_src_scale)"}  # fmt: skip


def _short_views(df: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Few-shot views where a class has fewer than K training shots (the protocol then takes all it has)."""
    out = {}
    for col in (c for c in df.columns if c.startswith("split_fewshot_k")):
        k = int(col.split("_k")[1].split("_")[0])
        counts = df.loc[df[col] == "train"].groupby("label_name").size()
        short = {str(c): int(n) for c, n in counts.items() if n < k}
        if short:
            out[col] = short
    return out


def _result_from_card(out: Path, card: dict) -> BuildResult:
    splits = card.get("splits", {})
    return BuildResult(out, sum(v["samples"] for v in splits.values()), sum(v["shards"] for v in splits.values()),
                       sum(v["bytes"] for v in splits.values()), 0, {s: v["samples"] for s, v in splits.items()})  # fmt: skip


def _git_sha() -> str | None:
    import subprocess

    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(sardata.__file__).parent, capture_output=True,
                             text=True, timeout=5)  # fmt: skip
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


__all__ = ["BuildConfig", "BuildResult", "build_shards"]
