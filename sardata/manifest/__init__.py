"""Manifest tables and built datasets: everything that reads, writes or checks the Parquet tables and the card.

* ``schema`` (every table, declared once), ``io`` (table and card I/O with validation), ``card`` (the structure of
  ``dataset.json``), ``rows`` (row values readers use as offsets and names);
* ``keys`` (sample keys), ``splits`` (seeded split and view builders), ``where`` (the ``--where`` filter language);
* operations on a built dataset: ``verify`` (+ ``diff``), ``relocate``, ``merge``, ``export``, ``inspect``.
"""
