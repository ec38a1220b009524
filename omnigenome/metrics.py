"""Evaluation metrics: the one implementation of each, shared by every evaluation task.

Per-token classification (structure labels, per-base benchmark labels): macro-F1 pooled over all
tokens of a split and Matthews correlation, computed with torchmetrics. Structure comparison: base-pair
precision, recall and F1 of one predicted structure against the true one, averaged over sequences.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import torch
from torchmetrics.functional.classification import multiclass_f1_score, multiclass_matthews_corrcoef

from omnigenome.structure import CLOSERS, OPENERS, STRUCTURE_LABELS, base_pairs, to_labels


def _as_labels(values: Iterable[Sequence[int]] | Sequence[int]) -> torch.Tensor:
    """Flatten per-sequence label lists (or one flat list / array) into one long tensor."""
    if isinstance(values, torch.Tensor):
        return values.reshape(-1).long()
    if isinstance(values, np.ndarray):
        return torch.from_numpy(values.reshape(-1)).long()
    values = list(values)
    if values and not np.isscalar(values[0]):
        values = [np.asarray(v, dtype=np.int64).reshape(-1) for v in values]
        return torch.from_numpy(np.concatenate(values) if values else np.zeros(0, dtype=np.int64))
    return torch.as_tensor(values, dtype=torch.long)


def token_classification_scores(preds, targets, num_classes: int) -> dict[str, float]:
    """Macro-F1 and MCC of per-token class ids, pooled over all tokens of all sequences.

    preds, targets: class ids, either flat (N,) or one sequence of ids per record (lengths must
        agree record by record). Macro-F1 is the unweighted mean of the per-class F1 (torchmetrics
        `average="macro"`; a class absent from both preds and targets scores 0 there, as torchmetrics
        does). Returns {"macro_f1", "mcc"} as floats in [0, 1] and [-1, 1].
    """
    p, t = _as_labels(preds), _as_labels(targets)
    if p.shape != t.shape:
        raise ValueError(f"{p.numel()} predicted labels for {t.numel()} true labels")
    if p.numel() == 0:
        raise ValueError("no tokens to score")
    return {"macro_f1": float(multiclass_f1_score(p, t, num_classes=num_classes, average="macro")),
            "mcc": float(multiclass_matthews_corrcoef(p, t, num_classes=num_classes))}


def base_pair_scores(predicted: str, true: str) -> dict[str, float]:
    """Base-pair precision, recall and F1 of one predicted dot-bracket against the true one.

    Both structures may contain pseudoknot brackets (`[] {} <>`, letter pairs); a pair counts as
    correct when exactly the same (i, j) is in both. Convention for empty sets (the usual one in
    structure prediction): precision = 1 when nothing is predicted, recall = 1 when nothing is
    true; F1 = 1 when both are empty, 0 when exactly one is, else 2PR / (P + R) (0 if P + R = 0).
    An unbalanced prediction (e.g. from `argmax`) is scored on the pairs its brackets do form
    (see `lenient_base_pairs`).
    """
    if len(predicted) != len(true):
        raise ValueError(f"predicted structure has length {len(predicted)}, the true one {len(true)}")
    pred_pairs, true_pairs = lenient_base_pairs(predicted), base_pairs(true)
    correct = len(pred_pairs & true_pairs)
    precision = correct / len(pred_pairs) if pred_pairs else 1.0
    recall = correct / len(true_pairs) if true_pairs else 1.0
    if not pred_pairs and not true_pairs:
        f1 = 1.0
    elif not pred_pairs or not true_pairs:
        f1 = 0.0
    else:
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"bp_precision": precision, "bp_recall": recall, "bp_f1": f1}


def lenient_base_pairs(structure: str) -> set[tuple[int, int]]:
    """The pairs of a possibly unbalanced dot-bracket: brackets matched as a stack, strays dropped.
    A balanced structure gives exactly `structure.base_pairs`."""
    return base_pairs(structure, strict=False)


def structure_scores(predicted: Sequence[str], true: Sequence[str]) -> dict[str, float]:
    """All structure metrics of a split: per-nucleotide 3-class macro-F1 and MCC (pooled over every
    nucleotide; labels `(`, `)`, `.` from `structure.to_labels`, pseudoknot brackets by side) and
    base-pair precision / recall / F1 averaged over sequences. Also "num_sequences"."""
    if len(predicted) != len(true):
        raise ValueError(f"{len(predicted)} predicted structures for {len(true)} true ones")
    if not true:
        raise ValueError("no structures to score")
    pred_labels = [_labels_lenient(p) for p in predicted]
    true_labels = [to_labels(t) for t in true]
    for k, (p, t) in enumerate(zip(pred_labels, true_labels)):
        if len(p) != len(t):
            raise ValueError(f"structure {k}: predicted length {len(p)}, true length {len(t)}")
    scores = token_classification_scores(pred_labels, true_labels, num_classes=len(STRUCTURE_LABELS))
    per_sequence = [base_pair_scores(p, t) for p, t in zip(predicted, true)]
    for key in ("bp_precision", "bp_recall", "bp_f1"):
        scores[key] = float(np.mean([s[key] for s in per_sequence]))
    scores["num_sequences"] = len(true)
    return scores


def _labels_lenient(structure: str) -> list[int]:
    """Per-nucleotide labels of a prediction, character by character: an opening bracket is `(`,
    a closing one `)`, anything else `.`. For a balanced structure this equals `to_labels`; unlike
    it, it also reads an unbalanced `argmax` output."""
    return [0 if c in OPENERS else 1 if c in CLOSERS else 2 for c in structure]
