"""FASTA files -> a pretraining corpus: normalise, filter, de-duplicate, fold, split, shard.

Output directory::

    train/          ShardedCorpus (see omnigenome.data.shards)
    val/            ShardedCorpus
    manifest.json   where every input record went; the counts add up to the input count

Every input record lands in exactly one bucket, checked in this order: invalid (a character the
tokenizer rejects), too_short, too_long, duplicate (same normalised sequence as an earlier kept
record, in any input file), kept_train / kept_val.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Iterable

from omnigenome.data.fasta import read_fasta
from omnigenome.data.shards import INDEX, write_json_atomic, write_shards
from omnigenome.folding import fold_many
from omnigenome.tokenizer import OmniGenomeTokenizer

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
COUNT_KEYS = ("input", "kept_train", "kept_val", "too_short", "too_long", "invalid", "duplicate")


def is_validation(sequence: str, val_fraction: float, seed: int = 0) -> bool:
    """Deterministic train/val assignment from a hash of the (normalised) sequence.

    Depends only on the sequence and the seed, not on file order, so the same sequence is in the
    same split in every run and in every corpus prepared with that seed.
    """
    digest = hashlib.blake2b(f"{seed}:{sequence}".encode("ascii"), digest_size=8).digest()
    return int.from_bytes(digest, "big") < val_fraction * 2 ** 64


def prepare_corpus(inputs: Iterable[str | os.PathLike], out_dir: str | os.PathLike, min_length: int = 50,
                   max_length: int = 1022, records_per_shard: int = 100_000, workers: int = 1,
                   val_fraction: float = 0.01, seed: int = 0, progress: bool = True) -> dict:
    """Prepare `out_dir/train`, `out_dir/val` and `out_dir/manifest.json`; returns the manifest.

    inputs: FASTA or FASTA.gz files, read in the order given.
    min_length, max_length: bounds on the normalised sequence length in nt, inclusive
        (1022 = the model's 1024 positions minus <cls> and <eos>).
    Sequences are stored upper case in the RNA alphabet (T -> U, IUPAC codes -> N).
    Raises FastaError (a ValueError naming file and line) for malformed input, before anything is
    written, and FileExistsError if out_dir already holds a corpus.
    """
    if min_length > max_length:
        raise ValueError(f"min_length {min_length} is larger than max_length {max_length}")
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    inputs = [Path(p) for p in inputs]
    out_dir = Path(out_dir)
    # Refuse now rather than after hours of folding.
    existing = [p for p in (out_dir / MANIFEST, out_dir / "train" / INDEX, out_dir / "val" / INDEX) if p.exists()]
    if existing:
        raise FileExistsError(f"{out_dir} already holds a prepared corpus ({existing[0]}); delete it or choose another --out")
    tokenizer = OmniGenomeTokenizer(alphabet="U")

    counts = dict.fromkeys(COUNT_KEYS, 0)
    per_input: list[dict] = []
    invalid: list[dict] = []
    seen: set[str] = set()
    kept_ids: list[str] = []
    kept_sequences: list[str] = []
    for path in inputs:
        n_before = counts["input"]
        for record in read_fasta(path):
            counts["input"] += 1
            try:
                sequence = tokenizer.normalize(record.sequence, record=record.id)
            except ValueError as e:
                counts["invalid"] += 1
                invalid.append({"id": record.id, "file": str(path), "line": record.line, "reason": str(e)})
                continue
            if len(sequence) < min_length:
                counts["too_short"] += 1
            elif len(sequence) > max_length:
                counts["too_long"] += 1
            elif sequence in seen:
                counts["duplicate"] += 1
            else:
                seen.add(sequence)
                kept_ids.append(record.id)
                kept_sequences.append(sequence)
        per_input.append({"path": str(path), "records": counts["input"] - n_before})
    del seen

    structures = [s for s, _ in fold_many(kept_sequences, workers=workers, progress=progress)]
    records = list(zip(kept_ids, kept_sequences, structures))
    in_val = [is_validation(s, val_fraction, seed) for s in kept_sequences]
    counts["kept_val"] = sum(in_val)
    counts["kept_train"] = len(records) - counts["kept_val"]
    train_index = write_shards((r for r, v in zip(records, in_val) if not v), out_dir / "train", records_per_shard)
    val_index = write_shards((r for r, v in zip(records, in_val) if v), out_dir / "val", records_per_shard)

    accounted = sum(counts[k] for k in COUNT_KEYS if k != "input")
    assert accounted == counts["input"], f"manifest counts do not add up: {counts}"
    manifest = {
        "version": MANIFEST_VERSION,
        "settings": {"min_length": min_length, "max_length": max_length, "val_fraction": val_fraction,
                     "seed": seed, "records_per_shard": records_per_shard, "alphabet": "U",
                     "structures": "ViennaRNA MFE (omnigenome.folding.fold)"},
        "inputs": per_input,
        "counts": counts,
        "train": {"records": train_index["num_records"], "nucleotides": train_index["num_nucleotides"],
                  "shards": len(train_index["shards"])},
        "val": {"records": val_index["num_records"], "nucleotides": val_index["num_nucleotides"],
                "shards": len(val_index["shards"])},
        "invalid": invalid,
    }
    write_json_atomic(out_dir / MANIFEST, manifest)
    return manifest


def format_summary(manifest: dict) -> str:
    """A short table of where the input records went."""
    counts = manifest["counts"]
    total = max(counts["input"], 1)
    rows = [(key, counts[key]) for key in COUNT_KEYS]
    width = max(len(k) for k, _ in rows)
    lines = [f"{'records':<{width}}  {'count':>10}  {'share':>7}"]
    lines += [f"{k:<{width}}  {v:>10,}  {100 * v / total:>6.2f}%" for k, v in rows]
    lines.append(f"{'train nt':<{width}}  {manifest['train']['nucleotides']:>10,}")
    lines.append(f"{'val nt':<{width}}  {manifest['val']['nucleotides']:>10,}")
    return "\n".join(lines)
