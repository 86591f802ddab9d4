"""Shard locations and a verified, size-limited LRU cache for remote shards (``data-contract.md`` §6): the names
callers have always imported from here, gathered from the modules that now hold them.

Why a gathering module: ``from sardata.stream.remote import ShardCache`` is documented (README) and used by
callers; the code itself lives by concern —

* :mod:`sardata.location`: the allow-list of locations (relative paths, ``file://``, ``http(s)://``, ``s3://``,
  plus the fsspec schemes a program trusts; nothing a manifest says is ever executed) and how a relative shard
  path joins a dataset location;
* :mod:`sardata.stream.cache`: :class:`ShardCache`, verified copies named by sha256 with an LRU limit and pins;
* :mod:`sardata.stream.transport`: the byte transports, all through fsspec (S3 endpoint and credential settings
  there);
* :mod:`sardata.stream.temps`: naming and cleanup of the temp files of downloads.
"""

from __future__ import annotations

from sardata.atomic import TMP_PREFIX
from sardata.location import ALLOWED_SCHEMES, REMOTE_SCHEMES, check_location, local_file, resolve, trust_schemes
from sardata.stream.cache import CACHE_ENV, ShardCache
from sardata.stream.temps import STALE_TEMP_S, remove_dead_temps
from sardata.stream.transport import CHUNK, HTTP_TIMEOUT_S, S3_ANON_ENV, S3_ENDPOINT_ENV, Opener

__all__ = [
    "ALLOWED_SCHEMES",
    "CACHE_ENV",
    "CHUNK",
    "HTTP_TIMEOUT_S",
    "REMOTE_SCHEMES",
    "S3_ANON_ENV",
    "S3_ENDPOINT_ENV",
    "STALE_TEMP_S",
    "TMP_PREFIX",
    "Opener",
    "ShardCache",
    "check_location",
    "local_file",
    "remove_dead_temps",
    "resolve",
    "trust_schemes",
]
