"""RNA design (Str2Seq): sequences whose ViennaRNA MFE structure is a given target.

    from omnigenome.design import design
    result = design("((((....))))", budget_seconds=10, seed=0)
    result.sequence, result.solved, result.seconds

Methods: "local" (default, no model needed), "ga" (the OmniGenome paper's MLM-guided genetic
algorithm) and "rnainverse" (the ViennaRNA baseline). Budgets are CPU seconds of the process.
"""
from omnigenome.design.api import METHODS, DesignResult, design, design_many, parse_settings, rnainverse
from omnigenome.design.ga import GASettings
from omnigenome.design.search import LocalSearchSettings
from omnigenome.design.targets import Target, read_targets, validate_target

__all__ = ["METHODS", "DesignResult", "GASettings", "LocalSearchSettings", "Target", "design", "design_many",
           "parse_settings", "read_targets", "rnainverse", "validate_target"]
