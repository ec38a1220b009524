"""LoRA (Hu et al. 2021) on the attention query and value projections of an OmniGenomeModel.

Each block's fused `qkv` linear (H -> 3H: query, key, value stacked) is wrapped: the frozen base output
plus `alpha / rank * up(down(x))` added to its query and value thirds. `up` starts at zero, so a freshly
wrapped model computes exactly what the base model computes.
"""
from __future__ import annotations

import torch
import torch.nn as nn


class LoRAQKV(nn.Module):
    """A block's `qkv` projection with low-rank updates of its query and value parts."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float = 16.0, dropout: float = 0.0):
        super().__init__()
        hidden = base.in_features
        if base.out_features != 3 * hidden:
            raise ValueError(f"expected a fused qkv projection {hidden} -> {3 * hidden}, got -> {base.out_features}")
        if rank < 1:
            raise ValueError(f"LoRA rank must be >= 1, got {rank}")
        self.base, self.rank, self.scale = base, rank, alpha / rank
        self.dropout = nn.Dropout(dropout)
        self.q_down, self.v_down = nn.Linear(hidden, rank, bias=False), nn.Linear(hidden, rank, bias=False)
        self.q_up, self.v_up = nn.Linear(rank, hidden, bias=False), nn.Linear(rank, hidden, bias=False)
        for down, up in ((self.q_down, self.q_up), (self.v_down, self.v_up)):
            nn.init.kaiming_uniform_(down.weight, a=5 ** 0.5)  # nn.Linear's own initialisation
            nn.init.zeros_(up.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_in = self.dropout(x)
        dq = self.q_up(self.q_down(x_in)) * self.scale
        dv = self.v_up(self.v_down(x_in)) * self.scale
        return self.base(x) + torch.cat([dq, torch.zeros_like(dq), dv], dim=-1)

    @torch.no_grad()
    def merged(self) -> nn.Linear:
        """A plain linear layer computing the same function (for export without this wrapper)."""
        hidden = self.base.in_features
        out = nn.Linear(hidden, 3 * hidden).to(self.base.weight)
        out.load_state_dict(self.base.state_dict())
        out.weight[:hidden] += self.scale * self.q_up.weight @ self.q_down.weight
        out.weight[2 * hidden:] += self.scale * self.v_up.weight @ self.v_down.weight
        return out


def apply_lora(model: nn.Module, rank: int, alpha: float = 16.0, dropout: float = 0.0) -> list[nn.Parameter]:
    """Freeze the encoder and wrap every block's qkv with LoRA; returns the new (trainable) parameters."""
    model.requires_grad_(False)
    params = []
    for block in model.layers:
        block.qkv = LoRAQKV(block.qkv, rank, alpha, dropout)
        block.qkv.base.requires_grad_(False)
        params += [p for n, p in block.qkv.named_parameters() if not n.startswith("base.")]
    return params


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold the LoRA updates into the base weights in place (the model then saves like any OmniGenomeModel)."""
    for block in model.layers:
        if isinstance(block.qkv, LoRAQKV):
            block.qkv = block.qkv.merged()
    return model
