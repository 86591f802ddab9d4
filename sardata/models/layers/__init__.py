"""Reusable layers: iRPE attention, patch embedding, LoRA fallback."""
