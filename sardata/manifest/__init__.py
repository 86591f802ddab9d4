"""Manifest tables and built datasets: schemas (declared once), table and card I/O with validation, keys and
splits, and the operations on a built dataset (``verify``, ``relocate``, ``merge``, ``export``, ``inspect``)."""
