"""LoRA for the radar (and any plain-Linear ViT) classifiers: peft by default, an in-house fallback without it.

``apply_lora(model)`` targets the attention Linears by the regex of ``radar.md`` §4.3
(``blocks\\.\\d+\\.attn\\.(qkv|proj)``; ``targets="attn+mlp"`` adds ``mlp.fc1|fc2``; ``targets="qv"`` the separate
``attn.q|v`` Linears of a ``qkv="separate"`` model, as in the LoRA paper). Everything else is frozen — patch embed,
norms, cls token — except the classifier ``head``, which stays fully trainable (peft ``modules_to_save``).

Both backends compute ``base(x) + (α/r)·B(A(dropout(x)))`` with A Kaiming-uniform(a = √5) and B = 0, so the wrapped
model starts equal to the original. Install the final head (``reset_classifier``) **before** ``apply_lora``: peft
keeps its own trainable copy of ``head``. LoRA dropout draws from torch's global RNG in both backends (peft's
layers do, and the fallback mirrors them); the adapter init draws
from the global RNG, or from ``seed`` through a forked RNG when one is given.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal

import torch
from torch import nn

from sardata.errors import ConfigError, DependencyNotFoundError
from sardata.models.layers.seq import forked_rng

Targets = Literal["attn", "attn+mlp", "qv"]

#: target regexes (``re.fullmatch`` against the module's qualified name, as peft does for a string)
TARGET_PATTERNS: dict[str, str] = {
    "attn": r"blocks\.\d+\.attn\.(qkv|proj)",
    "attn+mlp": r"blocks\.\d+\.(attn\.(qkv|proj)|mlp\.(fc1|fc2))",
    "qv": r"blocks\.\d+\.attn\.(q|v)",
}

#: modules kept fully trainable next to the adapters
HEAD_MODULES = ["head"]


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable low-rank update: ``base(x) + (alpha / r)·lora_B(lora_A(drop(x)))``.

    Same math and init as peft's ``lora.Linear`` (A Kaiming-uniform with a = √5, B zero), so copying A and B between
    the two gives equal outputs.
    """

    def __init__(self, base: nn.Linear, r: int = 8, alpha: float = 16, dropout: float = 0.1) -> None:
        super().__init__()
        if r <= 0:
            raise ConfigError(f"LoRA rank must be positive, got {r}")
        self.base_layer = base
        for p in base.parameters():
            p.requires_grad_(False)
        factory = {"device": base.weight.device, "dtype": base.weight.dtype}
        self.lora_A = nn.Linear(base.in_features, r, bias=False, **factory)
        self.lora_B = nn.Linear(r, base.out_features, bias=False, **factory)
        self.lora_dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.r, self.alpha, self.scaling = r, alpha, alpha / r
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)

    @property
    def in_features(self) -> int:
        return self.base_layer.in_features

    @property
    def out_features(self) -> int:
        return self.base_layer.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base_layer(x) + self.lora_B(self.lora_A(self.lora_dropout(x))) * self.scaling

    def merged(self) -> nn.Linear:
        """A plain Linear with ``W + scaling·B·A`` folded in (for export / inference)."""
        out = nn.Linear(self.in_features, self.out_features, bias=self.base_layer.bias is not None)
        out = out.to(self.base_layer.weight.device, self.base_layer.weight.dtype)
        with torch.no_grad():
            out.weight.copy_(self.base_layer.weight + self.scaling * self.lora_B.weight @ self.lora_A.weight)
            if self.base_layer.bias is not None:
                out.bias.copy_(self.base_layer.bias)
        return out


def lora_target_names(model: nn.Module, targets: Targets = "attn") -> list[str]:
    """Qualified names of the ``nn.Linear`` modules a LoRA of ``targets`` adapts (module order)."""
    if targets not in TARGET_PATTERNS:
        raise ConfigError(f"LoRA targets must be one of {sorted(TARGET_PATTERNS)}, got {targets!r}")
    pattern = re.compile(TARGET_PATTERNS[targets])
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    names = [n for n in linears if pattern.fullmatch(n)]
    if targets != "qv" and any(re.fullmatch(r"blocks\.\d+\.attn\.[qkv]", n) for n in linears):
        names = []  # separate q/k/v: "attn" would silently adapt proj only
    if not names:
        hint = " (a qkv='separate' model needs targets='qv')" if targets != "qv" else " (needs qkv='separate')"
        raise ConfigError(f"LoRA targets {targets!r} match no Linear in {type(model).__name__}{hint}")
    return names


def trainable_parameter_count(model: nn.Module) -> int:
    """Number of scalar parameters with ``requires_grad`` (each shared tensor once)."""
    seen: set[int] = set()
    total = 0
    for p in model.parameters():
        if p.requires_grad and id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
    return total


def apply_lora(
    model: nn.Module,
    r: int = 8,
    alpha: float = 16,
    dropout: float = 0.1,
    targets: Targets = "attn",
    backend: Literal["peft", "builtin"] = "peft",
    seed: int | None = None,
) -> Any:
    """Wrap ``model`` for LoRA fine-tuning; returns the model to train.

    ``backend="peft"`` returns a ``peft.PeftModel`` (attributes and methods such as ``forward_features`` or
    ``task`` reach the wrapped model; ``.base_model.targeted_module_names`` lists the adapted Linears).
    ``backend="builtin"`` swaps :class:`LoRALinear` in place and returns ``model`` itself.
    """
    names = lora_target_names(model, targets)  # validates before any change
    if not hasattr(model, "head"):
        raise ConfigError(f"{type(model).__name__} has no `head`; LoRA fine-tuning expects a classifier")
    device = next(model.parameters()).device
    if backend == "peft":
        return _apply_peft(model, r, alpha, dropout, targets, seed, device)
    if backend != "builtin":
        raise ConfigError(f"LoRA backend must be 'peft' or 'builtin', got {backend!r}")
    for p in model.parameters():
        p.requires_grad_(False)
    with forked_rng(seed, device):
        for name in names:
            parent, _, child = name.rpartition(".")
            owner = model.get_submodule(parent) if parent else model
            setattr(owner, child, LoRALinear(getattr(owner, child), r=r, alpha=alpha, dropout=dropout))
    for name in HEAD_MODULES:
        for p in model.get_submodule(name).parameters():
            p.requires_grad_(True)
    return model


def _apply_peft(
    model: nn.Module, r: int, alpha: float, dropout: float, targets: str, seed: int | None, device: torch.device
) -> Any:
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as exc:
        raise DependencyNotFoundError(
            "LoRA with backend='peft' needs peft: pip install 'sardata[train]' (or use backend='builtin')"
        ) from exc
    config = LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=TARGET_PATTERNS[targets],
        modules_to_save=list(HEAD_MODULES),
    )
    with forked_rng(seed, device):
        return get_peft_model(model, config)
