"""Predictions of a fine-tuned task model on new sequences.

The model is the checkpoint's `TaskModel` (backbone, LoRA, head, task config, pooling and structure_input,
rebuilt by `load_task_model` exactly as evaluate.py rebuilds them); with `structure_input` every sequence
gets its ViennaRNA MFE structure in context (`omnigenome.folding.mfe_structures`), as in fine-tuning. Inputs
longer than the task's `max_length` (or the backbone's maximum) are skipped and reported, not truncated.

One row per record, by head (names are the task's `label_names`, else 0, 1, ...):
- sequence_classification: `label` (the most probable class) and `prob_<name>` per class;
- multilabel: `labels` (names with probability >= 0.5, joined by ";") and `prob_<name>` per label;
- sequence_regression: one column per target (`<name>` or `target_<k>`);
- token_classification: `labels`, one class per nucleotide (a string when every class name is one
  character, else a list); structure tasks (label_kind structure) give `structure`, the dot-bracket decoded
  from the per-nucleotide probabilities (`valid` by default, see `omnigenome.ssp.decode`);
- token_regression: `values`, per nucleotide (a list, or a list of lists with several targets).
`probabilities=True` adds `probabilities`: (L, classes) per nucleotide for token classification.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from omnigenome.constants import TOKEN_HEADS
from omnigenome.inference.batching import Skipped, encode_chunk, length_batches
from omnigenome.inference.models import require_task
from omnigenome.inference.records import Record


def label_names(task: dict) -> list[str]:
    names = task.get("label_names")
    return [str(n) for n in names] if names else [str(k) for k in range(int(task["num_labels"]))]


def is_structure_task(task: dict) -> bool:
    return task.get("label_kind") == "structure" or sorted(label_names(task)) == sorted("().")


@torch.no_grad()
def task_outputs(model, items: Sequence, max_tokens: int = 8192) -> list[np.ndarray]:
    """Head outputs per item, in item order: (C,) for sequence heads, (L, C) for token heads (float32
    logits for classification and multilabel, values for regression)."""
    task_model = model.task_model
    head = task_model.head_type
    out: list[np.ndarray | None] = [None] * len(items)
    for batch_idx in length_batches([len(it.ids) for it in items], max_tokens, model.tokenizer.packed):
        batch = model.to_device(model.tokenizer.collate([items[k] for k in batch_idx]))
        logits = task_model(batch).float().cpu().numpy()
        if head in TOKEN_HEADS:
            at = 0
            for k in batch_idx:
                n = items[k].num_nucleotides
                out[k] = logits[at:at + n]
                at += n
        else:
            for row, k in enumerate(batch_idx):
                out[k] = logits[row]
    return out  # type: ignore[return-value]


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def output_row(task: dict, head: str, record: Record, output: np.ndarray, decode_method: str = "valid",
               probabilities: bool = False) -> dict:
    """The row of one record from its head output (see the module docstring)."""
    names = label_names(task)
    row: dict = {"id": record.id}
    if head == "sequence_classification":
        p = _softmax(output.astype(np.float64))
        row["label"] = names[int(p.argmax())]
        row.update({f"prob_{n}": float(v) for n, v in zip(names, p)})
    elif head == "multilabel":
        p = 1.0 / (1.0 + np.exp(-output.astype(np.float64)))
        row["labels"] = ";".join(n for n, v in zip(names, p) if v >= 0.5)
        row.update({f"prob_{n}": float(v) for n, v in zip(names, p)})
    elif head == "sequence_regression":
        keys = names if task.get("label_names") else [f"target_{k}" for k in range(len(output))]
        row.update({k: float(v) for k, v in zip(keys, output)})
    elif head == "token_classification":
        p = _softmax(output.astype(np.float64))
        if is_structure_task(task):
            from omnigenome.ssp.decode import decode
            from omnigenome.structure import LABEL_ID
            order = [names.index(c) for c in sorted(LABEL_ID, key=LABEL_ID.get)]
            row["structure"] = decode(p[:, order], decode_method, record.sequence[:len(p)])
        else:
            classes = [names[k] for k in p.argmax(axis=1)]
            row["labels"] = "".join(classes) if all(len(n) == 1 for n in names) else classes
        if probabilities:
            row["probabilities"] = p.tolist()
    else:  # token_regression
        values = output.astype(np.float64)
        row["values"] = values[:, 0].tolist() if values.shape[1] == 1 else values.tolist()
    return row


def predict_chunk(model, records: Sequence[Record], decode: str = "valid", probabilities: bool = False,
                  max_tokens: int = 8192, strict: bool = False, fold_workers: int = 1,
                  cache_dir: str | None = None) -> tuple[list[dict], list[Skipped], int]:
    """Predict one chunk: (rows of the records taken, in input order; skipped records; tokens read)."""
    require_task(model)
    from omnigenome.ssp.decode import DECODERS
    if decode not in DECODERS:
        raise ValueError(f"unknown decoder {decode!r} (choose from {', '.join(DECODERS)})")
    structures = None
    if model.task_model.structure_input:
        from omnigenome.folding import mfe_structures

        def structures(seqs):
            return mfe_structures(seqs, workers=fold_workers, cache_dir=cache_dir)
    ok, skipped = encode_chunk(model.tokenizer, records, model.max_tokens(task_limit=True), strict, structures)
    if not ok:
        return [], skipped, 0
    ok.sort()  # input order (structures are folded after the checks, so `ok` may come out of order)
    items = [enc for _, enc in ok]
    outputs = task_outputs(model, items, max_tokens)
    head = model.task_model.head_type
    rows = [output_row(model.task, head, records[k], out, decode, probabilities) for (k, _), out in zip(ok, outputs)]
    return rows, skipped, sum(len(it.ids) for it in items)
