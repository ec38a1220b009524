"""One trajectory of the default designer: hierarchical local search with screened mutations.

The algorithm, stated once with every setting, is in docs/design.md; `Portfolio` (portfolio.py) runs two
of these in turns. The trajectory depends only on the seed, never on the budget.
"""
from __future__ import annotations

import itertools
import math
import random
from typing import Sequence

import numpy as np

from omnigenome.design.base import Budget, BudgetSpent, TargetSearch
from omnigenome.design.evaluation import Candidate, Evaluator
from omnigenome.design.loops import design_nodes, inert_positions, loop_mismatches, small_loops
from omnigenome.design.operators import BASES, PAIRS, boost_pair, initial_sequence, mutate_position, repair_pairs
from omnigenome.design.screen import MisfoldPool
from omnigenome.design.settings import LocalSearchSettings
from omnigenome.folding import positional_defect
from omnigenome.structure import pair_table

NEIGHBOUR_OFFSETS = (-2, -1, 1, 2)  # where a mutation aimed at a wrong position may land instead
MIN_PERTURBED = 2                   # positions a perturbation changes at the least
NODE_MIN_STEPS = 30                 # every node gets at least this many steps beyond its share of node_steps


class LocalSearch(TargetSearch):
    """One trajectory of the default designer; `run` returns (best candidate of the whole target, solved).

    proposer: an MLMProposer (a model's masked-LM head) that refills perturbed positions, or None."""

    def __init__(self, target: str, rng: random.Random, budget: Budget, settings: LocalSearchSettings | None = None,
                 proposer=None):
        super().__init__(target, rng, budget, settings or LocalSearchSettings.load())
        self.proposer = proposer
        self.evaluate = Evaluator(budget)
        self.restarts = 0
        self.best: Candidate | None = None  # best evaluated design of the whole target
        self.current: list[str] | None = None  # the whole design being built (before its first evaluation)
        self._inert_of, self._inert_set = None, frozenset()

    @property
    def evaluations(self) -> int:
        return self.evaluate.count

    # --- mutations -----------------------------------------------------------------------------
    def _pick(self, candidate: Candidate, n: int) -> int:
        """A position to mutate: mostly a wrongly paired one (sometimes its neighbour), else any."""
        if candidate.wrong and self.rng.random() < self.settings.wrong_position_share:
            i = self.rng.choice(candidate.wrong)
            if self.rng.random() < self.settings.neighbour_share:
                i = min(n - 1, max(0, i + self.rng.choice(NEIGHBOUR_OFFSETS)))
            return i
        return self.rng.randrange(n)

    def _inert(self, pairs: Sequence[int]) -> frozenset[int]:
        """`inert_positions` of the segment being designed (computed once per segment)."""
        if pairs is not self._inert_of:
            self._inert_of, self._inert_set = pairs, inert_positions(pairs)
        return self._inert_set

    def _keep_inert_a(self, seq: list[str], pairs: Sequence[int], i: int) -> bool:
        """The rule "inert loop positions stay A" (see `inert_positions`): sets A at an inert position i and
        returns True; False elsewhere. Mutations and perturbations go through here; the neighbourhood
        enumeration offers such a position A alone."""
        if i not in self._inert(pairs):
            return False
        self.rng.random()  # a draw the measured designer made here: kept, so its trajectories stay the same
        seq[i] = "A"
        return True

    def _mutate(self, seq: list[str], pairs: Sequence[int], i: int) -> None:
        """Mutate position i (a pair together with its partner, see `mutate_position`)."""
        if not self._keep_inert_a(seq, pairs, i):
            mutate_position(seq, pairs, i, self.rng)

    def _propose(self, current: Candidate, pairs: Sequence[int], seq: list[str] | None = None) -> list[str]:
        """One mutation of `seq` (default: the current design's), aimed at a position the current design
        pairs wrongly most of the time."""
        new = list(current.seq if seq is None else seq)
        i = self._pick(current, len(pairs))
        if pairs[i] >= 0 and self.rng.random() < self.settings.boost_share:
            boost_pair(new, pairs, i, self.rng)
        else:
            self._mutate(new, pairs, i)
        return new

    def _screened_mutations(self, current: Candidate, pairs: Sequence[int], pool: MisfoldPool,
                            proposals: int) -> list[str]:
        """The next design to fold: up to `screen_rounds` rounds from the current design, each drawing
        `proposals` mutations and keeping the best-screening one if it screens no worse than the design so
        far; stops early once the target beats every known misfold (screen < 0). The proposals aim at the
        positions the last fold found wrongly paired."""
        seq, score = current.seq, math.inf
        for _ in range(self.settings.screen_rounds):
            self.budget.check()
            drawn = [self._propose(current, pairs, seq) for _ in range(proposals)]
            new_score, new = min(((pool.screen(p), p) for p in drawn), key=lambda sp: sp[0])
            if new_score <= score:
                seq, score = new, new_score
            if score < 0:
                break
        return seq

    def _perturb(self, best: Candidate, target: str, pairs: Sequence[int]) -> list[str]:
        """Mutate positions of the best design sampled by their ensemble defect (the model refills them,
        with probability `model_share`, when there is one)."""
        n = len(pairs)
        k = max(MIN_PERTURBED, int(self.settings.perturb_fraction * n))
        self.budget.check()
        w = np.asarray(positional_defect("".join(best.seq), target)[0]) + 1e-3
        chosen = self.np_rng.choice(n, size=min(k, n), replace=False, p=w / w.sum())
        seq = list(best.seq)
        if self.proposer is not None and self.proposer.fits(n) and self.rng.random() < self.settings.model_share:
            seq = self.proposer.fill([seq], target, [sorted(chosen.tolist())], self.np_rng)[0]
            repair_pairs(seq, pairs, chosen.tolist(), self.rng)
            for i in chosen.tolist():
                self._keep_inert_a(seq, pairs, i)
        else:
            for i in chosen:
                self._mutate(seq, pairs, int(i))
        return seq

    # --- the stagnation neighbourhood ------------------------------------------------------------
    def _neighbourhood(self, current: Candidate, pairs: Sequence[int]) -> list[tuple[int, ...]]:
        """The units (a target pair, or an unpaired position) around one wrongly paired position: at and
        beside it, its target partner and its MFE partner (stacks, mismatches, dangles), the small interior
        loops beside its pair in the target and in the MFE structure (see `small_loops`), and the mismatch
        and dangle bases of the two loops its target pair closes (see `loop_mismatches`)."""
        i = self.rng.choice(current.wrong)
        mfe_pairs = pair_table(current.mfe_structure)
        ends = {i, pairs[i], mfe_pairs[i]} - {-1}
        positions = {k for e in ends for k in (e - 1, e, e + 1) if 0 <= k < len(pairs)}
        for table in (pairs, mfe_pairs):
            for e in ends:
                if table[e] >= 0:
                    positions |= small_loops(table, e, self.settings.enumerate_loop)
        for e in ends:
            if pairs[e] >= 0:
                positions |= loop_mismatches(pairs, e, self.settings.enumerate_mismatch)
        units = []
        for k in sorted(positions):
            unit = (k,) if pairs[k] < 0 else tuple(sorted((k, pairs[k])))
            if unit not in units:
                units.append(unit)
        return units

    def _enumerate(self, current: Candidate, pairs: Sequence[int], pool: MisfoldPool) -> list[list[str]]:
        """The best-screening variants (`enumerate_keep`, best first) of the neighbourhood of one wrongly
        paired position. Every combination (six pairs for a target pair, four bases for an unpaired position,
        A alone for an inert one) is screened when there are at most `enumerate_limit`; beyond, that many are
        screened by coordinate descent (each unit in turn takes its best option given the others) from the
        current design, then from random ones. Lone pairs and short helices hang on exactly these few
        nucleotides, in combinations (a tandem GA mismatch with the right closing pairs) that one random
        mutation at a time rarely finds."""
        units = self._neighbourhood(current, pairs)
        options = [PAIRS if len(u) == 2 else ("A",) if u[0] in self._inert(pairs) else BASES for u in units]
        screened: dict[tuple, tuple[float, list[str]]] = {}  # combination -> (screen, variant)

        def screen(combination: tuple) -> float:
            if combination not in screened:
                if len(screened) % 100 == 0:
                    self.budget.check()
                seq = list(current.seq)
                for unit, value in zip(units, combination):
                    for pos, base in zip(unit, value):
                        seq[pos] = base
                screened[combination] = (pool.screen(seq), seq)
            return screened[combination][0]

        limit = self.settings.enumerate_limit
        if math.prod(len(o) for o in options) <= limit:
            for combination in itertools.product(*options):
                screen(combination)
        else:
            values = [tuple(current.seq[p] for p in unit) for unit in units]
            while len(screened) < limit:
                improved = True
                while improved and len(screened) < limit:
                    improved = False
                    for u in self.rng.sample(range(len(units)), len(units)):
                        value = min(options[u], key=lambda v: screen((*values[:u], v, *values[u + 1:])))
                        if screen((*values[:u], value, *values[u + 1:])) < screen(tuple(values)):
                            values[u], improved = value, True
                values = [self.rng.choice(o) for o in options]
        ranked = sorted(screened.values(), key=lambda sv: sv[0])
        return [seq for _, seq in ranked[:self.settings.enumerate_keep]]

    def _fold_screened(self, variants: list[list[str]], target: str, pairs: Sequence[int],
                       pool: MisfoldPool) -> Candidate:
        """Fold up to `enumerate_folds` of the variants, each time the one that screens best against the
        pool, which every fold extends by its misfold; returns the best folded."""
        best = None
        for _ in range(min(self.settings.enumerate_folds, len(variants))):
            k = min(range(len(variants)), key=lambda k: pool.screen(variants[k]))
            candidate = self.evaluate(variants.pop(k), target, pairs)
            pool.add(candidate)
            if best is None or candidate.cost < best.cost:
                best = candidate
            if not best.wrong:
                break
        return best

    # --- one segment -----------------------------------------------------------------------------
    def walk(self, seq: list[str], target: str, pairs: Sequence[int], max_steps: int | None) -> Candidate:
        """Local search on one segment until solved, `max_steps` evaluations, or `perturbations` failures."""
        n = len(pairs)
        current = self.evaluate(seq, target, pairs)
        best = self._note(current, n)
        proposals = max(1, round(self.settings.screen_per_nt * n))
        pool = MisfoldPool(target, self.settings.screen_pool)
        pool.add(current)
        patience = self.settings.patience + int(self.settings.patience_per_nt * n)
        stale, failures, steps = 0, 0, 0
        while current.wrong and (max_steps is None or steps < max_steps):
            if stale >= patience:
                if failures >= self.settings.perturbations:
                    break
                failures += 1
                stale = 0
                if self.settings.enumerate_limit and failures % 2 == 1:  # every other stagnation: the neighbourhood
                    before = self.evaluations
                    candidate = self._fold_screened(self._enumerate(current, pairs, pool), target, pairs, pool)
                    steps += self.evaluations - before
                    if candidate.cost < current.cost:
                        current = candidate
                        if current.cost < best.cost or not current.wrong:
                            best, failures = self._note(current, n), 0
                        continue
                current = self.evaluate(self._perturb(best, target, pairs), target, pairs)
                pool.add(current)
                steps += 1
                if current.cost < best.cost or not current.wrong:
                    best, failures = self._note(current, n), 0
                continue
            candidate = self.evaluate(self._screened_mutations(current, pairs, pool, proposals), target, pairs)
            pool.add(candidate)
            steps += 1
            if candidate.cost <= current.cost:  # neutral moves are accepted: drift over plateaus
                improved = candidate.cost < best.cost
                current = candidate
                if current.cost < best.cost or not current.wrong:
                    best, failures = self._note(current, n), 0
                stale = 0 if improved else stale + 1
            else:
                stale += 1
        return best

    def _note(self, candidate: Candidate, n: int) -> Candidate:
        """Remember the best design of the whole target (what a search stopped by the budget returns)."""
        if n == len(self.pairs) and (self.best is None or candidate.cost < self.best.cost or not candidate.wrong):
            self.best = candidate
        return candidate

    # --- whole target ----------------------------------------------------------------------------
    def _design_once(self) -> Candidate:
        """Nodes bottom-up (each with the unpaired base on either side of it, its closing pair's mismatch in
        the target), then the whole target from their solutions."""
        pairs, n = self.pairs, len(self.pairs)
        seq = initial_sequence(pairs, self.rng)
        for i, j in design_nodes(pairs, self.settings.min_node):
            cap = NODE_MIN_STEPS + int(self.settings.node_steps * min(1.0, (100 / (j - i + 1)) ** 2))
            i, j = i - (i > 0 and pairs[i - 1] < 0), j + (j + 1 < n and pairs[j + 1] < 0)
            sub_pairs = [p - i if p >= 0 else -1 for p in pairs[i:j + 1]]
            self.current = seq
            sub = self.walk(seq[i:j + 1], self.target[i:j + 1], sub_pairs, cap)
            seq[i:j + 1] = sub.seq
        self.current = seq
        return self.walk(seq, self.target, pairs, None)

    def run(self) -> tuple[Candidate | None, bool]:
        """Design with restarts until solved or the budget is spent; returns (best candidate, solved).

        The candidate is None when the budget ran out before the whole target was evaluated once
        (`current` then holds the partial design)."""
        try:
            while True:
                candidate = self._design_once()
                if not candidate.wrong:
                    return candidate, True
                self.restarts += 1
        except BudgetSpent:
            return self.best, False
