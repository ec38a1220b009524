"""LightningModule for fine-tuning: the pretrained encoder, one task head, the task's loss and metrics.

The encoder trains whole (default), stays frozen (`freeze_encoder`: it then runs without autograd), or
trains only LoRA updates of its attention query and value projections (`lora.rank > 0`). Its masked-LM,
structure and contact heads are never used here and stay frozen. Validation and test metrics are the
task's (`omnigenome.metrics.task_metrics`), computed over every scored item of the split at the end of
the epoch and logged as `val/<metric>` / `test/<metric>`, beside the loss over the same items (`val/loss`).

Checkpoints carry the architecture (`omnigenome_config`) and the resolved task config (in the hyper-
parameters), so `python evaluate.py task=... ckpt=<best.ckpt>` rebuilds encoder, LoRA and head without
the training config.
"""
from __future__ import annotations

import logging
from typing import Callable

import lightning as L
import torch

from omnigenome.finetune.datamodule import plain_task
from omnigenome.finetune.heads import TaskHead, check_head, head_inputs, scored_items, task_loss
from omnigenome.model.attention import PackedLayout
from omnigenome.model.modeling import OmniGenomeModel
from omnigenome.training.module import configure_optimization

log = logging.getLogger("omnigenome")


def task_metrics(names, preds, targets, head, num_labels) -> dict[str, float]:
    """`omnigenome.metrics.task_metrics` (the one implementation of every metric) of logits / values."""
    from omnigenome.metrics import task_metrics as metrics_fn
    return metrics_fn(list(names), preds, targets, head, num_labels, probabilities=False)


class FinetuneModule(L.LightningModule):
    """Fine-tunes an OmniGenomeModel on one task.

    task: the task config (head, num_labels, class_weights, metrics, monitor, ...).
    optimizer / scheduler: partials as in `PretrainModule` (scheduler takes (optimizer, total_steps)).
    head_dropout: dropout inside the head. pooling: "mean" over nucleotides or "cls" (sequence heads).
    freeze_encoder: train the head only. lora: {"rank", "alpha", "dropout"}; rank > 0 trains LoRA + head.
    structure_input: recorded for evaluation (the datamodule feeds `seq <eos> struct <eos>`).
    """

    def __init__(self, model: OmniGenomeModel, task, optimizer: Callable | None = None,
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
        self.task, self.head_type = task, check_head(task["head"])
        self.pooling = pooling
        self.model = model
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        for unused in (model.mlm_head, model.structure_head, model.contact_head):
            unused.requires_grad_(False)
        self.lora_rank = int(lora.get("rank") or 0)
        if self.lora_rank > 0:
            from omnigenome.finetune.lora import apply_lora
            apply_lora(model, self.lora_rank, float(lora.get("alpha", 16.0)), float(lora.get("dropout", 0.0)))
        elif freeze_encoder:
            model.requires_grad_(False)
        self.encoder_trains = any(p.requires_grad for p in model.parameters())
        self.head = TaskHead(model.config.hidden_size, int(task["num_labels"]), head_dropout)
        weights = task.get("class_weights")
        self.register_buffer("class_weights", torch.tensor(weights, dtype=torch.float32) if weights else None,
                             persistent=False)
        self._outputs: list[tuple[torch.Tensor, torch.Tensor]] = []

    # --- forward and loss ---------------------------------------------------------------------
    def forward(self, batch: dict) -> torch.Tensor:
        """Head outputs: (S, C) per sequence or (N, C) per nucleotide (the order of batch["labels"])."""
        layout = PackedLayout.from_cu_seqlens(batch["cu_seqlens"])
        with torch.set_grad_enabled(self.encoder_trains and torch.is_grad_enabled()):
            hidden = self.model.encode(batch["input_ids"], layout, batch["position_ids"])
        return self.head(head_inputs(hidden, batch, self.head_type, self.pooling))

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return task_loss(self.head_type, logits, labels, self.class_weights)

    def training_step(self, batch, batch_idx):
        loss = self.loss(self(batch), batch["labels"])
        self.log("train/loss", loss, on_step=True, on_epoch=False, prog_bar=True, batch_size=batch["num_records"])
        return loss

    # --- evaluation -----------------------------------------------------------------------------
    def _eval_step(self, batch, stage: str):
        preds, targets = scored_items(self.head_type, self(batch).detach().float(), batch["labels"])
        self._outputs.append((preds.cpu(), targets.cpu()))

    def validation_step(self, batch, batch_idx):
        self._eval_step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._eval_step(batch, "test")

    def on_validation_epoch_start(self):
        self._outputs = []

    on_test_epoch_start = on_validation_epoch_start

    def epoch_predictions(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(preds, targets) of every scored item of the last evaluated split."""
        preds = torch.cat([p for p, _ in self._outputs])
        targets = torch.cat([t for _, t in self._outputs])
        return preds, targets

    def _log_metrics(self, stage: str):
        if not self._outputs:
            return
        preds, targets = self.epoch_predictions()
        if preds.shape[0] == 0:
            log.warning("%s: no scored items in this split", stage)
            return
        metrics = task_metrics(self.task["metrics"], preds, targets, self.head_type, int(self.task["num_labels"]))
        # The loss over all scored items of the split (not a mean of batch means: independent of the batching).
        weights = None if self.class_weights is None else self.class_weights.cpu()
        metrics["loss"] = float(task_loss(self.head_type, preds, targets, weights))
        # Every rank scored the whole split (see the datamodule), so the values agree without syncing.
        self.log_dict({f"{stage}/{k}": float(v) for k, v in metrics.items()}, prog_bar=stage == "val",
                      batch_size=1)

    def on_validation_epoch_end(self):
        if not self.trainer.sanity_checking:
            self._log_metrics("val")

    def on_test_epoch_end(self):
        self._log_metrics("test")

    # --- checkpoints and optimisation --------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint):
        checkpoint["omnigenome_config"] = self.model.config.to_dict()

    def configure_optimizers(self):
        if self.optimizer_factory is None:
            raise ValueError("FinetuneModule was built without an optimizer (evaluation only)")
        return configure_optimization(self, self.named_parameters())

    def trainable_parameters(self) -> dict[str, int]:
        """Trainable parameter counts: encoder (incl. LoRA) and head."""
        count = lambda ps: sum(p.numel() for p in ps if p.requires_grad)  # noqa: E731
        return {"encoder": count(self.model.parameters()), "head": count(self.head.parameters())}


def load_finetuned(path: str, attention_backend: str = "auto") -> FinetuneModule:
    """A FinetuneModule (encoder, LoRA, head) from a checkpoint written by `train.py experiment=finetune`."""
    from pathlib import Path

    from omnigenome.model.modeling import OmniGenomeConfig
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    hp = ckpt.get("hyper_parameters") or {}
    if "omnigenome_config" not in ckpt or "task" not in hp:
        raise ValueError(f"{path}: not a fine-tuning checkpoint of train.py experiment=finetune (no task config)")
    model = OmniGenomeModel(OmniGenomeConfig(**ckpt["omnigenome_config"]), attention_backend=attention_backend)
    module = FinetuneModule(model, **hp)
    module.load_state_dict(ckpt["state_dict"])
    module.eval()
    return module
