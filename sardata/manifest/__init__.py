"""Manifest tables: the shared contract every layer above reads and writes (the Parquet tables and the card).

* ``schema`` (every table, declared once), ``io`` (table and card I/O with validation), ``card`` (the structure of
  ``dataset.json``), ``rows`` (row values readers use as offsets and names);
* ``keys`` (sample keys), ``splits`` (seeded split and view builders), ``where`` (the ``--where`` filter language).

Operations on a built dataset (verify, diff, relocate, merge, export, inspect) live above the shard writer and the
loaders, in :mod:`sardata.dataset`; where a dataset's shards are is :mod:`sardata.stream.locate`.
"""
