"""The two Hydra applications: `train` (pretraining and fine-tuning, two experiments of one skeleton) and
`evaluate`. Installed as `omnigenome-train` and `omnigenome-evaluate`; `train.py` and `evaluate.py` in a
checkout are thin entry points over the same functions. Configs: the installed `conf/` (`omnigenome.conf`);
`--config-dir DIR` adds a folder of one's own (a model size, a task) to Hydra's search path.

A bad setting stops before anything runs with one line on stderr (exit status 2) and leaves no run
directory; a run stopped by a signal exits with 128 + the signal's number (see `Preemption`).
"""
from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path

import hydra
import lightning as L
import torch
from hydra.errors import InstantiationException
from omegaconf import DictConfig, open_dict
from omegaconf.errors import OmegaConfBaseException

from omnigenome.settings import SettingsError, register_resolvers
from omnigenome.training import cluster  # registers the run-directory resolvers of conf/hydra
from omnigenome.training.callbacks import Preempted
from omnigenome.training.checkpoints import check_resume, resolve_checkpoint, resolve_init_from
from omnigenome.training.loggers import finish_wandb, keep_wandb_run, log_config, record_wandb_run, where
from omnigenome.training.trainer import build_trainer, quiet_lightning, set_accumulation

log = logging.getLogger("omnigenome")
register_resolvers()


def _setting_error(error: BaseException) -> SettingsError:
    """A one-line SettingsError from an error raised while building a run's objects from its config."""
    key = None
    while isinstance(error, InstantiationException) and error.__cause__ is not None:
        key = next((line.split(":", 1)[1].strip() for line in str(error).splitlines() if line.startswith("full_key:")),
                   key)
        error = error.__cause__
    text = " ".join(str(error).split()) or type(error).__name__
    return SettingsError(f"{key}: {text}" if key and not text.startswith(key) else text)


# What building a run's objects raises for a bad setting (Lightning's MisconfigurationException is a ValueError).
_BUILD_ERRORS = (ValueError, TypeError, FileNotFoundError, ImportError, InstantiationException, OmegaConfBaseException)


def describe(module) -> str:
    """One line on the model: its parameters, and how many of them train."""
    params = list(module.parameters())
    total, trainable = sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)
    return f"model: {total:,} parameters, {trainable:,} trainable"


def train(cfg: DictConfig) -> dict:
    """Pretrain (experiment=pretrain, the default) or fine-tune (experiment=finetune task=...) and report."""
    quiet_lightning()
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    run_dir = cfg.paths.output_dir
    try:
        resumed = cluster.last_checkpoint(run_dir)  # resume=<dir>, a requeued job: this directory's last.ckpt
        ckpt_path = resolve_checkpoint(cfg.get("ckpt_path"), cfg.paths.log_dir, cfg.task_name) or resumed
        if resumed:
            check_resume(cfg, run_dir)
        if "init_from" in cfg:
            with open_dict(cfg):
                cfg.init_from = resolve_init_from(cfg.init_from, cfg.paths.log_dir)
        keep_wandb_run(cfg, ckpt_path)
        datamodule = hydra.utils.instantiate(cfg.data)
        module = hydra.utils.instantiate(cfg.module)
        trainer, preemption, loggers = build_trainer(cfg)
        set_accumulation(trainer, datamodule, cfg.get("effective_batch_size"))
    except SettingsError:
        raise
    except _BUILD_ERRORS as e:
        raise _setting_error(e) from e
    if torch.cuda.is_available():
        torch.set_float32_matmul_precision("high")
    if trainer.is_global_zero:
        log.info(describe(module))
        log_config(loggers, cfg)
        record_wandb_run(loggers, run_dir)
    if ckpt_path:
        log.info("resuming from %s", ckpt_path)
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    except Preempted:
        finish_wandb()  # flushed before the requeue ends this job
        preemption.requeue_job(trainer)
        if trainer.is_global_zero:
            print(f"\nstopped at step {trainer.global_step} on a signal; continue with: "
                  f"python train.py resume={run_dir} <the same overrides>", flush=True)
        raise
    try:
        metrics, report = hydra.utils.instantiate(cfg.after_fit)(trainer=trainer, module=module,
                                                                 datamodule=datamodule, output_dir=run_dir)
    finally:
        for lg in loggers:
            lg.finalize("success" if trainer.state.status == "finished" else "failed")
    if trainer.is_global_zero:
        print("\n" + report)
        print(f"run directory:   {run_dir}")
        for lg in loggers:
            print(where(lg))
    return metrics


def evaluate(cfg: DictConfig) -> dict:
    """Run the evaluation `cfg.evaluation` (objectives, ssp_zero_shot or finetune; conf/evaluation/)."""
    quiet_lightning()
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    if cfg.get("ckpt") and not Path(cfg.ckpt).exists():
        raise SettingsError(f"ckpt={cfg.ckpt}: no such checkpoint file or model folder")
    try:
        run = hydra.utils.instantiate(cfg.evaluation)
    except _BUILD_ERRORS as e:
        raise _setting_error(e) from e
    return run()


def _remove_new_run(run_dir: str, log_dir: str, resumed: bool) -> None:
    """After a bad setting: the run directory Hydra made for this run (or this resume's record in it) goes, and
    the folders above it that it leaves empty, up to the log folder."""
    from hydra.core.hydra_config import HydraConfig
    record = Path(run_dir, HydraConfig.get().output_subdir or ".hydra")
    shutil.rmtree(record if resumed else run_dir, ignore_errors=True)
    parent, top = Path(run_dir).resolve().parent, Path(log_dir).resolve()
    while not resumed and parent != top and top in parent.parents and parent.is_dir() and not any(parent.iterdir()):
        parent.rmdir()
        parent = parent.parent


def _run(function, cfg: DictConfig):
    """Run `function(cfg)` as a Hydra task: one line for a bad setting, 128 + signal for a preempted run."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    run_dir = cfg.paths.output_dir
    resumed = bool(cluster.last_checkpoint(run_dir))
    try:
        return function(cfg)
    except SettingsError as e:
        if multirun:  # a sweep records the trial as failed and goes on
            raise
        _remove_new_run(run_dir, cfg.paths.log_dir, resumed)
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except Preempted as p:
        if multirun:
            raise
        sys.exit(p.exit_status)
    except Exception:
        # Logged with its traceback in the run's log; a sweep records the trial as failed and goes on.
        log.exception("run failed (run directory %s)", run_dir)
        raise
    finally:
        finish_wandb()  # the next trial of an in-process sweep starts a new W&B run


def _check_command_line(argv: list[str], config_name: str) -> None:
    """Before Hydra starts a run: a sweep or launcher whose extra is missing, or an override of a key that does
    not exist, stops with one line (naming the extra, or the key and the valid keys) and exit status 2."""
    from omnigenome.extras import available, install_hint
    from omnigenome.settings import compose
    needs = {"hparams_search=optuna": "hydra_plugins.hydra_optuna_sweeper", "hydra/launcher=slurm":
             "hydra_plugins.hydra_submitit_launcher"}
    overrides, config_dirs, flags = [], [], iter(argv)
    for arg in flags:
        if arg in ("--config-dir", "-cd"):
            config_dirs.append(next(flags, ""))
        elif arg.startswith("--config-dir="):
            config_dirs.append(arg.split("=", 1)[1])
        elif arg.startswith("-") or arg.startswith("hydra.") or arg.startswith("hydra/"):
            if arg in ("-m", "--multirun", "-c", "--cfg", "--info", "-h", "--help", "--hydra-help", "-cn",
                       "--config-name", "-cp", "--config-path"):
                return  # sweeps, printing and other config names are Hydra's own business
        else:
            overrides.append(arg)
        module = needs.get(arg.lstrip("+"))
        if module and not available(module):
            print(f"error: {install_hint(module)}", file=sys.stderr)
            sys.exit(2)
    try:
        compose(config_name, overrides, config_dirs)
    except SettingsError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


@hydra.main(version_base="1.3", config_path="pkg://omnigenome.conf", config_name="train")
def _train_app(cfg: DictConfig) -> float | None:
    metrics = _run(train, cfg)
    value = metrics.get(cfg.get("optimized_metric") or "val/loss")
    return float(value) if value is not None else None


@hydra.main(version_base="1.3", config_path="pkg://omnigenome.conf", config_name="eval")
def _evaluate_app(cfg: DictConfig) -> None:
    _run(evaluate, cfg)


def train_main() -> None:
    """`omnigenome-train`: what `python train.py` runs, with the same overrides."""
    _check_command_line(sys.argv[1:], "train")
    _train_app()


def evaluate_main() -> None:
    """`omnigenome-evaluate`: what `python evaluate.py` runs, with the same overrides."""
    _check_command_line(sys.argv[1:], "eval")
    _evaluate_app()
