"""Cluster runs: one run directory for all ranks, resuming in it, and requeueing a preempted SLURM job.

Ranks are started from outside (torchrun, srun, submitit), and each composes the Hydra config itself,
so the run directory must come out the same on every rank before training starts. The resolvers below
are registered on import; `conf/hydra/default.yaml` uses them.
"""
from __future__ import annotations

import logging
import os
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

from omegaconf import OmegaConf

log = logging.getLogger("omnigenome")

RUN_DIR_ENV = "OMNIGENOME_RUN_DIR"
LAST_CHECKPOINT = Path("checkpoints", "last.ckpt")  # inside a run directory
_TIME_FORMAT = "%Y-%m-%d_%H-%M-%S"
_STORE_KEY = "omnigenome/run_dir"


def env_rank() -> int:
    """This process's global rank as its launcher set it (torchrun: RANK, srun: SLURM_PROCID), 0 if none."""
    for var in ("RANK", "SLURM_PROCID"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return 0


def slurm_job_id() -> str | None:
    """The SLURM job (array jobs: `<array job>_<task>`); a requeued job keeps it."""
    if os.environ.get("SLURM_ARRAY_JOB_ID") and os.environ.get("SLURM_ARRAY_TASK_ID"):
        return f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ['SLURM_ARRAY_TASK_ID']}"
    return os.environ.get("SLURM_JOB_ID") or None


def latest_run(runs_dir: str | Path) -> Path:
    """The run directory under `runs_dir` whose checkpoints/last.ckpt is newest."""
    found = sorted(Path(runs_dir).glob(f"*/{LAST_CHECKPOINT}"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise FileNotFoundError(f"resume=last: no run with {LAST_CHECKPOINT} under {runs_dir}")
    return found[-1].parent.parent


def run_dir(runs_dir: str, resume: str | None = None) -> str:
    """The directory of this run, the same on every rank of one launch, in order of precedence:

    - `resume=<dir>`: that run's directory (`resume=last`: the newest run under `runs_dir`);
    - `$OMNIGENOME_RUN_DIR`, when a launch script sets it;
    - in a SLURM batch job, `<runs_dir>/slurm-<job id>`: all tasks share it and a requeued job finds it again;
    - otherwise a new timestamped directory; under torchrun, rank 0's timestamp, which the other ranks
      read from the store the torchrun agent hosts for its workers.
    """
    if resume:
        path = latest_run(runs_dir) if resume == "last" else Path(resume)
        if not (path / LAST_CHECKPOINT).is_file():
            raise FileNotFoundError(f"resume={resume}: no {LAST_CHECKPOINT} in {path}")
        return str(path)
    if os.environ.get(RUN_DIR_ENV):
        return os.environ[RUN_DIR_ENV]
    # (Not in an interactive allocation, `salloc` / `srun --pty bash`: runs there would share one directory.)
    job = slurm_job_id() if os.environ.get("SLURM_JOB_NAME") not in ("bash", "interactive") else None
    if job:
        return f"{runs_dir}/slurm-{job}"
    name = datetime.now().strftime(_TIME_FORMAT)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and "TORCHELASTIC_RUN_ID" in os.environ:
        name = _torchrun_shared_name(name)
    return f"{runs_dir}/{name}"


def _torchrun_shared_name(name: str) -> str:
    """Rank 0's `name` on every rank of a torchrun launch."""
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
        run_id = os.environ["TORCHELASTIC_RUN_ID"]
        if run_id != "none":
            return f"torchrun-{run_id}"
        log.warning("torchrun without an agent store or --rdzv-id: ranks may choose different run directories; "
                    "set %s or hydra.run.dir", RUN_DIR_ENV)
        return name
    from torch.distributed import TCPStore
    store = TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), is_master=False,
                     timeout=timedelta(minutes=10))
    if env_rank() == 0:
        # The first value set wins: workers that torchrun restarts keep the directory (and resume in it).
        return store.compare_set(_STORE_KEY, "", name).decode()
    return store.get(_STORE_KEY).decode()


def last_checkpoint(run_directory: str | Path) -> str | None:
    """The run directory's checkpoints/last.ckpt if there is one (a resumed or requeued run continues from it)."""
    path = Path(run_directory, LAST_CHECKPOINT)
    return str(path) if path.is_file() else None


def requeue_slurm_job() -> bool:
    """Put this SLURM job back in the queue (`scontrol requeue`); it restarts with the same job id."""
    job = slurm_job_id()
    if job is None:
        return False
    result = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True)
    if result.returncode != 0:
        log.warning("scontrol requeue %s failed: %s", job, result.stderr.strip())
        return False
    log.info("requeued SLURM job %s", job)
    return True


def config_subdir(run_directory: str) -> str | None:
    """Where Hydra writes this run's config record: `.hydra`, or `.hydra/resume-<time>` when the run directory
    holds a record already (a resumed or requeued run); None on ranks other than 0 (they write none)."""
    if env_rank() != 0:
        return None
    if Path(run_directory, ".hydra", "config.yaml").is_file():
        return f".hydra/resume-{datetime.now().strftime(_TIME_FORMAT)}"
    return ".hydra"


OmegaConf.register_new_resolver("omnigenome.run_dir", run_dir, use_cache=True, replace=True)
OmegaConf.register_new_resolver("omnigenome.config_subdir", config_subdir, use_cache=True, replace=True)
OmegaConf.register_new_resolver("omnigenome.rank_suffix", lambda: f".rank{env_rank()}" if env_rank() else "",
                                replace=True)
