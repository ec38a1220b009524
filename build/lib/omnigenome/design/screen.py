"""The screen of the default designer: a proposal's target energy against the most stable misfold seen so far.

Evaluating a structure's energy costs microseconds, folding milliseconds (~100 ms at 400 nt); so the designer
mutates several times between two folds, keeping the mutations this screen prefers, and every fold adds its
misfold to the pool (cutting planes: the screen is a lower bound of the energy gap that tightens with each fold).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from omnigenome.design.evaluation import Candidate
from omnigenome.folding import structure_energies
from omnigenome.structure import CANONICAL_PAIRS, pair_table

_CANONICAL = np.zeros((256, 256), dtype=bool)  # by ASCII code of the two bases
for _a, _b in CANONICAL_PAIRS:
    _CANONICAL[ord(_a), ord(_b)] = True


class MisfoldPool:
    """Misfolds seen while designing one segment (the most recent `size`), and the cheap screen of a
    proposal against them: (energy of the target) - (energy of the most stable competitor).

    A competitor's pairs that the proposal cannot form (not canonical on it) are opened before its
    energy is evaluated: ViennaRNA would otherwise score them as non-standard pairs, and a mutation
    that breaks an unwanted pair would look no better than one that keeps it.
    """

    def __init__(self, target: str, size: int):
        self.target = target
        self.size = size
        self.structures: list[str] = []
        self._pairs: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # structure -> its pairs (i < j)
        self._i = self._j = self._owner = np.zeros(0, dtype=np.int64)

    def add(self, candidate: Candidate) -> None:
        """Remember the candidate's MFE structure if it is a misfold."""
        if not candidate.wrong:
            return
        structure = candidate.mfe_structure
        if structure in self.structures:
            self.structures.remove(structure)
        else:
            table = np.asarray(pair_table(structure))
            i = np.flatnonzero(table > np.arange(len(table)))
            self._pairs[structure] = (i, table[i])
        self.structures.append(structure)
        for old in self.structures[:-self.size]:
            del self._pairs[old]
        self.structures = self.structures[-self.size:]
        pairs = [self._pairs[s] for s in self.structures]
        self._i = np.concatenate([i for i, _ in pairs])
        self._j = np.concatenate([j for _, j in pairs])
        self._owner = np.repeat(np.arange(len(pairs)), [len(i) for i, _ in pairs])
        self._chars = np.frombuffer("".join(self.structures).encode(), dtype=np.uint8).reshape(len(pairs), -1)

    def screen(self, seq: Sequence[str]) -> float:
        """Lower is better; < 0: the target is more stable than every known competitor."""
        sequence = "".join(seq)
        codes = np.frombuffer(sequence.encode(), dtype=np.uint8)
        bad = ~_CANONICAL[codes[self._i], codes[self._j]]
        structures = self.structures
        if bad.any():
            chars = self._chars.copy()
            chars[self._owner[bad], self._i[bad]] = chars[self._owner[bad], self._j[bad]] = ord(".")
            structures = [row.tobytes().decode() for row in chars]
        energies = structure_energies(sequence, [self.target, *structures])
        return energies[0] - min(energies[1:])
