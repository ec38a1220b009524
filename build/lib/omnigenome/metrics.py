"""Evaluation metrics: the one implementation of each, shared by every evaluation task.

Per-token classification (structure labels, per-base benchmark labels): macro-F1 pooled over all
tokens of a split and Matthews correlation, computed with torchmetrics. Structure comparison: base-pair
precision, recall and F1 of one predicted structure against the true one, averaged over sequences.
Fine-tuning tasks (conf/task/<suite>/*.yaml): `task_metrics`, the scores of every head, used by
training, evaluate.py and the suite runner alike.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import torch
from torchmetrics.functional import mean_squared_error, r2_score, spearman_corrcoef
from torchmetrics.functional.classification import (
    binary_auroc,
    multiclass_accuracy,
    multiclass_auroc,
    multiclass_f1_score,
    multiclass_matthews_corrcoef,
    multilabel_auroc,
    multilabel_f1_score,
)

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


def _mcc(preds: torch.Tensor, targets: torch.Tensor, num_classes: int) -> float:
    """Matthews correlation of class ids; 0 when predictions or targets hold a single class (the
    denominator is 0: scikit-learn's convention; torchmetrics returns a small non-zero value there)."""
    if preds.unique().numel() < 2 or targets.unique().numel() < 2:
        return 0.0
    return float(multiclass_matthews_corrcoef(preds, targets, num_classes=num_classes))


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
            "mcc": _mcc(p, t, num_classes)}


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


# --- fine-tuning tasks -----------------------------------------------------------------------------

CLASSIFICATION_METRICS = ("macro_f1", "mcc", "roc_auc", "accuracy")
REGRESSION_METRICS = ("rmse", "mcrmse", "spearman", "r2")
METRICS = CLASSIFICATION_METRICS + REGRESSION_METRICS
# Whether a larger value is better, for checkpoint selection and early stopping.
HIGHER_IS_BETTER = {"macro_f1": True, "mcc": True, "roc_auc": True, "accuracy": True,
                    "rmse": False, "mcrmse": False, "spearman": True, "r2": True}
HEAD_METRICS = {
    "sequence_classification": CLASSIFICATION_METRICS,
    "token_classification": CLASSIFICATION_METRICS,
    "multilabel": CLASSIFICATION_METRICS,
    "sequence_regression": REGRESSION_METRICS,
    "token_regression": REGRESSION_METRICS,
}


def task_metrics(names: list[str], preds: torch.Tensor, targets: torch.Tensor, head: str, num_labels: int,
                 probabilities: bool | None = None) -> dict[str, float]:
    """Scores of a fine-tuning task, as the benchmark papers report them, from scored items only.

    head: sequence_classification / token_classification: preds (N, C) float logits or
        probabilities, targets (N,) int64 class ids. multilabel: preds (N, C), targets (N, C) of 0/1.
        sequence_regression / token_regression: preds (N, T), targets (N, T) float, no NaN.
    probabilities: None (default) reads preds as probabilities when every value lies in [0, 1] and
        (single-label heads) every row sums to 1, else as logits; True / False says so. Logits go
        through softmax (single-label) or sigmoid (multilabel) here.
    Definitions:
        macro_f1, mcc, accuracy: over argmax classes; macro_f1 is the unweighted mean of per-class F1
            (a class absent from both predictions and targets is left out, as scikit-learn does).
            Multilabel: each label is a binary decision at probability 0.5; macro_f1 is the mean of
            the per-label F1, mcc the mean of the per-label MCC, accuracy the fraction of correct
            label decisions.
        roc_auc: binary (C = 2) the AUC of the positive class' probability; multiclass the macro
            one-vs-rest mean; multilabel the macro mean over labels.
        rmse: over all values pooled (T = 1: the usual RMSE). mcrmse: mean over targets of each
            target's RMSE (OpenVaccine's MCRMSE). spearman: mean over targets of each target's
            Spearman correlation. r2: mean over targets of each target's R^2.
    Returns {name: float} in the order of `names`.
    """
    if head not in HEAD_METRICS:
        raise ValueError(f"unknown head {head!r} (choose from {', '.join(HEAD_METRICS)})")
    for name in names:
        if name not in METRICS:
            raise ValueError(f"unknown metric {name!r} (choose from {', '.join(METRICS)})")
        if name not in HEAD_METRICS[head]:
            raise ValueError(f"metric {name!r} does not apply to head {head} (choose from {', '.join(HEAD_METRICS[head])})")
    preds, targets = torch.as_tensor(preds).detach().cpu(), torch.as_tensor(targets).detach().cpu()
    if preds.shape[0] == 0:
        raise ValueError("no items to score")
    if preds.shape[0] != targets.shape[0]:
        raise ValueError(f"{preds.shape[0]} predictions for {targets.shape[0]} targets")
    if head in ("sequence_regression", "token_regression"):
        return _regression_scores(names, preds, targets, num_labels)
    if head == "multilabel":
        return _multilabel_scores(names, preds, targets, num_labels, probabilities)
    return _multiclass_scores(names, preds, targets, num_labels, probabilities)


def _multiclass_scores(names, preds, targets, num_classes, probabilities) -> dict[str, float]:
    if preds.ndim != 2 or preds.shape[1] != num_classes:
        raise ValueError(f"expected preds of shape (N, {num_classes}), got {tuple(preds.shape)}")
    targets = targets.reshape(-1).long()
    if targets.numel() and (targets.min() < 0 or targets.max() >= num_classes):
        raise ValueError(f"target class ids must lie in 0..{num_classes - 1}")
    preds = preds.double()
    if probabilities is None:
        probabilities = bool(((preds >= 0) & (preds <= 1)).all() and torch.allclose(preds.sum(1), torch.ones(1, dtype=preds.dtype), atol=1e-4))
    probs = preds if probabilities else preds.softmax(dim=1)
    classes = probs.argmax(dim=1)
    out = {}
    for name in names:
        if name == "macro_f1":
            value = multiclass_f1_score(classes, targets, num_classes=num_classes, average="macro")
        elif name == "mcc":
            value = _mcc(classes, targets, num_classes)
        elif name == "accuracy":
            value = multiclass_accuracy(classes, targets, num_classes=num_classes, average="micro")
        elif num_classes == 2:
            value = binary_auroc(probs[:, 1], targets)
        else:
            value = multiclass_auroc(probs, targets, num_classes=num_classes, average="macro")
        out[name] = float(value)
    return out


def _multilabel_scores(names, preds, targets, num_labels, probabilities) -> dict[str, float]:
    if preds.ndim != 2 or preds.shape[1] != num_labels or targets.shape != preds.shape:
        raise ValueError(f"expected preds and targets of shape (N, {num_labels}), got {tuple(preds.shape)} and {tuple(targets.shape)}")
    preds = preds.double()
    if probabilities is None:
        probabilities = bool(((preds >= 0) & (preds <= 1)).all())
    probs = preds if probabilities else preds.sigmoid()
    targets = targets.long()
    decisions = (probs >= 0.5).long()
    out = {}
    for name in names:
        if name == "macro_f1":
            value = multilabel_f1_score(probs, targets, num_labels=num_labels, threshold=0.5, average="macro")
        elif name == "mcc":
            value = sum(_mcc(decisions[:, k], targets[:, k], 2) for k in range(num_labels)) / num_labels
        elif name == "accuracy":
            value = (decisions == targets).double().mean()
        else:
            value = multilabel_auroc(probs, targets, num_labels=num_labels, average="macro")
        out[name] = float(value)
    return out


def _regression_scores(names, preds, targets, num_targets) -> dict[str, float]:
    preds, targets = preds.double(), targets.double()
    if preds.ndim == 1:
        preds, targets = preds[:, None], targets.reshape(-1, 1)
    if preds.shape != targets.shape or preds.shape[1] != num_targets:
        raise ValueError(f"expected preds and targets of shape (N, {num_targets}), got {tuple(preds.shape)} and {tuple(targets.shape)}")
    if torch.isnan(targets).any() or torch.isnan(preds).any():
        raise ValueError("NaN in regression preds or targets: drop unscored positions first")
    columns = range(num_targets)
    out = {}
    for name in names:
        if name == "rmse":
            value = mean_squared_error(preds.reshape(-1), targets.reshape(-1)).sqrt()
        elif name == "mcrmse":
            value = torch.stack([mean_squared_error(preds[:, k], targets[:, k]).sqrt() for k in columns]).mean()
        elif name == "spearman":
            value = torch.stack([spearman_corrcoef(preds[:, k], targets[:, k]) for k in columns]).mean()
        else:
            value = torch.stack([r2_score(preds[:, k], targets[:, k]) for k in columns]).mean()
        out[name] = float(value)
    return out
