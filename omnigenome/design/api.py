"""`design`: one target -> one designed sequence within a budget; `design_many` runs many targets."""
from __future__ import annotations

import os
import random
from typing import Iterator, Sequence

from omnigenome.design.result import DesignResult, hamming
from omnigenome.design.settings import SETTINGS
from omnigenome.design.targets import Target, validate_target

METHODS = ("local", "ga", "rnainverse")


def load_settings(method: str, overrides: Sequence[str] = ()):
    """The settings of `method` (conf/design/<method>.yaml) with `key=value` overrides, e.g.
    load_settings("local", ["trajectories=1"]); None for a method without settings (rnainverse).
    Raises SettingsError naming an unknown key and the valid ones."""
    from omnigenome.settings import SettingsError
    if method not in METHODS:
        raise ValueError(f"unknown design method {method!r} (choose from {', '.join(METHODS)})")
    if method not in SETTINGS:
        if overrides:
            raise SettingsError(f"method {method} has no settings to change (got {', '.join(overrides)})")
        return None
    return SETTINGS[method].load(overrides)


def _proposer(model):
    """None, an MLMProposer, or one wrapping a model object or a checkpoint path."""
    if model is None:
        return None
    from omnigenome.design.proposals import MLMProposer
    if isinstance(model, MLMProposer):
        return model
    if isinstance(model, (str, os.PathLike)):
        from omnigenome.model.loading import load_model
        model = load_model(str(model))
    return MLMProposer(model)


def design(structure: str, method: str = "local", budget_seconds: float | None = 60.0, seed: int = 0,
           model=None, name: str | None = None, settings=None, max_evaluations: int | None = None) -> DesignResult:
    """Design an RNA sequence whose ViennaRNA MFE structure is `structure`.

    method: "local" (default; the hierarchical local search of docs/design.md), "ga" (the OmniGenome
        paper's genetic algorithm, see `ga.py`) or "rnainverse" (ViennaRNA's `inverse_fold` from random
        starts, restarted until the budget ends; the baseline).
    budget_seconds: CPU seconds of this process (`time.process_time`), checked between evaluations;
        None runs until solved. The search stops as soon as the target is solved.
    seed: the whole trajectory depends only on the seed (not on the budget): same seed, same result.
    model: optional masked-language model (an OmniGenomeModel, a checkpoint / Hugging Face directory
        path, or an MLMProposer) that proposes nucleotides conditioned on the target: the GA's
        mutations and initial population; the local search's perturbations.
    settings: LocalSearchSettings / GASettings (default: conf/design/<method>.yaml; see `load_settings`).
    max_evaluations: also stop after this many folds ("local" and "ga"): a budget that ends the
        trajectory at the same point on every machine.
    Raises ValueError for a target no sequence can fold into (see `validate_target`).
    """
    validate_target(structure, name)
    if method not in METHODS:
        raise ValueError(f"unknown design method {method!r} (choose from {', '.join(METHODS)})")
    if budget_seconds is not None and budget_seconds <= 0:
        raise ValueError(f"budget_seconds must be positive, got {budget_seconds}")
    if method == "rnainverse":
        from omnigenome.design.rnainverse import rnainverse
        return rnainverse(structure, budget_seconds, seed, name)
    from omnigenome.design.base import Budget
    from omnigenome.design.ga import GeneticAlgorithm
    from omnigenome.design.portfolio import Portfolio
    proposer = _proposer(model)
    settings = settings or load_settings(method)  # imports and settings come before the budget starts
    rng = random.Random(seed)
    budget = Budget(budget_seconds, max_evaluations)
    if method == "ga":
        search = GeneticAlgorithm(structure, rng, budget, settings, proposer)
        best, solved = search.run()
        restarts = 0
        seq = best.seq if best is not None else ["A"] * len(structure)
    else:
        search = Portfolio(structure, rng, budget, settings, proposer)
        best, solved = search.run()
        restarts = search.restarts
        seq = best.seq if best is not None else (search.current or ["A"] * len(structure))
    sequence = "".join(seq)
    if best is not None:
        mfe_structure = best.mfe_structure
    else:
        from omnigenome.folding import fold
        mfe_structure = fold(sequence)[0]
    return DesignResult(structure, sequence, solved, round(budget.elapsed(), 4), method, seed, name, mfe_structure,
                        hamming(mfe_structure, structure), search.evaluations, restarts)


# --- many targets ------------------------------------------------------------------------------
_WORKER_MODEL = None  # set before forking workers, so each inherits the model instead of unpickling it


def _worker_init(threads: int) -> None:
    try:
        import torch
        torch.set_num_threads(threads)
    except ImportError:
        pass


def _design_task(args) -> DesignResult:
    target, method, budget, seed, settings = args
    return design(target.structure, method, budget, seed, _WORKER_MODEL, target.name, settings)


def design_many(targets: Sequence[Target], method: str = "local", budget_seconds: float | None = 60.0,
                seed: int = 0, model=None, workers: int = 1, settings=None) -> Iterator[DesignResult]:
    """Design every target (validated first, all of them); yields results in input order.

    workers > 1 runs targets in that many processes (each target gets the full budget of its own
    process's CPU time). Every target uses the same `seed` and `settings` (see `design`).
    """
    global _WORKER_MODEL
    for t in targets:
        validate_target(t.structure, t.name)
    if method not in METHODS:
        raise ValueError(f"unknown design method {method!r} (choose from {', '.join(METHODS)})")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    proposer = _proposer(model)
    tasks = [(t, method, budget_seconds, seed, settings) for t in targets]
    _WORKER_MODEL = proposer
    try:
        if workers == 1 or len(tasks) < 2:
            for task in tasks:
                yield _design_task(task)
            return
        import multiprocessing as mp
        with mp.get_context("fork").Pool(min(workers, len(tasks)), initializer=_worker_init, initargs=(1,)) as pool:
            yield from pool.imap(_design_task, tasks)
    finally:
        _WORKER_MODEL = None
