"""Structure-head probabilities of a model for many sequences, and the structures decoded from them."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from omnigenome.ssp.decode import decode
from omnigenome.tokenizer import OmniGenomeTokenizer


@torch.no_grad()
def structure_probabilities(model, sequences: Sequence[str], max_tokens: int = 16384,
                            tokenizer: OmniGenomeTokenizer | None = None,
                            ids: Sequence[str] | None = None, dtype: str = "auto") -> list[np.ndarray]:
    """Per-nucleotide probabilities of `(`, `)`, `.`: one float32 array (len(seq), 3) per sequence, in input order.

    The model sees `<cls> seq <eos>` (no structure in context). Sequences are batched longest first
    so that a batch holds at most `max_tokens` padded tokens. Raises ValueError naming the record (its id
    from `ids`, else its 0-based position) for an empty sequence, an invalid character, or one longer than
    the model reads (`config.max_nucleotides`, 1022 nt for the released models). dtype: "auto" (bf16 where the
    device computes it natively), "fp32" or "bf16" (see `omnigenome.model.precision`).
    """
    from omnigenome.model.precision import autocast
    tokenizer = tokenizer or OmniGenomeTokenizer()
    ids = list(ids) if ids is not None else [str(k) for k in range(len(sequences))]
    limit = model.config.max_nucleotides
    for rid, s in zip(ids, sequences):
        tokenizer.normalize(s, record=rid)  # raises on empty / invalid input, naming the record
        if len(s) > limit:
            raise ValueError(f"record {rid!r}: {len(s)} nt is longer than the {limit} nt the model reads")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    order = sorted(range(len(sequences)), key=lambda k: len(sequences[k]), reverse=True)
    probs: list[np.ndarray | None] = [None] * len(sequences)
    start = 0
    try:
        while start < len(order):
            width = len(sequences[order[start]]) + 2  # the longest of the batch sets the padded width
            stop = start + max(1, max_tokens // width)
            batch_ids = order[start:stop]
            batch = tokenizer([sequences[k] for k in batch_ids], records=[ids[k] for k in batch_ids])
            with autocast(device, dtype):
                logits = model(batch["input_ids"].to(device), batch["attention_mask"].to(device),
                               heads=("structure",)).structure_logits
            p = torch.softmax(logits.float(), dim=-1).cpu().numpy()
            for row, k in enumerate(batch_ids):
                probs[k] = p[row, 1: len(sequences[k]) + 1]
            start = stop
    finally:
        model.train(was_training)
    return probs  # type: ignore[return-value]


def predict_structures(model, sequences: Sequence[str], method: str = "valid", min_loop: int = 3,
                       canonical_only: bool = True, max_tokens: int = 16384,
                       ids: Sequence[str] | None = None, dtype: str = "auto") -> list[str]:
    """Dot-bracket structures predicted by the model's structure head (see `omnigenome.ssp.decode`)."""
    probs = structure_probabilities(model, sequences, max_tokens=max_tokens, ids=ids, dtype=dtype)
    return [decode(p, method, s, min_loop=min_loop, canonical_only=canonical_only) for p, s in zip(probs, sequences)]
