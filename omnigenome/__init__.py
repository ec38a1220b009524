"""omnigenome: pretrain, evaluate and use OmniGenome-style RNA foundation models.

Importing the package is cheap: the names below are loaded on first use (the model classes import torch).
"""
from __future__ import annotations

from importlib import import_module

__version__ = "0.2.0"

_LAZY = {
    "OmniGenomeConfig": "omnigenome.model.config",
    "OmniGenomeModel": "omnigenome.model.modeling",
    "OmniGenomeOutput": "omnigenome.model.modeling",
    "OmniGenomeTokenizer": "omnigenome.tokenizer",
    "load": "omnigenome.inference.api",
}

__all__ = [*_LAZY, "__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'omnigenome' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
