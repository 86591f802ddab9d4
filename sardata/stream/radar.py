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
``input`` (``"iq"``/``"pdw"``), ``start`` (first selected pulse/sample: the window start), ``length``
(pulses/samples in the train) and the pass-through ``__key__``, ``__index__``, ``__epoch__``, ``meta``.

Choices where the spec is silent (each a field):

* ``input="auto"``: IQ when ``iq.npy`` is present, else PDW (a RadChar sample also carries derived PDWs:
  ``input="pdw"`` uses them).
* **Which pulses** (PDW, §3.4 revised 2026-12-04; rules in :mod:`sardata.stream.pulse_select`): by default
  ``resample="intercept_index"`` maps the whole intercept onto 512 distinct real pulses at evenly spaced index
  quantiles; ``"intercept_toa"`` takes the pulses nearest evenly spaced times; ``"window"`` is the earlier 512
  consecutive pulses at a random training start. The default follows the spec (whole intercept, index
  quantiles: under ``intercept_toa`` τ ≈ index by construction, so the TOA PE could add nothing). Measured
  (``benchmarks/radar_probe.py``, RESULTS.md §2): on this project's simulated trains *no* rule makes a patch's
  index identifiable from its content (probe top-1 at chance for all three rules, three channel pairs, 576-pulse
  and whole 2-s intercepts) and the TOA/index PE cosine stays ≥ 0.93, because the simulated trains carry no
  position-anchored structure; the view cannot create it, the simulator has to (issue 16, open).
* **Short trains** are the same under every rule: a train of L ≤ 512 pulses uses all of them, in order, then
  ``short="pad"`` (default, spec) zero-pads with ``valid`` False and ``short="nearest"`` repeats pulses by index
  to fill 512 positions (all valid). ``short`` is what ``resample="pad"|"nearest"`` meant before 2026-12-04;
  those values now raise a ConfigError naming the new field.
* **ΔTOA** (§3.2: ΔTOA_k = TOA_k − TOA_{k−1}, k the pulse index of the *train*): ``dtoa="train"`` (default) gives
  each selected pulse its gap to its own predecessor in the train, so the channel stays the measured PRI
  whatever the resampling stride (the between-selected gap would mix PRI with the stride ⌈L/512⌉ or ⌊L/512⌋,
  an artefact of L); ``dtoa="selected"`` takes the gap between consecutive selected pulses (the pre-2026-12-04
  window behaviour, where both coincide except at the window's first pulse). ΔTOA_0 := ΔTOA_1 of the sequence
  used, a one-pulse train has ΔTOA 0, and ΔTOA is floored at 1 ns before log10 (repeated TOAs map to the range
  floor instead of −inf).
* Fixed ranges: log10 ΔTOA (s) [−6, −2], RF [500, 18000] MHz, log10 PW (s) [−7.3, −3.3] (``pw`` is stored in µs),
  PA [−90, −10] dBm; ``norm="per_sample"`` min-max over the valid positions of each channel (constant → 0).
  RadChar-derived PDWs have a baseband RF offset and PA in dB of the frame scale, which the fixed ranges clip:
  use ``channels=("dtoa", "pw")`` or ``norm="per_sample"`` for them.
* Padded positions (and padded patches' τ) are 0; τ is computed over the valid patches only.
* IQ: τ_i = i exactly (uniform sampling), whatever ``toa.npy`` holds; ``toa_units="us"`` gives t_{8i} in µs.
* Randomness (``train=True`` only): the window start, or the intercept jitter (each quantile target moved by
  ``jitter``·U[−½, ½) of a step, i.e. a random pulse of each quantile bin), comes from
  ``default_rng(SeedSequence([seed, epoch, index]))`` of the sample, so it depends on neither worker count nor
  order; ``train=False`` uses the exact quantiles (window start 0). IQ frames are uniformly sampled, so IQ
  input is unchanged by ``resample`` (a 512-sample frame is taken whole; τ_i = i).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sardata.errors import ConfigError
from sardata.stream.pulse_select import RULES, fill_positions, intercept_indices, window_start

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
    resample: str = "intercept_index"  # intercept_index | intercept_toa | window (PDW; pulse_select)
    short: str = "pad"  # L < 512: pad (zero padding + valid mask) | nearest (repeat pulses to 512)
    dtoa: str = "train"  # train (ΔTOA to the pulse's own predecessor) | selected (between selected pulses)
    jitter: float = 1.0  # training jitter of the intercept quantiles, in quantile steps (0 = none)
    toa_units: str = "window"  # window (τ ∈ [0, n−1]) | us (absolute µs from the window's first pulse)
    train: bool = True  # random window start (else 0)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.resample in ("pad", "nearest"):  # the pre-2026-12-04 values meant what `short` means now
            raise ConfigError(f"RadarView resample={self.resample!r} is now short={self.resample!r}; resample picks "
                              f"which pulses fill the 512 positions: {RULES}")  # fmt: skip
        checks = {"input": ("auto", "iq", "pdw"), "iq_norm": ("minmax", "symmetric"), "norm": ("fixed", "per_sample"),
                  "resample": RULES, "short": ("pad", "nearest"), "dtoa": ("train", "selected"),
                  "toa_units": ("window", "us")}  # fmt: skip
        for name, allowed in checks.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"RadarView {name}={getattr(self, name)!r}; choose from {allowed}")
        if not 0.0 <= self.jitter <= 1.0:
            raise ConfigError(f"RadarView jitter={self.jitter!r}; must be in [0, 1] (quantile steps)")
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
        start = window_start(length, LENGTH, self._rng(sample))
        idx, valid = fill_positions(length - start, LENGTH, self.short)
        idx = idx + start
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
        toa = pdw["toa"].astype(np.float64)
        rng = self._rng(sample)
        if length <= LENGTH:  # a short train: every pulse, whatever the rule
            sel = np.arange(length)
        elif self.resample == "window":
            start = window_start(length, LENGTH, rng)
            sel = np.arange(start, start + LENGTH)
        else:
            sel = intercept_indices(toa, LENGTH, self.resample, rng, self.jitter)
        pos, valid = fill_positions(len(sel), LENGTH, self.short)  # channels over real pulses, then positions
        x[:] = np.where(valid, self._pdw_channels(pdw, sel)[:, pos], 0.0)
        tau = self._tau(toa[sel][pos], valid)
        return x, valid, tau, int(sel[0]), length

    def _pdw_channels(self, pdw: np.ndarray, sel: np.ndarray) -> np.ndarray:
        """(C, len(sel)) scaled channels of the selected pulses; ΔTOA per ``dtoa`` (module docstring)."""
        out = []
        for c in self.channels:
            if c == "dtoa":
                toa = pdw["toa"].astype(np.float64)
                toa = toa if self.dtoa == "train" else toa[sel]
                d = np.diff(toa)
                d = np.concatenate((d[:1], d)) if d.size else np.zeros(len(toa))
                v = np.log10(np.maximum(d[sel] if self.dtoa == "train" else d, 1e-9))
            elif c == "pw":
                v = np.log10(np.maximum(pdw["pw"][sel].astype(np.float64) * 1e-6, 1e-12))
            else:
                v = pdw[_FIELD[c]][sel].astype(np.float64)
            out.append(self._scale_channel(v, c))
        return np.asarray(out, np.float32).reshape(len(self.channels), len(sel))

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

    # ------------------------------------------------------------------ randomness
    def _rng(self, sample: dict[str, Any]) -> np.random.Generator | None:
        """The training draw of one sample (window start or quantile jitter), ``None`` when not training."""
        if not self.train:
            return None
        key = [self.seed, int(sample.get("__epoch__", 0)), int(sample.get("__index__", 0))]
        return np.random.default_rng(np.random.SeedSequence(key))


_FIELD = {"dtoa": "toa", "rf": "rf", "pw": "pw", "pa": "pa"}

__all__ = ["PDW_CHANNELS", "RANGES", "RadarView"]
