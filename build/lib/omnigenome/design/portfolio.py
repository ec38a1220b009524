"""The default designer: independent local searches of one target that take turns until one solves it."""
from __future__ import annotations

import functools
import random
import threading

from omnigenome.design.base import Budget, BudgetSpent
from omnigenome.design.evaluation import Candidate
from omnigenome.design.local_search import LocalSearch
from omnigenome.design.settings import LocalSearchSettings


class Portfolio:
    """`trajectories` local searches of one target, each from its own seed, that take turns of `turn`
    evaluations until one solves the target or the budget is spent.

    The time a local search needs is heavy-tailed: from one start a long target is solved in seconds,
    from another it stays one lone pair short for minutes. Taking turns solves it as soon as any
    trajectory does, at the cost of running each at 1/k of the speed. The searches are threads that hand
    the turn to one another, so exactly one runs at a time (the CPU budget counts them all) and the
    interleaving, like each trajectory, depends only on the seed."""

    def __init__(self, target: str, rng: random.Random, budget: Budget, settings: LocalSearchSettings | None = None,
                 proposer=None):
        self.settings = settings = settings or LocalSearchSettings.load()
        self.searches = [LocalSearch(target, random.Random(rng.getrandbits(64)), budget, settings, proposer)
                         for _ in range(settings.trajectories)]
        self.active = 0                 # whose turn it is
        self.finished = [False] * len(self.searches)
        self.solved: int | None = None  # the search that solved the target
        self.over = False               # solved, or a search failed: the others stop at their next turn
        self.turn_changed = threading.Condition()
        for k, search in enumerate(self.searches):
            search.evaluate.wait_for_turn = functools.partial(self._wait_for_turn, k)

    @property
    def evaluations(self) -> int:
        return sum(s.evaluations for s in self.searches)

    @property
    def restarts(self) -> int:
        return sum(s.restarts for s in self.searches)

    @property
    def current(self) -> list[str] | None:
        return self.searches[0].current

    def _pass_turn(self, k: int) -> None:
        """Hand the turn from search k to the next one still running (the caller holds the lock)."""
        order = [(k + d) % len(self.searches) for d in range(1, len(self.searches) + 1)]
        self.active = next((m for m in order if not self.finished[m]), k)
        self.turn_changed.notify_all()

    def _wait_for_turn(self, k: int) -> None:
        """Called by search k before each evaluation: every `turn` evaluations it passes the turn on and
        waits for it to come back."""
        if self.searches[k].evaluations % self.settings.turn == 0:
            with self.turn_changed:
                self._pass_turn(k)
                self.turn_changed.wait_for(lambda: self.active == k or self.over)
        if self.over:
            raise BudgetSpent

    def _work(self, k: int, results: list) -> None:
        with self.turn_changed:
            self.turn_changed.wait_for(lambda: self.active == k)
        try:
            results[k] = self.searches[k].run()
        except BaseException as error:  # re-raised by `run` in the calling thread
            results[k] = error
        with self.turn_changed:
            self.finished[k] = True
            if isinstance(results[k], BaseException):
                self.over = True
            elif results[k][1]:
                self.over, self.solved = True, k
            self._pass_turn(k)

    def run(self) -> tuple[Candidate | None, bool]:
        """As `LocalSearch.run`: (the solving or best candidate, solved)."""
        results: list = [None] * len(self.searches)
        threads = [threading.Thread(target=self._work, args=(k, results), daemon=True)
                   for k in range(len(self.searches))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for result in results:
            if isinstance(result, BaseException):
                raise result
        if self.solved is not None:
            return results[self.solved]
        found = [candidate for candidate, _ in results if candidate is not None]
        return (min(found, key=lambda c: c.cost) if found else None), False
