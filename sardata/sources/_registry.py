"""Source registry: CLI id → adapter class.

Modules are listed explicitly (not discovered by import side effects) and imported on first use, so
``sardata --help`` stays fast and a source exists whether or not someone imported its module.
"""

from __future__ import annotations

import importlib

from sardata.errors import SourceNotFoundError
from sardata.sources._base import Source

#: CLI id → "module:Class"
_SOURCES: dict[str, str] = {
    "fusar-ship": "sardata.sources.fusarship:FUSARShip",
    "geotiff": "sardata.sources.geotiff:GeoTIFF",
    "hrsid": "sardata.sources.hrsid:HRSID",
    "msar": "sardata.sources.msar:MSAR",
    "mstar": "sardata.sources.mstar:MSTAR",
    "opensarship": "sardata.sources.opensarship:OpenSARShip",
    "pdwsim": "sardata.sources.pdwsim:PDWSim",
    "radchar": "sardata.sources.radchar:RadChar",
    "sample": "sardata.sources.sample:SAMPLE",
    "sar-acd": "sardata.sources.saracd:SARACD",
    "sar-ship": "sardata.sources.sarship:SARShip",
    "sarsim": "sardata.sources.sarsim:SARSim",
    "sentinel1": "sardata.sources.sentinel1:Sentinel1",
    "sicd": "sardata.sources.sicd:SICD",
    "ssdd": "sardata.sources.ssdd:SSDD",
}


def get_source(source_id: str) -> type[Source]:
    """Return the adapter class for a CLI id."""
    try:
        target = _SOURCES[source_id]
    except KeyError:
        raise SourceNotFoundError(
            f"unknown source {source_id!r}; available: {', '.join(sorted(_SOURCES))} (see `sardata sources list`)"
        ) from None
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)


def list_sources() -> list[type[Source]]:
    """All adapter classes, sorted by id."""
    return [get_source(s) for s in sorted(_SOURCES)]
