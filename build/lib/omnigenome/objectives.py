"""The three pretraining objectives of OmniGenome, built as packed "views" of each record.

For every record (sequence, structure) each active objective adds one segment to the packed batch:

- mlm      masked RNA language modelling: `<cls> seq <eos>` with nucleotides masked (80% `<mask>`,
           10% a random nucleotide, 10% unchanged); predict the originals with the MLM head.
- str2seq  structure-contextualised: `<cls> seq <eos> struct <eos>` with nucleotides masked and the
           structure left visible; predict the masked nucleotides with the MLM head.
- seq2str  `<cls> seq <eos>` (unmasked by default); the structure head predicts every nucleotide's
           dot-bracket label `(`, `)`, `.`.

All segments of a batch go through one encoder forward (attention never crosses segments). An
objective with weight 0 builds no segment, so it costs no forward work. Each objective's loss and
accuracy are reported separately; the training loss is their weighted sum.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from omnigenome.model.attention import PackedLayout
from omnigenome.structure import STRUCTURE_LABELS, plain_labels
from omnigenome.tokenizer import CLS_ID, EOS_ID, MASK_ID, TOKEN_ID, OmniGenomeTokenizer

NAMES = ("mlm", "str2seq", "seq2str")
STRUCTURE_IDS = np.array([TOKEN_ID[c] for c in STRUCTURE_LABELS])  # Seq2Str label -> token id
DEFAULT_MASK_RATE = {"mlm": 0.15, "str2seq": 0.3, "seq2str": 0.0}


@dataclass
class Objective:
    """Weight and masking of one objective. mask_rate: fraction of nucleotides selected for prediction
    (seq2str: fraction corrupted in its input); of those, mask_token_frac become `<mask>`, random_token_frac
    a random nucleotide, and the rest stay unchanged."""
    weight: float = 1.0
    mask_rate: float = 0.15
    mask_token_frac: float = 0.8
    random_token_frac: float = 0.1


class PretrainingObjectives:
    """Turns records into packed training batches and batches into per-objective losses.

    max_length: longest segment in tokens (special tokens included); longer records are cropped to a
    random window (seeded per batch), so a segment never exceeds what the model was built for.
    """

    def __init__(self, mlm: dict | Objective | None = None, str2seq: dict | Objective | None = None,
                 seq2str: dict | Objective | None = None, max_length: int = 1024,
                 tokenizer: OmniGenomeTokenizer | None = None):
        specs = {"mlm": mlm, "str2seq": str2seq, "seq2str": seq2str}
        self.objectives = {n: s if isinstance(s, Objective) else
                           Objective(**{"weight": 0.0, "mask_rate": DEFAULT_MASK_RATE[n], **dict(s or {})})
                           for n, s in specs.items()}
        for name, o in self.objectives.items():
            if o.weight < 0 or not 0 <= o.mask_rate <= 1 or o.mask_token_frac + o.random_token_frac > 1:
                raise ValueError(f"objective {name}: invalid settings {o}")
        self.active = tuple(n for n in NAMES if self.objectives[n].weight > 0)
        if not self.active:
            raise ValueError("all objective weights are 0: nothing to train")
        if max_length < 9:
            raise ValueError(f"max_length {max_length} is too short for a structure-contextualised segment")
        self.max_length = max_length
        self.tokenizer = tokenizer or OmniGenomeTokenizer()
        self._canonical = np.asarray(self.tokenizer.canonical_ids)

    # --- sizes -----------------------------------------------------------------------------------
    def _window(self, name: str) -> int:
        """Longest nucleotide window of one segment of this objective."""
        return (self.max_length - 3) // 2 if name == "str2seq" else self.max_length - 2

    def tokens_per_record(self, lengths: np.ndarray) -> np.ndarray:
        """Tokens each record adds to a packed batch (what the token budget counts)."""
        lengths = np.asarray(lengths, dtype=np.int64)
        total = np.zeros_like(lengths)
        for name in self.active:
            n = np.minimum(lengths, self._window(name))
            total += 2 * n + 3 if name == "str2seq" else n + 2
        return total

    # --- batches ---------------------------------------------------------------------------------
    def _mask(self, ids: np.ndarray, lengths: np.ndarray, o: Objective, rng: np.random.Generator) -> np.ndarray:
        """Corrupt the concatenated nucleotide ids of segments of `lengths` in place; returns the
        positions selected for prediction (every segment gets at least one when mask_rate > 0)."""
        chosen = rng.random(len(ids)) < o.mask_rate
        if o.mask_rate > 0:
            starts = np.cumsum(lengths) - lengths
            empty = np.flatnonzero(np.add.reduceat(chosen, starts) == 0) if len(ids) else starts[:0]
            chosen[starts[empty] + rng.integers(lengths[empty])] = True  # every segment teaches something
        selected = np.flatnonzero(chosen)
        fate = rng.random(selected.size)
        to_mask = selected[fate < o.mask_token_frac]
        to_random = selected[(fate >= o.mask_token_frac) & (fate < o.mask_token_frac + o.random_token_frac)]
        ids[to_mask] = MASK_ID
        ids[to_random] = rng.choice(self._canonical, size=to_random.size)
        return selected

    def build_batch(self, records: Sequence, rng: np.random.Generator, record_index: Sequence[int] | None = None) -> dict:
        """Pack the views of `records` (objects with .id, .sequence, .structure).

        Segments are laid out record by record, each record's views in the order of `active`. Returns
        a dict of tensors: input_ids (T,), position_ids (T,), cu_seqlens (S+1,) int32, and for each
        active objective `<name>_index` (N,) (token positions to score) and `<name>_target` (N,) (token
        ids for mlm/str2seq, structure labels 0/1/2 for seq2str); plus record_index (R,) and the scalar
        counts num_records and num_tokens. Work is done per objective over the whole batch, not per record.
        """
        tok = self.tokenizer
        seqs = [tok._ids(tok.normalize(r.sequence, r.id)) for r in records]
        labels = None
        if "str2seq" in self.active or "seq2str" in self.active:
            labels = [plain_labels(r.structure, r.id, len(s)) for r, s in zip(records, seqs)]
        full = np.array([len(s) for s in seqs], dtype=np.int64)
        R, V = len(records), len(self.active)
        # Nucleotides per (record, view) and the window each view crops (seeded, per batch).
        n = np.empty((R, V), dtype=np.int64)
        start = np.empty((R, V), dtype=np.int64)
        for v, name in enumerate(self.active):
            n[:, v] = np.minimum(full, self._window(name))
            start[:, v] = rng.integers(full - n[:, v] + 1) if R else 0
        seg_len = n + 2  # <cls> seq <eos>
        for v, name in enumerate(self.active):
            if name == "str2seq":
                seg_len[:, v] += n[:, v] + 1  # struct <eos>
        lengths = seg_len.reshape(-1)  # record-major
        seg_start = (np.cumsum(lengths) - lengths).reshape(R, V)
        total = int(lengths.sum())
        input_ids = np.empty(total, dtype=np.int64)
        input_ids[seg_start.reshape(-1)] = CLS_ID
        batch = {}
        for v, name in enumerate(self.active):
            o, nv = self.objectives[name], n[:, v]
            nuc = np.concatenate([s[a:a + k] for s, a, k in zip(seqs, start[:, v], nv)]) if R else np.zeros(0, np.int64)
            seg = np.repeat(np.arange(R), nv)
            local = np.arange(len(nuc)) - np.repeat(np.cumsum(nv) - nv, nv)
            where = seg_start[seg, v] + 1 + local  # batch position of every nucleotide of this view
            input_ids[seg_start[:, v] + 1 + nv] = EOS_ID
            if labels is not None and name != "mlm":
                lab = np.concatenate([x[a:a + k] for x, a, k in zip(labels, start[:, v], nv)]).astype(np.int64)
            if name == "seq2str":
                if o.mask_rate > 0:
                    self._mask(nuc, nv, o, rng)
                index, target = where, lab
            else:
                original = nuc.copy()
                chosen = self._mask(nuc, nv, o, rng)
                index, target = where[chosen], original[chosen]
                if name == "str2seq":  # the structure stays visible: `<cls> seq <eos> struct <eos>`
                    input_ids[where + nv[seg] + 1] = STRUCTURE_IDS[lab]
                    input_ids[seg_start[:, v] + 2 * nv + 2] = EOS_ID
            input_ids[where] = nuc
            batch[f"{name}_index"] = torch.from_numpy(index)
            batch[f"{name}_target"] = torch.from_numpy(np.ascontiguousarray(target, dtype=np.int64))
        return {
            "input_ids": torch.from_numpy(input_ids),
            "position_ids": torch.from_numpy(np.arange(total) - np.repeat(seg_start.reshape(-1), lengths)),
            "cu_seqlens": torch.from_numpy(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)),
            "record_index": torch.as_tensor(list(record_index) if record_index is not None else [], dtype=torch.long),
            "num_records": R,
            "num_tokens": total,
            **batch,
        }

    # --- losses ----------------------------------------------------------------------------------
    def losses(self, model, batch: dict) -> dict[str, torch.Tensor]:
        """One encoder forward over the packed batch, heads only where scored.

        Returns {"loss": weighted sum, "<name>/loss": ..., "<name>/acc": ...} for each active objective.
        """
        layout = PackedLayout.from_cu_seqlens(batch["cu_seqlens"])
        hidden = model.encode(batch["input_ids"], layout, batch["position_ids"])
        out, total = {}, 0.0
        for name in self.active:
            h = hidden[batch[f"{name}_index"]]
            logits = model.structure_head(h) if name == "seq2str" else model.mlm_head(h)
            target = batch[f"{name}_target"]
            loss = F.cross_entropy(logits.float(), target)
            out[f"{name}/loss"] = loss
            out[f"{name}/acc"] = (logits.argmax(-1) == target).float().mean()
            total = total + self.objectives[name].weight * loss
        out["loss"] = total
        return out
