"""What a ``build-shards`` run is asked to do: :class:`BuildConfig` and its validation.

Every field determines the bytes of a build and is hashed into its ``config_sha256``, so a rerun with the same
configuration resumes and one with another refuses to mix into the same output.
"""

from __future__ import annotations

from dataclasses import dataclass

from sardata.errors import ConfigError

SIZE_POLICIES = ("keep", "resize", "center-crop", "resize-crop")


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


__all__ = ["SIZE_POLICIES", "BuildConfig"]
