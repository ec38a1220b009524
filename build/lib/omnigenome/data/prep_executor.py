"""Stage 2 of `omnigenome prep` on a submitit executor: a SLURM job array, or local processes for tests.

The plan's pending work units are split into `executor.tasks` groups of about equal folding cost;
each array task runs `omnigenome.data.prep_stages.fold_units` on its group with the fold_many process pool
on all CPUs of its node. Tasks share nothing but the output directory (a shared file system on a
cluster): every unit writes its own shard and result file atomically, so a failed or preempted task
is repaired by rerunning the same command, which submits only the units still missing.
"""
from __future__ import annotations

import heapq
import os
from pathlib import Path

from omnigenome.data.prep_stages import WORK, fold_units


def group_units(units: list[dict], tasks: int) -> list[list[str]]:
    """Unit names in at most `tasks` non-empty groups of about equal cost (longest-processing-time first).

    Deterministic for a given plan; each group keeps plan order.
    """
    tasks = max(1, min(tasks, len(units)))
    heap = [(0, k) for k in range(tasks)]
    groups: list[list[int]] = [[] for _ in range(tasks)]
    order = sorted(range(len(units)), key=lambda i: (-units[i]["cost"], i))
    for i in order:
        load, k = heapq.heappop(heap)
        groups[k].append(i)
        heapq.heappush(heap, (load + units[i]["cost"], k))
    return [[units[i]["name"] for i in sorted(g)] for g in groups if g]


def make_executor(cfg, out_dir: Path):
    """A submitit executor for cfg.executor: LocalExecutor (name=local) or SLURM (name=slurm)."""
    from omnigenome.extras import require
    submitit = require("submitit")

    ex = cfg.executor
    folder = Path(ex.folder) if ex.folder else out_dir / WORK / "submitit"
    if ex.name == "local":
        executor = submitit.LocalExecutor(folder=folder)
        executor.update_parameters(timeout_min=ex.slurm.timeout_min)
    elif ex.name == "slurm":
        executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
        params = dict(timeout_min=ex.slurm.timeout_min, cpus_per_task=ex.slurm.cpus_per_task,
                      mem_gb=ex.slurm.mem_gb, slurm_array_parallelism=ex.slurm.array_parallelism,
                      name="omnigenome-prep", tasks_per_node=1, nodes=1)
        if ex.slurm.partition:
            params["slurm_partition"] = ex.slurm.partition
        if ex.slurm.additional_parameters:
            params["slurm_additional_parameters"] = dict(ex.slurm.additional_parameters)
        executor.update_parameters(**params)
    else:
        raise ValueError(f"no submitit executor for executor.name={ex.name!r}")
    return executor


def fold_on_executor(out_dir: str | os.PathLike, plan: dict, todo: list[str], cfg) -> bool:
    """Submit the pending units `todo` as one job array; True once all tasks finished (wait=true).

    Raises RuntimeError naming the failed tasks and their logs; their units stay pending and a
    rerun submits them again.
    """
    out_dir = Path(out_dir).resolve()
    by_name = {u["name"]: u for u in plan["units"]}
    groups = group_units([by_name[n] for n in todo], cfg.executor.tasks)
    executor = make_executor(cfg, out_dir)
    n = len(groups)
    # On a node, fold with its CPUs (SLURM pins them; available_cores sees the allocation).
    workers = cfg.fold.workers
    jobs = executor.map_array(fold_units, [str(out_dir)] * n, groups, [workers] * n, [False] * n)
    print(f"submitted {n} task(s) folding {len(todo)} unit(s): job {jobs[0].job_id.split('_')[0]} "
          f"(logs in {executor.folder})", flush=True)
    if not cfg.executor.wait:
        print("not waiting (executor.wait=false): rerun the same command after the array has finished "
              "to merge the results", flush=True)
        return False
    failures = []
    for job in jobs:
        try:
            job.result()
        except Exception as e:  # submitit raises FailedJobError / UncompletedJobError with the task's log
            failures.append(f"task {job.job_id}: {str(e).strip().splitlines()[-1] if str(e).strip() else e!r}")
    if failures:
        raise RuntimeError(f"{len(failures)} of {n} task(s) failed; rerun the same command to retry their units. "
                           + "; ".join(failures[:3]))
    return True
