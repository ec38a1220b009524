"""Zero-shot secondary structure prediction: a model's structure head and ViennaRNA MFE on one split.

`python evaluate.py task=ssp_zero_shot dataset=archive2 ckpt=...` calls `run_zero_shot`.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Sequence

import RNA

from omnigenome.data.benchmarks import StructureRecord, load_ssp_split
from omnigenome.folding import fold_many
from omnigenome.metrics import structure_scores
from omnigenome.ssp.decode import DECODERS, decode
from omnigenome.ssp.predict import structure_probabilities

log = logging.getLogger("omnigenome")

COLUMNS = (("macro_f1", "token macro-F1"), ("mcc", "token MCC"), ("bp_precision", "bp precision"),
           ("bp_recall", "bp recall"), ("bp_f1", "bp F1"))


def vienna_structures(sequences: Sequence[str], workers: int = 1, cache_dir: str | os.PathLike | None = None,
                      progress: bool = False) -> list[str]:
    """ViennaRNA MFE structures (via `folding.fold_many`), cached on disk when `cache_dir` is given.

    A full test split takes a minute or more on one core (bpRNA TS0: 1305 sequences); the cache file
    is named by a hash of the sequences and the ViennaRNA version, so any change refolds.
    """
    cache = None
    if cache_dir is not None:
        key = hashlib.sha256(("\n".join(sequences) + "\n" + RNA.__version__).encode()).hexdigest()[:20]
        cache = Path(cache_dir) / f"vienna-mfe-{key}.json"
        if cache.is_file():
            structures = json.loads(cache.read_text())
            if len(structures) == len(sequences):
                return structures
    structures = [s for s, _ in fold_many(sequences, workers=workers, progress=progress, desc="ViennaRNA MFE")]
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(structures))
        os.replace(tmp, cache)  # atomic: a concurrent reader sees all or nothing
    return structures


def score_split(records: Sequence[StructureRecord], model=None, decoders: Sequence[str] = ("valid",),
                min_loop: int = 3, canonical_only: bool = False, max_tokens: int = 16384, vienna: bool = True,
                workers: int = 1, cache_dir: str | os.PathLike | None = None,
                progress: bool = False) -> dict[str, dict[str, float]]:
    """Scores of each predictor on the records: {row name: structure_scores(...) + "seconds"}.

    Rows: "model (<decoder>)" for each decoder when a model is given (one forward pass shared by
    all decoders), and "ViennaRNA <version> MFE" when `vienna`.
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
        for d in decoders:
            start = time.perf_counter()
            predicted = [decode(p, d, s, min_loop=min_loop, canonical_only=canonical_only)
                         for p, s in zip(probs, sequences)]
            rows[f"model ({d})"] = {**structure_scores(predicted, true),
                                    "seconds": forward_s + time.perf_counter() - start}
    if vienna:
        start = time.perf_counter()
        predicted = vienna_structures(sequences, workers=workers, cache_dir=cache_dir, progress=progress)
        rows[f"ViennaRNA {RNA.__version__} MFE"] = {**structure_scores(predicted, true),
                                                    "seconds": time.perf_counter() - start}
    return rows


def format_table(rows: dict[str, dict[str, float]], title: str | None = None) -> str:
    """Rows of `score_split` as a fixed-width text table (also valid Markdown)."""
    header = ["predictor", *(name for _, name in COLUMNS), "sequences", "seconds"]
    lines = [header]
    for name, s in rows.items():
        lines.append([name, *(f"{s[key]:.4f}" for key, _ in COLUMNS), str(int(s["num_sequences"])),
                      f"{s['seconds']:.1f}"])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = ["| " + " | ".join(c.ljust(w) for c, w in zip(line, widths)) + " |" for line in lines]
    text.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return ((title + "\n") if title else "") + "\n".join(text)


def run_zero_shot(ckpt: str | None, dataset: str, split: str = "test", data_dir: str | None = None,
                  benchmark_root: str | None = None, decode: Sequence[str] | str = "valid", min_loop: int = 3,
                  canonical_only: bool = False, max_tokens: int = 16384, vienna: bool = True, workers: int = 1,
                  limit: int | None = None, cache_dir: str | None = None, attention_backend: str = "auto",
                  progress: bool = True) -> dict[str, dict[str, float]]:
    """Load the split and the model (`ckpt`: train.py checkpoint or Hugging Face dir; None: ViennaRNA
    only), score both, print the table, return the rows."""
    from omnigenome.training.run import load_model

    decoders = [decode] if isinstance(decode, str) else list(decode)
    records = load_ssp_split(dataset, split, data_dir=data_dir, benchmark_root=benchmark_root, limit=limit)
    model = load_model(ckpt, attention_backend) if ckpt else None
    rows = score_split(records, model, decoders, min_loop=min_loop, canonical_only=canonical_only,
                       max_tokens=max_tokens, vienna=vienna, workers=workers, cache_dir=cache_dir, progress=progress)
    print("\n" + format_table(rows, f"zero-shot secondary structure, {dataset} {split} ({len(records)} sequences)"
                                    + (f"; model: {ckpt}" if ckpt else "")))
    return rows
