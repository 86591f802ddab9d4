"""Trainers: pretraining, few-shot fine-tuning / linear probing, evaluation (consume shards via sardata.stream)."""
