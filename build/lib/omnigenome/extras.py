"""Optional parts of the package and the extra that installs each: a missing one is named in one line."""
from __future__ import annotations

import importlib
from types import ModuleType

DISTRIBUTION = "omnigenome-lab"

# module -> (extra, what needs it)
EXTRAS = {
    "submitit": ("cluster", "SLURM job arrays and Hydra's SLURM launcher"),
    "hydra_plugins.hydra_submitit_launcher": ("cluster", "hydra/launcher=slurm"),
    "hydra_plugins.hydra_optuna_sweeper": ("sweeps", "hparams_search=optuna"),
    "optuna": ("sweeps", "hparams_search=optuna"),
    "wandb": ("wandb", "logger=wandb"),
    "tensorboard": ("tensorboard", "logger=tensorboard"),
    "matplotlib": ("plots", "result plots"),
    "flash_attn": ("flash", "attention_backend=flash"),
    "multimolecule": ("zoo", "RNA and DNA models of the multimolecule package"),
}


class MissingExtra(ImportError):
    """An optional dependency is not installed; the message names the extra that installs it."""


def install_hint(module: str) -> str:
    extra, what = EXTRAS[module]
    return f'{what} needs the "{extra}" extra: pip install "{DISTRIBUTION}[{extra}]"'


def require(module: str) -> ModuleType:
    """Import `module`, or raise MissingExtra with a one-line message naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtra(install_hint(module)) from None


def available(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True
