"""`design`: one target -> one designed sequence, with a CPU-time budget; `design_many` runs many."""
from __future__ import annotations

import json
import os
import random
import time
from dataclasses import asdict, dataclass, fields, replace
from typing import Iterator, Sequence

from omnigenome.design.targets import Target, validate_target

METHODS = ("local", "ga", "rnainverse")


@dataclass
class DesignResult:
    """Outcome of designing one target.

    solved: the ViennaRNA MFE structure of `sequence` equals `structure` (checked within the budget).
    seconds: CPU seconds the design used (time to solve when solved; about the budget otherwise).
    distance: positions whose MFE dot-bracket character differs from the target's (0 when solved).
    """
    structure: str
    sequence: str
    solved: bool
    seconds: float
    method: str
    seed: int
    name: str | None = None
    mfe_structure: str = ""
    distance: int = 0
    evaluations: int = 0
    restarts: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


def parse_settings(method: str, assignments: Sequence[str]):
    """The settings of `method` with "name=value" assignments applied (the command line's `--set`), e.g.
    ["trajectories=4", "objective=ensemble"] -> LocalSearchSettings(trajectories=4, objective="ensemble").
    Returns None when there are no assignments; a value takes the type of the setting's default."""
    if not assignments:
        return None
    from omnigenome.design.ga import GASettings
    from omnigenome.design.search import LocalSearchSettings
    kind = {"local": LocalSearchSettings, "ga": GASettings}.get(method)
    if kind is None:
        raise ValueError(f"method {method!r} has no settings to set")
    defaults = kind()
    types = {f.name: type(getattr(defaults, f.name)) for f in fields(kind)}
    values = {}
    for assignment in assignments:
        name, sep, text = assignment.partition("=")
        name = name.strip()
        if not sep or name not in types:
            raise ValueError(f"bad setting {assignment!r}: expected NAME=VALUE with NAME one of {', '.join(types)}")
        try:
            values[name] = types[name](text.strip())
        except ValueError:
            raise ValueError(f"bad setting {assignment!r}: {name} takes a {types[name].__name__}") from None
    return replace(defaults, **values)


def _proposer(model):
    """None, an MLMProposer, or one wrapping a model object or a checkpoint path."""
    if model is None:
        return None
    from omnigenome.design.proposals import MLMProposer
    if isinstance(model, MLMProposer):
        return model
    if isinstance(model, (str, os.PathLike)):
        from omnigenome.training.run import load_model
        model = load_model(str(model))
    return MLMProposer(model)


def design(structure: str, method: str = "local", budget_seconds: float | None = 60.0, seed: int = 0,
           model=None, name: str | None = None, settings=None, max_evaluations: int | None = None) -> DesignResult:
    """Design an RNA sequence whose ViennaRNA MFE structure is `structure`.

    method: "local" (default; hierarchical mismatch-focused local search, see `search.py`), "ga"
        (the OmniGenome paper's genetic algorithm, see `ga.py`) or "rnainverse" (ViennaRNA's
        `inverse_fold` from random starts, restarted until the budget ends; the baseline).
    budget_seconds: CPU seconds of this process (`time.process_time`), checked between evaluations;
        None runs until solved. The search stops as soon as the target is solved.
    seed: the whole trajectory depends only on the seed (not on the budget): same seed, same result.
    model: optional masked-language model (an OmniGenomeModel, a checkpoint / Hugging Face directory
        path, or an MLMProposer) that proposes nucleotides conditioned on the target: the GA's
        mutations and initial population; the local search's perturbations.
    settings: LocalSearchSettings / GASettings to change the method's numbers.
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
        return rnainverse(structure, budget_seconds, seed, name)
    from omnigenome.design.search import Clock
    proposer = _proposer(model)
    rng = random.Random(seed)
    clock = Clock(budget_seconds, max_evaluations)
    if method == "ga":
        from omnigenome.design.ga import GeneticAlgorithm
        search = GeneticAlgorithm(structure, rng, clock, settings, proposer)
        best, solved = search.run()
        evaluations, restarts = search.evaluations, 0
        seq = best.seq if best is not None else ["A"] * len(structure)
    else:
        from omnigenome.design.search import Portfolio
        search = Portfolio(structure, rng, clock, settings, proposer)
        best, solved = search.run()
        evaluations, restarts = search.evaluations, search.restarts
        seq = best.seq if best is not None else (search.current or ["A"] * len(structure))
    seconds = clock.elapsed()
    sequence = "".join(seq)
    mfe_structure = best.mfe_structure if best is not None else _fold(sequence)
    return DesignResult(structure, sequence, solved, round(seconds, 4), method, seed, name, mfe_structure,
                        _hamming(mfe_structure, structure), evaluations, restarts)


def _fold(sequence: str) -> str:
    from omnigenome.folding import fold
    return fold(sequence)[0]


def _hamming(a: str, b: str) -> int:
    return sum(x != y for x, y in zip(a, b))


def _inverse_loop(structure: str, budget: float | None, seed: int, report) -> None:
    """RNAinverse restarts from random sequences; `report(dict)` after every attempt."""
    import RNA

    from omnigenome.folding import fold
    rng = random.Random(seed)
    RNA.init_rand(seed & 0xFFFFFFFF)
    start_clock = time.process_time()
    attempt = 0
    while budget is None or time.process_time() - start_clock < budget:
        attempt += 1
        start = "".join(rng.choice("ACGU") for _ in structure)
        report({"start": start})
        seq, _ = RNA.inverse_fold(start, structure)
        seconds = time.process_time() - start_clock
        mfe = fold(seq)[0]
        solved = mfe == structure and (budget is None or seconds <= budget)
        report({"sequence": seq, "mfe_structure": mfe, "solved": solved, "seconds": seconds, "restarts": attempt - 1})
        if solved:
            return


def rnainverse(structure: str, budget_seconds: float | None = 60.0, seed: int = 0, name: str | None = None) -> DesignResult:
    """Baseline: `RNA.inverse_fold` from random starts until solved or `budget_seconds` CPU seconds.

    One inverse_fold call on a long target can run for minutes, so on Linux the loop runs in a forked
    child whose CPU timer (ITIMER_PROF) ends it exactly at the budget; elsewhere the budget is checked
    between calls. Solved only if `RNA.fold` of the result is the target, within the budget.
    """
    validate_target(structure, name)
    if hasattr(os, "fork") and budget_seconds is not None:
        import signal
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: report attempts as JSON lines; SIGPROF ends it at the budget
            try:
                os.close(read_fd)
                out = os.fdopen(write_fd, "w", buffering=1)
                signal.signal(signal.SIGPROF, signal.SIG_DFL)
                signal.setitimer(signal.ITIMER_PROF, budget_seconds)
                _inverse_loop(structure, budget_seconds, seed, lambda r: out.write(json.dumps(r) + "\n"))
                out.flush()
            finally:
                os._exit(0)
        os.close(write_fd)
        with os.fdopen(read_fd) as inp:
            lines = [json.loads(line) for line in inp if line.endswith("\n")]
        os.waitpid(pid, 0)
        attempts = [a for a in lines if "sequence" in a]
        usage_seconds = budget_seconds if not attempts or not attempts[-1]["solved"] else attempts[-1]["seconds"]
    else:
        lines = []
        _inverse_loop(structure, budget_seconds, seed, lines.append)
        attempts = [a for a in lines if "sequence" in a]
        usage_seconds = attempts[-1]["seconds"] if attempts else 0.0
    if not attempts:  # the budget ended inside the first inverse_fold call: report its start
        start = next((a["start"] for a in lines if "start" in a), "A" * len(structure))
        mfe = _fold(start)
        return DesignResult(structure, start, False, round(float(usage_seconds), 4), "rnainverse", seed, name,
                            mfe, _hamming(mfe, structure), 0, 0)
    best = attempts[-1] if attempts[-1]["solved"] else min(attempts, key=lambda a: _hamming(a["mfe_structure"], structure))
    return DesignResult(structure, best["sequence"], bool(best["solved"]), round(float(usage_seconds), 4), "rnainverse",
                        seed, name, best["mfe_structure"], _hamming(best["mfe_structure"], structure),
                        len(attempts), attempts[-1]["restarts"])


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
    if workers == 1 or len(tasks) < 2:
        _WORKER_MODEL = proposer
        try:
            for task in tasks:
                yield _design_task(task)
        finally:
            _WORKER_MODEL = None
        return
    import multiprocessing as mp
    _WORKER_MODEL = proposer
    try:
        with mp.get_context("fork").Pool(min(workers, len(tasks)), initializer=_worker_init, initargs=(1,)) as pool:
            yield from pool.imap(_design_task, tasks)
    finally:
        _WORKER_MODEL = None
