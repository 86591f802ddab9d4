"""Feature targets computed from images (gradient-by-ratio)."""
