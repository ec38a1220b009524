"""The Lightning Trainer of a run, from its config: callbacks, loggers, the preemption handler, and the
gradient accumulation that gives an optimizer step the configured number of sequences."""
from __future__ import annotations

import logging
import warnings

import hydra
import lightning as L
from omegaconf import DictConfig

from omnigenome.extras import require

log = logging.getLogger("omnigenome")

# Loggers whose package is an extra of this project.
_LOGGER_MODULES = {"WandbLogger": "wandb", "TensorBoardLogger": "tensorboard"}


def quiet_lightning() -> None:
    """Lightning's tips and environment lines are not what a user asked for; its warnings stay."""
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero",
                 "lightning.pytorch.accelerators.cuda"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*(does not have many workers|is smaller than the logging interval"
                                              r"|treespec, LeafSpec).*")


def instantiate_group(group: DictConfig | None) -> list:
    """Instantiate every entry of a callbacks / logger group that has a `_target_`."""
    return [hydra.utils.instantiate(c) for c in (group or {}).values() if isinstance(c, DictConfig) and "_target_" in c]


def build_trainer(cfg: DictConfig) -> tuple[L.Trainer, object, list]:
    """(trainer, preemption handler or None, loggers) of a train.py run."""
    for entry in (cfg.get("logger") or {}).values():
        module = _LOGGER_MODULES.get(str(entry.get("_target_", "")).rsplit(".", 1)[-1])
        if module:
            require(module)
    callbacks = instantiate_group(cfg.get("callbacks"))
    preemption = hydra.utils.instantiate(cfg.preemption) if cfg.get("preemption") else None
    callbacks += [preemption] if preemption else []
    loggers = instantiate_group(cfg.get("logger"))
    trainer: L.Trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    return trainer, preemption, loggers


def evaluation_trainer(trainer: DictConfig) -> L.Trainer:
    """A Trainer of the `trainer` config for scoring only: no logger, no callbacks."""
    return hydra.utils.instantiate(trainer, logger=False, callbacks=[])


def set_accumulation(trainer: L.Trainer, datamodule, effective_batch_size: int | None) -> None:
    """Choose gradient accumulation so an optimizer step sees about `effective_batch_size` sequences."""
    if not effective_batch_size:
        return
    per_batch = datamodule.records_per_batch()
    world = trainer.num_nodes * trainer.num_devices
    accumulate = max(1, round(effective_batch_size / (per_batch * world)))
    trainer.accumulate_grad_batches = accumulate
    log.info("effective batch %d sequences: %.1f per micro-batch x %d ranks x accumulate %d",
             effective_batch_size, per_batch, world, accumulate)
