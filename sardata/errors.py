"""Exception hierarchy.

Every error sardata raises on purpose is a :class:`SardataError`; the CLI maps it to one line on stderr and
exit code 1. Messages name the file involved and what the user can do about it.
"""

from __future__ import annotations


class SardataError(Exception):
    """Base class for all domain errors (exit code 1 in the CLI)."""


class SourceNotFoundError(SardataError):
    """An input root or source id does not exist."""


class ChecksumError(SardataError):
    """Bytes on disk do not match a recorded checksum."""


class ManifestSchemaError(SardataError):
    """A Parquet table or card does not match the declared schema."""


class GRInputError(SardataError):
    """An image handed to the GR feature is outside its domain (range, size, finiteness)."""


class ShardIntegrityError(SardataError):
    """A shard's bytes do not match the index."""


class LoaderStateError(SardataError):
    """A loader state dict does not fit the dataset or configuration it is loaded into."""


class ConfigError(SardataError):
    """A configuration value is invalid."""


class NonFiniteLossError(SardataError):
    """Training produced a NaN or Inf loss."""


class DependencyNotFoundError(SardataError):
    """An optional dependency is missing; the message names the pip extra to install."""


class TooManyErrorsError(SardataError):
    """A run stopped early because ``--max-errors`` files were rejected."""


class RejectFile(Exception):  # noqa: N818 - a signal, not an error of the run
    """Raised by a source adapter to turn one input file into a ``rejected`` row.

    Args:
        reason: short machine-readable code (``truncated``, ``bad_header``, ``checksum_mismatch``...).
        detail: human-readable explanation, ideally with the fix.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class SkipFile(Exception):  # noqa: N818 - a signal, not an error of the run
    """Raised by a source adapter for a file that is not a sample (preview, calibration object, unselected
    class): it becomes a ``skipped`` row with ``reason``."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class OutputLockedError(SardataError):
    """Another live process is writing the same output directory (the message names it)."""


class IngestEnvironmentError(SardataError):
    """Ingest stopped on an environment failure (full disk, I/O error, a vanished file, out of memory...).

    The file named in the message stays pending, not rejected: a rerun after the cause is fixed redoes it."""
