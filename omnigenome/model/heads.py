"""Task heads and losses: one small classifier, five ways to read it.

A backbone returns hidden states (T, H) for every token of a batch (packed, or a padded batch flattened),
and the batch says where the nucleotides of each sequence lie (`nucleotide_index` (N,), `nucleotide_seq`
(N,)): never the special tokens, and never the structure half of a `seq <eos> struct <eos>` input. With a
k-mer or BPE tokenizer several nucleotides read the same token (see `omnigenome.model.backbones`).

- sequence heads (sequence_classification, multilabel, sequence_regression) pool each sequence into
  one vector: by default the mean over its nucleotides (`pooling="mean"`); `pooling="cls"` takes the
  `<cls>` state instead. The mean is the default because pretraining never trains `<cls>`: with a
  short fine-tuning budget or a frozen encoder the mean of the nucleotide states is the stronger summary.
- token heads (token_classification, token_regression) classify every nucleotide.

Losses count scored items only: cross-entropy (with the task's class weights) ignores label -100,
binary cross-entropy for multi-label targets, mean squared error over the finite (non-NaN) targets.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from omnigenome.constants import CLASSIFICATION_HEADS, IGNORE_INDEX, REGRESSION_HEADS, TOKEN_HEADS

POOLINGS = ("mean", "cls")


class TaskHead(nn.Module):
    """dense(H, H) -> GELU -> dropout -> linear(H, num_outputs), applied to pooled or per-nucleotide states.

    num_outputs: classes (classification), labels (multilabel) or targets (regression).
    """

    def __init__(self, hidden_size: int, num_outputs: int, dropout: float = 0.1):
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_size, num_outputs)
        for layer in (self.dense, self.out):
            nn.init.normal_(layer.weight, std=0.02)
            nn.init.zeros_(layer.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.out(self.dropout(F.gelu(self.dense(h))))


def head_inputs(hidden: torch.Tensor, batch: dict, head: str, pooling: str = "mean") -> torch.Tensor:
    """What the head reads: (S, H) one vector per sequence for sequence heads, (N, H) one per scored-or-not
    nucleotide for token heads (in the order of `batch["nucleotide_index"]`, i.e. of the token labels).

    hidden: (T, H) encoder output of the packed batch.
    """
    nucleotides = hidden[batch["nucleotide_index"]]
    if head in TOKEN_HEADS:
        return nucleotides
    if pooling == "cls":
        return hidden[batch["first_token_index"]]
    if pooling != "mean":
        raise ValueError(f"unknown pooling {pooling!r}; choose from {', '.join(POOLINGS)}")
    seq = batch["nucleotide_seq"]
    num_seqs = int(batch["num_records"])  # packed and padded batches alike (padded ones have no cu_seqlens)
    sums = hidden.new_zeros(num_seqs, hidden.shape[-1]).index_add_(0, seq, nucleotides)
    counts = torch.bincount(seq, minlength=num_seqs).clamp_min(1).to(hidden.dtype)
    return sums / counts[:, None]


def task_loss(head: str, logits: torch.Tensor, labels: torch.Tensor,
              class_weights: torch.Tensor | None = None) -> torch.Tensor:
    """The task's loss over scored items, a mean.

    Classification: logits (N, C), labels (N,) int64, -100 = not scored; `class_weights` (C,) weights each
    class's terms (the mean is then weighted, as in `F.cross_entropy`). Multilabel: logits and labels (N, C),
    binary cross-entropy; `class_weights` is the per-label weight of positive examples (`pos_weight`).
    Regression: logits and labels (N, T), squared error over finite labels (NaN = not scored).
    A batch with nothing scored gives 0 (still connected to the graph, so every rank steps alike).
    """
    logits = logits.float()
    if head in CLASSIFICATION_HEADS:
        if not (labels != IGNORE_INDEX).any():
            return logits.sum() * 0.0
        return F.cross_entropy(logits, labels, weight=class_weights, ignore_index=IGNORE_INDEX)
    if head == "multilabel":
        return F.binary_cross_entropy_with_logits(logits, labels.float(), pos_weight=class_weights)
    if head in REGRESSION_HEADS:
        scored = torch.isfinite(labels)
        if not scored.any():
            return logits.sum() * 0.0
        return (logits[scored] - labels[scored].float()).pow(2).mean()
    raise ValueError(f"unknown head {head!r}")


def scored_items(head: str, preds: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The items metrics are computed on, as `omnigenome.metrics.task_metrics` takes them.

    Classification: rows whose label is not -100. Regression: rows whose targets are all finite (a row with
    some NaN targets is dropped whole, so every metric column sees the same items). Multilabel: all rows.
    """
    if head in CLASSIFICATION_HEADS:
        keep = labels != IGNORE_INDEX
        return preds[keep], labels[keep]
    if head in REGRESSION_HEADS:
        keep = torch.isfinite(labels).all(-1)
        return preds[keep], labels[keep]
    return preds, labels
