"""Manifest tables: schemas (declared once), building from ingest units, reading with validation."""
