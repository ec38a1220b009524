"""One input, many processes: parts across the ranks of torchrun / srun, or the tasks of a SLURM job array.

The input's records are cut into `num_parts` contiguous ranges (of about equal record counts). Each part is
run like a one-process job (`run_range`) into its own file in `OUT.parts/`, written atomically (temporary
name + os.replace), followed by a small `part-<k>.json` with its metadata, which marks it done. When every
part is done, they are merged into OUT in order (one process: rank 0, or the submitting process) and
`OUT.parts/` is removed: the merged output equals a one-process run's (the same rows in the same order, the
same metadata). A rerun of the same command after a failure redoes only the parts without a `part-<k>.json`.

`OUT.parts/manifest.json`, written once by the first process and checked by every later one:
    {"version": 1, "job": {command, model, settings}, "input": {path, size, mtime_ns},
     "records": N, "num_parts": P, "parts": [{"index": k, "start": a, "stop": b, "file": "part-0000k-of-0000P.ext"}]}
A rerun with another input, model, settings or number of parts is refused: remove OUT.parts/ or use the same.

Ranks: RANK / WORLD_SIZE (torchrun) or SLURM_PROCID / SLURM_NTASKS (srun); no process group is needed, the
parts meet on the file system (shared by all nodes). Job arrays: `executor="local"` (processes on this
machine, how the tests run it) or `"slurm"` through submitit (the `cluster` extra), one array task per part.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from omnigenome.inference.runner import merge, run_range
from omnigenome.inference.writers import write_json_atomic

MANIFEST_VERSION = 1


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) of this process under torchrun (RANK, WORLD_SIZE) or srun (SLURM_PROCID,
    SLURM_NTASKS); (0, 1) otherwise."""
    for rank_key, world_key in (("RANK", "WORLD_SIZE"), ("SLURM_PROCID", "SLURM_NTASKS")):
        if os.environ.get(world_key):
            try:
                rank, world = int(os.environ.get(rank_key, "0")), int(os.environ[world_key])
            except ValueError:
                raise ValueError(f"{rank_key}={os.environ.get(rank_key)!r} / {world_key}={os.environ[world_key]!r} "
                                 f"are not integers") from None
            if world > 1:
                if not 0 <= rank < world:
                    raise ValueError(f"{rank_key}={rank} is outside 0..{world - 1} ({world_key}={world})")
                return rank, world
    return 0, 1


def parts_dir(out: Path) -> Path:
    return out.with_name(out.name + ".parts")


def part_ranges(n: int, parts: int) -> list[tuple[int, int]]:
    return [(k * n // parts, (k + 1) * n // parts) for k in range(parts)]


def plan(job, source, out: Path, num_parts: int) -> dict:
    """The manifest of this job: written if new, checked against the one on disk otherwise."""
    if source.is_stdin:
        raise ValueError("standard input cannot be split into parts: give a file")
    if num_parts < 1:
        raise ValueError(f"the number of parts must be >= 1, got {num_parts}")
    n = source.count()
    suffix = out.suffix
    manifest = {"version": MANIFEST_VERSION, "job": {"command": job.spec.command, "model": str(Path(job.spec.model).resolve()),
                                                     "settings": job.settings()},
                "input": source.fingerprint(), "records": n, "num_parts": num_parts,
                "parts": [{"index": k, "start": a, "stop": b, "file": f"part-{k:05d}-of-{num_parts:05d}{suffix}"}
                          for k, (a, b) in enumerate(part_ranges(n, num_parts))]}
    folder = parts_dir(out)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "manifest.json"
    if path.is_file():
        old = json.loads(path.read_text())
        if old != json.loads(json.dumps(manifest)):
            differs = [k for k in ("job", "input", "records", "num_parts") if old.get(k) != manifest.get(k)]
            raise ValueError(f"{folder} holds an unfinished job with another {' and '.join(differs) or 'version'} "
                             f"({old.get('num_parts')} parts); rerun it the same way to finish it, or remove {folder}")
    else:
        write_json_atomic(path, manifest)
    return manifest


def _done_file(folder: Path, k: int) -> Path:
    return folder / f"part-{k:05d}.json"


def _failed_file(folder: Path, k: int) -> Path:
    return folder / f"part-{k:05d}.failed.json"


def done_parts(folder: Path, manifest: dict) -> list[int]:
    return [p["index"] for p in manifest["parts"]
            if _done_file(folder, p["index"]).is_file() and (folder / p["file"]).is_file()]


def run_part(job, source, out: Path, manifest: dict, k: int, progress: bool = False) -> dict:
    """Run part k (unless done); returns its metadata. A failure leaves `part-<k>.failed.json` for the merger."""
    folder = parts_dir(out)
    part = manifest["parts"][k]
    done = _done_file(folder, k)
    if done.is_file() and (folder / part["file"]).is_file():
        return json.loads(done.read_text())
    _failed_file(folder, k).unlink(missing_ok=True)
    try:
        meta = run_range(job, source, folder / part["file"], part["start"], part["stop"], progress,
                         desc=f"{job.spec.command} part {k + 1}/{manifest['num_parts']}", allow_empty=True)
    except BaseException as e:
        write_json_atomic(_failed_file(folder, k), {"error": f"{type(e).__name__}: {e}"})
        raise
    write_json_atomic(done, meta)
    return meta


def merge_parts(job, out: Path, manifest: dict) -> dict:
    """Merge the parts of a finished job into `out` and remove OUT.parts/; returns the metadata."""
    folder = parts_dir(out)
    metas = [json.loads(_done_file(folder, p["index"]).read_text()) for p in manifest["parts"]]
    metadata = merge(job.spec.command, [folder / p["file"] for p in manifest["parts"]], metas, out)
    if metadata["written"] == 0:
        first = metadata["skipped_records"][0]["message"] if metadata["skipped_records"] else "no records"
        out.unlink(missing_ok=True)
        raise ValueError(f"{metadata['input']}: no record could be taken ({metadata['records']} read, all skipped); "
                         f"the first: {first}")
    shutil.rmtree(folder, ignore_errors=True)
    return metadata


def run_as_rank(job, source, out: Path, rank: int, world: int, progress: bool = True,
                poll_seconds: float = 1.0) -> dict | None:
    """This rank's part of a torchrun / srun job; rank 0 waits for the others and merges. Returns the merged
    metadata on rank 0, None on the others."""
    manifest = plan(job, source, out, world)
    run_part(job, source, out, manifest, rank, progress and rank == 0)
    if rank != 0:
        return None
    folder = parts_dir(out)
    while True:
        failed = [p["index"] for p in manifest["parts"] if _failed_file(folder, p["index"]).is_file()]
        if failed:
            reason = json.loads(_failed_file(folder, failed[0]).read_text())["error"]
            raise RuntimeError(f"part(s) {', '.join(map(str, failed))} failed ({reason}); rerun the same command "
                               f"to redo only the unfinished parts")
        if len(done_parts(folder, manifest)) == manifest["num_parts"]:
            return merge_parts(job, out, manifest)
        time.sleep(poll_seconds)


# --- SLURM job arrays through submitit ------------------------------------------------------------------------

def _array_task(spec: dict, input_spec: dict, out: str, k: int) -> dict:
    """One array task: part k of the job (runs in the task's own process)."""
    from omnigenome.inference.jobs import make_job
    from omnigenome.inference.records import InputFile
    job = make_job(spec)
    out_path = Path(out)
    manifest = json.loads((parts_dir(out_path) / "manifest.json").read_text())
    with InputFile(**input_spec) as source:
        return run_part(job, source, out_path, manifest, k, progress=False)


def make_executor(name: str, folder: Path, slurm: dict | None = None):
    """A submitit executor: LocalExecutor ("local") or SLURM ("slurm"; `slurm` holds partition, timeout_min,
    cpus_per_task, gpus_per_task, mem_gb, array_parallelism and additional_parameters)."""
    from omnigenome.extras import require
    submitit = require("submitit")
    slurm = dict(slurm or {})
    if name == "local":
        executor = submitit.LocalExecutor(folder=folder)
        executor.update_parameters(timeout_min=int(slurm.get("timeout_min") or 600))
        return executor
    if name != "slurm":
        raise ValueError(f"unknown executor {name!r} (choose from local, slurm)")
    executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
    params = {"timeout_min": int(slurm.get("timeout_min") or 600), "cpus_per_task": int(slurm.get("cpus_per_task") or 4),
              "mem_gb": float(slurm.get("mem_gb") or 16), "name": "omnigenome-inference", "tasks_per_node": 1,
              "nodes": 1}
    if slurm.get("gpus_per_task"):
        params["gpus_per_node"] = int(slurm["gpus_per_task"])
    if slurm.get("partition"):
        params["slurm_partition"] = slurm["partition"]
    if slurm.get("array_parallelism"):
        params["slurm_array_parallelism"] = int(slurm["array_parallelism"])
    if slurm.get("additional_parameters"):
        params["slurm_additional_parameters"] = dict(slurm["additional_parameters"])
    executor.update_parameters(**params)
    return executor


def run_on_executor(job, source, input_spec: dict, out: Path, executor_name: str, num_parts: int,
                    slurm: dict | None = None, wait: bool = True) -> dict | None:
    """Submit the unfinished parts as one job array, wait, and merge. Returns the merged metadata (None when
    not waiting). Failed tasks raise RuntimeError naming them; a rerun submits only the missing parts."""
    manifest = plan(job, source, out, num_parts)
    folder = parts_dir(out)
    todo = [p["index"] for p in manifest["parts"] if p["index"] not in done_parts(folder, manifest)]
    if todo:
        executor = make_executor(executor_name, folder / "submitit", slurm)
        spec = job.spec.to_dict()
        jobs = executor.map_array(_array_task, [spec] * len(todo), [input_spec] * len(todo),
                                  [str(out)] * len(todo), todo)
        print(f"submitted {len(todo)} of {num_parts} part(s) as job {jobs[0].job_id.split('_')[0]} "
              f"(logs in {executor.folder})", flush=True)
        if not wait:
            print("not waiting: rerun the same command when the array has finished to merge the parts", flush=True)
            return None
        failures = []
        for k, task in zip(todo, jobs):
            try:
                task.result()
            except Exception as e:  # submitit's FailedJobError / UncompletedJobError carry the task's log
                text = str(e).strip()
                failures.append(f"part {k}: {text.splitlines()[-1] if text else repr(e)}")
        if failures:
            raise RuntimeError(f"{len(failures)} of {len(todo)} part(s) failed; rerun the same command to redo only "
                               f"those. " + "; ".join(failures[:3]))
    return merge_parts(job, out, manifest)
