"""Source adapters, one module per source; see :mod:`sardata.sources._registry`."""

from sardata.sources._base import FileUnit, MemberStatus, Sample, Source
from sardata.sources._image import decode_image
from sardata.sources._registry import get_source, list_sources

__all__ = ["FileUnit", "MemberStatus", "Sample", "Source", "decode_image", "get_source", "list_sources"]
