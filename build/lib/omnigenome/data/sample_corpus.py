"""The embedded sample corpus: `python train.py` works out of the box, without downloads.

RNA-like sequences are generated from a seed and labelled with their ViennaRNA MFE structures,
like the real pretraining corpus. They imitate plant transcripts in the ways that matter for a
smoke-test pretraining run: composition (GC 38-52 %, CpG and UpA depleted), a log-normal length
distribution (40-400 nt, median about 120), and local hairpins (a stem, a 3-10 nt loop, the stem's
reverse complement with some GU wobble pairs and mismatches) in a Markov background, so the
structure labels are far from all-dots. It is not biological data: use `omnigenome prep` on real
transcripts for anything beyond testing the pipeline.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from omnigenome.data.shards import INDEX, write_json_atomic, write_shards
from omnigenome.folding import fold_many

log = logging.getLogger(__name__)

# Bump when the generator changes: the cache directory name contains it, so old caches are not reused.
GENERATOR_VERSION = 1

BASES = "ACGU"
_PAIR = {"A": "U", "C": "G", "G": "C", "U": "A"}
_WOBBLE = {"G": "U", "U": "G"}  # 5' base -> 3' partner of a GU / UG wobble pair
# Tetraloops that are frequent and stable in real RNAs (GNRA and UNCG families).
_TETRALOOPS = ("GAAA", "GCAA", "GAGA", "GUGA", "UUCG", "UACG")

# Length distribution: log-normal, median 120 nt, truncated to 40..400 by redrawing.
_MEDIAN_LENGTH, _LOG_SIGMA, _MIN_LENGTH, MAX_LENGTH = 120, 0.55, 40, 400
# Dinucleotide weights applied on top of the base composition (row: previous base, column: next):
# CpG and UpA are depleted in plant transcripts; a mild bonus on repeats gives A/U runs as in UTRs.
_DINUCLEOTIDE = np.array([
    #  A     C     G     U
    [1.15, 1.00, 1.00, 1.00],  # A
    [1.00, 1.10, 0.55, 1.00],  # C
    [1.00, 1.00, 1.10, 1.00],  # G
    [0.70, 1.00, 1.00, 1.15],  # U
])


def _lengths(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n,) int lengths from the truncated log-normal."""
    out = np.empty(0, dtype=np.int64)
    while out.size < n:
        draw = np.rint(np.exp(rng.normal(np.log(_MEDIAN_LENGTH), _LOG_SIGMA, size=2 * n))).astype(np.int64)
        out = np.concatenate([out, draw[(draw >= _MIN_LENGTH) & (draw <= MAX_LENGTH)]])
    return out[:n]


def _transition_cdf(rng: np.random.Generator) -> np.ndarray:
    """(4, 4) cumulative transition probabilities of one sequence's background Markov chain."""
    gc = rng.uniform(0.38, 0.52)
    a_skew, g_skew = rng.uniform(-0.1, 0.1, size=2)
    base = np.array([(1 - gc) / 2 * (1 + a_skew), gc / 2 * (1 - g_skew), gc / 2 * (1 + g_skew), (1 - gc) / 2 * (1 - a_skew)])
    p = base[None, :] * _DINUCLEOTIDE
    return np.cumsum(p / p.sum(axis=1, keepdims=True), axis=1)


def _background(rng: np.random.Generator, cdf: np.ndarray, n: int) -> str:
    """n nucleotides of the Markov chain."""
    out = []
    state = int(np.searchsorted(cdf[0], rng.random()))  # any row gives a plausible first base
    for u in rng.random(n):
        state = min(int(np.searchsorted(cdf[state], u)), 3)
        out.append(BASES[state])
    return "".join(out)


def _hairpin(rng: np.random.Generator, stem: int, cdf: np.ndarray) -> str:
    """A stem-loop: GC-rich 5' stem, a 3..10 nt loop, then the paired 3' stem.

    Per pair: 8 % GU wobble where the 5' base allows it, 4 % mismatch, the rest Watson-Crick.
    """
    five = "".join(rng.choice(list(BASES), size=stem, p=[0.2, 0.3, 0.3, 0.2]))
    if rng.random() < 0.3:
        loop = _TETRALOOPS[rng.integers(len(_TETRALOOPS))]
    else:
        loop = _background(rng, cdf, int(rng.integers(3, 11)))
    three = []
    for b in reversed(five):
        u = rng.random()
        if u < 0.08 and b in _WOBBLE:
            three.append(_WOBBLE[b])
        elif u < 0.12:
            three.append(rng.choice([c for c in BASES if c not in (_PAIR[b], _WOBBLE.get(b))]))
        else:
            three.append(_PAIR[b])
    return five + loop + "".join(three)


def generate_sequence(rng: np.random.Generator, length: int) -> str:
    """One RNA-like sequence of exactly `length` nt (ACGU).

    70 % carry hairpins: 1 plus Binomial(length // 100, 0.5) of them, placed at random between
    stretches of background sequence; the rest is background only.
    """
    cdf = _transition_cdf(rng)
    hairpins: list[str] = []
    if rng.random() < 0.7:
        room = length - 10  # keep some unpaired flank
        for _ in range(1 + rng.binomial(length // 100, 0.5)):
            hp = _hairpin(rng, int(rng.integers(4, 13)), cdf)
            if len(hp) > room:
                break
            hairpins.append(hp)
            room -= len(hp)
    free = length - sum(map(len, hairpins))
    cuts = np.sort(rng.integers(0, free + 1, size=len(hairpins)))
    gaps = np.diff(np.concatenate([[0], cuts, [free]]))
    parts = [_background(rng, cdf, int(gaps[0]))]
    for hp, gap in zip(hairpins, gaps[1:]):
        parts += [hp, _background(rng, cdf, int(gap))]
    return "".join(parts)


def _corpus_name(num_records: int, valid_fraction: float, seed: int) -> str:
    return f"sample-v{GENERATOR_VERSION}-n{num_records}-valid{valid_fraction:g}-seed{seed}"


def _is_complete(root: Path) -> bool:
    return (root / "train" / INDEX).is_file() and (root / "valid" / INDEX).is_file()


def build_sample_corpus(out_dir: str | os.PathLike, num_records: int = 3000, valid_fraction: float = 0.05,
                        seed: int = 0, workers: int = 2, progress: bool = True) -> dict:
    """Generate, fold and write the corpus into `out_dir` (train/, valid/, info.json); returns info.

    Deterministic: the same arguments give byte-identical files, whatever `workers` is.
    """
    if num_records < 2:
        raise ValueError(f"num_records must be >= 2 (one train and one valid record), got {num_records}")
    if not 0 < valid_fraction < 1:
        raise ValueError(f"valid_fraction must be in (0, 1), got {valid_fraction}")
    rng = np.random.default_rng(seed)
    sequences = [generate_sequence(rng, int(n)) for n in _lengths(rng, num_records)]
    structures = [s for s, _ in fold_many(sequences, workers=workers, progress=progress, desc="folding sample corpus")]
    ids = [f"sample-{i + 1:06d}" for i in range(num_records)]

    num_valid = min(num_records - 1, max(1, round(num_records * valid_fraction)))
    is_valid = np.zeros(num_records, dtype=bool)
    is_valid[rng.choice(num_records, size=num_valid, replace=False)] = True
    out_dir = Path(out_dir)
    records = list(zip(ids, sequences, structures))
    write_shards((r for r, v in zip(records, is_valid) if not v), out_dir / "train")
    write_shards((r for r, v in zip(records, is_valid) if v), out_dir / "valid")

    nucleotides = sum(map(len, sequences))
    gc = sum(s.count("G") + s.count("C") for s in sequences) / nucleotides
    paired = sum(len(t) - t.count(".") for t in structures) / nucleotides
    info = {
        "generator_version": GENERATOR_VERSION, "seed": seed, "num_records": num_records,
        "valid_fraction": valid_fraction, "train_records": int((~is_valid).sum()), "valid_records": num_valid,
        "nucleotides": nucleotides, "median_length": float(np.median([len(s) for s in sequences])),
        "gc_fraction": round(gc, 4), "paired_fraction": round(paired, 4),
        "structures": "ViennaRNA MFE (omnigenome.folding.fold)",
    }
    write_json_atomic(out_dir / "info.json", info)
    return info


def ensure_sample_corpus(cache_dir: str | os.PathLike, num_records: int = 3000, valid_fraction: float = 0.05,
                         seed: int = 0, workers: int = 2, progress: bool = True) -> Path:
    """Directory holding the sample corpus (`train/`, `valid/`), generated on first use and cached.

    The directory is `cache_dir/sample-v<generator>-n<num_records>-valid<valid_fraction>-seed<seed>`.
    Safe to call from several processes at once (DDP ranks): each builds in its own temp
    directory and renames it into place; a process that finds the corpus already there keeps
    that one and deletes its own.
    """
    cache_dir = Path(cache_dir)
    target = cache_dir / _corpus_name(num_records, valid_fraction, seed)
    if _is_complete(target):
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    log.info("generating the sample corpus into %s (first use; %d records)", target, num_records)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=cache_dir))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; the cache is an ordinary directory
    try:
        build_sample_corpus(tmp, num_records, valid_fraction, seed, workers, progress)
        try:
            os.rename(tmp, target)  # atomic; fails if another process got there first
        except OSError:
            if not _is_complete(target):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # no-op after a successful rename
    return target
