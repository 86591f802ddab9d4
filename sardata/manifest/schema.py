"""Every Parquet table sardata writes, declared once (``data-contract.md`` §3).

Writers attach key-value metadata ``sardata.table``, ``sardata.schema_version`` and ``sardata.config_sha256``
through :func:`with_metadata`; readers validate with :func:`sardata.manifest.io.read_table`. The ingest output
and a built dataset share :data:`SAMPLES` — shard columns are null until ``build-shards`` fills them, and
``store_path`` is null once samples live in shards.
"""

from __future__ import annotations

import pyarrow as pa

#: semver of the table layout. Major bump = readers of the old major refuse; minor = additive, nullable.
SCHEMA_VERSION = "1.1.0"

#: columns added by a minor version after ``<major>.0.0``: table -> column -> version that introduced it. A file
#: of an older minor version may lack them; :func:`sardata.manifest.io.read_table` adds them as null columns, so
#: old manifests keep loading. Adding a column = append it to the schema (nullable), list it here, bump the minor.
COLUMNS_SINCE: dict[str, dict[str, str]] = {"samples": {}, "sources": {}, "shards": {"xxh3_128": "1.1.0"}}

#: optional columns: declared in the schema below (adapters may set them, readers know their type) but written only
#: when some row holds a value: :func:`sardata.manifest.io.write_table` leaves an all-null optional column out, and
#: :func:`sardata.manifest.io.read_table` adds it back as nulls only to a file older than the version that declared
#: it (like any later column), never to a file of that version or newer (absent there = no row had a value). So
#: declaring one changes no existing table's bytes or content (``tests/golden``). A table that holds one needs a
#: reader that declares it (an earlier one names it among "unexpected columns"). table -> column -> declaring version.
OPTIONAL_COLUMNS: dict[str, dict[str, str]] = {
    "samples": {"n_boxes": "1.1.0"},  # detection sources (hrsid, ssdd): rows of boxes.npy
}


def parse_version(version: str) -> tuple[int, int, int]:
    """``"1.2.3"`` -> ``(1, 2, 3)`` (missing parts are 0); ValueError on anything else."""
    parts = version.strip().split(".")
    if not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"not a semver version: {version!r}")
    nums = [int(p) for p in parts] + [0] * (3 - len(parts))
    return nums[0], nums[1], nums[2]


#: prefixes allowed for columns beyond the declared schema (recipe-specific views and extensions).
EXTRA_COLUMN_PREFIXES = ("split_", "x_")

MEMBER = pa.struct([("field", pa.string()), ("offset", pa.int64()), ("size", pa.int64())])

SAMPLES = pa.schema(
    [
        pa.field("key", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("source_version", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("label", pa.int32()),
        pa.field("label_name", pa.string()),
        # shard location (filled by build-shards)
        pa.field("shard", pa.string()),
        pa.field("shard_pos", pa.int32()),
        pa.field("sample_offset", pa.int64()),
        pa.field("sample_bytes", pa.int64()),
        pa.field("members", pa.list_(MEMBER)),
        pa.field("sample_sha256", pa.string()),
        # payload: fields present and a hash of their .npy bytes in field order (stable from ingest to shards)
        pa.field("fields", pa.list_(pa.string())),
        pa.field("content_sha256", pa.string()),
        pa.field("store_path", pa.string()),
        # provenance
        pa.field("src_path", pa.string(), nullable=False),
        pa.field("src_member", pa.string()),
        pa.field("sub_index", pa.int32()),
        pa.field("src_sha256", pa.string(), nullable=False),
        pa.field("modality", pa.string(), nullable=False),
        # image description
        pa.field("height", pa.int32()),
        pa.field("width", pa.int32()),
        pa.field("channels", pa.int16()),
        pa.field("dtype", pa.string()),
        pa.field("radiometry", pa.string()),
        pa.field("scale", pa.string()),
        pa.field("sensor", pa.string()),
        pa.field("band", pa.string()),
        pa.field("pol", pa.string()),
        pa.field("depression_deg", pa.float32()),
        pa.field("incidence_deg", pa.float32()),
        pa.field("azimuth_deg", pa.float32()),
        pa.field("pixel_spacing_m", pa.list_(pa.float32())),
        pa.field("crs", pa.string()),
        pa.field("bbox", pa.list_(pa.float64())),
        pa.field("gr_version", pa.string()),
        # radar
        pa.field("signal_type", pa.string()),
        pa.field("snr_db", pa.float32()),
        pa.field("n_pulses", pa.int32()),
        pa.field("pulse_width_s", pa.float64()),
        pa.field("pri_s", pa.float64()),
        pa.field("time_delay_s", pa.float64()),
        pa.field("type_id", pa.int32()),
        pa.field("mode", pa.string()),
        # detection (optional, see OPTIONAL_COLUMNS): number of boxes (rows of boxes.npy, instances of inst.npy)
        pa.field("n_boxes", pa.int32()),
        # everything else the adapter knows, canonical JSON (becomes the shard's meta.json)
        pa.field("meta", pa.string()),
    ]
)

SOURCES = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),
        pa.field("src_path", pa.string(), nullable=False),
        pa.field("src_member", pa.string()),
        pa.field("bytes", pa.int64()),
        pa.field("sha256", pa.string()),
        pa.field("adapter", pa.string(), nullable=False),
        pa.field("adapter_version", pa.string(), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("reason", pa.string()),
        pa.field("detail", pa.string()),
        pa.field("error_type", pa.string()),
        pa.field("n_samples", pa.int32(), nullable=False),
    ]
)

SHARDS = pa.schema(
    [
        pa.field("shard", pa.string(), nullable=False),
        pa.field("path", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("shard_index", pa.int32(), nullable=False),
        pa.field("n_samples", pa.int32(), nullable=False),
        pa.field("bytes", pa.int64(), nullable=False),
        pa.field("sha256", pa.string(), nullable=False),
        pa.field("first_key", pa.string(), nullable=False),
        pa.field("last_key", pa.string(), nullable=False),
        pa.field("xxh3_128", pa.string()),  # 1.1.0: XXH3-128 of the file, the loaders' fast check (null: use sha256)
    ]
)

TABLES: dict[str, pa.Schema] = {"samples": SAMPLES, "sources": SOURCES, "shards": SHARDS}

STATUSES = ("ok", "rejected", "skipped")
SPLITS = ("train", "val", "test", "pool", "unlabelled")
MODALITIES = ("sar_image", "iq", "pdw")


def with_metadata(schema: pa.Schema, table: str, config_sha256: str = "") -> pa.Schema:
    """Return ``schema`` carrying sardata's key-value metadata."""
    return schema.with_metadata(
        {
            "sardata.table": table,
            "sardata.schema_version": SCHEMA_VERSION,
            "sardata.config_sha256": config_sha256,
        }
    )
