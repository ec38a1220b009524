"""Evaluating a design: one ViennaRNA fold compound gives the MFE structure and the target's energy."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from omnigenome.design.base import Budget
from omnigenome.folding import score_design
from omnigenome.structure import pair_table


@dataclass
class Candidate:
    """A folded design of one segment: cost = (positions paired wrongly) + (target energy - MFE)."""
    seq: list[str]
    mfe_structure: str
    wrong: list[int]          # positions whose MFE partner differs from the target's
    gap: float                # target energy - MFE (kcal/mol), >= 0

    @property
    def cost(self) -> float:
        return len(self.wrong) + self.gap


class Evaluator:
    """Folds designs of one target segment and counts the evaluations; checks the budget first.

    wait_for_turn: called before each evaluation (a portfolio's turn-taking, see `Portfolio`)."""

    def __init__(self, budget: Budget):
        self.budget = budget
        self.count = 0
        self.wait_for_turn: Callable[[], None] | None = None

    def __call__(self, seq: list[str], target: str, pairs: Sequence[int]) -> Candidate:
        if self.wait_for_turn is not None:
            self.wait_for_turn()
        self.budget.check()
        self.count += 1
        self.budget.evaluations += 1
        score = score_design("".join(seq), target)
        mfe_pairs = pair_table(score.mfe_structure)
        wrong = [i for i, (p, q) in enumerate(zip(mfe_pairs, pairs)) if p != q]
        return Candidate(seq, score.mfe_structure, wrong, max(0.0, score.energy_gap))
