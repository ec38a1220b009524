"""Batches filled to a token budget, the same every epoch, split across ranks without overlap.

Packing happens once (fairseq style), so the number of batches is a constant of the run: the
learning-rate schedule, `len(dataloader)` and resume-from-step arithmetic all rely on it. Each
epoch only permutes the list of batches.
"""
from __future__ import annotations

from typing import Callable, Iterator, NamedTuple

import numpy as np


class BatchKey(NamedTuple):
    """What a DataLoader fetches: the records of one batch plus where the batch sits in the run.

    epoch: the epoch this batch belongs to.
    index: position of the batch in this epoch's global order (over all ranks; unique per epoch),
        used downstream to seed masking deterministically.
    indices: record indices of the batch.
    """
    epoch: int
    index: int
    indices: tuple[int, ...]


class TokenBudgetBatchSampler:
    """Yields `BatchKey`s whose records cost at most `max_tokens` together.

    costs: (num_records,) integer tokens each record costs in a batch (for example its length
        plus special tokens, times the number of objective views).
    max_tokens: the budget of one batch on one rank.
    shuffle: permute the batch order every epoch (seeded by (seed, epoch)); False keeps a fixed
        order (validation).
    rank, world_size: this process's share. Rank r takes batches r, r + W, r + 2W, ... of the
        epoch's order, which is first padded by repeating its first batches until its length is a
        multiple of W, so every rank has the same number of batches.
    position_fn: optional callable returning (epoch, offset); when set, each iteration starts with
        that epoch's batch `offset` (resuming mid-epoch from the optimizer step count) instead of
        epoch `self.epoch` from 0.
    padded: a batch costs (its records) x (its largest cost), as a padded batch does; else the sum.
    """

    def __init__(self, costs, max_tokens: int, shuffle: bool = True, seed: int = 0, rank: int = 0,
                 world_size: int = 1, padded: bool = False):
        costs = np.asarray(costs, dtype=np.int64)
        if costs.ndim != 1:
            raise ValueError(f"costs must be one-dimensional, got shape {costs.shape}")
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
        if costs.size and costs.min() < 0:
            raise ValueError("costs must be non-negative")
        oversize = costs > max_tokens
        if oversize.any():
            largest = int(costs.max())
            raise ValueError(
                f"{int(oversize.sum())} of {costs.size} records cost more than max_tokens={max_tokens} tokens "
                f"(largest: {largest}); use a budget of at least {largest} tokens, or drop long records "
                f"when preparing the corpus (omnigenome prep --max-length)")
        self.costs = costs
        self.max_tokens = int(max_tokens)
        self.shuffle, self.seed, self.padded = shuffle, int(seed), padded
        self.rank, self.world_size = int(rank), int(world_size)
        self.epoch = 0
        self.position_fn: Callable[[], tuple[int, int]] | None = None
        self.packed: list[tuple[int, ...]] = self._pack()

    def _pack(self) -> list[tuple[int, ...]]:
        """Greedy fill in order of cost; equal costs in a seeded random order.

        Sorting puts records of similar length together (little padding for padded backends),
        the random tie-break keeps records of one length from always sharing a batch in file order.
        """
        tie_break = np.random.default_rng(self.seed).permutation(self.costs.size)
        order = tie_break[np.argsort(self.costs[tie_break], kind="stable")]
        batches: list[tuple[int, ...]] = []
        current: list[int] = []
        total = 0
        for i, cost in zip(order.tolist(), self.costs[order].tolist()):
            # in ascending order of cost, the record added is the largest of a padded batch
            full = (len(current) + 1) * cost > self.max_tokens if self.padded else total + cost > self.max_tokens
            if current and full:
                batches.append(tuple(current))
                current, total = [], 0
            current.append(i)
            total += cost
        if current:
            batches.append(tuple(current))
        return batches

    @property
    def num_batches(self) -> int:
        """Batches of one epoch over all ranks, before padding."""
        return len(self.packed)

    def __len__(self) -> int:
        """Batches per rank per epoch (the same for every rank and epoch)."""
        return -(-self.num_batches // self.world_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _epoch_order(self, epoch: int) -> list[int]:
        """Global batch order of an epoch, padded to a multiple of world_size (indices into packed)."""
        n = self.num_batches
        order = (np.random.default_rng((self.seed, epoch)).permutation(n) if self.shuffle else np.arange(n)).tolist()
        padded = len(self) * self.world_size
        return [order[k % n] for k in range(padded)] if n else []

    def _keys(self, epoch: int, offset: int = 0) -> Iterator[BatchKey]:
        order = self._epoch_order(epoch)
        for k in range(max(0, offset), len(self)):
            position = self.rank + k * self.world_size
            yield BatchKey(epoch, position, self.packed[order[position]])

    def batches(self, epoch: int) -> list[tuple[int, ...]]:
        """This rank's batches (record indices) for an epoch, in the order they are yielded."""
        return [key.indices for key in self._keys(epoch)]

    def __iter__(self) -> Iterator[BatchKey]:
        if self.position_fn is not None:
            epoch, offset = self.position_fn()
        else:
            epoch, offset = self.epoch, 0
        return self._keys(int(epoch), int(offset))
