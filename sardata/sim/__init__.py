"""Simulators: synthetic SAR target chips (demo data) and, later, radar pulse trains."""
