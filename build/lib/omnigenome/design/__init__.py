"""RNA design (Str2Seq): sequences whose ViennaRNA MFE structure is a given target.

    from omnigenome.design import design
    result = design("((((....))))", budget_seconds=10, seed=0)
    result.sequence, result.solved, result.seconds

Methods: "local" (default, no model needed; the algorithm is stated in docs/design.md), "ga" (the OmniGenome
paper's MLM-guided genetic algorithm) and "rnainverse" (the ViennaRNA baseline). Budgets are CPU seconds of
the process. Settings: conf/design/<method>.yaml, changed with `load_settings(method, ["key=value"])`.
"""
from omnigenome.design.api import METHODS, design, design_many, load_settings
from omnigenome.design.result import DesignResult
from omnigenome.design.settings import GASettings, LocalSearchSettings
from omnigenome.design.targets import Target, read_targets, validate_target

__all__ = ["METHODS", "DesignResult", "GASettings", "LocalSearchSettings", "Target", "design", "design_many",
           "load_settings", "read_targets", "validate_target"]
