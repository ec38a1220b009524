"""A fine-tuned model: a backbone, optionally LoRA on its attention, and one task head (plain torch).

`TaskModel` is what the fine-tuning module trains (omnigenome.finetune.module) and what
`omnigenome predict` / `omnigenome.load(...).predict(...)` run; `load_task_model` rebuilds it from a
checkpoint of `train.py experiment=finetune` alone: the backbone's architecture and tokenizer (`spec`), the
task config, LoRA, head and the `structure_input` setting are stored in the checkpoint.
"""
from __future__ import annotations

import os

import torch
import torch.nn as nn

from omnigenome.constants import check_head
from omnigenome.model.backbones import Backbone
from omnigenome.model.loading import backbone_from_spec
from omnigenome.model.heads import TaskHead, head_inputs


class TaskModel(nn.Module):
    """backbone -> (pooling) -> head.

    task: the task config (head, num_labels, label_names, ...). freeze_encoder: the backbone does not train
    (it then runs without autograd). lora: {"rank", "alpha", "dropout"}; rank > 0 trains LoRA updates of the
    attention query and value projections, and the head. structure_input: inputs are `<cls> seq <eos> struct
    <eos>` with the ViennaRNA MFE structure (OmniGenome backbones only).
    """

    def __init__(self, backbone: Backbone, task: dict, head_dropout: float = 0.1, pooling: str = "mean",
                 freeze_encoder: bool = False, lora: dict | None = None, structure_input: bool = False):
        super().__init__()
        self.task, self.head_type, self.pooling = task, check_head(task["head"]), pooling
        self.structure_input = bool(structure_input)
        if self.structure_input and not getattr(backbone.tokenizer, "supports_structure", False):
            raise ValueError(f"structure_input=true needs an OmniGenome backbone; {backbone.name} reads sequences only")
        self.backbone = backbone
        for head in ("mlm_head", "structure_head", "contact_head"):  # pretraining heads are never used here
            if hasattr(getattr(backbone, "model", None), head):
                getattr(backbone.model, head).requires_grad_(False)
        lora = dict(lora or {})
        self.lora_rank = int(lora.get("rank") or 0)
        if self.lora_rank > 0:
            from omnigenome.model.lora import apply_lora
            apply_lora(backbone, self.lora_rank, float(lora.get("alpha", 16.0)), float(lora.get("dropout", 0.0)))
        elif freeze_encoder:
            backbone.requires_grad_(False)
        self.encoder_trains = any(p.requires_grad for p in backbone.parameters())
        self.head = TaskHead(backbone.hidden_size, int(task["num_labels"]), head_dropout)
        self.train()  # loaders return backbones in eval mode, and Lightning keeps the modes it finds

    def train(self, mode: bool = True) -> "TaskModel":
        """Train mode for the head and a backbone that trains (whole or LoRA: with its own dropout, as its
        authors fine-tune it); a frozen backbone stays in eval mode (a fixed feature extractor)."""
        super().train(mode)
        if not self.encoder_trains:
            self.backbone.eval()
        return self

    def forward(self, batch: dict) -> torch.Tensor:
        """Head outputs: (S, C) per sequence or (N, C) per nucleotide (the order of the nucleotides in the batch)."""
        with torch.set_grad_enabled(self.encoder_trains and torch.is_grad_enabled()):
            hidden = self.backbone(batch)
        return self.head(head_inputs(hidden, batch, self.head_type, self.pooling))


def read_task_checkpoint(path: str | os.PathLike) -> dict:
    """The dict of a checkpoint of `train.py experiment=finetune`: "backbone" (its spec), "hyper_parameters"
    (task, head and LoRA settings), "state_dict". Raises ValueError for any other file."""
    from pathlib import Path
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    if not isinstance(ckpt, dict) or "backbone" not in ckpt or "task" not in (ckpt.get("hyper_parameters") or {}):
        raise ValueError(f"{path}: not a fine-tuned checkpoint of `train.py experiment=finetune` (no task head); "
                         f"a pretrained model gives embeddings and scores, not task predictions")
    return ckpt


TASK_MODEL_ARGS = ("head_dropout", "pooling", "freeze_encoder", "lora", "structure_input")


def load_task_model(path: str | os.PathLike, attention_backend: str = "auto") -> TaskModel:
    """A TaskModel (backbone, LoRA, head) from a checkpoint written by `train.py experiment=finetune`, in eval mode."""
    ckpt = read_task_checkpoint(path)
    hp = ckpt["hyper_parameters"]
    model = TaskModel(backbone_from_spec(ckpt["backbone"], attention_backend), hp["task"],
                      **{k: hp[k] for k in TASK_MODEL_ARGS if k in hp})
    model.load_state_dict({k[len("model."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("model.")})
    return model.eval()
