"""What both exports (Croissant, Hugging Face) say about a built dataset beyond its tables: where its data come
from (licence and citation from the source cards), when it was built and which version it is.

**Source cards.** ``dataset.json`` records each source's ``id`` and adapter ``version``; the licence and citation
live in the source card ``manifests/sources/<id>.yaml`` of the sardata checkout (or ``cards_dir``). A source whose
card is not found is still listed, with licence and citation ``unknown`` and the reason, never silently dropped.

**Version rule.** ``MAJOR.MINOR.PATCH+<build>``: the version part is the dataset's ``schema_version`` (the layout a
reader must understand: a new major is an incompatible layout), the semver build metadata is the first 12 hex
digits of ``config_sha256`` (which build of that layout: same inputs and configuration give the same digits).
Semver ignores build metadata for precedence, so two builds of one schema compare equal: they are different
builds, not an ordered release history, and the version says no more than that.

**Date.** ``datePublished`` is the card's ``created_at`` (when ``dataset.json`` was written), when it is ISO 8601.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sardata.errors import ConfigError
from sardata.manifest.io import read_card
from sardata.manifest.schema import parse_version

#: the source cards of this checkout (``manifests/sources/<id>.yaml``); absent from a wheel install
SOURCE_CARDS = Path(__file__).resolve().parents[2] / "manifests" / "sources"
_SOURCE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_HEX = re.compile(r"^[0-9a-f]{12,64}$")


@dataclass(frozen=True)
class SourceInfo:
    """One input source of a dataset, as its card describes it (``found``: whether the card was read)."""

    id: str
    version: str
    name: str
    licence: str
    citation: str
    homepage: str
    found: bool


def dataset_card(root: Path) -> dict[str, Any]:
    """``dataset.json`` of a built dataset (exports describe build-shards outputs, not ingest outputs)."""
    card = read_card(root)
    if card.get("kind", "dataset") != "dataset":
        raise ConfigError(f"{root}: export describes built datasets (build-shards output), not {card.get('kind')}")
    return card


def _text(value: Any) -> str:
    """A card value as one line of text (YAML folded scalars end in a newline)."""
    return " ".join(str(value).split()) if value is not None else ""


def _read_source_card(path: Path) -> dict[str, Any] | None:
    import yaml

    if not path.is_file():
        return None
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the source card ({exc})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a source card is a YAML mapping (licence, citation, homepage...)")
    return data


def source_infos(card: dict[str, Any], cards_dir: Path | None = None) -> list[SourceInfo]:
    """The dataset's sources in card order, each with the licence and citation of its source card."""
    folder = SOURCE_CARDS if cards_dir is None else Path(cards_dir)
    out = []
    for entry in card.get("sources", []):
        sid, version = entry.get("id"), _text(entry.get("version")) or "unknown"
        if not isinstance(sid, str) or not _SOURCE_ID.match(sid):
            out.append(SourceInfo(_text(sid), version, "", "unknown: the card names no valid source id",
                                  "unknown: the card names no valid source id", "", False))  # fmt: skip
            continue
        data = _read_source_card(folder / f"{sid}.yaml")
        if data is None:
            why = f"unknown: no source card {sid}.yaml was found (manifests/sources of a sardata checkout)"
            out.append(SourceInfo(sid, version, sid, why, why, "", False))
            continue
        out.append(SourceInfo(sid, version, _text(data.get("name")) or sid, _text(data.get("licence")) or "unknown",
                              _text(data.get("citation")) or "unknown", _text(data.get("homepage")), True))  # fmt: skip
    return out


def dataset_version(card: dict[str, Any]) -> str:
    """Semver of a built dataset: ``schema_version`` + build metadata from ``config_sha256`` (module docstring)."""
    try:
        major, minor, patch = parse_version(str(card.get("schema_version", "")))
    except ValueError:
        major, minor, patch = 0, 0, 0
    sha = card.get("config_sha256")
    build = f"+{sha[:12]}" if isinstance(sha, str) and _HEX.match(sha) else ""
    return f"{major}.{minor}.{patch}{build}"


def date_published(card: dict[str, Any]) -> str | None:
    """The card's ``created_at`` when it is an ISO 8601 date-time (None otherwise)."""
    created = card.get("created_at")
    if not isinstance(created, str):
        return None
    try:
        datetime.datetime.fromisoformat(created)
    except ValueError:
        return None
    return created


__all__ = ["SOURCE_CARDS", "SourceInfo", "dataset_card", "dataset_version", "date_published", "source_infos"]
