"""ViennaRNA minimum-free-energy folding: the one fold helper of the project.

Everything that needs a structure label (corpus preparation, the sample corpus, design fitness,
evaluation baselines) folds through `fold` / `fold_many`, so all of them see the same sequence
normalisation and the same ViennaRNA call.
"""
from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import NamedTuple, Sequence

import RNA
from tqdm import tqdm

# How many chunks each worker gets on average. More chunks balance the load better at the end of
# the run; fewer cost less inter-process traffic. A chunk of short sequences still folds in
# milliseconds, so 16 per worker is cheap and leaves little idle time.
_CHUNKS_PER_WORKER = 16


def _rna(sequence: str) -> str:
    """Upper case, T -> U.

    ViennaRNA folds lower case like upper case, but it does *not* treat T like U everywhere:
    the special hairpin (tetraloop) bonuses are looked up by the literal sequence, so
    GGGCTTCGGCCC gets -5.4 kcal/mol where GGGCUUCGGCCC gets -6.3. Converting first makes DNA-
    alphabet input fold exactly like its RNA spelling.
    """
    return sequence.upper().replace("T", "U")


def fold(sequence: str) -> tuple[str, float]:
    """MFE structure of one sequence: (dot-bracket of the same length, free energy in kcal/mol).

    The structure uses only `(`, `)` and `.` (ViennaRNA MFE structures are nested). Any case and
    either T or U are accepted; other characters (N, ...) are left to ViennaRNA, which keeps them unpaired.
    """
    if not sequence:
        raise ValueError("cannot fold an empty sequence")
    structure, energy = RNA.fold_compound(_rna(sequence)).mfe()
    return structure, float(energy)


def _fold_chunk(chunk: list[tuple[int, str]]) -> list[tuple[int, str, float]]:
    """Worker side: fold (index, sequence) pairs, return (index, structure, energy)."""
    return [(i, *fold(s)) for i, s in chunk]


def _chunks_by_cost(sequences: Sequence[str], workers: int) -> list[list[tuple[int, str]]]:
    """Split into chunks of about equal folding cost, most expensive chunks first.

    Folding time grows roughly as len^3, so a corpus's few long sequences dominate. Submitting the
    longest first (longest-processing-time-first scheduling) lets the many cheap chunks fill the
    gaps at the end instead of one worker finishing a long sequence alone.
    """
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]), reverse=True)
    costs = [len(sequences[i]) ** 3 for i in order]
    budget = max(1, sum(costs) // (workers * _CHUNKS_PER_WORKER))
    chunks, current, current_cost = [], [], 0
    for i, cost in zip(order, costs):
        current.append((i, sequences[i]))
        current_cost += cost
        if current_cost >= budget:
            chunks.append(current)
            current, current_cost = [], 0
    if current:
        chunks.append(current)
    return chunks


def fold_many(sequences: Sequence[str], workers: int = 1, progress: bool = False,
              desc: str = "folding", bar: tqdm | None = None) -> list[tuple[str, float]]:
    """`fold` every sequence; results in input order.

    workers: processes to fold in (the bindings hold the GIL, so threads would not help).
        1 folds in this process with a plain loop.
    progress: show a tqdm bar counting records (records/s).
    bar: an open tqdm bar to advance instead (one bar over several calls, e.g. the shards of a
        corpus, so that its rate and ETA cover the whole job); the caller closes it.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    for i, s in enumerate(sequences):
        if not s:
            raise ValueError(f"cannot fold an empty sequence (position {i} of the input)")

    own_bar = bar is None
    if own_bar:
        bar = tqdm(total=len(sequences), desc=desc, unit="rec", disable=not progress, smoothing=0.05)
    results: list[tuple[str, float] | None] = [None] * len(sequences)
    try:
        if workers == 1 or len(sequences) < 2:
            for i, s in enumerate(sequences):
                results[i] = fold(s)
                bar.update(1)
        else:
            chunks = _chunks_by_cost(sequences, workers)
            # The platform's default start method (fork on Linux up to Python 3.13): it starts in
            # milliseconds and needs no `if __name__ == "__main__"` guard in the calling script; the
            # workers only run ViennaRNA, so they touch none of the parent's threads or CUDA state.
            # `multiprocessing.set_start_method` changes it.
            pool = ProcessPoolExecutor(max_workers=min(workers, len(chunks)))
            try:
                futures = [pool.submit(_fold_chunk, chunk) for chunk in chunks]
                for future in as_completed(futures):
                    done = future.result()
                    for i, structure, energy in done:
                        results[i] = (structure, energy)
                    bar.update(len(done))
            except BaseException:
                # Error or Ctrl-C: drop the queued chunks instead of folding them all first.
                pool.shutdown(wait=False, cancel_futures=True)
                raise
            pool.shutdown()
    finally:
        if own_bar:
            bar.close()
    return results  # type: ignore[return-value]


def mfe_structures(sequences: Sequence[str], workers: int = 1, cache_dir: str | os.PathLike | None = None,
                   progress: bool = False) -> list[str]:
    """MFE structures of `sequences` (via `fold_many`), cached on disk when `cache_dir` is given.

    A benchmark split takes a minute or more on one core (bpRNA TS0: 1305 sequences); the cache file is
    named by a hash of the sequences and the ViennaRNA version, so any change refolds. Used by the
    evaluation baselines and by fine-tuning with the structure in context.
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


class DesignScore(NamedTuple):
    """How well a sequence realises a target structure (all energies in kcal/mol).

    mfe_structure / mfe: ViennaRNA's MFE structure and energy. target_energy: the free energy of the
    target structure on this sequence (>= mfe; equal when the target is an MFE structure).
    With ensemble=True also: defect, per position 1 - P(paired as in the target) in the Boltzmann
    ensemble (P(unpaired) for a target-unpaired position); its mean is the normalised ensemble defect
    (NED); probability, the Boltzmann probability of the target structure.
    """
    mfe_structure: str
    mfe: float
    target_energy: float
    defect: list[float] | None = None
    probability: float | None = None

    @property
    def energy_gap(self) -> float:
        return self.target_energy - self.mfe


def score_design(sequence: str, target: str, ensemble: bool = False) -> DesignScore:
    """Score `sequence` against the nested dot-bracket `target` from one ViennaRNA fold compound.

    The compound is built once and used for the MFE, the target's energy and (ensemble=True) the
    partition function, which costs about 3x the MFE fold. Sequence normalisation as in `fold`.
    """
    if len(sequence) != len(target):
        raise ValueError(f"sequence length {len(sequence)} differs from target length {len(target)}")
    fc = RNA.fold_compound(_rna(sequence))
    structure, energy = fc.mfe()
    target_energy = float(fc.eval_structure(target))
    if not ensemble:
        return DesignScore(structure, float(energy), target_energy)
    import numpy as np

    from omnigenome.structure import pair_table

    fc.exp_params_rescale(energy)  # Boltzmann factors scaled by the MFE: no overflow on long sequences
    fc.pf()
    bpp = np.asarray(fc.bpp())[1:, 1:]  # (n+1, n+1), 1-based, upper triangle
    bpp = bpp + bpp.T
    partner = np.asarray(pair_table(target, allowed="()."))
    unpaired = 1.0 - bpp.sum(axis=1)
    correct = np.where(partner >= 0, bpp[np.arange(len(partner)), np.maximum(partner, 0)], unpaired)
    defect = (1.0 - np.clip(correct, 0.0, 1.0)).tolist()
    return DesignScore(structure, float(energy), target_energy, defect, float(fc.pr_structure(target)))


def positional_defect(sequence: str, target: str) -> tuple[list[float], float]:
    """Per-position ensemble defect of `target` on `sequence` and the target's Boltzmann probability
    (see `score_design`); the mean of the first is the normalised ensemble defect (NED)."""
    score = score_design(sequence, target, ensemble=True)
    return score.defect, score.probability


_EVAL_MODEL = RNA.md()  # default energy model, built once (evaluation is called in hot loops)


def structure_energies(sequence: str, structures: Sequence[str]) -> list[float]:
    """Free energy (kcal/mol) of each nested dot-bracket structure on `sequence`, without folding.

    Energy evaluation is linear in the length (microseconds at 400 nt, where an MFE fold takes
    ~100 ms), so a designer can score many candidate sequences against known structures cheaply.
    Same energy parameters and sequence normalisation as `fold` / `score_design`.
    """
    fc = RNA.fold_compound(_rna(sequence), _EVAL_MODEL, RNA.OPTION_EVAL_ONLY)
    return [float(fc.eval_structure(s)) for s in structures]
