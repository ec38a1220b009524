"""LightningModule for fine-tuning: a `TaskModel` (backbone, LoRA, head) trained on one task's loss.

The backbone trains whole (default), stays frozen (`freeze_encoder`: it then runs without autograd), or
trains only LoRA updates of its attention query and value projections (`lora.rank > 0`). Validation and test
metrics are the task's (`omnigenome.metrics.task_metrics`), computed over every scored item of the split at
the end of the epoch and logged as `val/<metric>` / `test/<metric>`, beside the loss over the same items.

Checkpoints carry the backbone's architecture and tokenizer (`Backbone.spec`) and the resolved task config
(in the hyper-parameters), so `evaluate.py` and `omnigenome predict` rebuild the model from the checkpoint
alone (`omnigenome.model.task.load_task_model`).
"""
from __future__ import annotations

import logging
from typing import Callable

import lightning as L
import torch

from omnigenome.constants import TOKEN_HEADS
from omnigenome.finetune.datamodule import plain_task
from omnigenome.metrics import task_metrics
from omnigenome.model.backbones import Backbone
from omnigenome.model.heads import scored_mask, task_loss
from omnigenome.model.task import TaskModel
from omnigenome.training.module import configure_optimization

log = logging.getLogger("omnigenome")


class FinetuneModule(L.LightningModule):
    """Fine-tunes a backbone on one task.

    backbone: a Backbone (see `omnigenome.model.loading.load_backbone`).
    task: the task config (head, num_labels, class_weights, metrics, monitor, ...).
    optimizer / scheduler: partials as in `PretrainModule` (scheduler takes (optimizer, total_steps)).
    head_dropout, pooling, freeze_encoder, lora, structure_input: see `TaskModel`.
    """

    def __init__(self, backbone: Backbone, task, optimizer: Callable | None = None,
                 scheduler: Callable | None = None, total_steps: int | None = None, weight_decay: float = 0.01,
                 head_dropout: float = 0.1, pooling: str = "mean", freeze_encoder: bool = False,
                 lora: dict | None = None, structure_input: bool = False):
        super().__init__()
        task = plain_task(task)
        lora = dict(lora or {})
        # Plain values only, so a checkpoint loads with torch.load(weights_only=True).
        self.save_hyperparameters({"task": task, "total_steps": total_steps, "weight_decay": weight_decay,
                                   "head_dropout": head_dropout, "pooling": pooling,
                                   "freeze_encoder": bool(freeze_encoder), "lora": lora,
                                   "structure_input": bool(structure_input)}, logger=False)
        self.task = task
        self.model = TaskModel(backbone, task, head_dropout, pooling, freeze_encoder, lora, structure_input)
        self.head_type = self.model.head_type
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        weights = task.get("class_weights")
        self.register_buffer("class_weights", torch.tensor(weights, dtype=torch.float32) if weights else None,
                             persistent=False)
        self._outputs: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    @property
    def backbone(self) -> Backbone:
        return self.model.backbone

    def forward(self, batch: dict) -> torch.Tensor:
        return self.model(batch)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return task_loss(self.head_type, logits, labels, self.class_weights)

    def training_step(self, batch, batch_idx):
        loss = self.loss(self(batch), batch["labels"])
        self.log("train/loss", loss, on_step=True, on_epoch=False, prog_bar=True, batch_size=batch["num_records"])
        self.log("train/lr", self.trainer.optimizers[0].param_groups[0]["lr"], on_step=True, on_epoch=False,
                 batch_size=1)
        return loss

    # --- evaluation -----------------------------------------------------------------------------
    def _eval_step(self, batch):
        preds, labels = self(batch).detach().float(), batch["labels"]
        records = batch["record_index"]
        if self.head_type in TOKEN_HEADS:
            records = records[batch["nucleotide_seq"]]  # the record of every nucleotide
        keep = scored_mask(self.head_type, labels)
        self._outputs.append((preds[keep].cpu(), labels[keep].cpu(), records[keep].cpu()))

    def validation_step(self, batch, batch_idx):
        self._eval_step(batch)

    def test_step(self, batch, batch_idx):
        self._eval_step(batch)

    def on_validation_epoch_start(self):
        self._outputs = []

    on_test_epoch_start = on_validation_epoch_start

    def epoch_predictions(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(preds, targets, records) of every scored item of the last evaluated split: head outputs (N, C),
        labels (N,) or (N, C), and the index in the split of the record each item belongs to (N,)."""
        return tuple(torch.cat([out[k] for out in self._outputs]) for k in range(3))

    def _log_metrics(self, stage: str):
        if not self._outputs:
            return
        preds, targets, _ = self.epoch_predictions()
        if preds.shape[0] == 0:
            log.warning("%s: no scored items in this split", stage)
            return
        metrics = task_metrics(list(self.task["metrics"]), preds, targets, self.head_type,
                               int(self.task["num_labels"]), probabilities=False)
        # The loss over all scored items of the split (not a mean of batch means: independent of the batching).
        weights = None if self.class_weights is None else self.class_weights.cpu()
        metrics["loss"] = float(task_loss(self.head_type, preds, targets, weights))
        metrics["items"] = float(preds.shape[0])
        # Every rank scored the whole split (see the datamodule), so the values agree without syncing.
        self.log_dict({f"{stage}/{k}": float(v) for k, v in metrics.items()}, prog_bar=stage == "val", batch_size=1)

    def on_validation_epoch_end(self):
        if not self.trainer.sanity_checking:
            self._log_metrics("val")

    def on_test_epoch_end(self):
        self._log_metrics("test")

    # --- checkpoints and optimisation --------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint):
        checkpoint["backbone"] = self.backbone.spec()

    def configure_optimizers(self):
        if self.optimizer_factory is None:
            raise ValueError("FinetuneModule was built without an optimizer (evaluation only)")
        return configure_optimization(self, self.named_parameters())

    def trainable_parameters(self) -> dict[str, int]:
        """Trainable parameter counts: backbone (incl. LoRA) and head."""
        count = lambda ps: sum(p.numel() for p in ps if p.requires_grad)  # noqa: E731
        return {"backbone": count(self.backbone.parameters()), "head": count(self.model.head.parameters())}

    @classmethod
    def from_checkpoint(cls, path: str, attention_backend: str = "auto") -> "FinetuneModule":
        """The module of a fine-tuned checkpoint (backbone, LoRA, head and task from the file), for evaluation."""
        from omnigenome.model.loading import backbone_from_spec
        from omnigenome.model.task import read_task_checkpoint
        ckpt = read_task_checkpoint(path)
        module = cls(backbone_from_spec(ckpt["backbone"], attention_backend), **ckpt["hyper_parameters"])
        module.load_state_dict(ckpt["state_dict"])
        return module.eval()
