"""Simulated PDW trains written by :mod:`sardata.sim.pdw` (``radar.md`` §2, source id ``pdwsim``).

File layout (``format = "sardata-pdwsim"``, version 1): ``pulses`` (flat table of every train, the contract's
``pdw`` dtype), ``offsets`` (n + 1 int64: train i is ``pulses[offsets[i]:offsets[i+1]]``), ``index`` (n rows:
``type_id``, ``mode``, ``sample_idx``, ``label``, ``split``) and ``meta`` (n UTF-8 JSON strings); the file's
``classes`` attribute names the labels (``e0`` … for downstream sets, empty for the pretraining pool). Rows are read
in blocks of ``block_rows`` (one h5py slice of ``pulses`` per block), so memory stays bounded whatever the file size.

One sample per train: ``pdw`` = the structured array exactly as the data contract defines it (``toa`` <f8,
``rf`` <f4, ``pw`` <f4, ``pa`` <f4, ``src`` <i2; TOA relative to the first pulse); no separate ``toa`` field (the
TOA vector is built at load time from ``pdw``). Columns: ``type_id``, ``mode`` (``VS``/``TAS``/``STT``),
``n_pulses`` (L), ``pri_s`` (the mean nominal PRI) and ``pulse_width_s`` (mean nominal PW). Downstream rows carry
``split`` = ``train``/``test`` and ``label_name`` = ``e<k>``, so every cross-mode transfer is a view
(``split == train & mode == A`` → ``split == test & mode == B``); pool rows are ``unlabelled``. ``meta`` is the
stored JSON (law parameters, receiver draws, the seed key). Key token = 8-digit row; ``sub_index`` = row;
``src_member`` = ``pulses`` (one ok member row per file). Bad rows (unparseable meta, empty or non-finite trains,
unknown label) become rejected member rows ``pulses[<row>]``; a structural problem rejects the file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from sardata.errors import ConfigError, RejectFile
from sardata.sources._base import FileUnit, MemberStatus, Sample, Source, check_budget, open_hdf5

# The file format is the reader's: the simulator (``sardata.sim.pdw``) imports these, never the other way round.
#: one pulse of a train (``radar.md`` §2): TOA s relative to the first pulse, RF MHz, PW µs, PA dBm, source id
PDW_DTYPE = np.dtype([("toa", "<f8"), ("rf", "<f4"), ("pw", "<f4"), ("pa", "<f4"), ("src", "<i2")])
MODES = ("VS", "TAS", "STT")
H5_FORMAT = "sardata-pdwsim"
H5_FORMAT_VERSION = 1
INDEX_DTYPE = np.dtype([("type_id", "<i4"), ("mode", "i1"), ("sample_idx", "<i8"), ("label", "<i2"),
                        ("split", "S12")])  # fmt: skip

H5_SUFFIXES = (".h5", ".hdf5")
#: the downstream emitters of ``radar.md`` §2.5.2 (pool trains are unlabelled)
CLASSES = ("e0", "e1", "e2", "e3", "e4", "e5", "e6")
SPLITS = ("train", "val", "test", "pool", "unlabelled")


@dataclass(frozen=True)
class PDWSimOptions:
    block_rows: int = 256  # trains per h5py read
    classes: tuple[str, ...] = ()  # label names when a set has other than the 7 default emitters

    def __post_init__(self) -> None:
        if self.block_rows < 1:
            raise ConfigError("pdwsim block_rows must be positive")


class PDWSim(Source):
    id = "pdwsim"
    version = "1.0.0"
    description = "Simulated multifunction-radar PDW trains (sardata sim pdw HDF5), read in row blocks"
    modality = "pdw"
    classes = CLASSES
    Options = PDWSimOptions
    reads_whole_file = False
    data_suffixes = H5_SUFFIXES

    def class_names(self) -> list[str]:
        return list(self.options.classes or self.classes)

    def read(self, unit: FileUnit) -> Iterator[Sample | MemberStatus]:
        with open_hdf5(unit) as f:
            pulses, offsets, index, meta = self._check(f)
            yield from self._rows(pulses, offsets, index, meta)

    def _check(self, f: Any) -> tuple[Any, np.ndarray, np.ndarray, Any]:
        """Validate the file's structure; returns (pulses dataset, offsets, index, meta dataset)."""
        if f.attrs.get("format") != H5_FORMAT:
            raise RejectFile("bad_format", f"attribute format is not {H5_FORMAT!r}; write it with `sardata sim pdw`")
        version = int(f.attrs.get("format_version", -1))
        if version > H5_FORMAT_VERSION:
            raise RejectFile("unsupported_version", f"format_version {version} > {H5_FORMAT_VERSION}; upgrade sardata")
        missing = [n for n in ("pulses", "offsets", "index", "meta") if n not in f]
        if missing:
            raise RejectFile("missing_dataset", f"datasets {missing} absent")
        pulses = f["pulses"]
        names = pulses.dtype.names or ()
        if names != PDW_DTYPE.names:
            raise RejectFile("bad_dtype", f"pulses fields {names}, expected {PDW_DTYPE.names}")
        for name in ("offsets", "index"):  # read whole below: their declared size must fit the budget first
            check_budget(f[name].shape, f[name].dtype.itemsize, f"HDF5 dataset {name}")
        offsets = f["offsets"][()]
        index = f["index"][()]
        n = len(index)
        if offsets.shape != (n + 1,) or len(f["meta"]) != n:
            raise RejectFile("size_mismatch", f"{n} index rows, {offsets.shape[0]} offsets, {len(f['meta'])} meta")
        if offsets[0] != 0 or offsets[-1] != pulses.shape[0] or np.any(np.diff(offsets) < 0):
            raise RejectFile("bad_offsets", "offsets must rise from 0 to len(pulses)")
        classes = json.loads(f.attrs.get("classes", "[]"))
        if classes and list(classes) != self.class_names():
            raise RejectFile(
                "class_mismatch", f"file classes {classes} differ from {self.class_names()}; pass -o classes=..."
            )
        return pulses, offsets, index, f["meta"]

    def _rows(self, pulses: Any, offsets: np.ndarray, index: np.ndarray, meta: Any) -> Iterator[Sample | MemberStatus]:
        classes = self.class_names()
        step = self.options.block_rows
        for a in range(0, len(index), step):
            b = min(len(index), a + step)
            check_budget((int(offsets[b]) - int(offsets[a]),), pulses.dtype.itemsize, f"pulses[{a}:{b}]")
            block = np.asarray(pulses[offsets[a] : offsets[b]])
            texts = meta[a:b]
            for i in range(a, b):
                train = np.ascontiguousarray(block[offsets[i] - offsets[a] : offsets[i + 1] - offsets[a]])
                item = self._sample(i, train, index[i], texts[i - a], classes)
                yield item

    def _sample(
        self, row: int, train: np.ndarray, idx: np.void, text: Any, classes: list[str]
    ) -> Sample | MemberStatus:
        member = f"pulses[{row}]"
        try:
            meta = json.loads(text.decode("utf-8") if isinstance(text, bytes) else text)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return MemberStatus(member, "rejected", "bad_meta", f"meta JSON: {exc}")
        if not len(train):
            return MemberStatus(member, "rejected", "empty_train", "no pulse was intercepted")
        pdw = np.empty(len(train), PDW_DTYPE)
        for name in PDW_DTYPE.names:
            pdw[name] = train[name]
        if not all(np.isfinite(pdw[n]).all() for n in ("toa", "rf", "pw", "pa")):
            return MemberStatus(member, "rejected", "non_finite", "NaN or Inf in the train")
        mode = int(idx["mode"])
        split = idx["split"].decode("ascii", "replace")
        label = int(idx["label"])
        if mode not in (0, 1, 2) or split not in SPLITS:
            return MemberStatus(member, "rejected", "bad_index", f"mode {mode}, split {split!r}")
        if label >= len(classes):
            return MemberStatus(member, "rejected", "unknown_class", f"label {label} ≥ {len(classes)} classes")
        pw_levels = meta.get("pw_levels_s") or []
        return Sample(
            arrays={"pdw": pdw},
            split=split,
            label_name=classes[label] if label >= 0 else None,
            key_token=f"{row:08d}",
            sub_index=row,
            src_member="pulses",
            columns={
                "type_id": int(idx["type_id"]),
                "mode": MODES[mode],
                "n_pulses": len(pdw),
                "pri_s": meta.get("mean_pri_s"),
                "pulse_width_s": float(np.mean(pw_levels)) if pw_levels else None,
            },
            meta=meta,
        )
