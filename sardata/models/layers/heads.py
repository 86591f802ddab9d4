"""The classifier-head protocol shared by the SAR (``vit_irpe``) and radar (``radarpos``, ``baselines_1d``)
families: a linear probe freezes everything but ``head`` and keeps the encoder in eval mode even when the trainer
calls ``model.train()`` (so only the head's BatchNorm updates statistics); fine-tuning makes everything
trainable again."""

from __future__ import annotations

from typing import Any

from torch import nn


class FreezableEncoder:
    """Mixin for ``nn.Module`` classifiers whose head lives in ``self.head``."""

    encoder_frozen = False

    def freeze_encoder(self) -> list[nn.Parameter]:
        """Freeze everything but ``head``; the encoder stays in eval mode from now on. Returns the head params."""
        for name, p in self.named_parameters():
            p.requires_grad_(name.startswith("head."))
        self.encoder_frozen = True
        self.train(self.training)
        return [p for p in self.parameters() if p.requires_grad]

    def unfreeze_encoder(self) -> list[nn.Parameter]:
        """Make every parameter trainable again; return them."""
        for p in self.parameters():
            p.requires_grad_(True)
        self.encoder_frozen = False
        self.train(self.training)
        return list(self.parameters())

    def train(self, mode: bool = True) -> Any:
        """As ``nn.Module.train``, but a frozen encoder stays in eval mode (only the head follows ``mode``)."""
        nn.Module.train(self, mode)
        if self.encoder_frozen:
            for name, child in self.named_children():
                if name != "head":
                    child.train(False)
        return self
