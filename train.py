"""Pretrain an OmniGenome model: `python train.py [group=option ...] [key=value ...]`.

Defaults: the tiny model on the embedded sample corpus, on CPU. See conf/train.yaml for the groups.
Returns the final validation loss (the metric a Hydra sweep optimises).
"""
from __future__ import annotations

import logging

import hydra
import lightning as L
import torch
from omegaconf import DictConfig

from omnigenome.training import run

log = logging.getLogger("omnigenome")


def train(cfg: DictConfig) -> dict:
    L.seed_everything(cfg.seed, workers=True)
    ckpt_path = run.resolve_checkpoint(cfg.get("ckpt_path"), cfg.paths.log_dir, cfg.task_name)
    run.keep_wandb_run(cfg, ckpt_path)
    if torch.cuda.is_available():
        torch.set_float32_matmul_precision("high")

    objectives = hydra.utils.instantiate(cfg.objective)
    datamodule = hydra.utils.instantiate(cfg.data, objectives=objectives)
    model = hydra.utils.instantiate(cfg.model)
    module = hydra.utils.instantiate(cfg.module, model=model, objectives=objectives)
    callbacks = run.instantiate_group(cfg.get("callbacks"))
    loggers = run.instantiate_group(cfg.get("logger"))
    trainer: L.Trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)

    if trainer.is_global_zero:
        log.info("model: %s parameters (encoder + tied MLM head)", f"{model.num_parameters():,}")
    run.set_accumulation(trainer, datamodule, cfg.get("effective_batch_size"))
    if trainer.is_global_zero:
        run.log_config(loggers, cfg)
        run.record_wandb_run(loggers, cfg.paths.output_dir)
    if ckpt_path:
        log.info("resuming from %s", ckpt_path)

    metrics = {}
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
        metrics.update({k: float(v) for k, v in trainer.callback_metrics.items()})
        # Score the final weights on the whole validation split.
        for result in trainer.validate(module, datamodule=datamodule, verbose=False):
            metrics.update(result)
    finally:
        for lg in loggers:
            lg.finalize("success" if trainer.state.status == "finished" else "failed")

    if trainer.is_global_zero:
        ckpt = trainer.checkpoint_callback
        print("\n" + run.summary_table(metrics, objectives.active))
        print(f"\nsteps: {trainer.global_step}")
        if ckpt is not None:
            print(f"best checkpoint: {ckpt.best_model_path or '-'}")
            print(f"last checkpoint: {ckpt.last_model_path or '-'}")
        print(f"run directory:   {cfg.paths.output_dir}")
        for lg in loggers:
            print(f"{type(lg).__name__}: {lg.log_dir if hasattr(lg, 'log_dir') and lg.log_dir else lg.save_dir}")
    return metrics


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    metrics = train(cfg)
    return metrics.get("val/loss")


if __name__ == "__main__":
    main()
