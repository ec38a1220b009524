"""The baselines every fine-tuning result is read against, on exactly the model's test items: the majority
class / train mean (a context-free predictor), and ViennaRNA MFE for secondary structure tasks.

Items are the datamodule's encoded (cropped) labels, flattened by `heads.scored_items`, and scored through
the one `omnigenome.metrics.task_metrics`.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from omnigenome.constants import CLASSIFICATION_HEADS, REGRESSION_HEADS, TOKEN_HEADS
from omnigenome.finetune.datamodule import Encoded, FinetuneDataModule, plain_task
from omnigenome.metrics import task_metrics
from omnigenome.model.heads import scored_items


def labels_of(items: Sequence[Encoded], head: str) -> torch.Tensor:
    """The labels of encoded examples, as the model's batches hold them."""
    labels = [it.label for it in items]
    labels = np.concatenate(labels) if head in TOKEN_HEADS else np.stack(labels)
    return torch.as_tensor(labels, dtype=torch.int64 if head in CLASSIFICATION_HEADS else torch.float32)


def constant_prediction(task, train_items: Sequence[Encoded]) -> torch.Tensor:
    """What a context-free predictor outputs for every item, from the training labels: log class frequencies
    for classification (argmax = the majority class), logit of each label's prevalence for multilabel, the
    mean of each target for regression. Shape (C,)."""
    task = plain_task(task)
    head, num = task["head"], int(task["num_labels"])
    labels = labels_of(train_items, head)
    _, targets = scored_items(head, torch.zeros(labels.shape[0], num), labels)
    if head in CLASSIFICATION_HEADS:
        counts = torch.bincount(targets, minlength=num).double()
        return torch.log((counts + 1) / (counts.sum() + num)).float()  # add-one: unseen classes stay finite
    if head == "multilabel":
        p = targets.double().mean(0).clamp(1e-6, 1 - 1e-6)
        return torch.log(p / (1 - p)).float()
    return targets.double().mean(0).float()


def score_predictions(task, preds: torch.Tensor, items: Sequence[Encoded]) -> dict[str, float]:
    """The task's metrics of per-item predictions `preds` (rows aligned with the items' labels)."""
    task = plain_task(task)
    p, t = scored_items(task["head"], preds, labels_of(items, task["head"]))
    return task_metrics(list(task["metrics"]), p, t, task["head"], int(task["num_labels"]), probabilities=False)


def constant_baseline(task, train_items: Sequence[Encoded], test_items: Sequence[Encoded]) -> dict[str, float]:
    """Majority class (classification) / train mean (regression) on the test items."""
    task = plain_task(task)
    value = constant_prediction(task, train_items)
    rows = labels_of(test_items, task["head"]).shape[0]
    return score_predictions(task, value.expand(rows, -1).clone(), test_items)


def is_structure_task(task) -> bool:
    """A secondary structure task: RGB JSON lines whose labels are dot-brackets."""
    task = plain_task(task)
    return task["format"] == "rgb_jsonl" and task.get("label_kind", "structure") == "structure"


def vienna_baseline(task, examples: Sequence, items: Sequence[Encoded], workers: int = 1,
                    cache_dir: str | None = None) -> dict[str, float]:
    """ViennaRNA MFE structures of a structure task's examples, scored as per-nucleotide predictions."""
    from omnigenome.folding import mfe_structures
    from omnigenome.structure import STRUCTURE_LABELS, to_labels
    task = plain_task(task)
    if not is_structure_task(task):
        raise ValueError(f"task {task['name']} is not a structure task")
    names = task.get("label_names") or list(STRUCTURE_LABELS)
    order = np.asarray([names.index(c) for c in STRUCTURE_LABELS])  # to_labels id -> the task's class id
    structures = mfe_structures([ex.sequence for ex in examples], workers=workers, cache_dir=cache_dir)
    predicted = np.concatenate([order[np.asarray(to_labels(s), dtype=np.int64)][: it.tokens.num_nucleotides]
                                for s, it in zip(structures, items)])
    preds = torch.nn.functional.one_hot(torch.from_numpy(predicted), len(names)).float()
    return score_predictions(task, preds, items)


def baseline_rows(task, datamodule: FinetuneDataModule, vienna: bool = True, workers: int = 1,
                  cache_dir: str | None = None) -> dict[str, dict[str, float]]:
    """{"majority" or "mean": metrics, and "ViennaRNA" for structure tasks} on the test split."""
    task = plain_task(task)
    name = "mean" if task["head"] in REGRESSION_HEADS else "majority"
    rows = {name: constant_baseline(task, datamodule.encode("train"), datamodule.encode("test"))}
    if vienna and is_structure_task(task):
        rows["ViennaRNA"] = vienna_baseline(task, datamodule.load_examples("test"), datamodule.encode("test"),
                                            workers=workers, cache_dir=cache_dir)
    return rows
