"""LightningModule for pretraining: one packed forward, three objectives, AdamW with warmup and decay."""
from __future__ import annotations

import math
from typing import Callable

import lightning as L
import torch

from omnigenome.model.modeling import OmniGenomeModel
from omnigenome.objectives import PretrainingObjectives


def warmup_decay(optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int = 0,
                 decay: str = "cosine", min_lr_ratio: float = 0.1) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup to the base lr over `warmup_steps`, then `cosine`, `linear` or `constant` decay
    to `min_lr_ratio` x base lr at `total_steps` (optimizer steps)."""
    if decay not in ("cosine", "linear", "constant"):
        raise ValueError(f"decay must be cosine, linear or constant, got {decay!r}")

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        if decay == "constant":
            return 1.0
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        shape = 0.5 * (1 + math.cos(math.pi * progress)) if decay == "cosine" else 1 - progress
        return min_lr_ratio + (1 - min_lr_ratio) * shape

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class PretrainModule(L.LightningModule):
    """Pretrains an OmniGenomeModel on the objectives of `PretrainingObjectives`.

    optimizer: a partial (Hydra `_partial_: true`) taking the parameter groups.
    scheduler: a partial taking (optimizer, total_steps), or None for a constant lr.
    total_steps: the schedule's length; None uses the trainer's estimate (max_steps when set).
    weight_decay applies to matrices and embeddings, not to biases and LayerNorm weights.
    """

    def __init__(self, model: OmniGenomeModel, objectives: PretrainingObjectives, optimizer: Callable,
                 scheduler: Callable | None = None, total_steps: int | None = None, weight_decay: float = 0.01,
                 compile: bool = False):
        super().__init__()
        # Only plain values go into the checkpoint, so it loads with torch.load(weights_only=True).
        self.save_hyperparameters(ignore=["model", "objectives", "optimizer", "scheduler"], logger=False)
        self.model, self.objectives = model, objectives
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        # Heads no objective trains stay frozen: DDP requires every trainable parameter to get a gradient.
        # (The contact head is fitted separately, as in ESM-2.)
        unused = [model.contact_head] + ([] if "seq2str" in objectives.active else [model.structure_head])
        for head in unused:
            head.requires_grad_(False)
        if compile:  # the encoder, with symbolic token counts: one graph for every packed batch
            model.encode = torch.compile(model.encode, dynamic=True)

    def _shared_step(self, batch, stage: str):
        out = self.objectives.losses(self.model, batch)
        on_step = stage == "train"
        for key, value in out.items():
            self.log(f"{stage}/{key}", value, on_step=on_step, on_epoch=not on_step, prog_bar=key == "loss",
                     batch_size=batch["num_records"], sync_dist=not on_step)
        return out["loss"]

    def training_step(self, batch, batch_idx):
        self.log("train/lr", self.trainer.optimizers[0].param_groups[0]["lr"], on_step=True, on_epoch=False,
                 batch_size=1)
        return self._shared_step(batch, "train")

    def validation_step(self, batch, batch_idx):
        return self._shared_step(batch, "val")

    def test_step(self, batch, batch_idx):
        return self._shared_step(batch, "test")

    def on_save_checkpoint(self, checkpoint):
        # The architecture travels with the weights, so a checkpoint can be loaded without its config.
        checkpoint["omnigenome_config"] = self.model.config.to_dict()

    def configure_optimizers(self):
        return configure_optimization(self, self.model.named_parameters())


def configure_optimization(module: L.LightningModule, named_parameters) -> dict:
    """Lightning's optimizer config for a module with `optimizer_factory`, `scheduler_factory` and hparams
    `weight_decay`, `total_steps`: weight decay on matrices only, the schedule stepped every optimizer step."""
    decay, no_decay = [], []
    for _, p in named_parameters:
        if p.requires_grad:
            (decay if p.dim() >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": module.hparams.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    optimizer = module.optimizer_factory(params=groups)
    if module.scheduler_factory is None:
        return optimizer
    total = module.hparams.total_steps or int(module.trainer.estimated_stepping_batches)
    scheduler = module.scheduler_factory(optimizer=optimizer, total_steps=total)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
