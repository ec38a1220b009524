"""One small interface over every encoder that fine-tuning, heads, LoRA, evaluation and inference use.

A backbone is this project's OmniGenome (`OmniGenomeBackbone`: its own tokenizer, packed batches, the
structure-in-context input) or any masked-LM encoder that transformers builds with AutoConfig / AutoModel
(`omnigenome.model.hf_backbone.HFBackbone`: its own tokenizer, padded batches bucketed by length). What the
rest of the code sees:

- `backbone.tokenizer`: `encode(sequence, structure, record, max_tokens)` -> `EncodedSequence` (token ids and,
  for every nucleotide, the token whose state it reads) and `collate(items)` -> a batch dict;
- `backbone(batch)` -> hidden states (T, H): one row per token of the batch (packed, or a padded batch
  flattened), so `hidden[batch["nucleotide_index"]]` are the states of the nucleotides in order;
- `hidden_size`, `max_tokens`, `name`, and `attention_projections()` (for LoRA).

A nucleotide inside a k-mer or BPE token reads that token's state, so per-nucleotide tasks score the same
nucleotides whatever the tokenizer. A sequence longer than `max_tokens` is truncated (its last tokens cut;
the nucleotides they held are not read), and callers count the records that were.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn

from omnigenome.model.attention import PackedLayout
from omnigenome.model.modeling import OmniGenomeModel
from omnigenome.tokenizer import OmniGenomeTokenizer


@dataclass
class EncodedSequence:
    """One sequence as a backbone reads it.

    ids: token ids of the whole input (special tokens included).
    nucleotide_token: (num_nucleotides,) the index in `ids` of the token each nucleotide reads, for the
        nucleotides kept (all of them unless the input was truncated: `cropped`).
    """
    ids: np.ndarray
    nucleotide_token: np.ndarray
    cropped: bool = False

    @property
    def num_nucleotides(self) -> int:
        return len(self.nucleotide_token)


def batch_layout(items: Sequence[EncodedSequence], packed: bool, pad_id: int) -> dict:
    """The backbone-side part of a batch: token ids and where each sequence's nucleotides lie.

    Packed: input_ids (T,), position_ids (T,), cu_seqlens (S+1,) int32. Padded: input_ids and attention_mask
    (S, L). Both: nucleotide_index (N,) (row of the flat hidden states each nucleotide reads), nucleotide_seq
    (N,) (its sequence), first_token_index (S,) (row of each sequence's first token), num_records, num_tokens
    (real tokens, padding not counted).
    """
    lengths = np.asarray([len(it.ids) for it in items], dtype=np.int64)
    width = int(lengths.max())
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if packed else np.arange(len(items)) * width
    nucleotide_index = np.concatenate([s + it.nucleotide_token for s, it in zip(starts, items)])
    nucleotide_seq = np.repeat(np.arange(len(items)), [it.num_nucleotides for it in items])
    batch = {"nucleotide_index": torch.from_numpy(nucleotide_index.astype(np.int64)),
             "nucleotide_seq": torch.from_numpy(nucleotide_seq.astype(np.int64)),
             "first_token_index": torch.from_numpy(starts.astype(np.int64)),
             "num_records": len(items), "num_tokens": int(lengths.sum())}
    if packed:
        batch["input_ids"] = torch.from_numpy(np.concatenate([it.ids for it in items]).astype(np.int64))
        batch["position_ids"] = torch.from_numpy(np.concatenate([np.arange(n) for n in lengths]))
        batch["cu_seqlens"] = torch.from_numpy(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
    else:
        ids = np.full((len(items), width), pad_id, dtype=np.int64)
        mask = np.zeros((len(items), width), dtype=np.int64)
        for k, it in enumerate(items):
            ids[k, :len(it.ids)] = it.ids
            mask[k, :len(it.ids)] = 1
        batch["input_ids"], batch["attention_mask"] = torch.from_numpy(ids), torch.from_numpy(mask)
    return batch


class OmniGenomeSequenceTokenizer:
    """The tokenizer side of `OmniGenomeBackbone`: `<cls> seq <eos>` (or `<cls> seq <eos> struct <eos>`),
    one token per nucleotide, packed batches."""

    packed = True
    supports_structure = True

    def __init__(self, max_tokens: int, alphabet: str | None = "T"):
        self.max_tokens = max_tokens
        self.alphabet = alphabet
        self.tokenizer = OmniGenomeTokenizer(alphabet=alphabet)
        self.pad_id = self.tokenizer.pad_token_id

    def with_alphabet(self, alphabet: str | None) -> "OmniGenomeSequenceTokenizer":
        return OmniGenomeSequenceTokenizer(self.max_tokens, alphabet)

    def encode(self, sequence: str, structure: str | None = None, record: str | None = None,
               max_tokens: int | None = None) -> EncodedSequence:
        limit = min(max_tokens or self.max_tokens, self.max_tokens)
        window = (limit - 3) // 2 if structure is not None else limit - 2
        cropped = len(sequence) > window
        if cropped:
            sequence, structure = sequence[:window], (structure[:window] if structure is not None else None)
        ids = self.tokenizer.encode_array(sequence, structure, record)
        return EncodedSequence(ids, np.arange(1, len(sequence) + 1), cropped)

    def collate(self, items: Sequence[EncodedSequence]) -> dict:
        return batch_layout(items, packed=True, pad_id=self.pad_id)


class Backbone(nn.Module):
    """The interface (see the module docstring); subclasses set `name`, `hidden_size`, `tokenizer`."""

    name: str
    hidden_size: int
    tokenizer: object

    @property
    def max_tokens(self) -> int:
        return self.tokenizer.max_tokens

    def forward(self, batch: dict) -> torch.Tensor:
        raise NotImplementedError

    def attention_projections(self) -> list[tuple[str, list[tuple[int, int]] | None]]:
        """(module name, output rows) of every query and value projection, for LoRA (rows: None = all)."""
        raise NotImplementedError

    def spec(self) -> dict:
        """What a checkpoint stores to rebuild this backbone without its folder: architecture and tokenizer
        (plain values only; the weights travel in the state dict). See `backbone_from_spec`."""
        raise NotImplementedError


class OmniGenomeBackbone(Backbone):
    """This project's encoder behind the interface: packed batches, any attention backend."""

    def __init__(self, model: OmniGenomeModel, name: str = "omnigenome", alphabet: str | None = "T"):
        super().__init__()
        self.model = model
        self.name = name
        self.hidden_size = model.config.hidden_size
        self.tokenizer = OmniGenomeSequenceTokenizer(model.config.max_tokens, alphabet)

    @property
    def config(self):
        return self.model.config

    def forward(self, batch: dict) -> torch.Tensor:
        layout = PackedLayout.from_cu_seqlens(batch["cu_seqlens"])
        return self.model.encode(batch["input_ids"], layout, batch["position_ids"])

    def attention_projections(self) -> list[tuple[str, list[tuple[int, int]] | None]]:
        h = self.hidden_size
        return [(f"model.layers.{i}.qkv", [(0, h), (2 * h, 3 * h)]) for i in range(len(self.model.layers))]

    def spec(self) -> dict:
        return {"type": "omnigenome", "name": self.name, "config": self.model.config.to_dict(),
                "alphabet": self.tokenizer.alphabet}
