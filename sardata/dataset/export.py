"""``sardata manifest export``: describe a built dataset for other tools.

- ``croissant``: Croissant 1.0 JSON-LD that passes ``mlcroissant validate`` with no warnings, with licence,
  citation, date and version, and record sets that reach the ``.npy`` tar members
  (:mod:`sardata.dataset.export_croissant`);
- ``hf``: a Hugging Face dataset card (``README.md``) with which ``datasets.load_dataset(DS)`` reads the shards
  as typed features: ``Array2D``..``Array5D`` arrays, a ``ClassLabel``, the dataset's splits
  (:mod:`sardata.dataset.export_hf`).

Licence, citation, date and version come from :mod:`sardata.dataset.export_meta`. Neither export copies or
converts data: both are text written next to the dataset (``--out DS/croissant.json``, ``--out DS/README.md``).
"""

from __future__ import annotations

import json
import os

from sardata.dataset.export_croissant import CROISSANT_CONFORMS_TO, CROISSANT_CONTEXT, croissant
from sardata.dataset.export_hf import hf_card, hf_dataset_info
from sardata.errors import ConfigError

FORMATS = ("croissant", "hf")


def export(root: str | os.PathLike[str], fmt: str, cards_dir: str | os.PathLike[str] | None = None) -> str:
    """The export of a built dataset as text (JSON-LD for ``croissant``, a ``README.md`` card for ``hf``);
    ``cards_dir``: the source cards' folder (default: the checkout's ``manifests/sources``)."""
    if fmt == "croissant":
        return json.dumps(croissant(root, cards_dir), indent=2, ensure_ascii=False) + "\n"
    if fmt == "hf":
        return hf_card(root, cards_dir)
    raise ConfigError(f"export format {fmt!r}; choose from {FORMATS}")


__all__ = ["CROISSANT_CONFORMS_TO", "CROISSANT_CONTEXT", "FORMATS", "croissant", "export", "hf_card", "hf_dataset_info"]
