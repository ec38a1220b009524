"""What every design method shares: the budget of one design and the state of one target's search."""
from __future__ import annotations

import random
import time

import numpy as np

from omnigenome.structure import pair_table


class Budget:
    """The budget of one design: CPU time of this process (`time.process_time`: user + system time of all
    its threads, so results do not depend on how loaded the machine is) and, optionally, a number of
    evaluations (folds), which ends a search at the same point on every machine. None: no limit."""

    def __init__(self, seconds: float | None, max_evaluations: int | None = None):
        self.seconds = seconds
        self.max_evaluations = max_evaluations
        self.evaluations = 0  # every fold of every search that shares this budget
        self.start = time.process_time()

    def elapsed(self) -> float:
        return time.process_time() - self.start

    def spent(self) -> bool:
        return ((self.seconds is not None and self.elapsed() >= self.seconds)
                or (self.max_evaluations is not None and self.evaluations >= self.max_evaluations))

    def check(self) -> None:
        """Raise BudgetSpent once the budget is spent (called between evaluations)."""
        if self.spent():
            raise BudgetSpent


class BudgetSpent(Exception):
    """The budget is spent; raised between evaluations and caught where the search returns its best."""


class TargetSearch:
    """What every search of one target holds: the target and its pair table, the random streams (Python's
    for choices, numpy's for sampling, both drawn from the seed's `rng`), the budget and the settings."""

    def __init__(self, target: str, rng: random.Random, budget: Budget, settings):
        self.target = target
        self.pairs = pair_table(target, allowed="().")
        self.rng = rng
        self.np_rng = np.random.default_rng(rng.getrandbits(64))
        self.budget = budget
        self.settings = settings
