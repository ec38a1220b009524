"""The numbers of the design methods: the schemas of `conf/design/<method>.yaml`.

The values live in the YAML files only (each setting documented there and in docs/design.md); these
dataclasses give their names and types and check them. `LocalSearchSettings.load(["trajectories=1"])`
reads the file with `key=value` changes (what `omnigenome design ... trajectories=1` does).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence


class _FromConfig:
    config_name: str

    @classmethod
    def load(cls, overrides: Sequence[str] = ()):
        """The settings of conf/<config_name>.yaml with `key=value` overrides (SettingsError for a bad key)."""
        if not overrides:
            return _defaults(cls)
        from omnigenome.settings import load_settings
        return load_settings(cls.config_name, cls, overrides)

    @classmethod
    def defaults(cls, **changes):
        """The settings of the YAML file with some changed (Python API)."""
        from dataclasses import replace
        return replace(_defaults(cls), **changes)


@lru_cache(maxsize=None)
def _defaults(cls):
    from omnigenome.settings import load_settings
    return load_settings(cls.config_name, cls)


@dataclass(frozen=True)
class LocalSearchSettings(_FromConfig):
    """The default designer (conf/design/local.yaml; steps are evaluations, none depends on the budget)."""
    config_name = "design/local"
    wrong_position_share: float
    neighbour_share: float
    boost_share: float
    patience: int
    patience_per_nt: float
    perturbations: int
    perturb_fraction: float
    model_share: float
    min_node: int
    node_steps: int
    screen_per_nt: float
    screen_pool: int
    screen_rounds: int
    enumerate_limit: int
    enumerate_loop: int
    enumerate_mismatch: int
    enumerate_keep: int
    enumerate_folds: int
    trajectories: int
    turn: int

    def __post_init__(self):
        for name in ("wrong_position_share", "neighbour_share", "boost_share", "perturb_fraction", "model_share"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must lie in [0, 1], got {getattr(self, name)}")
        if min(self.trajectories, self.turn, self.screen_rounds, self.min_node) < 1:
            raise ValueError(f"trajectories, turn, screen_rounds and min_node must be >= 1, got {self.trajectories}, "
                             f"{self.turn}, {self.screen_rounds} and {self.min_node}")


@dataclass(frozen=True)
class GASettings(_FromConfig):
    """The OmniGenome paper's genetic algorithm (conf/design/ga.yaml)."""
    config_name = "design/ga"
    population: int
    mutation_rate: float

    def __post_init__(self):
        if self.population < 2 or not 0 < self.mutation_rate <= 1:
            raise ValueError(f"population must be >= 2 and mutation_rate in (0, 1], got {self.population} and "
                             f"{self.mutation_rate}")


SETTINGS = {"local": LocalSearchSettings, "ga": GASettings}
