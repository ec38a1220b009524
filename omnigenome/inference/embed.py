"""Embeddings: the encoder's final hidden states, pooled per sequence and, if asked, per nucleotide.

Pooling is the one the task heads use (`omnigenome.model.heads.head_inputs`): `mean` over the states the
nucleotides read (never the special tokens; with a k-mer or BPE tokenizer a nucleotide reads its token's
state), or `cls`, the first token's state. Per-nucleotide embeddings are one (length, hidden) array per
record, in sequence order.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from omnigenome.inference.batching import encode_chunk, length_batches
from omnigenome.inference.records import Record
from omnigenome.model.heads import POOLINGS, head_inputs


class EmbeddingChunk:
    """Embeddings of the records of one chunk that the model took, in input order.

    ids: record ids. pooled: (n, H) float32. per_nucleotide: n arrays (L_i, H) float32, or None.
    maps: n dicts {"attentions": (layers, heads, L, L), "contacts": (L, L)} float32, or None.
    tokens: real tokens the model read (for throughput)."""

    def __init__(self, ids, pooled, per_nucleotide=None, maps=None, tokens: int = 0):
        self.ids, self.pooled, self.per_nucleotide, self.maps, self.tokens = ids, pooled, per_nucleotide, maps, tokens

    def __len__(self) -> int:
        return len(self.ids)


def check_pool(pool: str) -> str:
    if pool not in POOLINGS:
        raise ValueError(f"unknown pooling {pool!r} (choose from {', '.join(POOLINGS)})")
    return pool


@torch.no_grad()
def embed_encoded(model, items: Sequence, pool: str = "mean", per_nucleotide: bool = False,
                  max_tokens: int = 8192) -> tuple[np.ndarray, list[np.ndarray] | None, int]:
    """(pooled (n, H), per-nucleotide arrays or None, tokens) of encoded sequences, in their order."""
    check_pool(pool)
    tokenizer = model.tokenizer
    pooled = np.zeros((len(items), model.hidden_size), dtype=np.float32)
    per_nt: list[np.ndarray | None] | None = [None] * len(items) if per_nucleotide else None
    tokens = 0
    for batch_idx in length_batches([len(it.ids) for it in items], max_tokens, tokenizer.packed):
        batch = model.to_device(tokenizer.collate([items[k] for k in batch_idx]))
        hidden = model.backbone(batch)
        p = head_inputs(hidden, batch, "sequence_regression", pool)
        pooled[batch_idx] = p.float().cpu().numpy()
        tokens += batch["num_tokens"]
        if per_nt is not None:
            states = hidden[batch["nucleotide_index"]].float().cpu().numpy()
            at = 0
            for k in batch_idx:
                n = items[k].num_nucleotides
                per_nt[k] = states[at:at + n]
                at += n
    return pooled, per_nt, tokens  # type: ignore[return-value]


def embed_chunk(model, records: Sequence[Record], pool: str = "mean", per_nucleotide: bool = False,
                max_tokens: int = 8192, strict: bool = False, maps: dict | None = None):
    """Embed one chunk of records: (EmbeddingChunk of the records taken, skipped records).

    maps: {"attentions": (layers, heads) selection or None, "contacts": bool} to add attention / contact
    maps per record (see `omnigenome.inference.maps`)."""
    ok, skipped = encode_chunk(model.tokenizer, records, model.max_tokens(), strict)
    items = [enc for _, enc in ok]
    ids = [records[k].id for k, _ in ok]
    if not items:
        return EmbeddingChunk([], np.zeros((0, model.hidden_size), np.float32), [] if per_nucleotide else None,
                              [] if maps else None), skipped
    pooled, per_nt, tokens = embed_encoded(model, items, pool, per_nucleotide, max_tokens)
    chunk_maps = None
    if maps and (maps.get("attentions") is not None or maps.get("contacts")):
        from omnigenome.inference.maps import record_maps
        chunk_maps = record_maps(model, items, maps.get("attentions"), bool(maps.get("contacts")))
    return EmbeddingChunk(ids, pooled, per_nt, chunk_maps, tokens), skipped
