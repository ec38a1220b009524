"""What a pretraining run reports: the final weights on the whole validation split, per objective; and the
same for any checkpoint (`python evaluate.py ckpt=...`)."""
from __future__ import annotations

from omnigenome.utils import fmt_number, markdown_table


def summary_table(metrics: dict, objectives: tuple[str, ...]) -> str:
    """Final train/valid loss and accuracy of each objective as a Markdown table."""
    rows = [(n, *(fmt_number(metrics.get(f"{s}/{n}/{m}")) for s in ("train", "val") for m in ("loss", "acc")))
            for n in objectives]
    rows.append(("total", fmt_number(metrics.get("train/loss")), "", fmt_number(metrics.get("val/loss")), ""))
    return markdown_table(("objective", "train loss", "train acc", "valid loss", "valid acc"), rows)


def validate_final_weights(trainer, module, datamodule, output_dir: str) -> tuple[dict, str]:
    """After pretraining: the final weights scored on the whole validation split. Returns (metrics, report)."""
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    for result in trainer.validate(module, datamodule=datamodule, verbose=False):
        metrics.update(result)
    ckpt = trainer.checkpoint_callback
    lines = [summary_table(metrics, module.objectives.active), "", f"steps: {trainer.global_step}"]
    if ckpt is not None:
        lines += [f"best checkpoint: {ckpt.best_model_path or '-'}", f"last checkpoint: {ckpt.last_model_path or '-'}"]
    return metrics, "\n".join(lines)


def evaluate_objectives(ckpt: str, objectives, data, trainer, attention_backend: str = "auto") -> dict:
    """A pretrained model (train.py checkpoint or Hugging Face folder) on the validation split of `data`,
    per objective: loss and accuracy. Prints the table; returns the metrics.

    objectives, data, trainer: configs (the objectives, the data module and the trainer to score with)."""
    import hydra

    from omnigenome.model.loading import load_model
    from omnigenome.training.module import PretrainModule
    from omnigenome.training.trainer import evaluation_trainer
    objectives = hydra.utils.instantiate(objectives)
    data = hydra.utils.instantiate(data, objectives=objectives)
    trainer = evaluation_trainer(trainer)
    module = PretrainModule(load_model(ckpt, attention_backend), objectives, optimizer=None)
    metrics = trainer.validate(module, datamodule=data, verbose=False)[0]
    if trainer.is_global_zero:
        print(f"\n{ckpt}\n" + summary_table(metrics, objectives.active))
    return metrics
