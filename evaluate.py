"""Evaluate a pretrained model: `python evaluate.py ckpt=<train.py checkpoint or HF dir> [data=...]`.

Prints the loss and accuracy of every objective on the validation split of the data config.
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


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> float:
    return evaluate(cfg)["val/loss"]


if __name__ == "__main__":
    main()
