"""Glue between Hydra configs and Lightning objects, shared by train.py and evaluate.py."""
from __future__ import annotations

import logging
from pathlib import Path

import hydra
import lightning as L
from omegaconf import DictConfig, OmegaConf, open_dict

from omnigenome.training import cluster  # also registers the run-directory resolvers of conf/hydra

log = logging.getLogger("omnigenome")


def resolve_checkpoint(ckpt_path: str | None, log_dir: str, task_name: str) -> str | None:
    """A checkpoint path, or for "last" the newest `last.ckpt` among this task's runs."""
    if ckpt_path in (None, ""):
        return None
    if ckpt_path == "last":
        return str(cluster.latest_run(Path(log_dir, task_name, "runs")) / cluster.LAST_CHECKPOINT)
    if not Path(ckpt_path).is_file():
        raise FileNotFoundError(f"ckpt_path={ckpt_path}: no such checkpoint file")
    return ckpt_path


def load_model(path: str, attention_backend: str = "auto"):
    """An OmniGenomeModel from a Lightning checkpoint of train.py or a Hugging Face directory."""
    import torch
    from omnigenome.model.modeling import OmniGenomeConfig, OmniGenomeModel
    p = Path(path)
    if p.is_dir():
        return OmniGenomeModel.from_pretrained(p, attention_backend=attention_backend)
    if not p.is_file():
        raise FileNotFoundError(f"{path}: neither a checkpoint file nor a Hugging Face model directory")
    ckpt = torch.load(p, map_location="cpu", weights_only=True)
    if "omnigenome_config" not in ckpt:
        raise ValueError(f"{path}: not a checkpoint written by train.py (no 'omnigenome_config' entry)")
    model = OmniGenomeModel(OmniGenomeConfig(**ckpt["omnigenome_config"]), attention_backend=attention_backend)
    state = {k[len("model."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    model.load_state_dict(state)
    return model


def instantiate_group(group: DictConfig | None) -> list:
    """Instantiate every entry of a callbacks / logger group that has a `_target_`."""
    return [hydra.utils.instantiate(c) for c in (group or {}).values() if isinstance(c, DictConfig) and "_target_" in c]


def keep_wandb_run(cfg: DictConfig, ckpt_path: str | None) -> None:
    """On resume, continue the W&B run whose id was stored beside the checkpoint's run."""
    if not ckpt_path or "wandb" not in (cfg.get("logger") or {}):
        return
    id_file = Path(ckpt_path).parent.parent / "wandb_run_id"
    if id_file.is_file() and not cfg.logger.wandb.get("id"):
        with open_dict(cfg):
            cfg.logger.wandb.id = id_file.read_text().strip()
        log.info("resuming W&B run %s", cfg.logger.wandb.id)


def record_wandb_run(loggers: list, output_dir: str) -> None:
    from lightning.pytorch.loggers import WandbLogger
    for lg in loggers:
        if isinstance(lg, WandbLogger):
            Path(output_dir, "wandb_run_id").write_text(lg.experiment.id + "\n")


def finish_wandb() -> None:
    """End the active W&B run, if any (Lightning's WandbLogger leaves it open)."""
    import sys
    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.finish()


def log_config(loggers: list, cfg: DictConfig) -> None:
    """Log the fully resolved config (offline W&B runs do not record it by themselves)."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    for lg in loggers:
        lg.log_hyperparams(resolved)


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


def summary_table(metrics: dict, objectives: tuple[str, ...]) -> str:
    """Final train/val loss and accuracy of each objective as a text table."""
    def fmt(key):
        v = metrics.get(key)
        return f"{float(v):.4f}" if v is not None else "-"
    rows = [("objective", "train loss", "train acc", "val loss", "val acc")]
    rows += [(n, fmt(f"train/{n}/loss"), fmt(f"train/{n}/acc"), fmt(f"val/{n}/loss"), fmt(f"val/{n}/acc"))
             for n in objectives]
    rows.append(("total", fmt("train/loss"), "", fmt("val/loss"), ""))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows)
