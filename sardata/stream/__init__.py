"""Streaming and map-style access to built datasets, with order, length, resume and cache guarantees."""
