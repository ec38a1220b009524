"""LightningDataModule for fine-tuning: a task's splits -> batches of the backbone's tokens.

Every example is encoded by the backbone's own tokenizer (`omnigenome.model.backbones`): `<cls> seq <eos>`
for OmniGenome, or with `structure_input` `<cls> seq <eos> struct <eos>` with the ViennaRNA MFE structure
(folded once per split, cached on disk); a Hugging Face model's tokens otherwise. Inputs longer than the
task's `max_length` tokens (or the backbone's maximum) are truncated, and the truncated records are counted
and logged; token labels are cropped alike, so scored positions always line up with the nucleotides the head
reads. Batches are filled to `max_tokens` tokens by the token-budget sampler (padded tokens for padded
backbones, whose batches are then bucketed by length): training batches are shuffled every epoch and sharded
over ranks; every rank evaluates the whole validation and test split, so their metrics need no gathering.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from omnigenome.constants import CLASSIFICATION_HEADS, SPLITS, TOKEN_HEADS, check_head
from omnigenome.data.benchmarks import available_splits, load_split
from omnigenome.data.sampler import BatchKey, TokenBudgetBatchSampler
from omnigenome.model.backbones import EncodedSequence

log = logging.getLogger("omnigenome")


def plain_task(task) -> dict:
    """A task config (DictConfig or dict) as a plain, resolved dict (what checkpoints store)."""
    from omegaconf import DictConfig, OmegaConf
    if task is None:
        raise ValueError("fine-tuning needs task=<suite>/<name> (a task of conf/task/<suite>/, e.g. task=rgb/ssp_archive2)")
    if isinstance(task, DictConfig):
        return OmegaConf.to_container(task, resolve=True)
    return dict(task)


def absolute_paths(task: dict) -> dict:
    """The task with its data_dir, and split sources given as paths (with a directory part, like
    `${benchmark_dir}/openvaccine/train.json.zip`), made absolute against the working directory. Bare
    split names ("train", "dev") stay names inside data_dir."""
    import os
    task = dict(task)
    if task.get("data_dir"):
        task["data_dir"] = os.path.abspath(task["data_dir"])
    splits = dict(task.get("splits") or {})
    for split, source in splits.items():
        if source and not os.path.isabs(source) and os.path.dirname(source):
            splits[split] = os.path.abspath(source)
    task["splits"] = splits
    return task


@dataclass
class Encoded:
    """One example as the backbone reads it, with its label (token labels cropped to the nucleotides read)."""
    tokens: EncodedSequence
    label: np.ndarray


def encode_examples(examples: Sequence, task: dict, tokenizer, structures: Sequence[str] | None = None
                    ) -> tuple[list[Encoded], int]:
    """Encode examples (objects with .id, .sequence, .label); returns (encoded, number truncated)."""
    head = check_head(task["head"])
    max_tokens = int(task.get("max_length") or tokenizer.max_tokens)
    encoded, cropped = [], 0
    for k, ex in enumerate(examples):
        tokens = tokenizer.encode(ex.sequence, structures[k] if structures is not None else None, ex.id, max_tokens)
        cropped += tokens.cropped
        label = np.asarray(ex.label)
        if head in TOKEN_HEADS:
            if label.shape[0] != len(ex.sequence):
                raise ValueError(f"example {ex.id!r}: {label.shape[0]} token labels for {len(ex.sequence)} nucleotides")
            label = label[:tokens.num_nucleotides]
        encoded.append(Encoded(tokens, label))
    return encoded, cropped


def collate(items: Sequence[Encoded], head: str, tokenizer, indices: Sequence[int] | None = None) -> dict:
    """One batch: the tokenizer's layout (see `omnigenome.model.backbones.batch_layout`) plus `labels`
    ((S,) or (S, C) for sequence heads; (N,) or (N, T) for token heads, aligned with nucleotide_index) and
    `record_index` (S,): each sequence's index in its split (`indices`; default 0..S-1), which per-item
    predictions are reported with."""
    batch = tokenizer.collate([it.tokens for it in items])
    labels = [it.label for it in items]
    labels = np.concatenate(labels) if head in TOKEN_HEADS else np.stack(labels)
    batch["labels"] = torch.as_tensor(labels, dtype=torch.int64 if head in CLASSIFICATION_HEADS else torch.float32)
    batch["record_index"] = torch.as_tensor(np.arange(len(items)) if indices is None else np.asarray(indices),
                                            dtype=torch.int64)
    return batch


class EncodedExamples(Dataset):
    """Dataset indexed by `BatchKey`: the batch of those examples."""

    def __init__(self, items: list[Encoded], head: str, tokenizer):
        self.items, self.head, self.tokenizer = items, head, tokenizer

    def __getitem__(self, key: BatchKey) -> dict:
        return collate([self.items[i] for i in key.indices], self.head, self.tokenizer, key.indices)

    def __len__(self) -> int:
        return len(self.items)


def subset(examples: list, limit: int | None, seed: int) -> list:
    """A seeded random subset of `limit` examples in file order (all of them when limit is None)."""
    if limit is None or limit >= len(examples):
        return examples
    keep = np.sort(np.random.default_rng(seed).choice(len(examples), size=limit, replace=False))
    return [examples[i] for i in keep]


class FinetuneDataModule(L.LightningDataModule):
    """Train / valid / test batches of one task (`conf/task/<suite>/<name>.yaml`) for one backbone.

    task: the task config (head, splits, data_dir, max_length, ...).
    backbone: the backbone's path (`init_from`: its tokenizer is loaded from there; None: a random
        OmniGenome built from `random_model`); or a tokenizer object (see `omnigenome.model.backbones`).
    max_tokens: token budget of one batch (padded tokens for padded backbones).
    structure_input: append the ViennaRNA MFE structure of each sequence (folded with `fold_workers`
        processes, cached under `cache_dir`). The structure is always folded, never read from the data,
        so a structure-prediction task cannot see its own labels.
    train_limit / eval_limit: fine-tune on / evaluate on a seeded random subset of this many examples
        (`subset_seed`, the same for every run seed, so seeds differ only in initialisation and order).
    valid_fraction: a task without a validation split holds out this fraction of its training split.
    alphabet / lowercase: U or T, and the case, of the backbone's input (null: the model's, read from its
        tokenizer); the same values must reach the backbone (conf: `finetune.alphabet`, `finetune.lowercase`).
    """

    def __init__(self, task, backbone=None, random_model=None, trust_remote_code: bool = False,
                 max_tokens: int = 8192, structure_input: bool = False, fold_workers: int = 1,
                 cache_dir: str | None = None, train_limit: int | None = None, eval_limit: int | None = None,
                 valid_fraction: float = 0.1, subset_seed: int = 0, seed: int = 0, num_workers: int = 0,
                 alphabet: str | None = None, lowercase: bool | None = None):
        super().__init__()
        self.task = absolute_paths(plain_task(task))
        self.head = check_head(self.task["head"])
        if backbone is None or isinstance(backbone, (str, bytes)) or hasattr(backbone, "__fspath__"):
            from omnigenome.model.loading import load_tokenizer
            backbone = load_tokenizer(backbone, random_model, trust_remote_code, alphabet, lowercase)
        self.tokenizer = backbone
        self.max_tokens, self.structure_input = int(max_tokens), bool(structure_input)
        self.fold_workers, self.cache_dir = fold_workers, cache_dir
        self.train_limit, self.eval_limit, self.valid_fraction = train_limit, eval_limit, valid_fraction
        self.subset_seed, self.seed, self.num_workers = subset_seed, seed, num_workers
        self.examples: dict[str, list] = {}
        self.encoded: dict[str, list[Encoded]] = {}
        self.cropped: dict[str, int] = {}

    # --- examples -----------------------------------------------------------------------------
    def has_split(self, split: str) -> bool:
        return split in available_splits(self._task_with_valid())

    def _task_with_valid(self) -> dict:
        """The task, told to hold out `valid_fraction` of its training split when it has no validation split."""
        splits = self.task.get("splits") or {}
        if splits.get("valid") or self.task.get("valid_from_train") or not splits.get("train"):
            return self.task
        return {**self.task, "valid_from_train": self.valid_fraction}

    def load_examples(self, split: str) -> list:
        """Examples of one split (a seeded subset when limited), loaded once."""
        if split not in self.examples:
            task = self._task_with_valid()
            if task is not self.task and split == "valid":
                log.info("task %s has no validation split: holding out %.0f%% of its training split",
                         task["name"], 100 * self.valid_fraction)
            limit = self.train_limit if split == "train" else self.eval_limit
            self.examples[split] = subset(load_split(task, split), limit, self.subset_seed)
        return self.examples[split]

    def structures(self, split: str) -> list[str] | None:
        """ViennaRNA MFE structures of a split's sequences (cached), when structure input is on."""
        if not self.structure_input:
            return None
        from omnigenome.folding import mfe_structures
        return mfe_structures([ex.sequence for ex in self.load_examples(split)], workers=self.fold_workers,
                              cache_dir=self.cache_dir, progress=True)

    def encode(self, split: str) -> list[Encoded]:
        if split not in self.encoded:
            examples = self.load_examples(split)
            self.encoded[split], self.cropped[split] = encode_examples(examples, self.task, self.tokenizer,
                                                                       self.structures(split))
            if self.cropped[split]:
                log.warning("task %s %s: %d of %d inputs truncated to %d tokens (the nucleotides beyond are not read)",
                            self.task.get("name"), split, self.cropped[split], len(examples),
                            min(int(self.task.get("max_length") or self.tokenizer.max_tokens), self.tokenizer.max_tokens))
        return self.encoded[split]

    # --- Lightning ----------------------------------------------------------------------------
    def setup(self, stage: str | None = None):
        splits = {"fit": ("train", "valid"), "validate": ("valid",), "test": ("test",)}.get(stage, ())
        for split in splits:
            items = self.encode(split)
            if not items:
                raise ValueError(f"task {self.task['name']}: the {split} split is empty")
            if split == "train":
                log.info("task %s: %d train / %d valid examples", self.task.get("name"), len(items),
                         len(self.encode("valid")))

    def _loader(self, split: str) -> DataLoader:
        items = self.encode(split)
        lengths = np.asarray([len(it.tokens.ids) for it in items])
        # A padded batch costs (sequences x longest); the sampler sorts by length, so a batch holds similar lengths.
        budget = max(self.max_tokens, int(lengths.max()))
        rank, world = (self.trainer.global_rank, self.trainer.world_size) if self.trainer and split == "train" else (0, 1)
        sampler = TokenBudgetBatchSampler(lengths, budget, shuffle=split == "train", seed=self.seed, rank=rank,
                                          world_size=world, padded=not self.tokenizer.packed)
        return DataLoader(EncodedExamples(items, self.head, self.tokenizer), sampler=sampler, batch_size=None,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)

    def train_dataloader(self):
        return self._loader("train")

    def val_dataloader(self):
        return self._loader("valid")

    def test_dataloader(self):
        return self._loader("test")

    def state_dict(self) -> dict:
        """Stored in checkpoints: what was scored (evaluate.py says when it scores other items)."""
        return {"eval_limit": self.eval_limit, "train_limit": self.train_limit, "subset_seed": self.subset_seed,
                "num_examples": {s: len(self.examples[s]) for s in SPLITS if s in self.examples}}

    def load_state_dict(self, state: dict) -> None:
        pass  # the data position follows from the step count; the record above is informational
