"""RadChar radar-signal HDF5 files (``sources.md`` §10, ``radar.md`` §1): one sample per frame.

Layout: root ``iq`` (N, 512) complex128 (complex64 accepted; h5py's ``r``/``i`` compound) and root ``labels`` (N,)
with the seven fields of :data:`LABELS_DTYPE` **in that order** (names and order are
checked; integer/float widths may differ and are converted). Rows are read in blocks of ``chunk_rows`` with h5py
slicing, so a file is never in memory whole (peak memory ≈ one block, whatever N is).

Per frame: ``iq`` = float32 (2, 512) (I = real, Q = imag); ``toa`` = float64 (64,) patch start times
t_{8i} = 8i/fs in seconds (``radar.md`` §3.6); with ``pdw=true`` (default) also ``pdw`` = the pulse descriptor
words derived by :mod:`sardata.features.pulses` (TOA from the frame start, baseband frequency offset in ``rf``, PA
in dB of the frame's own scale) and the per-pulse modulation codes in ``meta.pulse_mod``; with ``iqc=true`` the
original complex samples as ``iqc``. Columns: ``signal_type`` (class name, e.g. ``lfm``), ``snr_db``, ``n_pulses``,
``pulse_width_s``, ``pri_s``, ``time_delay_s``; ``meta`` keeps the seven raw label fields under ``labels`` plus
``mean_power`` (mean |x|², ``radar.md`` §1.4). Key token = the ``index`` field (8 digits), ``sub_index`` = row,
``src_member`` = ``iq`` for every sample (one ok member row per file, not one per frame).

Bad frames never stop a file: a frame with NaN/Inf samples (``non_finite``), a ``signal_type`` outside 0…4
(``unknown_signal_type``) or rows present in only one of the two datasets (``missing_labels`` / ``missing_iq``)
becomes a rejected member row ``iq[<row>]`` (``labels[<row>]`` for the last case). A frame length other than 512
cannot happen row by row in a 2-D dataset, so it rejects the file (``wrong_frame_length``). Label values outside
the nominal ranges are **warned, not rejected**: the frame keeps them and ``meta.label_warnings`` lists the
offending field names (e.g. ``["pulse_repetition_interval"]``); the key is absent when all are in range.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from sardata.errors import ConfigError, RejectFile
from sardata.sources._base import FileUnit, MemberStatus, Sample, Source, open_hdf5

# The RadChar format is the reader's: the fixture simulator (``sardata.sim.radchar_fixture``) imports it.
FS = 3.2e6  #: sample rate (Hz)
FRAME = 512  #: samples per frame
SIGNAL_TYPES = ("coherent_pulse_train", "barker", "polyphase_barker", "frank", "lfm")
LABELS_DTYPE = np.dtype(
    [
        ("index", "<i8"),
        ("signal_type", "<i8"),
        ("number_of_pulses", "<i8"),
        ("pulse_width", "<f8"),
        ("time_delay", "<f8"),
        ("pulse_repetition_interval", "<f8"),
        ("signal_to_noise_ratio", "<i8"),
    ]
)
#: nominal label ranges (inclusive): ``sources.md`` §10. Values outside are warned about, never rejected.
NOMINAL = {
    "number_of_pulses": (2, 6),
    "pulse_width": (10e-6, 16e-6),
    "time_delay": (1e-6, 10e-6),
    "pulse_repetition_interval": (17e-6, 23e-6),
    "signal_to_noise_ratio": (-20, 20),
}
PATCH = 8
H5_SUFFIXES = (".h5", ".hdf5", ".he5")
PATCH_TOA = (np.arange(FRAME // PATCH) * PATCH / FS).astype(np.float64)  #: t_{8i} in seconds


@dataclass(frozen=True)
class RadCharOptions:
    chunk_rows: int = 4096  # rows read per h5py slice (memory ≈ chunk_rows × 8 KiB for complex128)
    pdw: bool = True  # derive pulse descriptor words (sardata.features.pulses) beside the IQ
    iqc: bool = False  # also keep the original complex samples as iqc (complex128/complex64 as stored)

    def __post_init__(self) -> None:
        if self.chunk_rows < 1:
            raise ConfigError("radchar chunk_rows must be positive")


class RadChar(Source):
    id = "radchar"
    version = "1.0.0"
    description = "RadChar HDF5: (N, 512) complex baseband frames + 7-field labels, read in row blocks"
    modality = "iq"
    classes = SIGNAL_TYPES
    Options = RadCharOptions
    reads_whole_file = False
    data_suffixes = H5_SUFFIXES

    def read(self, unit: FileUnit) -> Iterator[Sample | MemberStatus]:
        with open_hdf5(unit) as f:
            iq, labels = _datasets(f)
            yield from self._rows(iq, labels)

    def _rows(self, iq: Any, labels: Any) -> Iterator[Sample | MemberStatus]:
        n_iq, n_lab = int(iq.shape[0]), int(labels.shape[0])
        step = self.options.chunk_rows
        for start in range(0, min(n_iq, n_lab), step):
            stop = min(n_iq, n_lab, start + step)
            yield from self._block(np.asarray(iq[start:stop]), np.asarray(labels[start:stop]), start)
        for row in range(n_lab, n_iq):
            yield MemberStatus(f"iq[{row}]", "rejected", "missing_labels", f"labels has {n_lab} rows, iq {n_iq}")
        for row in range(n_iq, n_lab):
            yield MemberStatus(f"labels[{row}]", "rejected", "missing_iq", f"iq has {n_iq} rows, labels {n_lab}")

    def _block(self, block: np.ndarray, lab: np.ndarray, start: int) -> Iterator[Sample | MemberStatus]:
        """One row block; array work is vectorised over the block (per-frame Python only builds the Sample)."""
        finite = np.isfinite(block).all(axis=1)
        planes = np.stack([block.real, block.imag], axis=1).astype(np.float32)  # (B, 2, 512)
        power = np.mean(block.real.astype(np.float64) ** 2 + block.imag.astype(np.float64) ** 2, axis=1).tolist()
        warn = _warnings(lab)
        records = lab.tolist()
        for j, rec in enumerate(records):
            row = start + j
            if not finite[j]:
                yield MemberStatus(f"iq[{row}]", "rejected", "non_finite", "frame has NaN or Inf samples")
                continue
            raw = dict(zip(LABELS_DTYPE.names, rec, strict=True))
            st = int(raw["signal_type"])
            if not 0 <= st < len(SIGNAL_TYPES):
                yield MemberStatus(f"iq[{row}]", "rejected", "unknown_signal_type", f"signal_type {st} not in 0..4")
                continue
            yield self._sample(block[j], planes[j], raw, row, power[j], warn[j])

    def _sample(self, x: np.ndarray, plane: np.ndarray, raw: dict[str, Any], row: int, power: float,
                warnings: list[str]) -> Sample:  # fmt: skip
        st = int(raw["signal_type"])
        arrays = {"iq": plane, "toa": PATCH_TOA}
        meta: dict[str, Any] = {"labels": raw, "mean_power": power, "fs_hz": FS}
        if self.options.iqc:
            arrays["iqc"] = np.ascontiguousarray(x)
        if self.options.pdw:
            from sardata.features.pulses import derive_pdw

            arrays["pdw"], mods = derive_pdw(x, FS)
            meta["pulse_mod"] = mods.tolist()
        if warnings:
            meta["label_warnings"] = warnings
        return Sample(
            arrays=arrays,
            split="pool",
            label_name=SIGNAL_TYPES[st],
            key_token=f"{int(raw['index']):08d}",
            sub_index=row,
            src_member="iq",
            columns={
                "signal_type": SIGNAL_TYPES[st],
                "snr_db": float(raw["signal_to_noise_ratio"]),
                "n_pulses": int(raw["number_of_pulses"]),
                "pulse_width_s": float(raw["pulse_width"]),
                "pri_s": float(raw["pulse_repetition_interval"]),
                "time_delay_s": float(raw["time_delay"]),
            },  # fmt: skip
            meta=meta,
        )


def _warnings(lab: np.ndarray) -> list[list[str]]:
    """Per row of a label block, the fields outside their nominal range (vectorised :func:`out_of_range`)."""
    out: list[list[str]] = [[] for _ in range(len(lab))]
    for name, (lo, hi) in NOMINAL.items():
        v = lab[name].astype(np.float64)
        for j in np.flatnonzero(~((v >= lo - 1e-12) & (v <= hi + 1e-12))).tolist():
            out[j].append(name)
    return out


def out_of_range(labels: dict[str, Any]) -> list[str]:
    """Names of label fields outside their nominal RadChar range (``radar.md`` §1.5: warn, never reject)."""
    bad = []
    for name, (lo, hi) in NOMINAL.items():
        v = float(labels[name])
        if not (lo - 1e-12 <= v <= hi + 1e-12):
            bad.append(name)
    return bad


def _datasets(f: Any) -> tuple[Any, Any]:
    """The ``iq`` and ``labels`` datasets after checking shapes and dtypes (a wrong layout rejects the file)."""
    import h5py

    missing = [name for name in ("iq", "labels") if not isinstance(f.get(name), h5py.Dataset)]
    if missing:
        raise RejectFile("missing_dataset", f"no root dataset {' or '.join(missing)}; RadChar files hold iq and labels")
    iq, labels = f["iq"], f["labels"]
    if iq.dtype.kind != "c" or iq.dtype.itemsize not in (8, 16):
        raise RejectFile("bad_iq_dtype", f"iq dtype {iq.dtype}; expected complex128 or complex64")
    if iq.ndim != 2:
        raise RejectFile("bad_shape", f"iq shape {iq.shape}; expected (N, {FRAME})")
    if iq.shape[1] != FRAME:
        raise RejectFile("wrong_frame_length", f"iq frames have {iq.shape[1]} samples; RadChar frames have {FRAME}")
    names = labels.dtype.names or ()
    if labels.ndim != 1 or names != LABELS_DTYPE.names:
        raise RejectFile(
            "bad_labels_dtype",
            f"labels fields {list(names)} shape {labels.shape}; expected 1-D with fields {list(LABELS_DTYPE.names)}",
        )
    kinds = [labels.dtype[n].kind for n in names]
    want = [LABELS_DTYPE[n].kind for n in names]
    if any(k != w and not (w == "i" and k == "u") for k, w in zip(kinds, want, strict=True)):
        raise RejectFile("bad_labels_dtype", f"labels field kinds {kinds}; expected {want} ({LABELS_DTYPE})")
    return iq, labels
