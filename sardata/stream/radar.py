"""Radar model inputs built at load time (``radar.md`` §3): x ∈ R^{C×512}, τ ∈ R^{64}, valid mask, label.

:class:`RadarView` is a callable on the sample dicts of :class:`~sardata.stream.dataset.ShardIterable` /
:class:`~sardata.stream.dataset.ShardDataset` (like :class:`~sardata.stream.transforms.JointAugment`). Loader
sample in (decoded fields of a radar shard sample)::

    {"__key__", "__shard__", "iq.npy": float32 (2, 512) | "pdw.npy": structured (L,) toa/rf/pw/pa/src,
     "toa.npy": float64 (64,) (optional), "meta.json": dict, "cls": int (when labelled),
     "valid": bool (pad="mask" flag), "__index__": int, "__epoch__": int}

View out: ``x`` float32 (C, 512) in [0, 1] ([−1, 1] with ``iq_norm="symmetric"``), ``tau`` float32 (64,),
``valid`` bool (512,) (pulse/sample validity AND the loader's per-sample flag, so a ``pad="mask"`` filler sample
is all-False), ``patch_valid`` bool (64,), ``label`` int (−1 when unlabelled), ``sample_valid`` (the loader's flag),
``input`` (``"iq"``/``"pdw"``), ``start`` (window start), ``length`` (pulses/samples before windowing) and the
pass-through ``__key__``, ``__index__``, ``__epoch__``, ``meta``.

Choices where the spec is silent (each a field):

* ``input="auto"``: IQ when ``iq.npy`` is present, else PDW (a RadChar sample also carries derived PDWs:
  ``input="pdw"`` uses them).
* ΔTOA is computed inside the chosen window (ΔTOA_0 := ΔTOA_1, a one-pulse window has ΔTOA 0) and floored at
  1 ns before log10, so repeated TOAs map to the range floor instead of −inf.
* Fixed ranges: log10 ΔTOA (s) [−6, −2], RF [500, 18000] MHz, log10 PW (s) [−7.3, −3.3] (``pw`` is stored in µs),
  PA [−90, −10] dBm; ``norm="per_sample"`` min-max over the valid positions of each channel (constant → 0).
  RadChar-derived PDWs have a baseband RF offset and PA in dB of the frame scale, which the fixed ranges clip:
  use ``channels=("dtoa", "pw")`` or ``norm="per_sample"`` for them.
* Padded positions (and padded patches' τ) are 0; τ is computed over the valid patches only.
* IQ: τ_i = i exactly (uniform sampling), whatever ``toa.npy`` holds; ``toa_units="us"`` gives t_{8i} in µs.
* Randomness: the training window start comes from ``default_rng(SeedSequence([seed, epoch, index]))`` of the
  sample, so it depends on neither worker count nor order; ``train=False`` always starts at 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sardata.errors import ConfigError

LENGTH = 512
PATCHES = 64
PATCH = LENGTH // PATCHES
PDW_CHANNELS = ("dtoa", "rf", "pw", "pa")
#: fixed physical ranges after the channel transform (log10 for dtoa and pw; seconds, MHz, dBm)
RANGES = {"dtoa": (-6.0, -2.0), "rf": (500.0, 18000.0), "pw": (-7.3, -3.3), "pa": (-90.0, -10.0)}
IQ_FS = 3.2e6  # RadChar sample rate, for toa_units="us" when a sample has no toa.npy


@dataclass(frozen=True)
class RadarView:
    """Sample dict → ``x``, ``tau``, ``valid``, ``label`` (``radar.md`` §3)."""

    input: str = "auto"  # auto | iq | pdw
    iq_norm: str = "minmax"  # minmax (joint over I and Q, one min, one max) | symmetric (x / max|x|)
    channels: tuple[str, ...] = ("dtoa", "rf")
    norm: str = "fixed"  # fixed | per_sample
    resample: str = "pad"  # pad (zero padding + valid mask) | nearest (repeat pulses to 512)
    toa_units: str = "window"  # window (τ ∈ [0, n−1]) | us (absolute µs from the window's first pulse)
    train: bool = True  # random window start (else 0)
    seed: int = 0

    def __post_init__(self) -> None:
        checks = {"input": ("auto", "iq", "pdw"), "iq_norm": ("minmax", "symmetric"), "norm": ("fixed", "per_sample"),
                  "resample": ("pad", "nearest"), "toa_units": ("window", "us")}  # fmt: skip
        for name, allowed in checks.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"RadarView {name}={getattr(self, name)!r}; choose from {allowed}")
        bad = [c for c in self.channels if c not in PDW_CHANNELS]
        if bad or not self.channels or len(set(self.channels)) != len(self.channels):
            raise ConfigError(f"RadarView channels={self.channels!r}; pick distinct names from {PDW_CHANNELS}")

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        kind = self._kind(sample)
        x, valid, tau, start, length = self._iq(sample) if kind == "iq" else self._pdw(sample)
        sample_valid = bool(sample.get("valid", True))
        valid = valid & sample_valid
        patch_valid = valid.reshape(PATCHES, PATCH).any(axis=1)
        return {
            "x": x, "tau": tau, "valid": valid, "patch_valid": patch_valid,
            "label": int(sample["cls"]) if "cls" in sample else -1, "sample_valid": sample_valid, "input": kind,
            "start": start, "length": length, "meta": sample.get("meta.json", {}),
            **{k: sample[k] for k in ("__key__", "__shard__", "__index__", "__epoch__") if k in sample},
        }  # fmt: skip

    # ------------------------------------------------------------------ IQ
    def _kind(self, sample: dict[str, Any]) -> str:
        if self.input != "auto":
            field = f"{self.input}.npy"
            if field not in sample:
                raise ConfigError(f"{sample.get('__key__')}: no {field} in this sample (fields: {sorted(sample)})")
            return self.input
        if "iq.npy" in sample:
            return "iq"
        if "pdw.npy" in sample:
            return "pdw"
        raise ConfigError(f"{sample.get('__key__')}: neither iq.npy nor pdw.npy; not a radar sample")

    def _iq(self, sample: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
        iq = np.asarray(sample["iq.npy"], dtype=np.float32)
        if iq.ndim != 2 or iq.shape[0] != 2:
            raise ConfigError(f"{sample.get('__key__')}: iq.npy has shape {iq.shape}; expected (2, L)")
        length = iq.shape[1]
        start = self._start(sample, length)
        idx, valid = self._positions(length, start)
        x = np.where(valid, iq[:, idx], 0.0).astype(np.float32)
        x = self._scale_iq(x, valid)
        tau = np.arange(PATCHES, dtype=np.float32)
        if self.toa_units == "us":
            toa = np.asarray(sample.get("toa.npy", np.arange(PATCHES) * PATCH / IQ_FS), dtype=np.float64)
            t = toa.reshape(-1)[:PATCHES] if toa.size >= PATCHES else np.arange(PATCHES) * PATCH / IQ_FS
            tau = ((t - t[0]) * 1e6).astype(np.float32)
        return x, valid, np.where(valid.reshape(PATCHES, PATCH).any(1), tau, 0).astype(np.float32), start, length

    def _scale_iq(self, x: np.ndarray, valid: np.ndarray) -> np.ndarray:
        vals = x[:, valid]
        if vals.size == 0:
            return np.zeros_like(x)
        if self.iq_norm == "symmetric":
            peak = float(np.abs(vals).max())
            return (x / peak).astype(np.float32) if peak > 0 else np.zeros_like(x)
        lo, hi = float(vals.min()), float(vals.max())
        if hi <= lo:
            return np.zeros_like(x)
        return np.where(valid, (x - lo) / (hi - lo), 0.0).astype(np.float32)

    # ------------------------------------------------------------------ PDW
    def _pdw(self, sample: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
        pdw = np.asarray(sample["pdw.npy"])
        names = pdw.dtype.names or ()
        missing = [f for f in ("toa", *(_FIELD[c] for c in self.channels)) if f not in names]
        if missing:
            raise ConfigError(f"{sample.get('__key__')}: pdw.npy lacks fields {missing} (has {list(names)})")
        length = len(pdw)
        x = np.zeros((len(self.channels), LENGTH), np.float32)
        if length == 0:
            return x, np.zeros(LENGTH, bool), np.zeros(PATCHES, np.float32), 0, 0
        start = self._start(sample, length)
        pulses = pdw[start : start + LENGTH]  # channels from the real pulse sequence, then mapped to positions
        idx, valid = self._positions(len(pulses), 0)
        x[:] = np.where(valid, self._pdw_channels(pulses)[:, idx], 0.0)
        tau = self._tau(pulses["toa"].astype(np.float64)[idx], valid)
        return x, valid, tau, start, length

    def _pdw_channels(self, w: np.ndarray) -> np.ndarray:
        out = []
        for c in self.channels:
            if c == "dtoa":
                toa = w["toa"].astype(np.float64)
                d = np.diff(toa)
                d = np.concatenate((d[:1], d)) if d.size else np.zeros(len(toa))
                v = np.log10(np.maximum(d, 1e-9))
            elif c == "pw":
                v = np.log10(np.maximum(w["pw"].astype(np.float64) * 1e-6, 1e-12))
            else:
                v = w[_FIELD[c]].astype(np.float64)
            out.append(self._scale_channel(v, c))
        return np.asarray(out, np.float32).reshape(len(self.channels), len(w))

    def _scale_channel(self, v: np.ndarray, channel: str) -> np.ndarray:
        if self.norm == "per_sample":
            if v.size == 0 or float(v.max()) <= float(v.min()):
                return np.zeros_like(v)
            return (v - v.min()) / (v.max() - v.min())
        lo, hi = RANGES[channel]
        return np.clip((v - lo) / (hi - lo), 0.0, 1.0)

    def _tau(self, toa: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """§3.6: T_i = TOA at each patch's first position (its first valid pulse: valid positions form a prefix);
        τ_i = (n−1)(T_i − T_0)/(T_{n−1} − T_0) over the n valid patches, τ_i = i for a zero span; padded 0."""
        tau = np.zeros(PATCHES, np.float64)
        first = np.flatnonzero(valid[::PATCH])
        n = len(first)
        if n == 0:
            return tau.astype(np.float32)
        t = toa[first * PATCH]
        if self.toa_units == "us":
            tau[:n] = (t - t[0]) * 1e6
        elif n > 1 and t[-1] > t[0]:
            tau[:n] = (n - 1) * (t - t[0]) / (t[-1] - t[0])
        else:
            tau[:n] = np.arange(n)
        return tau.astype(np.float32)

    # ------------------------------------------------------------------ length
    def _start(self, sample: dict[str, Any], length: int) -> int:
        if length <= LENGTH or not self.train:
            return 0
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, int(sample.get("__epoch__", 0)),
                                                            int(sample.get("__index__", 0))]))  # fmt: skip
        return int(rng.integers(0, length - LENGTH + 1))

    def _positions(self, length: int, start: int) -> tuple[np.ndarray, np.ndarray]:
        """Source index per output position and the valid mask: a window of 512 consecutive elements, zero
        padding after short sequences, or nearest-neighbour repetition (``resample="nearest"``, L < 512)."""
        if length >= LENGTH:
            return np.arange(start, start + LENGTH), np.ones(LENGTH, bool)
        if self.resample == "nearest" and length > 0:
            return (np.arange(LENGTH) * length) // LENGTH, np.ones(LENGTH, bool)
        idx = np.minimum(np.arange(LENGTH), max(length - 1, 0))
        return idx, np.arange(LENGTH) < length


_FIELD = {"dtoa": "toa", "rf": "rf", "pw": "pw", "pa": "pa"}

__all__ = ["PDW_CHANNELS", "RANGES", "RadarView"]
