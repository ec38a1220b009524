"""LightningDataModule for fine-tuning: a task's splits -> token-budget packed batches.

Every example becomes one packed segment, `<cls> seq <eos>`, or with `structure_input` its ViennaRNA MFE
structure too, `<cls> seq <eos> struct <eos>` (folded once per split, cached on disk). Sequences longer
than the task's `max_length` tokens (special tokens included) are cropped to their first nucleotides, and
the crops counted and logged; token labels are cropped alike, so scored positions always line up with
the nucleotides the head reads. Batches are filled to `max_tokens` tokens (the pretraining sampler):
training batches are shuffled every epoch and sharded over ranks; every rank evaluates the whole
validation and test split, so their metrics need no gathering.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Sequence

import lightning as L
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader, Dataset

from omnigenome.data.sampler import BatchKey, TokenBudgetBatchSampler
from omnigenome.finetune.heads import CLASSIFICATION_HEADS, TOKEN_HEADS, check_head
from omnigenome.tokenizer import OmniGenomeTokenizer

log = logging.getLogger("omnigenome")

ROLES = ("train", "valid", "test")


def plain_task(task) -> dict:
    """A task config (DictConfig or dict) as a plain, resolved dict (what checkpoints store)."""
    if isinstance(task, DictConfig):
        return OmegaConf.to_container(task, resolve=True)
    return dict(task)


def absolute_paths(task: dict) -> dict:
    """The task with its data_dir, and split sources given as paths (with a directory part, like
    `${benchmark_dir}/openvaccine/train.json.zip`), made absolute against the working directory. Bare
    split names ("train", "dev") stay names inside data_dir. (A relative benchmark_dir would otherwise
    make a path source resolve inside data_dir.)"""
    task = dict(task)
    if task.get("data_dir"):
        task["data_dir"] = os.path.abspath(task["data_dir"])
    splits = dict(task.get("splits") or {})
    for role, source in splits.items():
        if source and not os.path.isabs(source) and os.path.dirname(source):
            splits[role] = os.path.abspath(source)
    task["splits"] = splits
    return task


def nucleotide_window(max_length: int, structure_input: bool) -> int:
    """Most nucleotides one segment holds: `max_length` tokens minus `<cls>`, `<eos>` (and the structure half)."""
    return (max_length - 3) // 2 if structure_input else max_length - 2


def crop_label(head: str, label: np.ndarray, num_nucleotides: int) -> np.ndarray:
    """Token labels of the nucleotides kept by a crop; sequence labels unchanged."""
    return label[:num_nucleotides] if head in TOKEN_HEADS else label


@dataclass
class Encoded:
    """One example as the model reads it: token ids of its segment, how many nucleotides follow `<cls>`,
    and its label (token labels cropped to those nucleotides)."""
    ids: np.ndarray
    num_nucleotides: int
    label: np.ndarray


def encode_examples(examples: Sequence, task: dict, structures: Sequence[str] | None = None,
                    tokenizer: OmniGenomeTokenizer | None = None) -> tuple[list[Encoded], int]:
    """Encode examples (objects with .id, .sequence, .label); returns (encoded, number cropped).

    structures: one dot-bracket per example to append as `<eos> struct <eos>`, or None.
    """
    head = check_head(task["head"])
    tokenizer = tokenizer or OmniGenomeTokenizer(alphabet=task.get("alphabet", "U"))
    window = nucleotide_window(int(task.get("max_length") or 1024), structures is not None)
    encoded, cropped = [], 0
    for k, ex in enumerate(examples):
        seq = ex.sequence
        struct = structures[k] if structures is not None else None
        if len(seq) > window:
            cropped += 1
            seq, struct = seq[:window], (struct[:window] if struct is not None else None)
        ids = tokenizer.encode_array(seq, struct, ex.id)
        label = np.asarray(ex.label)
        if head in TOKEN_HEADS and label.shape[0] != len(ex.sequence):
            raise ValueError(f"example {ex.id!r}: {label.shape[0]} token labels for {len(ex.sequence)} nucleotides")
        encoded.append(Encoded(ids, len(seq), crop_label(head, label, len(seq))))
    return encoded, cropped


def collate(items: Sequence[Encoded], head: str) -> dict:
    """Pack encoded examples into one batch.

    Returns input_ids (T,), position_ids (T,), cu_seqlens (S+1,) int32, nucleotide_index (N,) (packed
    position of every nucleotide the head reads), nucleotide_seq (N,) (its sequence), labels ((S,), (S, C)
    for sequence heads; (N,), (N, T) for token heads, aligned with nucleotide_index), num_records, num_tokens.
    """
    lengths = np.asarray([len(it.ids) for it in items])
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    nucleotide_index = np.concatenate([s + 1 + np.arange(it.num_nucleotides) for s, it in zip(starts, items)])
    nucleotide_seq = np.concatenate([np.full(it.num_nucleotides, k) for k, it in enumerate(items)])
    labels = [it.label for it in items]
    labels = np.concatenate(labels) if head in TOKEN_HEADS else np.stack(labels)
    dtype = torch.int64 if head in CLASSIFICATION_HEADS else torch.float32
    return {
        "input_ids": torch.from_numpy(np.concatenate([it.ids for it in items])),
        "position_ids": torch.from_numpy(np.concatenate([np.arange(n) for n in lengths])),
        "cu_seqlens": torch.from_numpy(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)),
        "nucleotide_index": torch.from_numpy(nucleotide_index.astype(np.int64)),
        "nucleotide_seq": torch.from_numpy(nucleotide_seq.astype(np.int64)),
        "labels": torch.as_tensor(labels, dtype=dtype),
        "num_records": len(items),
        "num_tokens": int(lengths.sum()),
    }


class PackedExamples(Dataset):
    """Dataset indexed by `BatchKey`: the packed batch of those examples."""

    def __init__(self, items: list[Encoded], head: str):
        self.items, self.head = items, head

    def __getitem__(self, key: BatchKey) -> dict:
        return collate([self.items[i] for i in key.indices], self.head)

    def __len__(self) -> int:
        return len(self.items)


def subset(examples: list, limit: int | None, seed: int) -> list:
    """A seeded random subset of `limit` examples in file order (all of them when limit is None)."""
    if limit is None or limit >= len(examples):
        return examples
    keep = np.sort(np.random.default_rng(seed).choice(len(examples), size=limit, replace=False))
    return [examples[i] for i in keep]


class FinetuneDataModule(L.LightningDataModule):
    """Train / valid / test batches of one task (`conf/task/<suite>/<name>.yaml`).

    task: the task config (head, splits, data_dir, max_length, alphabet, ...).
    max_tokens: token budget of one packed batch.
    structure_input: append the ViennaRNA MFE structure of each sequence (folded with `fold_workers`
        processes, cached under `cache_dir`). The structure is always folded, never read from the data,
        so a structure-prediction task cannot see its own labels.
    train_limit / eval_limit: fine-tune on / evaluate on a seeded random subset of this many examples
        (`subset_seed`, the same for every run seed, so seeds differ only in initialisation and order).
    valid_fraction: a task without a validation split holds out this fraction of its training split.
    """

    def __init__(self, task, max_tokens: int = 8192, structure_input: bool = False, fold_workers: int = 1,
                 cache_dir: str | None = None, train_limit: int | None = None, eval_limit: int | None = None,
                 valid_fraction: float = 0.1, subset_seed: int = 0, seed: int = 0, num_workers: int = 0):
        super().__init__()
        self.task = absolute_paths(plain_task(task))
        self.head = check_head(self.task["head"])
        self.max_tokens, self.structure_input = int(max_tokens), bool(structure_input)
        self.fold_workers, self.cache_dir = fold_workers, cache_dir
        self.train_limit, self.eval_limit, self.valid_fraction = train_limit, eval_limit, valid_fraction
        self.subset_seed, self.seed, self.num_workers = subset_seed, seed, num_workers
        self.examples: dict[str, list] = {}
        self.encoded: dict[str, list[Encoded]] = {}
        self.cropped: dict[str, int] = {}

    # --- examples -----------------------------------------------------------------------------
    def has_split(self, role: str) -> bool:
        from omnigenome.finetune.tasks import available_splits
        return role in available_splits(self._task_with_valid())

    def _task_with_valid(self) -> dict:
        """The task, told to hold out `valid_fraction` of its training split when it has no validation split."""
        splits = self.task.get("splits") or {}
        if splits.get("valid") or self.task.get("valid_from_train") or not splits.get("train"):
            return self.task
        return {**self.task, "valid_from_train": self.valid_fraction}

    def load_examples(self, role: str) -> list:
        """Examples of one split (a seeded subset when limited), loaded once."""
        if role not in self.examples:
            from omnigenome.finetune.tasks import load_split
            task = self._task_with_valid()
            if task is not self.task and role == "valid":
                log.info("task %s has no validation split: holding out %.0f%% of its training split",
                         task["name"], 100 * self.valid_fraction)
            limit = self.train_limit if role == "train" else self.eval_limit
            self.examples[role] = subset(load_split(task, role), limit, self.subset_seed)
        return self.examples[role]

    def structures(self, role: str) -> list[str] | None:
        """ViennaRNA MFE structures of a split's sequences (cached), when structure input is on."""
        if not self.structure_input:
            return None
        from omnigenome.ssp.zero_shot import vienna_structures
        return vienna_structures([ex.sequence for ex in self.load_examples(role)], workers=self.fold_workers,
                                 cache_dir=self.cache_dir, progress=True)

    def encode(self, role: str) -> list[Encoded]:
        if role not in self.encoded:
            examples = self.load_examples(role)
            self.encoded[role], self.cropped[role] = encode_examples(examples, self.task, self.structures(role))
            if self.cropped[role]:
                log.warning("task %s %s: %d of %d sequences cropped to %d nucleotides (max_length=%d tokens)",
                            self.task.get("name"), role, self.cropped[role], len(examples),
                            nucleotide_window(int(self.task.get("max_length") or 1024), self.structure_input),
                            int(self.task.get("max_length") or 1024))
        return self.encoded[role]

    # --- Lightning ----------------------------------------------------------------------------
    def setup(self, stage: str | None = None):
        roles = {"fit": ("train", "valid"), "validate": ("valid",), "test": ("test",)}.get(stage, ())
        for role in roles:
            items = self.encode(role)
            if role == "train":
                log.info("task %s: %d train / %d valid examples", self.task.get("name"), len(items),
                         len(self.encode("valid")))

    def _loader(self, role: str) -> DataLoader:
        items = self.encode(role)
        costs = np.asarray([len(it.ids) for it in items])
        largest = int(costs.max())
        if role == "train":
            rank, world = (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)
            sampler = TokenBudgetBatchSampler(costs, max(self.max_tokens, largest), shuffle=True, seed=self.seed,
                                              rank=rank, world_size=world)
        else:
            sampler = TokenBudgetBatchSampler(costs, max(self.max_tokens, largest), shuffle=False, seed=self.seed)
        return DataLoader(PackedExamples(items, self.head), sampler=sampler, batch_size=None,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)

    def train_dataloader(self):
        return self._loader("train")

    def val_dataloader(self):
        return self._loader("valid")

    def test_dataloader(self):
        return self._loader("test")
