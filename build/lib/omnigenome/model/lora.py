"""LoRA (Hu et al. 2021) on the attention query and value projections of any backbone.

A backbone names its projections (`Backbone.attention_projections`): a linear layer and, for a fused
query-key-value projection (OmniGenome's `qkv`, H -> 3H), the output rows of the query and the value. Each
becomes a `LoRALinear`: the frozen base output plus `alpha / rank * up(down(x))` on those rows. `up` starts
at zero, so a freshly wrapped model computes exactly what the base model computes.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn


class LoRALinear(nn.Module):
    """A linear layer with low-rank updates of some of its output rows.

    parts: (start, stop) output rows that each get their own update (the query and value thirds of a fused
    qkv projection); None: the whole output.
    """

    def __init__(self, base: nn.Linear, rank: int, alpha: float = 16.0, dropout: float = 0.0,
                 parts: Sequence[tuple[int, int]] | None = None):
        super().__init__()
        if rank < 1:
            raise ValueError(f"LoRA rank must be >= 1, got {rank}")
        self.base, self.rank, self.scale = base, rank, alpha / rank
        self.parts = [tuple(p) for p in (parts or [(0, base.out_features)])]
        if any(not 0 <= a < b <= base.out_features for a, b in self.parts) or self.parts != sorted(self.parts):
            raise ValueError(f"LoRA parts {self.parts} must be ordered rows of the {base.out_features} outputs")
        self.dropout = nn.Dropout(dropout)
        self.down = nn.ModuleList(nn.Linear(base.in_features, rank, bias=False) for _ in self.parts)
        self.up = nn.ModuleList(nn.Linear(rank, b - a, bias=False) for a, b in self.parts)
        for down, up in zip(self.down, self.up):
            nn.init.kaiming_uniform_(down.weight, a=5 ** 0.5)  # nn.Linear's own initialisation
            nn.init.zeros_(up.weight)
        base.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_in = self.dropout(x)
        pieces, at = [], 0
        for (a, b), down, up in zip(self.parts, self.down, self.up):
            delta = up(down(x_in)) * self.scale
            if a > at:
                pieces.append(delta.new_zeros(*delta.shape[:-1], a - at))
            pieces.append(delta)
            at = b
        if at < self.base.out_features:
            pieces.append(pieces[-1].new_zeros(*pieces[-1].shape[:-1], self.base.out_features - at))
        return self.base(x) + torch.cat(pieces, dim=-1)

    @torch.no_grad()
    def merged(self) -> nn.Linear:
        """A plain linear layer computing the same function (for export without this wrapper)."""
        out = nn.Linear(self.base.in_features, self.base.out_features, bias=self.base.bias is not None)
        out = out.to(self.base.weight)
        out.load_state_dict(self.base.state_dict())
        for (a, b), down, up in zip(self.parts, self.down, self.up):
            out.weight[a:b] += self.scale * up.weight @ down.weight
        return out


def _parent(root: nn.Module, name: str) -> tuple[nn.Module, str]:
    *path, attr = name.split(".")
    module = root
    for part in path:
        module = getattr(module, part)
    return module, attr


def apply_lora(backbone, rank: int, alpha: float = 16.0, dropout: float = 0.0) -> list[nn.Parameter]:
    """Freeze the backbone and wrap its attention query and value projections with LoRA; returns the new
    (trainable) parameters. Raises ValueError when the backbone names no projections."""
    projections = backbone.attention_projections()
    if not projections:
        raise ValueError(f"LoRA: found no attention query/value projections in {backbone.name}; "
                         f"fine-tune it whole or with freeze_encoder=true instead")
    backbone.requires_grad_(False)
    params = []
    for name, parts in projections:
        parent, attr = _parent(backbone, name)
        wrapped = LoRALinear(getattr(parent, attr), rank, alpha, dropout, parts)
        setattr(parent, attr, wrapped)
        params += [p for n, p in wrapped.named_parameters() if not n.startswith("base.")]
    return params


def merge_lora(module: nn.Module) -> nn.Module:
    """Fold every LoRA update into its base weights in place (the model then saves like one never wrapped)."""
    for name, child in list(module.named_modules()):
        if isinstance(child, LoRALinear):
            parent, attr = _parent(module, name)
            setattr(parent, attr, child.merged())
    return module
