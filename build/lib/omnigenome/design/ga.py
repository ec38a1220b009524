"""The OmniGenome paper's genetic algorithm (method "ga").

Population of `population` designs; each generation makes as many children by crossover of two
parents from the better half and mutation of a `mutation_rate` share of positions; parents and
children compete on fitness = (normalised Hamming distance between MFE and target dot-brackets,
MFE) and the best `population` survive. Mutation is MLM-guided when a model is given (mask the
positions, refill them with the model conditioned on `masked_seq <eos> target`), random otherwise.
The initial population is the model's fill of the fully masked sequence (random without a model).
Unlike the released code, refilled positions have their partners repaired so pairs stay canonical.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from omnigenome.design.base import Budget, BudgetSpent, TargetSearch
from omnigenome.design.operators import BASES, PAIRS, crossover, mutate_position, repair_pairs
from omnigenome.design.settings import GASettings
from omnigenome.folding import score_design


@dataclass
class Individual:
    seq: list[str]
    mfe_structure: str
    mfe: float
    hamming: float  # share of positions whose dot-bracket character differs from the target's

    @property
    def fitness(self) -> tuple[float, float]:
        return (self.hamming, self.mfe)


class GeneticAlgorithm(TargetSearch):
    """See the module docstring; `run` returns (best individual, solved)."""

    def __init__(self, target: str, rng: random.Random, budget: Budget, settings: GASettings | None = None,
                 proposer=None):
        super().__init__(target, rng, budget, settings or GASettings.load())
        self.proposer = proposer if proposer is not None and proposer.fits(len(target)) else None
        self.evaluations = 0
        self.generations = 0
        self.best: Individual | None = None

    def _evaluate(self, seq: list[str]) -> Individual:
        self.budget.check()
        self.evaluations += 1
        self.budget.evaluations += 1
        score = score_design("".join(seq), self.target)
        hamming = sum(a != b for a, b in zip(score.mfe_structure, self.target)) / len(self.target)
        ind = Individual(seq, score.mfe_structure, score.mfe, hamming)
        if self.best is None or ind.fitness < self.best.fitness:
            self.best = ind
        return ind

    def _random_sequence(self) -> list[str]:
        seq = [self.rng.choice(BASES) for _ in self.pairs]
        for i, j in enumerate(self.pairs):
            if i < j:
                seq[i], seq[j] = self.rng.choice(PAIRS)
        return seq

    def _mutate(self, children: list[list[str]]) -> list[list[str]]:
        n = len(self.pairs)
        masked = []
        for _ in children:
            chosen = [i for i in range(n) if self.rng.random() < self.settings.mutation_rate]
            masked.append(chosen or [self.rng.randrange(n)])
        if self.proposer is not None:
            children = self.proposer.fill(children, self.target, masked, self.np_rng)
            for child, chosen in zip(children, masked):
                repair_pairs(child, self.pairs, chosen, self.rng)
        else:
            for child, chosen in zip(children, masked):
                for i in chosen:
                    mutate_position(child, self.pairs, i, self.rng)
        return children

    def run(self) -> tuple[Individual | None, bool]:
        n, size = len(self.pairs), self.settings.population
        try:
            if self.proposer is not None:
                start = self.proposer.fill([["A"] * n for _ in range(size)], self.target,
                                           [list(range(n))] * size, self.np_rng)
                for seq in start:
                    repair_pairs(seq, self.pairs, range(n), self.rng)
            else:
                start = [self._random_sequence() for _ in range(size)]
            population = []
            for seq in start:
                population.append(self._evaluate(seq))
                if population[-1].hamming == 0:
                    return population[-1], True
            while True:
                self.generations += 1
                population.sort(key=lambda ind: ind.fitness)
                parents = population[:max(2, size // 2)]
                children = [crossover(self.rng.choice(parents).seq, self.rng.choice(parents).seq, self.pairs, self.rng)
                            for _ in range(size)]
                for seq in self._mutate(children):
                    child = self._evaluate(seq)
                    if child.hamming == 0:
                        return child, True
                    population.append(child)
                population = sorted(population, key=lambda ind: ind.fitness)[:size]
        except BudgetSpent:
            return self.best, False
