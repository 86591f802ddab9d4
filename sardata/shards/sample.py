"""One output sample under a build configuration: its member sizes (for the plan) and its bytes (for the writer).

Both come from :class:`OutputSample`, so which members a sample has, which are recomputed and at what shape and
dtype is decided in one place, and the planned byte counts are those written. Sizes come from the row alone (its
manifest columns and the encoded sizes the sample store recorded, nothing decoded), which keeps planning cheap and
independent of ``workers``. The stored ``.npy`` bytes of a field the build does not change are copied as they
are (:func:`sardata.store.read_encoded` has checked them against the checksum written with them).

Image policies (``size_policy``): ``keep`` (native size), ``resize`` (to size × size, bicubic), ``center-crop``
(size × size around the centre, zero padding where the image is smaller), ``resize-crop`` (shorter side to size,
bicubic, then centre crop — the SAR-JEPA ``gr_view``); resampled float images are clipped to their input's
range (bicubic ringing never invents values). ``cplx`` and geometric fields (boxes, masks) are only kept with
``keep``. Radar samples (``iq``, ``pdw``) pass their arrays through unchanged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sardata.errors import ConfigError
from sardata.shards.codecs import decode_npy, encode_json, encode_npy, npy_nbytes
from sardata.shards.config import BuildConfig

RADAR_MODALITIES = ("iq", "pdw")


@dataclass(frozen=True)
class OutputSample:
    """A ``samples`` row (with ``ingest_root``) as the build writes it: :meth:`sizes` and :meth:`encode`."""

    row: Any
    cfg: BuildConfig

    @property
    def radar(self) -> bool:
        return self.row.modality in RADAR_MODALITIES

    def sizes(self) -> dict[str, int]:
        """Exact data size of every member: stored arrays from the sizes the store recorded (the encoded ``.npy``
        bytes themselves), recomputed arrays from :meth:`_recomputed`, ``meta.json`` and ``cls`` by encoding."""
        row = self.row
        sizes = {f"{name}.npy": int(n) for name, n in zip(row.fields, row.store_sizes, strict=True)}
        if self.radar:
            self._check_radar()
        else:
            if "cplx.npy" in sizes and self.cfg.size_policy != "keep":
                del sizes["cplx.npy"]
            for name, (shape, dtype) in self._recomputed(has_cplx="cplx.npy" in sizes).items():
                sizes[f"{name}.npy"] = npy_nbytes(shape, dtype)
        return {**sizes, **{name: len(data) for name, data in self._labels().items()}}

    def encode(self, stored: list[bytes]) -> tuple[dict[str, bytes], dict[str, Any]]:
        """All members of the sample from its stored ``.npy`` bytes (in ``fields`` order), and its per-sample extra
        columns (``x_*``)."""
        row, cfg = self.row, self.cfg
        blobs = dict(zip(row.fields, stored, strict=True))  # checked by the reader (sardata.store.read_encoded)
        if self.radar:
            self._check_radar()
            return {**{f"{name}.npy": data for name, data in blobs.items()}, **self._labels()}, {}
        recomputed = self._recomputed(has_cplx="cplx" in blobs)
        if "img" not in recomputed and "gr" not in cfg.targets:  # keep, nothing derived: the stored bytes
            return {**{f"{name}.npy": data for name, data in blobs.items()}, **self._labels()}, {}
        arrays = {name: decode_npy(bytearray(data), row.key) for name, data in blobs.items()}  # writable
        img, extras = arrays["img"], {}
        idx = self._channel_index(img.shape[0])
        if idx is not None:
            img = img[idx : idx + 1]
        if cfg.normalise:
            from sardata.radiometry import to_unit_magnitude

            img, ref = to_unit_magnitude(img, row.radiometry, row.scale)
            extras = {"x_norm_scale": ref, "x_src_radiometry": row.radiometry, "x_src_scale": row.scale}
        img = _transform(img, cfg)
        out = {"img.npy": encode_npy(img) if "img" in recomputed else blobs["img"]}
        if "cplx" in arrays and cfg.size_policy == "keep":
            out["cplx.npy"] = blobs["cplx"] if idx is None else encode_npy(arrays["cplx"][idx : idx + 1])
        for name in arrays:
            if name not in ("img", "cplx"):
                if cfg.size_policy != "keep":
                    raise ConfigError(f"{row.key}: field {name} cannot follow size policy {cfg.size_policy}; use keep")
                out[f"{name}.npy"] = blobs[name]
        if "gr" in cfg.targets:
            out["gr.npy"] = encode_npy(self._gr(img))
        return {**out, **self._labels()}, extras

    # ------------------------------------------------------------------------------------------- the policy
    def _shape(self) -> tuple[int, int]:
        """Output height and width: native with ``keep``, else ``size`` × ``size``."""
        if self.cfg.size_policy == "keep":
            return int(self.row.height), int(self.row.width)
        return int(self.cfg.size), int(self.cfg.size)

    def _recomputed(self, has_cplx: bool) -> dict[str, tuple[tuple[int, ...], str]]:
        """Shape and dtype of each array the build computes instead of copying (the rest is stored bytes)."""
        cfg, row = self.cfg, self.row
        h, w = self._shape()
        channels = 1 if cfg.channel is not None else int(row.channels)
        out: dict[str, tuple[tuple[int, ...], str]] = {}
        if cfg.size_policy != "keep" or cfg.normalise or cfg.channel is not None:
            out["img"] = (channels, h, w), "float32" if cfg.normalise else row.dtype
        if has_cplx and cfg.channel is not None:
            out["cplx"] = (1, h, w), "complex64"
        if "gr" in cfg.targets:
            out["gr"] = (len(cfg.resolved_gr_radii), h, w), cfg.gr_codec  # one map per radius
        return out

    def _labels(self) -> dict[str, bytes]:
        """``meta.json`` (the adapter's meta plus source, path and class name) and ``cls`` where labelled."""
        row = self.row
        meta = json.loads(row.meta) if isinstance(row.meta, str) else {}
        meta.update(
            source=row.source, src_path=row.src_path, label_name=None if pd.isna(row.label_name) else row.label_name
        )
        out = {"meta.json": encode_json(meta)}
        if not pd.isna(row.label):
            out["cls"] = str(int(row.label)).encode()
        return out

    def _check_radar(self) -> None:
        """Radar rows pass their arrays through unchanged: image-only options are a configuration error."""
        row, cfg = self.row, self.cfg
        if "gr" in cfg.targets:
            raise ConfigError(
                f"{row.key}: --targets gr needs SAR images, this is {row.modality} radar data ({row.source}); "
                "drop --targets gr or select images with --where \"modality == 'sar_image'\""
            )
        if cfg.size_policy != "keep" or cfg.normalise or cfg.channel is not None:
            raise ConfigError(
                f"{row.key}: --size-policy/--normalise/--channel apply to images; radar data ({row.modality}) is "
                "stored as ingested (2x512 inputs are built by the loader: sardata.stream.radar.RadarView)"
            )

    def _channel_index(self, n: int) -> int | None:
        """Resolve ``--channel`` (an index, or a name from the comma-separated ``pol`` column) for this sample."""
        row, channel = self.row, self.cfg.channel
        if channel is None:
            return None
        if channel.isdigit():
            idx = int(channel)
        else:
            names = [p.strip().upper() for p in (row.pol or "").split(",")] if isinstance(row.pol, str) else []
            if channel.upper() not in names:
                raise ConfigError(f"{row.key}: channel {channel!r} not in its channels {names or '(unnamed)'}")
            idx = names.index(channel.upper())
        if idx >= n:
            raise ConfigError(f"{row.key}: channel {idx} requested but the sample has {n} channel(s)")
        return idx

    def _gr(self, img: np.ndarray) -> np.ndarray:
        """Encoded GR maps of the stored image in [0, 1] (normalised, else 8-bit / 255 or radiometric / max)."""
        import torch

        from sardata.features.gr import encode_gr, gr_maps
        from sardata.radiometry import gr_input

        row, cfg = self.row, self.cfg
        if img.shape[0] != 1:
            raise ConfigError(
                f"{row.key}: GR needs one channel, the image has {img.shape[0]}; choose one with --channel"
            )
        plane = img[0] if cfg.normalise else gr_input(img)
        tensor = torch.from_numpy(np.ascontiguousarray(plane))[None, None]
        maps = gr_maps(tensor, cfg.resolved_gr_radii, keys=[row.key])[0].numpy()
        return encode_gr(maps, cfg.gr_codec)


def _transform(img: np.ndarray, cfg: BuildConfig) -> np.ndarray:
    """Apply ``cfg.size_policy`` to every plane of a (C, H, W) image, keeping its dtype."""
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
    """The ``size`` × ``size`` centre of a plane, zero-padded where the plane is smaller."""
    out = np.zeros((size, size), arr.dtype)
    h, w = arr.shape
    sy, sx = max(0, (h - size) // 2), max(0, (w - size) // 2)
    dy, dx = max(0, (size - h) // 2), max(0, (size - w) // 2)
    ch, cw = min(size, h), min(size, w)
    out[dy : dy + ch, dx : dx + cw] = arr[sy : sy + ch, sx : sx + cw]
    return out


#: the ingest columns a build reads per sample (the rest of the row is read only when the index is written)
ROW_COLUMNS = ["key", "source", "modality", "fields", "content_sha256", "src_path", "label", "label_name", "meta",
               "height", "width", "channels", "dtype", "radiometry", "scale", "pol"]  # fmt: skip

__all__ = ["RADAR_MODALITIES", "ROW_COLUMNS", "OutputSample"]
