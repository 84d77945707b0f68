"""Low-rank adapters (LoRA) for nn.Linear, small enough to commit, merged at build time.

Written here rather than taken from `peft` because it is 40 lines and the build must merge
the adapters into plain BERT weights anyway (the built model is an ordinary checkpoint).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class LoRALinear(nn.Module):
    """y = base(x) + (alpha / r) * B(A(dropout(x))); base stays frozen."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float = 0.0) -> None:
        super().__init__()
        self.base = base
        self.rank = rank
        self.scaling = alpha / rank
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (self.dropout(x) @ self.lora_A.T @ self.lora_B.T) * self.scaling

    def delta(self) -> torch.Tensor:
        return (self.lora_B @ self.lora_A) * self.scaling


LORA_TARGETS = ("query", "key", "value", "attention.output.dense", "intermediate.dense",
                "output.dense")


def add_lora(model: nn.Module, rank: int, alpha: float, dropout: float = 0.0) -> list[str]:
    """Wrap every encoder Linear whose name ends with a target; return the wrapped names."""
    wrapped = []
    for name, module in list(model.named_modules()):
        if ".encoder.layer." not in f".{name}" or not isinstance(module, nn.Linear):
            continue
        if not name.endswith(LORA_TARGETS):
            continue
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        setattr(parent, child, LoRALinear(module, rank, alpha, dropout))
        wrapped.append(name)
    return wrapped


def merge_lora(model: nn.Module) -> None:
    """Fold every LoRALinear back into a plain nn.Linear (in place)."""
    for name, module in list(model.named_modules()):
        if isinstance(module, LoRALinear):
            with torch.no_grad():
                module.base.weight += module.delta().to(module.base.weight.dtype)
            parent_name, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent_name), child, module.base)
