"""Zero-shot scores from the masked-LM head: surprisal, mutation effects, pseudo-log-likelihood.

Everything comes from exact masked marginals: a position is replaced by the mask token and the model's
distribution there is read; positions are masked one copy at a time (or, for a variant with several
substitutions, all of them together in one copy), and the copies of many positions and records are packed
into batches of `max_tokens` tokens. A sequence of L nt costs L forward passes of L tokens (O(L^2)).

Probabilities are over the four nucleotides (A, C, G, U; T reads as U), renormalised from the head's
logits, so special tokens, N and lower case take no mass. Natural logarithms (nats) throughout.

- surprisal of the observed base at position i: -log p(x_i | x with i masked) (None at an N);
- pseudo-log-likelihood (PLL) of a sequence: sum over its A/C/G/U positions of log p(x_i | x with i masked);
- effect of a variant (substitutions at positions P, given as `A12G` 1-based, several joined by `:`, or as a
  variant sequence of the same length): sum over P of log p(alt_i) - log p(ref_i), with all of P masked in
  the reference sequence (ESM-1v's masked marginal score). Positive: the model prefers the variant.

OmniGenome models use their masked-LM head; a Hugging Face folder is loaded as AutoModelForMaskedLM and
needs a single-nucleotide tokenizer: a k-mer or BPE tokenizer has no per-nucleotide marginals.
"""
from __future__ import annotations

import re
from typing import Sequence

import numpy as np
import torch

from omnigenome.inference.batching import Skipped, SkippedRecord, encode_chunk, length_batches
from omnigenome.inference.records import Record
from omnigenome.model.backbones import EncodedSequence

BASES = "ACGU"  # column order of the (positions, 4) log-probabilities
_BASE_INDEX = {b: i for i, b in enumerate(BASES)} | {"T": 3}
_MUTATION = re.compile(r"^([ACGTUacgtu])(\d+)([ACGTUacgtu])$")


class MaskedLM:
    """The masked-LM side of an opened model: its tokenizer, mask id, the ids of A C G U/T, and logits.

    `logits(batch, rows)` returns (len(rows), vocab) logits at the rows of the flat batch."""

    def __init__(self, model, mask_id: int, base_ids: Sequence[int], logits_fn):
        self.model, self.mask_id = model, int(mask_id)
        self.base_ids = torch.as_tensor(list(base_ids), dtype=torch.long, device=model.device)
        self._logits = logits_fn

    @property
    def tokenizer(self):
        return self.model.tokenizer

    def logits(self, batch: dict, rows: torch.Tensor) -> torch.Tensor:
        return self._logits(batch, rows)

    @classmethod
    def of(cls, model) -> "MaskedLM":
        og = model.omnigenome
        if og is not None:
            from omnigenome.model.attention import PackedLayout
            from omnigenome.tokenizer import MASK_ID, TOKEN_ID
            alphabet = model.tokenizer.alphabet
            fourth = "U" if alphabet == "U" else "T"

            def logits(batch, rows):
                layout = PackedLayout.from_cu_seqlens(batch["cu_seqlens"])
                hidden = og.encode(batch["input_ids"], layout, batch["position_ids"])
                return og.mlm_head(hidden[rows])
            return cls(model, MASK_ID, [TOKEN_ID[c] for c in "ACG" + fourth], logits)
        if model.kind == "task":
            raise ValueError(f"{model.path}: a fine-tuned {model.backbone.name} backbone without a masked-LM head; "
                             f"zero-shot scores need a pretrained masked LM")
        return cls._hf(model)

    @classmethod
    def _hf(cls, model) -> "MaskedLM":
        tok = model.tokenizer
        if tok.kind != "single":
            raise ValueError(f"{model.path}: its tokenizer reads nucleotides as {tok.kind} tokens "
                             f"({'k-mers' if tok.kind == 'kmer' else 'multi-nucleotide pieces'}); masking one "
                             f"token masks several nucleotides, so it cannot give per-nucleotide marginals. "
                             f"Scores need a single-nucleotide tokenizer")
        hf_tok = tok.tokenizer
        if hf_tok.mask_token_id is None:
            raise ValueError(f"{model.path}: the tokenizer has no mask token; it is not a masked LM")
        letters = tok._letters()
        base_ids = [hf_tok.convert_tokens_to_ids(c) for c in letters]
        if any(i is None or i == hf_tok.unk_token_id for i in base_ids):
            raise ValueError(f"{model.path}: the vocabulary lacks one of {', '.join(letters)}")
        from transformers import AutoModelForMaskedLM

        from omnigenome.model.hf_backbone import _quiet_transformers
        try:
            with _quiet_transformers():
                lm = AutoModelForMaskedLM.from_pretrained(model.path, trust_remote_code=model.trust_remote_code)
        except ValueError as e:
            raise ValueError(f"{model.path}: not a masked LM that transformers can load "
                             f"({' '.join(str(e).split())[:160]})") from None
        lm.eval().requires_grad_(False).to(device=model.device, dtype=model.dtype)

        def logits(batch, rows):
            out = lm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            return out.reshape(-1, out.shape[-1])[rows]
        return cls(model, hf_tok.mask_token_id, base_ids, logits)


def base_indices(sequence: str) -> np.ndarray:
    """Column of each nucleotide in BASES (T as U), -1 for anything else (N)."""
    return np.asarray([_BASE_INDEX.get(c, -1) for c in sequence.upper()], dtype=np.int64)


@torch.no_grad()
def masked_marginals(mlm: MaskedLM, items: Sequence[EncodedSequence], groups: Sequence[Sequence[Sequence[int]]],
                     max_tokens: int = 8192) -> list[list[np.ndarray]]:
    """Log-probabilities over BASES at masked positions: result[k][g] is (len(groups[k][g]), 4) float64, for
    item k with the nucleotide positions groups[k][g] (0-based) masked together."""
    model, tokenizer = mlm.model, mlm.tokenizer
    queries = [(k, g) for k in range(len(items)) for g in range(len(groups[k]))]
    out: list[list[np.ndarray | None]] = [[None] * len(groups[k]) for k in range(len(items))]
    costs = [len(items[k].ids) for k, _ in queries]
    for batch_idx in length_batches(costs, max_tokens, tokenizer.packed):
        copies, tokens = [], []
        for qi in batch_idx:
            k, g = queries[qi]
            token = items[k].nucleotide_token[np.asarray(groups[k][g], dtype=np.int64)]
            ids = items[k].ids.copy()
            ids[token] = mlm.mask_id
            copies.append(EncodedSequence(ids, items[k].nucleotide_token))
            tokens.append(token)
        batch = model.to_device(tokenizer.collate(copies))
        starts = batch["first_token_index"].cpu().numpy()
        rows = torch.from_numpy(np.concatenate([s + t for s, t in zip(starts, tokens)])).to(model.device)
        logp = torch.log_softmax(mlm.logits(batch, rows).float()[:, mlm.base_ids], dim=-1).double().cpu().numpy()
        at = 0
        for qi, t in zip(batch_idx, tokens):
            k, g = queries[qi]
            out[k][g] = logp[at:at + len(t)]
            at += len(t)
    return out  # type: ignore[return-value]


# --- mutations -------------------------------------------------------------------------------------------

def parse_variant(text: str, sequence: str, record: Record) -> list[tuple[int, str, str]]:
    """Substitutions of one variant "A12G" or "A12G:C30U" (1-based positions) as (position 0-based, ref,
    alt), checked against the sequence. Raises ValueError naming the record and the position."""
    subs, seen = [], set()
    norm = sequence.upper().replace("T", "U")
    for part in text.split(":"):
        part = part.strip()
        m = _MUTATION.match(part)
        if not m:
            raise ValueError(f"{record.describe()}: mutation {part!r} is not of the form A12G "
                             f"(reference base, 1-based position, new base; several joined by ':')")
        ref, pos, alt = m.group(1).upper().replace("T", "U"), int(m.group(2)), m.group(3).upper().replace("T", "U")
        if not 1 <= pos <= len(sequence):
            raise ValueError(f"{record.describe()}: mutation {part}: position {pos} is outside the sequence "
                             f"(1..{len(sequence)})")
        if norm[pos - 1] != ref:
            raise ValueError(f"{record.describe()}: mutation {part}: position {pos} is "
                             f"{sequence[pos - 1]!r}, not {m.group(1)!r}")
        if ref == alt:
            raise ValueError(f"{record.describe()}: mutation {part} changes nothing")
        if pos in seen:
            raise ValueError(f"{record.describe()}: mutation {text}: position {pos} is given twice")
        seen.add(pos)
        subs.append((pos - 1, ref, alt))
    return sorted(subs)


def variant_from_sequence(reference: str, variant: str, record: Record) -> str:
    """The substitutions that turn `reference` into `variant` (same length), as "A12G:C30U" ("" if equal)."""
    if not isinstance(variant, str) or len(variant) != len(reference):
        n = len(variant) if isinstance(variant, str) else "no"
        raise ValueError(f"{record.describe()}: the variant has {n} nt, the reference {len(reference)}: "
                         f"only substitutions are scored (same length)")
    ref, alt = reference.upper().replace("T", "U"), variant.upper().replace("T", "U")
    subs = [f"{reference[i].upper()}{i + 1}{variant[i].upper()}" for i in range(len(ref)) if ref[i] != alt[i]]
    for i in range(len(alt)):
        if alt[i] not in _BASE_INDEX and ref[i] != alt[i]:
            raise ValueError(f"{record.describe()}: the variant has {variant[i]!r} at position {i + 1}")
    return ":".join(subs)


# --- jobs --------------------------------------------------------------------------------------------------

def surprisal_rows(mlm: MaskedLM, records: Sequence[Record], items: Sequence[EncodedSequence],
                   max_tokens: int = 8192, log_probs: bool = False) -> list[dict]:
    """Per record: id, length, scored (A/C/G/U positions), pll, pll_per_nt, surprisal (list, None at N),
    and with log_probs the (L, 4) log-probabilities (None rows at N)."""
    bases = [base_indices(r.sequence[:it.num_nucleotides]) for r, it in zip(records, items)]
    groups = [[(int(p),) for p in np.flatnonzero(b >= 0)] for b in bases]
    marginals = masked_marginals(mlm, items, groups, max_tokens)
    rows = []
    for record, b, gs, ms in zip(records, bases, groups, marginals):
        surprisal: list[float | None] = [None] * len(b)
        table: list[list[float] | None] = [None] * len(b)
        pll = 0.0
        for (p,), m in zip(gs, ms):
            lp = float(m[0, b[p]])
            surprisal[p] = -lp
            pll += lp
            table[p] = m[0].tolist()
        row = {"id": record.id, "length": len(b), "scored": len(gs), "pll": pll,
               "pll_per_nt": pll / len(gs) if gs else None, "surprisal": surprisal}
        if log_probs:
            row["log_probs"] = table
        rows.append(row)
    return rows


def mutation_rows(mlm: MaskedLM, records: Sequence[Record], items: Sequence[EncodedSequence],
                  variants: Sequence[Sequence[str]], max_tokens: int = 8192) -> list[dict]:
    """One row per (record, variant): id, mutation ("A12G:C30U"), effect = sum log p(alt) - log p(ref) at the
    masked positions (nats), log_p_ref, log_p_alt. variants[k]: the variant strings of record k (checked)."""
    parsed = [[parse_variant(v, r.sequence, r) if v else [] for v in vs] for r, vs in zip(records, variants)]
    groups = [[tuple(p for p, _, _ in subs) for subs in ps if subs] for ps in parsed]
    marginals = masked_marginals(mlm, items, groups, max_tokens)
    rows = []
    for record, vs, ps, ms in zip(records, variants, parsed, marginals):
        it = iter(ms)
        for text, subs in zip(vs, ps):
            if not subs:
                rows.append({"id": record.id, "mutation": "", "effect": 0.0, "log_p_ref": 0.0, "log_p_alt": 0.0})
                continue
            m = next(it)
            ref = sum(float(m[j, _BASE_INDEX[r]]) for j, (_, r, _) in enumerate(subs))
            alt = sum(float(m[j, _BASE_INDEX[a]]) for j, (_, _, a) in enumerate(subs))
            name = ":".join(f"{r}{p + 1}{a}" for p, r, a in subs)
            rows.append({"id": record.id, "mutation": name, "effect": alt - ref, "log_p_ref": ref, "log_p_alt": alt})
    return rows


def split_mutations(text: str | None) -> list[str]:
    """"A12G,C30U" -> ["A12G", "C30U"] (two variants); "A12G:C30U" is one variant with two substitutions."""
    return [t.strip() for t in (text or "").replace(";", ",").split(",") if t.strip()]


def score_chunk(model, records: Sequence[Record], mutations: Sequence[str] | None = None,
                variant_column: str | None = None, mutation_column: str | None = None, max_tokens: int = 8192,
                strict: bool = False, log_probs: bool = False) -> tuple[list[dict], list[Skipped], int]:
    """Score one chunk: (rows, skipped records, tokens read). With `mutations` (for every record),
    `variant_column` (a variant sequence per record) or `mutation_column` (a comma list per record): one
    row per variant; else one row per record with surprisal and PLL."""
    mlm = model.masked_lm()
    ok, skipped = encode_chunk(mlm.tokenizer, records, model.max_tokens(), strict)
    mutating = bool(mutations) or bool(variant_column) or bool(mutation_column)
    kept_records, kept_items, variants = [], [], []
    for k, item in ok:
        record = records[k]
        if not mutating:
            kept_records.append(record), kept_items.append(item)
            continue
        try:
            if variant_column:
                vs = [variant_from_sequence(record.sequence, (record.extra or {}).get(variant_column), record)]
            elif mutation_column:
                vs = split_mutations(str((record.extra or {}).get(mutation_column) or ""))
            else:
                vs = list(mutations)
            for v in vs:
                if v:
                    parse_variant(v, record.sequence, record)
        except ValueError as e:
            if strict:
                raise SkippedRecord(str(e)) from None
            skipped.append(Skipped(record.id, record.where, "mutation", f"{record.where}: {e}"
                                   if not str(e).startswith(record.where) else str(e)))
            continue
        kept_records.append(record), kept_items.append(item), variants.append(vs)
    if not kept_records:
        return [], skipped, 0
    copies = [len(vs) for vs in variants] if mutating else [int((base_indices(r.sequence) >= 0).sum())
                                                             for r in kept_records]
    tokens = sum(len(it.ids) * n for it, n in zip(kept_items, copies))  # tokens of the masked copies read
    if mutating:
        rows = mutation_rows(mlm, kept_records, kept_items, variants, max_tokens)
    else:
        rows = surprisal_rows(mlm, kept_records, kept_items, max_tokens, log_probs)
    return rows, skipped, tokens
