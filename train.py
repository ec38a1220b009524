"""Pretrain an OmniGenome model: `python train.py [group=option ...] [key=value ...]`.

Defaults: the tiny model on the embedded sample corpus, on CPU. See conf/train.yaml for the groups.
Returns the final validation loss (`optimized_metric`, what a sweep minimises). Ranks are launched from
outside (torchrun, srun, hydra/launcher=slurm) and share one run directory; `resume=<run dir>` continues
a run there (see omnigenome/training/cluster.py).

Fine-tune on a downstream task: `python train.py experiment=finetune task=rgb/ssp_archive2 init_from=<ckpt>`
(conf/experiment/finetune.yaml); the best checkpoint is then scored on the task's test split.
"""
from __future__ import annotations

import logging

import hydra
import lightning as L
import torch
from omegaconf import DictConfig

from omnigenome.training import cluster, run

log = logging.getLogger("omnigenome")


def build_trainer(cfg: DictConfig) -> tuple[L.Trainer, object, list]:
    """The trainer with the configured callbacks (plus the preemption handler) and loggers."""
    callbacks = run.instantiate_group(cfg.get("callbacks"))
    preemption = hydra.utils.instantiate(cfg.preemption) if cfg.get("preemption") else None
    callbacks += [preemption] if preemption else []
    loggers = run.instantiate_group(cfg.get("logger"))
    trainer: L.Trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    return trainer, preemption, loggers


def train(cfg: DictConfig) -> dict:
    if cfg.get("task") is not None or cfg.get("finetune") is not None:
        return finetune(cfg)
    L.seed_everything(cfg.seed, workers=True)
    # An explicit ckpt_path, else the run directory's own last.ckpt (resume=<dir>, a requeued job).
    ckpt_path = (run.resolve_checkpoint(cfg.get("ckpt_path"), cfg.paths.log_dir, cfg.task_name)
                 or cluster.last_checkpoint(cfg.paths.output_dir))
    run.keep_wandb_run(cfg, ckpt_path)
    if torch.cuda.is_available():
        torch.set_float32_matmul_precision("high")

    objectives = hydra.utils.instantiate(cfg.objective)
    datamodule = hydra.utils.instantiate(cfg.data, objectives=objectives)
    model = hydra.utils.instantiate(cfg.model)
    module = hydra.utils.instantiate(cfg.module, model=model, objectives=objectives)
    trainer, preemption, loggers = build_trainer(cfg)

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
        # Score the final weights on the whole validation split (not when stopped by a signal: time is short).
        if preemption is None or preemption.stopped_at_step is None:
            for result in trainer.validate(module, datamodule=datamodule, verbose=False):
                metrics.update(result)
    finally:
        for lg in loggers:
            lg.finalize("success" if trainer.state.status == "finished" else "failed")
    if preemption is not None and preemption.stopped_at_step is not None:
        run.finish_wandb()  # flushed before the requeue ends this job
        preemption.requeue_job(trainer)
        if trainer.is_global_zero:
            print(f"\nstopped at step {trainer.global_step} on a signal; continue with: "
                  f"python train.py resume={cfg.paths.output_dir} <the same overrides>")
        return metrics

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


def finetune(cfg: DictConfig) -> dict:
    """Fine-tune `init_from` on `cfg.task`, then score the best checkpoint on the test split."""
    from omnigenome.finetune import evaluate as scoring

    if cfg.get("task") is None or "_target_" in cfg.task or cfg.get("finetune") is None:
        raise ValueError("fine-tuning needs experiment=finetune and task=<suite>/<name> (a task of conf/task/<suite>/)")
    L.seed_everything(cfg.seed, workers=True)
    ckpt_path = (run.resolve_checkpoint(cfg.get("ckpt_path"), cfg.paths.log_dir, cfg.task_name)
                 or cluster.last_checkpoint(cfg.paths.output_dir))
    model = scoring.initial_encoder(cfg)
    datamodule = hydra.utils.instantiate(cfg.data, task=cfg.task)
    module = hydra.utils.instantiate(cfg.module, model=model, task=cfg.task)
    trainer, preemption, loggers = build_trainer(cfg)
    if trainer.is_global_zero:
        log.info("task %s; trainable parameters: %s", cfg.task.name, module.trainable_parameters())
        run.log_config(loggers, cfg)
    baselines = {}
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        # The best checkpoint (on the task's validation metric) scored on the validation and test splits.
        if preemption is None or preemption.stopped_at_step is None:
            best = (trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else None) or None
            metrics.update(trainer.validate(module, datamodule=datamodule, ckpt_path=best, verbose=False)[0])
            if datamodule.has_split("test"):
                metrics.update(trainer.test(module, datamodule=datamodule, ckpt_path=best, verbose=False)[0])
                if trainer.is_global_zero:
                    if cfg.finetune.get("baselines"):
                        baselines = scoring.baseline_rows(cfg.task, datamodule, workers=cfg.data.get("fold_workers", 1),
                                                          cache_dir=cfg.data.get("cache_dir"))
                    scoring.write_test_metrics(cfg.paths.output_dir, cfg.task, metrics, best, datamodule, trainer,
                                               baselines)
    finally:
        for lg in loggers:
            lg.finalize("success" if trainer.state.status == "finished" else "failed")
    if preemption is not None and preemption.stopped_at_step is not None:
        run.finish_wandb()
        preemption.requeue_job(trainer)
        return metrics
    if trainer.is_global_zero:
        print("\n" + scoring.metrics_table(cfg.task, metrics, baselines=baselines))
        print(f"\nsteps: {trainer.global_step}")
        if trainer.checkpoint_callback is not None:
            print(f"best checkpoint: {trainer.checkpoint_callback.best_model_path or '-'}")
        print(f"run directory:   {cfg.paths.output_dir}")
    return metrics


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    try:
        metrics = train(cfg)
    except Exception:
        # Logged with its traceback in the run's log; a sweep records the trial as failed and goes on.
        log.exception("run failed (run directory %s)", cfg.paths.output_dir)
        raise
    finally:
        run.finish_wandb()  # the next trial of an in-process sweep starts a new W&B run
    value = metrics.get(cfg.get("optimized_metric") or "val/loss")
    return float(value) if value is not None else None


if __name__ == "__main__":
    main()
