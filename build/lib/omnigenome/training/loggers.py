"""Loggers that continue a run: a resumed run appends to its metrics.csv and to the same W&B run."""
from __future__ import annotations

import csv
import logging
import sys
from pathlib import Path

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from omegaconf import DictConfig, OmegaConf, open_dict

log = logging.getLogger("omnigenome")

WANDB_ID_FILE = "wandb_run_id"  # in the run directory


class _ContinuingWriter(ExperimentWriter):
    """Lightning's CSV writer, except that an existing metrics.csv (a run resumed in its directory) is kept
    and appended to, with its columns."""

    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as f:
                self.metrics_keys = next(csv.reader(f), [])


class ResumableCSVLogger(CSVLogger):
    """`CSVLogger` whose metrics.csv survives a resume (`train.py resume=<run dir>`, a requeued job): the rows
    logged before the run stopped stay, the resumed run's rows follow."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _ContinuingWriter(log_dir=self.log_dir)
        return self._experiment


def where(logger) -> str:
    """What a logger wrote, for the run's last lines: "metrics: <file>" / "TensorBoard: <dir>" / "W&B: <dir>"."""
    name = type(logger).__name__
    if isinstance(logger, CSVLogger):
        return f"metrics:         {Path(logger.log_dir) / 'metrics.csv'}"
    if name == "TensorBoardLogger":
        return f"TensorBoard:     {logger.log_dir}"
    if name == "WandbLogger":
        return f"W&B:             {logger.save_dir} (run {logger.experiment.id})"
    return f"{name}: {getattr(logger, 'log_dir', None) or logger.save_dir}"


def keep_wandb_run(cfg: DictConfig, ckpt_path: str | None) -> None:
    """On resume, continue the W&B run whose id was stored in the checkpoint's run directory."""
    if not ckpt_path or "wandb" not in (cfg.get("logger") or {}):
        return
    id_file = Path(ckpt_path).parent.parent / WANDB_ID_FILE
    if id_file.is_file() and not cfg.logger.wandb.get("id"):
        with open_dict(cfg):
            cfg.logger.wandb.id = id_file.read_text().strip()
        log.info("resuming W&B run %s", cfg.logger.wandb.id)


def record_wandb_run(loggers: list, output_dir: str) -> None:
    for lg in loggers:
        if type(lg).__name__ == "WandbLogger":
            Path(output_dir, WANDB_ID_FILE).write_text(lg.experiment.id + "\n")


def finish_wandb() -> None:
    """End the active W&B run, if any (Lightning's WandbLogger leaves it open)."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.finish()


def log_config(loggers: list, cfg: DictConfig) -> None:
    """Log the fully resolved config (offline W&B runs do not record it by themselves)."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    for lg in loggers:
        lg.log_hyperparams(resolved)
