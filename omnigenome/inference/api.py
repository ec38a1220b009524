"""`omnigenome.load(path)`: a model for use from Python, with the same code as the command line.

    m = omnigenome.load("runs/finetune/checkpoints/best.ckpt")   # or a pretraining .ckpt, or a model folder
    m.embed(["ACGU...", "GGGA..."])            # (n, hidden) float32; per_nucleotide=True for (L, hidden) arrays
    m.predict({"a": "ACGU..."})                # rows of the fine-tuned task's predictions
    m.score("ACGU...")                         # surprisal per nucleotide and pseudo-log-likelihood
    m.score("ACGU...", mutations=["A3G", "C4U:G5A"])   # effects of substitutions (nats)
    m.attentions("ACGU...", layers=[-1])       # (layers, heads, L, L); m.contacts("ACGU...") -> (L, L)

Sequences: a string, a list of strings (ids "0", "1", ...), a dict {id: sequence} or (id, sequence) pairs.
A sequence the model cannot take (a character its tokenizer cannot encode, longer than it reads, empty)
raises ValueError naming it and the position; `skip_invalid=True` leaves it out instead and lists it in
`m.last_skipped`. Neither Lightning nor Hydra is imported.
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from omnigenome.inference.batching import encode_chunk
from omnigenome.inference.models import OpenedModel, open_model
from omnigenome.inference.records import python_records


class InferenceModel:
    """An opened model (see `omnigenome.inference.models.open_model`) with the four jobs as methods."""

    def __init__(self, model: OpenedModel):
        self.model = model
        self.last_skipped: list = []

    def __repr__(self) -> str:
        task = f", task {self.model.task['name']}" if self.model.task else ""
        return f"InferenceModel({self.model.path!r}, {self.model.kind}{task}, on {self.model.device})"

    @property
    def task(self) -> dict | None:
        return self.model.task

    def _records(self, sequences):
        return python_records(sequences)

    def _note(self, skipped) -> None:
        self.last_skipped = list(skipped)

    def embed(self, sequences, pool: str = "mean", per_nucleotide: bool = False, max_tokens: int = 8192,
              skip_invalid: bool = False):
        """(n, hidden) float32 embeddings in input order; with per_nucleotide, (pooled, [(L_i, hidden) ...])."""
        from omnigenome.inference.embed import embed_chunk
        chunk, skipped = embed_chunk(self.model, self._records(sequences), pool, per_nucleotide, max_tokens,
                                     strict=not skip_invalid)
        self._note(skipped)
        return (chunk.pooled, chunk.per_nucleotide) if per_nucleotide else chunk.pooled

    def predict(self, sequences, decode: str = "valid", probabilities: bool = False, max_tokens: int = 8192,
                skip_invalid: bool = False, fold_workers: int = 1) -> list[dict]:
        """The fine-tuned task's predictions, one dict per sequence (see `omnigenome.inference.predict`)."""
        from omnigenome.inference.predict import predict_chunk
        rows, skipped, _ = predict_chunk(self.model, self._records(sequences), decode, probabilities, max_tokens,
                                         strict=not skip_invalid, fold_workers=fold_workers)
        self._note(skipped)
        return rows

    def score(self, sequences, mutations: Sequence[str] | str | None = None, variants=None,
              log_probs: bool = False, max_tokens: int = 8192, skip_invalid: bool = False) -> list[dict]:
        """Zero-shot scores (see `omnigenome.inference.score`): per sequence the surprisal of every nucleotide
        and the pseudo-log-likelihood; with `mutations` ("A12G", "A12G:C30U"; a list or a comma string,
        applied to every sequence) or `variants` (one variant sequence per sequence) one row per variant."""
        from omnigenome.inference.records import Record
        from omnigenome.inference.score import score_chunk, split_mutations
        records = self._records(sequences)
        column = None
        if variants is not None:
            variants = [variants] if isinstance(variants, str) else list(variants)
            if len(variants) != len(records):
                raise ValueError(f"{len(variants)} variants for {len(records)} sequences")
            column = "variant"
            records = [Record(r.id, r.sequence, r.where, {"variant": v}) for r, v in zip(records, variants)]
        if isinstance(mutations, str):
            mutations = split_mutations(mutations)
        rows, skipped, _ = score_chunk(self.model, records, list(mutations or []), column, None, max_tokens,
                                       strict=not skip_invalid, log_probs=log_probs)
        self._note(skipped)
        for row in rows:
            if "surprisal" in row:
                row["surprisal"] = np.asarray([np.nan if v is None else v for v in row["surprisal"]])
        return rows

    def _one(self, sequence: str):
        records = self._records([sequence])
        ok, _ = encode_chunk(self.model.tokenizer, records, self.model.max_tokens(), strict=True)
        return ok[0][1]

    def attentions(self, sequence: str, layers: Sequence[int] | None = None, heads: Sequence[int] | None = None
                   ) -> np.ndarray:
        """(layers, heads, L, L) attention maps over the nucleotides of one sequence (default: all)."""
        from omnigenome.inference.maps import attention_maps, model_shape
        n_layers, n_heads = model_shape(self.model)
        layers = [k % n_layers for k in (range(n_layers) if layers is None else layers)]
        heads = [k % n_heads for k in (range(n_heads) if heads is None else heads)]
        return attention_maps(self.model, self._one(sequence), layers, heads)

    def contacts(self, sequence: str) -> np.ndarray:
        """(L, L) contact probabilities of one sequence from the contact head."""
        from omnigenome.inference.maps import contact_map
        return contact_map(self.model, self._one(sequence))


def load(path: str | os.PathLike, device: str | None = "cpu", dtype: str = "auto", attention_backend: str = "auto",
         trust_remote_code: bool = False) -> InferenceModel:
    """A model for inference from a fine-tuned checkpoint, a pretraining checkpoint or a Hugging Face folder
    (anything `init_from=` accepts). device: cpu, cuda, cuda:1, auto; dtype: auto (bf16 where the device computes
    it natively, else fp32), fp32 or bf16."""
    return InferenceModel(open_model(path, device, dtype, attention_backend, trust_remote_code))
