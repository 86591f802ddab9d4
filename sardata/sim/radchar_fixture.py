"""Synthetic RadChar-format frames (``radar.md`` §1.6, ``sources.md`` §10): tests and the demo, never training data.

A frame is 512 complex baseband samples at fs = 3.2 MHz (160 µs) holding ``number_of_pulses`` pulses of width
``pulse_width`` every ``pulse_repetition_interval`` after ``time_delay``. Parameters follow the documented ranges:
pulses U{2..6}, PW U[10, 16] µs, PRI U[17, 23] µs, delay U[1, 10] µs, SNR U{−20..20} dB. Intra-pulse modulation
per class:

== ================== ==========================================================================================
0  coherent pulses    constant phase
1  Barker             binary Barker code, L ∈ {2, 3, 4, 5, 7, 11, 13}
2  polyphase Barker   a code of :data:`POLYPHASE_BARKER` (every aperiodic sidelobe ≤ 1, checked by a test)
3  Frank              M ∈ {2, 3, 4}: phase 2π·i·k/M for chip i·M + k
4  LFM                up-chirp of bandwidth B ~ U[0.5, 1.6] MHz centred on 0 Hz
== ================== ==========================================================================================

Every pulse starts at phase 0; sample n belongs to pulse k when ``td + k·PRI ≤ n/fs < td + k·PRI + PW``. Complex
white Gaussian noise sets the in-pulse SNR (pulse amplitude 1, noise power 10^(−SNR/10)); the frame is then
scaled to unit mean power (the inferred RadChar convention). Frame i of a file draws everything from
``default_rng(SeedSequence([seed, i]))``, so a frame regenerates alone. Files are written with h5py in the exact
RadChar layout: root ``iq`` (N, 512) complex and root ``labels`` (N,) with :data:`LABELS_DTYPE`.

Why a chunked writer: :func:`write_radchar` streams row blocks, so a 200 k-frame test file never exists in memory
whole (``repeat`` tiles a few distinct frames, which gzip then compresses to almost nothing on disk).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from sardata.sources.radchar import FRAME, FS, LABELS_DTYPE, NOMINAL, SIGNAL_TYPES  # the reader owns the format

BARKER = {
    2: (1, -1),
    3: (1, 1, -1),
    4: (1, 1, -1, 1),
    5: (1, 1, 1, -1, 1),
    7: (1, 1, 1, -1, -1, 1, -1),
    11: (1, 1, 1, -1, -1, -1, 1, -1, -1, 1, -1),
    13: (1, 1, 1, 1, 1, -1, -1, 1, 1, -1, 1, -1, 1),
}
#: polyphase Barker codes as (M, phase indices): chip phase 2π·k/M. Found by exhaustive search over M-th roots of
#: unity (first chip fixed to 0, binary codes excluded); every aperiodic autocorrelation sidelobe is ≤ 1.
POLYPHASE_BARKER = {
    3: (6, (0, 0, 2)),
    4: (6, (0, 0, 1, 4)),
    5: (6, (0, 0, 0, 2, 5)),
    6: (12, (0, 0, 2, 6, 0, 8)),
    7: (8, (0, 0, 1, 5, 6, 2, 7)),
    8: (12, (0, 5, 9, 10, 9, 8, 3, 0)),
}


@dataclass(frozen=True)
class FrameParams:
    """What one frame was drawn with (label fields plus the modulation detail the labels do not carry)."""

    signal_type: int
    number_of_pulses: int
    pulse_width: float
    time_delay: float
    pulse_repetition_interval: float
    signal_to_noise_ratio: int
    code: tuple[float, ...] = ()  # chip phases (rad) for phase codes
    bandwidth: float = 0.0  # LFM sweep (Hz)


def polyphase_code(length: int) -> np.ndarray:
    """Complex chips of the polyphase Barker code of ``length``."""
    m, idx = POLYPHASE_BARKER[length]
    return np.exp(2j * np.pi * np.asarray(idx) / m)


def _phases(signal_type: int, rng: np.random.Generator) -> tuple[tuple[float, ...], float]:
    if signal_type == 1:
        code = BARKER[int(rng.choice(sorted(BARKER)))]
        return tuple(0.0 if c > 0 else float(np.pi) for c in code), 0.0
    if signal_type == 2:
        m, idx = POLYPHASE_BARKER[int(rng.choice(sorted(POLYPHASE_BARKER)))]
        return tuple(2 * np.pi * k / m for k in idx), 0.0
    if signal_type == 3:
        m = int(rng.integers(2, 5))
        return tuple(2 * np.pi * (i * k % m) / m for i in range(m) for k in range(m)), 0.0
    if signal_type == 4:
        return (), float(rng.uniform(0.5e6, 1.6e6))
    return (), 0.0


def draw_params(rng: np.random.Generator, signal_type: int | None = None, snr_db: int | None = None) -> FrameParams:
    """Draw one frame's parameters from the documented ranges (class and SNR may be fixed)."""
    st = int(rng.integers(0, 5)) if signal_type is None else int(signal_type)
    n = int(rng.integers(2, 7))
    pw, pri, td = rng.uniform(10e-6, 16e-6), rng.uniform(17e-6, 23e-6), rng.uniform(1e-6, 10e-6)
    snr = int(rng.integers(-20, 21)) if snr_db is None else int(snr_db)
    code, bw = _phases(st, rng)
    return FrameParams(st, n, float(pw), float(td), float(pri), snr, code, bw)


def clean_frame(p: FrameParams) -> np.ndarray:
    """The noiseless frame (amplitude 1 inside pulses), complex128 (512,)."""
    t = np.arange(FRAME) / FS
    out = np.zeros(FRAME, np.complex128)
    for k in range(p.number_of_pulses):
        t0 = p.time_delay + k * p.pulse_repetition_interval
        inside = (t >= t0) & (t < t0 + p.pulse_width)
        tau = t[inside] - t0
        if p.code:
            chip = np.minimum((tau / p.pulse_width * len(p.code)).astype(int), len(p.code) - 1)
            phase = np.asarray(p.code)[chip]
        elif p.bandwidth:
            phase = 2 * np.pi * (-p.bandwidth / 2 * tau + p.bandwidth / (2 * p.pulse_width) * tau**2)
        else:
            phase = np.zeros(tau.shape)
        out[inside] = np.exp(1j * phase)
    return out


def synth_frame(p: FrameParams, rng: np.random.Generator) -> np.ndarray:
    """Noisy frame at the in-pulse SNR, scaled to mean |x|² = 1 (complex128)."""
    x = clean_frame(p)
    sigma = np.sqrt(10 ** (-p.signal_to_noise_ratio / 10) / 2)
    x = x + sigma * (rng.standard_normal(FRAME) + 1j * rng.standard_normal(FRAME))
    return x / np.sqrt(np.mean(np.abs(x) ** 2))


def frame(seed: int, i: int, signal_type: int | None = None, snr_db: int | None = None) -> tuple[np.ndarray, np.void]:
    """Frame ``i`` of the stream ``seed`` and its label record (``index`` = i)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, i]))
    p = draw_params(rng, signal_type, snr_db)
    label = np.array(
        (i, p.signal_type, p.number_of_pulses, p.pulse_width, p.time_delay, p.pulse_repetition_interval,
         p.signal_to_noise_ratio),
        LABELS_DTYPE,
    )  # fmt: skip
    return synth_frame(p, rng), label[()]


def frames(n: int, seed: int = 0, signal_types: list[int] | None = None,
           snrs: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """``n`` frames (complex128 (n, 512)) and labels; optional per-frame class / SNR lists fix those draws."""
    iq = np.empty((n, FRAME), np.complex128)
    labels = np.empty(n, LABELS_DTYPE)
    for i in range(n):
        st = None if signal_types is None else signal_types[i]
        snr = None if snrs is None else snrs[i]
        iq[i], labels[i] = frame(seed, i, st, snr)
    return iq, labels


def write_radchar(
    path: str | os.PathLike[str],
    blocks: Iterator[tuple[np.ndarray, np.ndarray]] | tuple[np.ndarray, np.ndarray],
    n: int | None = None,
    iq_dtype: str = "complex128",
    labels: bool = True,
    compression: str | None = None,
) -> None:
    """Write a RadChar-layout HDF5 file from one ``(iq, labels)`` pair or an iterator of row blocks (then ``n``
    is the total row count). Deterministic bytes: no timestamps, fixed libver."""
    import h5py

    if isinstance(blocks, tuple):
        n = len(blocks[0])
        blocks = iter([blocks])
    if n is None:
        raise ValueError("write_radchar: pass n (total rows) with an iterator of blocks")
    chunks = (min(n, 1024), FRAME) if compression else None
    level = {"compression_opts": 1} if compression == "gzip" else {}
    with h5py.File(path, "w", libver=("earliest", "v108"), track_order=False) as f:
        d_iq = f.create_dataset("iq", (n, FRAME), dtype=np.dtype(iq_dtype), chunks=chunks,
                                compression=compression, track_times=False, **level)  # fmt: skip
        d_lab = (f.create_dataset("labels", (n,), dtype=LABELS_DTYPE, chunks=(min(n, 1024),) if compression else None,
                                  compression=compression, track_times=False) if labels else None)  # fmt: skip
        start = 0
        for iq, lab in blocks:
            d_iq[start : start + len(iq)] = iq.astype(iq_dtype)
            if d_lab is not None:
                d_lab[start : start + len(lab)] = lab
            start += len(iq)
        if start != n:
            raise ValueError(f"write_radchar: wrote {start} rows, expected {n}")


def repeat_blocks(
    n: int, distinct: int = 50, block: int = 4096, seed: int = 0
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Row blocks of ``n`` frames cycling through ``distinct`` seeded frames (``index`` still 0…n−1): large test
    files that compress well and cost almost nothing to generate (gzip's 32 KiB window must span a cycle: keep
    ``distinct`` × frame bytes ≤ 32 KiB, i.e. ≤ 4 complex64 frames)."""
    base_iq, base_lab = frames(distinct, seed)
    for start in range(0, n, block):
        rows = np.arange(start, min(n, start + block))
        lab = base_lab[rows % distinct].copy()
        lab["index"] = rows
        yield base_iq[rows % distinct], lab


__all__ = [
    "BARKER", "FRAME", "FS", "LABELS_DTYPE", "NOMINAL", "POLYPHASE_BARKER", "SIGNAL_TYPES", "FrameParams",
    "clean_frame", "draw_params", "frame", "frames", "polyphase_code", "repeat_blocks", "synth_frame", "write_radchar",
]  # fmt: skip
