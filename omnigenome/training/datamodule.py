"""LightningDataModule for pretraining: sharded records -> token-budget packed batches.

Every batch is a pure function of (seed, epoch, batch index): the sampler decides which records,
`PackedBatches` builds the objectives' views with a generator seeded by those numbers. On resume the
position in the epoch is derived from the optimizer step count, so a resumed run sees exactly the
batches (and masks) an uninterrupted run would have seen.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from omnigenome.data.sampler import BatchKey, TokenBudgetBatchSampler
from omnigenome.data.shards import ShardedCorpus
from omnigenome.objectives import PretrainingObjectives

log = logging.getLogger(__name__)


def flatten_batch(batch: dict) -> dict:
    """One int64 buffer holding every tensor of a packed batch, plus its layout.

    A DataLoader worker hands each tensor to the main process through its own shared-memory segment;
    one buffer per batch instead of ten makes that transfer (and the host-to-device copy) one operation.
    """
    names = tuple(k for k, v in batch.items() if isinstance(v, torch.Tensor))
    flat = torch.cat([batch[k].reshape(-1).to(torch.int64) for k in names])
    layout = tuple((k, batch[k].numel(), str(batch[k].dtype).removeprefix("torch.")) for k in names)
    rest = {k: v for k, v in batch.items() if k not in names}
    return {"flat": flat, "layout": layout, **rest}


def unflatten_batch(packed: dict) -> dict:
    """Inverse of `flatten_batch` (views into the buffer; int32 entries such as cu_seqlens are copied)."""
    if "flat" not in packed:
        return packed
    names, sizes, dtypes = zip(*packed["layout"])
    batch = {k: v for k, v in packed.items() if k not in ("flat", "layout")}
    for name, part, dtype in zip(names, torch.split(packed["flat"], list(sizes)), dtypes):
        batch[name] = part if dtype == "int64" else part.to(getattr(torch, dtype))
    return batch


def check_corpus(corpus_dir) -> None:
    """A corpus that can train a model: both splits present and neither empty; else ValueError in one line
    naming the folder, the split and why."""
    import json
    from omnigenome.data.shards import INDEX
    root = Path(corpus_dir)
    if not root.is_dir():
        raise ValueError(f"data.corpus_dir={corpus_dir}: no such folder (make one with `omnigenome prep FASTA... --out DIR`)")
    for split in ("train", "valid"):
        index = root / split / INDEX
        if not index.is_file():
            raise ValueError(f"data.corpus_dir={corpus_dir}: no {split} split ({index} is missing; "
                             f"a corpus of `omnigenome prep` has train/ and valid/)")
        if json.loads(index.read_text()).get("num_records", 0) == 0:
            why = "prep kept no record for it (see its manifest.json)" if split == "train" else \
                "no record was held out for validation: raise valid_fraction in `omnigenome prep`, or add records"
            raise ValueError(f"data.corpus_dir={corpus_dir}: the {split} split is empty: {why}")


class PackedBatches(Dataset):
    """Dataset indexed by `BatchKey`: returns the packed batch of those records, flattened into one
    buffer (`flatten_batch`; the datamodule's `on_after_batch_transfer` restores it).

    Masks are drawn from a generator seeded by (seed, stream, epoch, batch index); with
    `new_masks_each_epoch=False` (validation) the epoch is left out, so every evaluation scores the same masks.
    """

    def __init__(self, corpus: ShardedCorpus, objectives: PretrainingObjectives, seed: int, stream: int,
                 new_masks_each_epoch: bool = True):
        self.corpus, self.objectives, self.seed, self.stream = corpus, objectives, seed, stream
        self.new_masks_each_epoch = new_masks_each_epoch

    def __getitem__(self, key: BatchKey) -> dict:
        epoch = key.epoch if self.new_masks_each_epoch else 0
        rng = np.random.default_rng([self.seed, self.stream, epoch, key.index])
        records = [self.corpus[i] for i in key.indices]
        return flatten_batch(self.objectives.build_batch(records, rng, record_index=key.indices))

    def __len__(self) -> int:
        return len(self.corpus)


class ResumableDataLoader(DataLoader):
    """A DataLoader whose position Lightning can save and restore (`state_dict` / `load_state_dict`).

    The position is a function of the optimizer step count (see `PretrainDataModule._train_position`), so
    restoring needs nothing: the state records it for the checkpoint's reader, and a resumed run starts at
    exactly the batch an uninterrupted run would have reached."""

    def state_dict(self) -> dict:
        position = getattr(self.batch_sampler, "position_fn", None) or getattr(self.sampler, "position_fn", None)
        epoch, offset = position() if position else (0, 0)
        return {"epoch": int(epoch), "batches_done": int(offset), "position": "derived from the step count"}

    def load_state_dict(self, state: dict) -> None:
        pass


class PretrainDataModule(L.LightningDataModule):
    """Training and validation batches from a corpus directory holding `train/` and `valid/` shards.

    corpus_dir: written by `omnigenome prep` (or the sample corpus, see `sample`).
    sample: if given (a dict of `ensure_sample_corpus` arguments), the embedded sample corpus is
        generated on first use into sample.cache_dir and used instead of corpus_dir.
    max_tokens: token budget of one packed micro-batch on one device (all objectives' segments).
    """

    def __init__(self, objectives: PretrainingObjectives, corpus_dir: str | None = None, sample: dict | None = None,
                 max_tokens: int = 8192, num_workers: int = 0, seed: int = 0, pin_memory: bool = False):
        super().__init__()
        if corpus_dir is None and sample is None:
            raise ValueError("PretrainDataModule needs corpus_dir (from `omnigenome prep`) or sample settings")
        if sample is None:
            check_corpus(corpus_dir)
            longest = max(int(ShardedCorpus(Path(corpus_dir) / s).lengths.max()) for s in ("train", "valid"))
        else:
            from omnigenome.data.sample_corpus import MAX_LENGTH
            longest = MAX_LENGTH
        need = int(objectives.tokens_per_record([longest])[0])
        if max_tokens < need:
            raise ValueError(f"data.max_tokens={max_tokens}: a batch must hold the longest record, {longest} nt, which "
                             f"takes {need} tokens in the views of {', '.join(objectives.active)}; use "
                             f"data.max_tokens={need} or more")
        self.objectives = objectives
        self.corpus_dir, self.sample = corpus_dir, dict(sample) if sample else None
        self.max_tokens, self.num_workers, self.seed, self.pin_memory = max_tokens, num_workers, seed, pin_memory
        self.train_sampler: TokenBudgetBatchSampler | None = None
        self.valid_sampler: TokenBudgetBatchSampler | None = None

    def prepare_data(self):
        if self.sample is not None:
            from omnigenome.data.sample_corpus import ensure_sample_corpus
            ensure_sample_corpus(**self.sample)

    def _root(self) -> Path:
        if self.sample is not None:
            from omnigenome.data.sample_corpus import ensure_sample_corpus
            return Path(ensure_sample_corpus(**self.sample))  # returns at once when cached
        return Path(self.corpus_dir)

    def setup(self, stage: str | None = None):
        if self.train_sampler is not None:
            return
        rank, world = (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)
        root = self._root()
        self.train_corpus = ShardedCorpus(root / "train")
        self.valid_corpus = ShardedCorpus(root / "valid")
        self.train_sampler = TokenBudgetBatchSampler(
            self.objectives.tokens_per_record(self.train_corpus.lengths), self.max_tokens,
            shuffle=True, seed=self.seed, rank=rank, world_size=world)
        self.valid_sampler = TokenBudgetBatchSampler(
            self.objectives.tokens_per_record(self.valid_corpus.lengths), self.max_tokens,
            shuffle=False, seed=self.seed, rank=rank, world_size=world)
        self.train_sampler.position_fn = self._train_position
        log.info("corpus %s: %d train / %d valid records; %d train batches per epoch per rank (max_tokens=%d, %d ranks)",
                 root, len(self.train_corpus), len(self.valid_corpus), len(self.train_sampler), self.max_tokens, world)

    def records_per_batch(self) -> float:
        """Mean records per training micro-batch (sets gradient accumulation before the trainer runs)."""
        corpus = ShardedCorpus(self._root() / "train")
        sampler = TokenBudgetBatchSampler(self.objectives.tokens_per_record(corpus.lengths), self.max_tokens,
                                          shuffle=False, seed=self.seed)
        return len(corpus) / len(sampler)

    def _train_position(self) -> tuple[int, int]:
        """(epoch, batches already consumed in it), from the optimizer step count."""
        trainer = self.trainer
        if trainer is None:
            return self.train_sampler.epoch, 0
        batches = len(self.train_sampler)
        limit = trainer.num_training_batches
        if isinstance(limit, int) and 0 < limit < batches:
            batches = limit
        accumulate = trainer.accumulate_grad_batches
        steps_per_epoch = math.ceil(batches / accumulate)  # Lightning steps on an epoch's last partial window
        epoch, steps_done = divmod(trainer.global_step, steps_per_epoch)
        return epoch, min(steps_done * accumulate, batches)

    def _loader(self, corpus, sampler, stream):
        dataset = PackedBatches(corpus, self.objectives, self.seed, stream, new_masks_each_epoch=stream == 0)
        return ResumableDataLoader(dataset, sampler=sampler, batch_size=None, num_workers=self.num_workers,
                                   pin_memory=self.pin_memory, persistent_workers=self.num_workers > 0)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        return unflatten_batch(batch)  # batches travel as one buffer (see flatten_batch)

    def train_dataloader(self):
        return self._loader(self.train_corpus, self.train_sampler, stream=0)

    def val_dataloader(self):
        return self._loader(self.valid_corpus, self.valid_sampler, stream=1)

    def test_dataloader(self):
        return self.val_dataloader()
