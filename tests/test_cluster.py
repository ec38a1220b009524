"""Cluster runs and sweeps: a signal stops a run at a step boundary and `resume=` continues it exactly, in the same
run directory with the same W&B run and best-k tracking; Optuna sweeps run trials (a failing one included);
the W&B sweep file's parameters are Hydra overrides; the SLURM launcher config composes. (2-process DDP through
torchrun writing one run directory: tests/test_training.py::test_ddp_two_processes_see_disjoint_data.)"""
import csv
import math
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml
from hydra import compose, initialize_config_dir

from conftest import ROOT
from test_training import SMALL_MODEL, compose_cfg, read_csv_losses, shared_sample_data, train_script


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    return shared_sample_data(tmp_path_factory)


def train_cmd(tmp_path, data_dir, *overrides, flags=()):
    return [sys.executable, "train.py", *flags, f"paths.log_dir={tmp_path}/logs", f"paths.data_dir={data_dir}",
            "data.sample.num_records=500", *overrides]


def csv_rows(path):
    """The rows of a metrics.csv (empty cells left out), in order."""
    with open(path) as f:
        return [{k: v for k, v in row.items() if v != ""} for row in csv.DictReader(f)]


class SignalAt(L.Callback):
    """Sends this process SIGUSR1 at the start of the batch that makes optimizer step `step`, as a cluster would
    at some moment of that batch (a deterministic stand-in for a signal from outside)."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step - 1:
            os.kill(os.getpid(), signal.SIGUSR1)


def test_signal_stops_at_a_step_and_resume_continues_exactly(tmp_path, data_dir):
    """SIGUSR1 mid-epoch in a SLURM job: last.ckpt at the next optimizer step, clean stop, job requeued;
    `train.py resume=<dir>` continues in the same directory: every step's loss equals the uninterrupted run's,
    one W&B run, best-k tracking kept."""
    steps, stop = 12, 5
    over = [*SMALL_MODEL, f"trainer.max_steps={steps}", "trainer.val_check_interval=4", "trainer.log_every_n_steps=1",
            "data.max_tokens=3000", "module.scheduler.warmup_steps=4", "callbacks.model_checkpoint.save_top_k=1",
            "~callbacks.throughput", "callbacks.progress_bar.refresh_rate=0"]
    train_script.train(compose_cfg(tmp_path / "full", data_dir, over + ["logger=csv"]))
    expected = read_csv_losses(tmp_path / "full" / "run" / "csv" / "metrics.csv")
    assert sorted(expected) == list(range(steps))

    env = dict(os.environ, WANDB_MODE="offline")
    # As a SLURM job (a stand-in scontrol records the requeue): the run directory is runs/slurm-<job id>.
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "scontrol").write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/scontrol.args\n')
    (fake_bin / "scontrol").chmod(0o755)
    slurm_env = dict(env, SLURM_JOB_ID="4242", PATH=f"{fake_bin}{os.pathsep}{env['PATH']}")
    cmd = train_cmd(tmp_path, data_dir, *over, "logger=[csv,wandb]", "+logger.csv.flush_logs_every_n_steps=1")
    # The signal comes during the batch of step 5 (one after a validation): a stop there used to shift every row
    # logged after the resume one step early (see Preemption.on_train_batch_start).
    slurm_env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "tests"), env.get("PYTHONPATH", "")])
    cmd += ["+callbacks.signal_at._target_=test_cluster.SignalAt", f"+callbacks.signal_at.step={stop}"]
    proc = subprocess.run(cmd, cwd=ROOT, env=slurm_env, capture_output=True, text=True, timeout=300)
    # stopped right after the checkpoint (no validation), with the status a scheduler tells from success
    assert proc.returncode == 128 + signal.SIGUSR1, proc.stderr[-3000:]
    assert f"stopped at step {stop}" in proc.stdout and "best checkpoint" not in proc.stdout
    runs = tmp_path / "logs" / "pretrain" / "runs"
    [run_dir] = runs.iterdir()
    assert run_dir.name == "slurm-4242" and (tmp_path / "scontrol.args").read_text().split() == ["requeue", "4242"]
    wandb_id = (run_dir / "wandb_run_id").read_text()
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == stop

    original = (run_dir / ".hydra" / "overrides.yaml").read_text()
    # the same overrides, but for the signal callback and the flushing: a resume checks what it resumes
    plain = train_cmd(tmp_path, data_dir, *over, "logger=[csv,wandb]", f"resume={run_dir}")
    refused = subprocess.run(plain, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "callbacks.signal_at" in refused.stderr.strip().splitlines()[-1]
    allowed = "resume_allow_changes=[callbacks.signal_at,logger.csv.flush_logs_every_n_steps]"
    resumed = subprocess.run(plain + [allowed], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "not resumable" not in resumed.stderr  # the data position is exact, and Lightning is told so
    assert (run_dir / ".hydra" / "overrides.yaml").read_text() == original  # the run's record is kept
    [record] = (run_dir / ".hydra").glob("resume-*")
    assert f"resume={run_dir}" in (record / "overrides.yaml").read_text()
    assert f"steps: {steps}" in resumed.stdout and f"run directory:   {run_dir}" in resumed.stdout
    assert list(runs.iterdir()) == [run_dir]
    # the metrics file of the stopped-and-resumed run equals the uninterrupted run's, row for row
    assert csv_rows(run_dir / "csv" / "metrics.csv") == csv_rows(tmp_path / "full" / "run" / "csv" / "metrics.csv")
    assert (run_dir / "wandb_run_id").read_text() == wandb_id
    # best-k tracking went on: the resumed run replaced the best checkpoint of before the signal (save_top_k=1)
    assert len(list((run_dir / "checkpoints").glob("step*.ckpt"))) == 1
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == steps


def test_run_directory_is_shared_by_the_ranks_of_a_launch(tmp_path, monkeypatch):
    """What decides the run directory: resume=, $OMNIGENOME_RUN_DIR, the SLURM job (a requeued job keeps its id)."""
    from omnigenome.training import cluster
    for var in ("OMNIGENOME_RUN_DIR", "SLURM_JOB_ID", "SLURM_JOB_NAME", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID",
                "WORLD_SIZE"):
        monkeypatch.delenv(var, raising=False)
    runs = tmp_path / "runs"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d", Path(cluster.run_dir(str(runs))).name)
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    assert cluster.run_dir(str(runs)) == f"{runs}/slurm-77"
    monkeypatch.setenv("SLURM_JOB_NAME", "bash")  # an interactive allocation: each run its own directory
    assert "slurm" not in cluster.run_dir(str(runs))
    monkeypatch.setenv("SLURM_JOB_NAME", "omnigenome-186m")
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "70")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    assert cluster.run_dir(str(runs)) == f"{runs}/slurm-70_3"
    monkeypatch.setenv("OMNIGENOME_RUN_DIR", str(tmp_path / "mine"))
    assert cluster.run_dir(str(runs)) == str(tmp_path / "mine")
    for age, name in enumerate(("new", "old")):
        (runs / name / "checkpoints").mkdir(parents=True)
        (runs / name / "checkpoints" / "last.ckpt").write_bytes(b"")
        os.utime(runs / name / "checkpoints" / "last.ckpt", (time.time() - 100 * age,) * 2)
    assert cluster.run_dir(str(runs), resume=str(runs / "old")) == str(runs / "old")
    assert cluster.run_dir(str(runs), resume="last") == str(runs / "new")
    with pytest.raises(FileNotFoundError, match="no checkpoints/last.ckpt"):
        cluster.run_dir(str(runs), resume=str(tmp_path))
    assert cluster.last_checkpoint(runs / "old") == str(runs / "old" / "checkpoints" / "last.ckpt")


SWEEP_FAST = [*SMALL_MODEL, "trainer.max_steps=3", "trainer.val_check_interval=1000000", "callbacks=none",
              "logger=none", "data.max_tokens=3000"]


def run_shell(command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, shell=True, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_optuna_sweep_runs_two_trials_and_reports_the_best(tmp_path, data_dir):
    sweep = tmp_path / "sweep"
    args = train_cmd(tmp_path, data_dir, "hparams_search=optuna", "hydra.sweeper.n_trials=2",
                     f"hydra.sweep.dir={sweep}", *SWEEP_FAST, flags=["-m"])
    out = run_shell(shlex.join(args))
    assert out.returncode == 0, out.stderr[-3000:]
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir() and not p.name.startswith(".")) == ["0", "1"]
    for trial in ("0", "1"):
        assert "module.optimizer.lr=" in (sweep / trial / ".hydra" / "overrides.yaml").read_text()
    result = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert math.isfinite(result["best_value"]) and 0 < result["best_value"] < 10
    assert {"module.optimizer.lr", "module.weight_decay"} <= set(result["best_params"])


def test_a_failing_trial_is_logged_and_the_sweep_goes_on(tmp_path, data_dir):
    """Two learning rates, one invalid (AdamW raises): one trial fails, the other is the best.

    (Not Optuna's grid sampler: it calls study.stop() once the grid is done, which the sweeper's ask/tell
    loop does not allow. TPE's seeded random start-up visits both values with seed 0, in either order.)"""
    sweep = tmp_path / "sweep"
    args = train_cmd(tmp_path, data_dir, "hparams_search=optuna", "hydra.sweeper.sampler.seed=0", "hydra.sweeper.n_trials=2",
                     "hydra.sweeper.params=null", "module.optimizer.lr=choice(-1.0,0.003)", f"hydra.sweep.dir={sweep}",
                     *SWEEP_FAST, flags=["-m"])
    out = run_shell(shlex.join(args))
    assert out.returncode == 0, out.stderr[-3000:]
    logs = out.stdout + out.stderr + "".join(p.read_text() for p in sweep.glob("*/train.log"))
    assert "Failed experiment" in logs and "Invalid learning rate" in logs
    result = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert result["best_params"] == {"module.optimizer.lr": 0.003} and math.isfinite(result["best_value"])


def test_wandb_sweep_parameters_are_hydra_overrides(tmp_path, data_dir):
    spec = yaml.safe_load((ROOT / "experiments" / "wandb_sweep.yaml").read_text())
    assert spec["program"] == "train.py" and spec["metric"] == {"name": "val/loss", "goal": "minimize"}
    assert spec["command"] == ["${env}", "${interpreter}", "${program}", "${args_no_hyphens}"]
    overrides = []
    for name, p in spec["parameters"].items():
        value = p["value"] if "value" in p else p["values"][0] if "values" in p else p["min"]
        overrides.append(f"{name}={value}")
    cfg = compose_cfg(tmp_path, data_dir, overrides)  # raises on an unknown key or option
    assert cfg.logger.wandb._target_.endswith("WandbLogger")


def test_slurm_launcher_config_composes_one_task_per_gpu():
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=["hydra/launcher=slurm", "hydra.launcher.partition=gpu", "trainer=rtx4090x8",
                                          "trainer.num_nodes=2"], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert (launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node) == (2, 8, 8)
    assert launcher.signal_delay_s >= 60 and launcher.additional_parameters.requeue is True


@pytest.mark.parametrize("script", ["pretrain_8gpu.sbatch", "pretrain_2nodes.sbatch"])
def test_sbatch_examples_start_one_task_per_gpu(tmp_path, script):
    text = (ROOT / "experiments" / "slurm" / script).read_text()
    sbatch = dict(re.findall(r"^#SBATCH --([\w-]+)=?(\S*)", text, flags=re.M))
    assert {"requeue", "signal"} <= set(sbatch) and sbatch["signal"].startswith("USR1@")
    srun = re.search(r"^srun python train.py (.*?)\"\$@\"", text, flags=re.M | re.S).group(1)
    overrides = shlex.split(srun.replace("\\\n", " "))
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    assert int(sbatch["ntasks-per-node"]) == int(sbatch["gpus-per-node"]) == cfg.trainer.devices
    assert int(sbatch["nodes"]) == cfg.trainer.num_nodes
