"""Manifest tables: schemas (declared once), building from ingest parts, reading with validation."""
