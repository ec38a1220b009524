"""Model proposals: refill masked positions with the MLM head, conditioned on the target structure.

The input is the str2seq view the model was pretrained with (`omnigenome.objectives`):
`<cls> masked_seq <eos> target <eos>`; the MLM logits at the masked positions, restricted to the four
nucleotides, are the proposal distribution.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from omnigenome.tokenizer import MASK_ID, PAD_ID, TOKEN_ID, OmniGenomeTokenizer

_MODEL_BASES = ("A", "C", "G", "T")  # the released checkpoints work in the T alphabet
_RNA = {"A": "A", "C": "C", "G": "G", "T": "U"}


class MLMProposer:
    """Samples nucleotides for masked positions from a masked-language model.

    model: an OmniGenomeModel (see `omnigenome.model.loading.load_model`). temperature scales the
    logits (1.0: the model's distribution). `calls` counts forward passes, `filled` the positions
    filled. Sampling uses the caller's numpy Generator, so proposals are reproducible from the seed.
    """

    def __init__(self, model, temperature: float = 1.0, batch_size: int = 16):
        self.model = model.eval()
        self.tokenizer = OmniGenomeTokenizer(alphabet="T")
        self.temperature = temperature
        self.batch_size = batch_size
        self.base_ids = [TOKEN_ID[b] for b in _MODEL_BASES]
        self.max_tokens = model.config.max_tokens
        self.calls = 0
        self.filled = 0

    def fits(self, length: int) -> bool:
        """Whether a target of `length` nt fits the model with its structure (2 * length + 3 tokens)."""
        return 2 * length + 3 <= self.max_tokens

    @torch.no_grad()
    def fill(self, sequences: Sequence[Sequence[str]], structure: str, masked: Sequence[Sequence[int]],
             rng: np.random.Generator) -> list[list[str]]:
        """Copies of `sequences` (RNA alphabet) with the positions in `masked[k]` resampled by the model."""
        out = [list(s) for s in sequences]
        for start in range(0, len(out), self.batch_size):
            chunk = range(start, min(start + self.batch_size, len(out)))
            rows = []
            for k in chunk:
                ids = self.tokenizer.encode_array("".join(out[k]), structure)
                ids[1 + np.asarray(masked[k], dtype=np.int64)] = MASK_ID
                rows.append(torch.from_numpy(ids))
            width = max(len(r) for r in rows)
            input_ids = torch.full((len(rows), width), PAD_ID, dtype=torch.long)
            for r, ids in enumerate(rows):
                input_ids[r, :len(ids)] = ids
            device = next(self.model.parameters()).device
            input_ids = input_ids.to(device)
            logits = self.model(input_ids, (input_ids != PAD_ID).long()).mlm_logits.float().cpu()
            self.calls += 1
            for r, k in enumerate(chunk):
                pos = np.asarray(masked[k], dtype=np.int64)
                if pos.size == 0:
                    continue
                z = logits[r, 1 + torch.from_numpy(pos)][:, self.base_ids].double() / self.temperature
                p = torch.softmax(z, dim=-1).numpy()
                u = rng.random(len(pos))[:, None]
                picks = (np.cumsum(p, axis=1) < u).sum(axis=1).clip(0, 3)
                for i, b in zip(pos, picks):
                    out[k][i] = _RNA[_MODEL_BASES[b]]
                self.filled += len(pos)
        return out
