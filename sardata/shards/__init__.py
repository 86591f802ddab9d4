"""WebDataset shard planning, writing and the field codec registry."""
