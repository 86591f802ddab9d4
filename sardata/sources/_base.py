"""The source adapter contract.

A source turns one input file into zero or more :class:`Sample` objects (or raises
:class:`~sardata.errors.RejectFile` / :class:`~sardata.errors.SkipFile`). It never writes anything: the ingest
engine (:mod:`sardata.ingest`) owns hashing, the sample store, part files, resume and the manifest, so every
adapter gets those guarantees for free and stays a small, testable decoder.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from sardata.config import SAMPLE_BUDGET_ENV, from_mapping, sample_budget_bytes


@dataclass
class Sample:
    """One decoded sample as an adapter returns it.

    Attributes:
        arrays: payload fields without extension (``img``, ``cplx``, ``boxes``, ``iq``...), registry dtypes,
            images channel-first ``(C, H, W)``.
        split: ``train``/``val``/``test`` when the source defines it, else ``pool`` (split later) or
            ``unlabelled``.
        label_name: canonical class id, or None for unlabelled data.
        key_token: sub-index token appended to the key slug for multi-sample files (``r000512-c001024``).
        sub_index: row / chip index inside a multi-sample file.
        src_member: archive member or HDF5 dataset path, when the sample is inside a container.
        columns: typed manifest columns (``depression_deg``, ``radiometry``, ``sensor``...).
        meta: everything else worth keeping, JSON-serialisable; becomes ``meta.json`` in shards.
    """

    arrays: dict[str, np.ndarray]
    split: str = "pool"
    label_name: str | None = None
    key_token: str | None = None
    sub_index: int | None = None
    src_member: str | None = None
    columns: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class MemberStatus:
    """A member of a container file (archive entry, HDF5 row block, CSV row) that is not itself a sample's
    ``src_member``.

    Adapters return these next to :class:`Sample` objects so that every member they visit is accounted for in
    ``sources.parquet``: ``rejected`` or ``skipped`` with a reason (a corrupt patch inside a zip, a metadata row
    without an image), or ``ok`` with reason ``companion`` for a member whose content went into another
    member's sample (SLC I/Q stored as that sample's ``cplx``).
    """

    src_member: str
    status: str  # "rejected" | "skipped" | "ok"
    reason: str
    detail: str = ""


@dataclass
class FileUnit:
    """One input file handed to an adapter. ``data()`` returns its bytes (already read by the engine for files up
    to :data:`sardata.ingest.READ_ONCE_BYTES`; adapters of large formats open ``path`` themselves)."""

    rel: str
    path: str
    size: int
    _data: bytes | None = None

    def data(self) -> bytes:
        if self._data is None:
            with open(self.path, "rb") as fh:
                self._data = fh.read()
        return self._data

    @property
    def parts(self) -> tuple[str, ...]:
        """Folders and name of the relative path."""
        return Path(self.rel).parts


@dataclass(frozen=True)
class NoOptions:
    """Sources without options use this."""


class Source(ABC):
    """Base class of every ingest adapter. Subclasses set the class attributes and implement :meth:`read`.

    Label ids are positions in :meth:`class_names`, so they are stable for a given source version and options.
    """

    id: ClassVar[str]
    version: ClassVar[str]
    description: ClassVar[str]
    modality: ClassVar[str] = "sar_image"
    classes: ClassVar[tuple[str, ...]] = ()
    Options: ClassVar[type] = NoOptions
    #: False for large-file formats (scenes, HDF5): the engine then hashes by streaming and leaves reading to
    #: :meth:`read` (windowed / chunked), so no input is ever held in memory whole.
    reads_whole_file: ClassVar[bool] = True
    #: True when a unit's samples depend on other files (an image's XML/.txt labels, a shared meta.csv, a .mat):
    #: resume then also requires the whole input listing (paths, sizes, mtimes) to be unchanged, so an edited
    #: label file is never served from a stale unit.
    companion_files: ClassVar[bool] = False
    #: when set, files whose (lower-case) name ends otherwise are recorded as skipped before any decoding
    #: (``(".h5", ".hdf5")``: recipes, type lists and READMEs beside the data are documentation).
    data_suffixes: ClassVar[tuple[str, ...]] = ()
    #: file names (lower-case) that are never data: recorded as skipped.
    junk_names: ClassVar[frozenset[str]] = frozenset({"thumbs.db", ".ds_store", "desktop.ini"})
    #: extensions (lower-case, with dot) of documentation and scripts: recorded as skipped.
    junk_suffixes: ClassVar[frozenset[str]] = frozenset(
        {".htm", ".html", ".pdf", ".md", ".txt", ".doc", ".py", ".pyc", ".sh"}
    )

    def __init__(self, root: str | os.PathLike[str], options: Any = None) -> None:
        self.root = Path(root)
        self.options = options if options is not None else self.Options()

    @classmethod
    def parse_options(cls, raw: Mapping[str, Any]) -> Any:
        """Build :attr:`Options` from ``key=value`` strings (CLI ``-o``) or YAML values, converting by annotation
        (:func:`sardata.config.from_mapping`)."""
        return from_mapping(cls.Options, raw, where=f"source {cls.id!r}", noun="option")

    def options_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self.options)

    def class_names(self) -> list[str]:
        """Classes in label-id order (the selected subset, when the source supports one)."""
        return list(self.classes)

    def skip_reasons(self, rels: list[str]) -> dict[str, str]:
        """Files that are not data, decided from the listing alone (one pass, main process): rel → reason."""
        out = {}
        for rel in rels:
            name = Path(rel).name.lower()
            if name in self.junk_names or name.startswith("readme"):
                out[rel] = "not_data: documentation or system file"
            elif Path(name).suffix in self.junk_suffixes:
                out[rel] = f"not_data: {Path(name).suffix} files are documentation or scripts"
            elif self.data_suffixes and not name.endswith(self.data_suffixes):
                out[rel] = f"not_data: {self.id} reads {'/'.join(self.data_suffixes)} files only"
        return out

    @abstractmethod
    def read(self, unit: FileUnit) -> Iterable[Sample | MemberStatus]:
        """Decode one file. Raise ``RejectFile`` for bad input and ``SkipFile`` for non-samples; a container
        returns one :class:`Sample` per good member (with ``src_member`` set) and a :class:`MemberStatus` for
        each member it rejects or skips. A generator is consumed sample by sample and each sample is written
        before the next is read, so memory stays bounded for large scenes."""


def parse_float(value: Any) -> float | None:
    """Header / CSV / XML text (or a number) as a finite float; empty, malformed, NaN or Inf → None."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def check_budget(shape: Sequence[int], itemsize: int, what: str) -> int:
    """Reject (``too_large``) a read whose declared size exceeds :func:`sardata.config.sample_budget_bytes`.

    Call it with the shape and item size from the header (rasterio ``count``/``height``/``width``, an h5py
    dataset's ``shape``/``dtype``) *before* reading: a sparse or compressed file can declare gigabytes while
    holding kilobytes, and the allocation happens inside the decoder. Returns the declared size in bytes."""
    from sardata.errors import RejectFile

    nbytes = math.prod(int(n) for n in shape) * int(itemsize)  # Python ints: no overflow for absurd headers
    budget = sample_budget_bytes()
    if nbytes > budget:
        dims = "x".join(str(int(n)) for n in shape)
        raise RejectFile(
            "too_large",
            f"{what} declares {dims} x {itemsize} B = {nbytes} bytes, over the per-sample budget of {budget} bytes "
            f"(a decompression bomb, or raise {SAMPLE_BUDGET_ENV})",
        )
    return nbytes


def check_raster_budget(ds: Any, what: str, window: tuple[int, int] | None = None) -> int:
    """:func:`check_budget` for a rasterio dataset (all bands, or a ``(height, width)`` window of them)."""
    height, width = window if window is not None else (ds.height, ds.width)
    itemsize = max(np.dtype(d).itemsize for d in ds.dtypes) if ds.count else 1
    return check_budget((ds.count, height, width), itemsize, what)


@contextlib.contextmanager
def open_hdf5(unit: FileUnit) -> Iterator[Any]:
    """An HDF5 input opened read-only after a magic-byte check; h5py's ``OSError`` becomes a ``RejectFile`` row
    (``undecodable``), so a truncated or foreign file never aborts a run."""
    import h5py

    from sardata.errors import RejectFile
    from sardata.sources._sniff import sniff

    with open(unit.path, "rb") as fh:
        if sniff(fh.read(1024)) != "hdf5":
            raise RejectFile("bad_format", "not an HDF5 file (magic bytes)")
    try:
        with h5py.File(unit.path, "r") as f:
            yield f
    except OSError as exc:
        raise RejectFile("undecodable", f"h5py cannot read it: {exc}") from exc
