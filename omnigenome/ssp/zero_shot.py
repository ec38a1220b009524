"""Zero-shot secondary structure prediction: a model's structure head and ViennaRNA MFE on one split of a
structure task (RGB's RNA-SSP data sets: `rgb/ssp_archive2`, `rgb/ssp_bprna`, `rgb/ssp_rnastralign`).

`python evaluate.py evaluation=ssp_zero_shot task=rgb/ssp_bprna ckpt=...` calls `run_zero_shot`.
"""
from __future__ import annotations

import logging
import os
import time
from typing import Sequence

import RNA

from omnigenome.folding import mfe_structures
from omnigenome.metrics import structure_scores
from omnigenome.ssp.decode import DECODERS, decode
from omnigenome.ssp.predict import structure_probabilities
from omnigenome.utils import markdown_table

log = logging.getLogger("omnigenome")

COLUMNS = (("macro_f1", "token macro-F1"), ("mcc", "token MCC"), ("bp_precision", "bp precision"),
           ("bp_recall", "bp recall"), ("bp_f1", "bp F1"))


def score_split(records: Sequence, model=None, decoders: Sequence[str] = ("valid",), min_loop: int = 3,
                canonical_only: bool | Sequence[bool] = True, max_tokens: int = 16384, vienna: bool = True,
                workers: int = 1, cache_dir: str | os.PathLike | None = None,
                progress: bool = False) -> dict[str, dict[str, float]]:
    """Scores of each predictor on the records (objects with .sequence and .structure, the true dot-bracket):
    {row name: structure_scores(...) + "seconds"}.

    Rows: "model (<decoder>)" for each decoder when a model is given (one forward pass shared by all of them;
    `valid` once per value of `canonical_only`, a list compares them: "model (valid, canonical pairs)"), and
    "ViennaRNA <version> MFE" when `vienna`.
    """
    for d in decoders:
        if d not in DECODERS:
            raise ValueError(f"unknown decoder {d!r} (choose from {', '.join(DECODERS)})")
    sequences = [r.sequence for r in records]
    true = [r.structure for r in records]
    rows: dict[str, dict[str, float]] = {}
    if model is not None:
        start = time.perf_counter()
        probs = structure_probabilities(model, sequences, max_tokens=max_tokens)
        forward_s = time.perf_counter() - start
        canonical = [canonical_only] if isinstance(canonical_only, bool) else list(canonical_only)
        for d in decoders:
            for c in canonical if d == "valid" else [False]:
                start = time.perf_counter()
                predicted = [decode(p, d, s, min_loop=min_loop, canonical_only=c) for p, s in zip(probs, sequences)]
                rows[f"model ({d}{', canonical pairs' if c else ''})"] = {
                    **structure_scores(predicted, true), "seconds": forward_s + time.perf_counter() - start}
    if vienna:
        start = time.perf_counter()
        predicted = mfe_structures(sequences, workers=workers, cache_dir=cache_dir, progress=progress)
        rows[f"ViennaRNA {RNA.__version__} MFE"] = {**structure_scores(predicted, true),
                                                    "seconds": time.perf_counter() - start}
    return rows


def format_table(rows: dict[str, dict[str, float]], title: str | None = None) -> str:
    """Rows of `score_split` as a Markdown table."""
    header = ["predictor", *(name for _, name in COLUMNS), "sequences", "seconds"]
    body = [[name, *(f"{s[key]:.4f}" for key, _ in COLUMNS), int(s["num_sequences"]), f"{s['seconds']:.1f}"]
            for name, s in rows.items()]
    return markdown_table(header, body, title)


def run_zero_shot(ckpt: str | None, task, split: str = "test", decode: Sequence[str] | str = "valid",
                  min_loop: int = 3, canonical_only: bool | Sequence[bool] = True, max_tokens: int = 16384,
                  vienna: bool = True, workers: int = 1, limit: int | None = None, cache_dir: str | None = None,
                  attention_backend: str = "auto", progress: bool = True) -> dict[str, dict[str, float]]:
    """Load the split of the structure task and the model (`ckpt`: train.py checkpoint or Hugging Face dir;
    None: ViennaRNA only), score both, print the table, return the rows."""
    from omnigenome.data.benchmarks import load_split
    from omnigenome.model.loading import load_model

    decoders = [decode] if isinstance(decode, str) else list(decode)
    records = load_split(task, split, limit=limit)
    if any(r.structure is None for r in records[:1]):
        raise ValueError(f"task {task['name']} has no structure labels: zero-shot structure prediction needs "
                         f"a structure task (rgb/ssp_archive2, rgb/ssp_bprna, rgb/ssp_rnastralign)")
    model = load_model(ckpt, attention_backend) if ckpt else None
    rows = score_split(records, model, decoders, min_loop=min_loop, canonical_only=canonical_only,
                       max_tokens=max_tokens, vienna=vienna, workers=workers, cache_dir=cache_dir, progress=progress)
    print("\n" + format_table(rows, f"zero-shot secondary structure, {task['name']} {split} ({len(records)} "
                                    f"sequences)" + (f"; model: {ckpt}" if ckpt else "")))
    return rows
