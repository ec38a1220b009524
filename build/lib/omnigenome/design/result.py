"""The outcome of designing one target, whatever the method."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass


@dataclass
class DesignResult:
    """Outcome of designing one target.

    solved: the ViennaRNA MFE structure of `sequence` equals `structure` (checked within the budget).
    seconds: CPU seconds the design used (time to solve when solved; about the budget otherwise).
    distance: positions whose MFE dot-bracket character differs from the target's (0 when solved).
    evaluations: folds made; restarts: searches started over.
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


def hamming(a: str, b: str) -> int:
    """Positions at which two dot-brackets of the same length differ."""
    return sum(x != y for x, y in zip(a, b))
