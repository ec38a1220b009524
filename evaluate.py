"""Evaluate a pretrained model: `python evaluate.py ckpt=<train.py checkpoint or HF dir> [data=...]`.

Without a task: prints the loss and accuracy of every objective on the validation split of the
data config. With `task=<name>` (conf/task/): runs that evaluation task, for example
`task=ssp_zero_shot dataset=bprna` (zero-shot secondary structure prediction beside ViennaRNA). With a
fine-tuning task, `task=rgb/ssp_archive2 ckpt=<run>/checkpoints/best.ckpt`: scores a checkpoint of
`train.py experiment=finetune` on the task's test split (head, LoRA and structure input from the checkpoint).
"""
from __future__ import annotations

import hydra
import lightning as L
from omegaconf import DictConfig

from omnigenome.training import run


def evaluate(cfg: DictConfig) -> dict:
    L.seed_everything(cfg.seed, workers=True)
    model = run.load_model(cfg.ckpt, cfg.attention_backend)
    objectives = hydra.utils.instantiate(cfg.objective)
    datamodule = hydra.utils.instantiate(cfg.data, objectives=objectives)
    module = hydra.utils.instantiate(cfg.module, model=model, objectives=objectives)
    trainer: L.Trainer = hydra.utils.instantiate(cfg.trainer, logger=False, callbacks=[])
    metrics = trainer.validate(module, datamodule=datamodule, verbose=False)[0]
    if trainer.is_global_zero:
        print(f"\n{cfg.ckpt}\n" + run.summary_table(metrics, objectives.active))
    return metrics


def evaluate_task(cfg: DictConfig) -> dict:
    """Run `cfg.task` (a partial function from conf/task/) on `cfg.dataset` with `cfg.ckpt`."""
    L.seed_everything(cfg.seed, workers=True)
    task = hydra.utils.instantiate(cfg.task)
    return task(ckpt=cfg.ckpt, dataset=cfg.dataset.name, data_dir=cfg.dataset.data_dir,
                attention_backend=cfg.attention_backend)


def evaluate_finetuned(cfg: DictConfig) -> dict:
    """Score the fine-tuned `cfg.ckpt` on the test split of the fine-tuning task `cfg.task`."""
    from omnigenome.finetune.evaluate import evaluate_checkpoint
    L.seed_everything(cfg.seed, workers=True)
    trainer: L.Trainer = hydra.utils.instantiate(cfg.trainer, logger=False, callbacks=[])
    return evaluate_checkpoint(cfg.ckpt, cfg.task, trainer, cache_dir=f"{cfg.paths.data_dir}/cache",
                               eval_limit=cfg.get("eval_limit"), attention_backend=cfg.attention_backend)


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> float | None:
    if cfg.get("task") and "_target_" not in cfg.task:  # a fine-tuning task (conf/task/<suite>/<name>.yaml)
        metrics = evaluate_finetuned(cfg)
        return metrics.get(f"test/{cfg.task.monitor}")
    if cfg.get("task"):
        rows = evaluate_task(cfg)
        model_rows = [r for name, r in rows.items() if name.startswith("model")]
        return model_rows[0]["macro_f1"] if model_rows else None
    return evaluate(cfg)["val/loss"]


if __name__ == "__main__":
    main()
