"""Downstream benchmark tasks: their configs (`conf/task/<suite>/<name>.yaml`) and their splits on disk.

A task config names the suite's format (the reader in `omnigenome.data.readers`), the folder its files lie
in (`data_dir`, under `benchmark_dir` by default), its splits, head, labels and metrics. `load_split` reads
one split where it lies; a missing file raises FileNotFoundError saying what to download and where to put
it. The published archives unpack to `RGB/`, `GUE/` ...: the suite folder is found in either case.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from omnigenome.constants import HEADS, SPLITS
from omnigenome.data.readers import FORMATS, READERS, SUFFIXES, Example

SUITES = ("rgb", "pgb", "gb", "gue")


# --- task configs ----------------------------------------------------------------------------------

def task_names(suite: str | None = None) -> list[str]:
    """Names ("rgb/ssp_archive2", ...) of the task configs under conf/task/<suite>/, sorted."""
    suites = SUITES if suite is None else (suite,)
    for s in suites:
        if s not in SUITES:
            raise ValueError(f"unknown suite {s!r} (choose from {', '.join(SUITES)})")
    from omnigenome.settings import conf_files
    return sorted(f"{s}/{p.name[:-5]}" for s in suites for p in conf_files().joinpath("task", s).iterdir()
                  if p.name.endswith(".yaml"))


def task_config(name: str, benchmark_dir: str | os.PathLike | None = None,
                data_dir: str | os.PathLike | None = None) -> dict:
    """The resolved config of a task ("rgb/ssp_archive2") as a plain dict, outside Hydra.

    benchmark_dir: default `omnigenome.settings.benchmark_dir()` ($OMNIGENOME_BENCHMARK_DATA, else
    ../shared/data), as in the train and eval configs. data_dir: the task's folder (what `data_dir=` does on the command line).
    """
    from omegaconf import OmegaConf

    from omnigenome.settings import benchmark_dir as default_benchmark_dir, conf_files
    path = conf_files().joinpath("task", f"{name}.yaml")
    if "/" not in name or not path.is_file():
        raise ValueError(f"unknown task {name!r} (tasks: {', '.join(task_names())})")
    with path.open() as f:
        config = OmegaConf.load(f)
    root = {"benchmark_dir": str(benchmark_dir or default_benchmark_dir()), "task": config}
    if data_dir is not None:
        root["data_dir"] = str(data_dir)
    return OmegaConf.to_container(OmegaConf.create(root), resolve=True)["task"]


def _as_dict(task: Any) -> dict:
    if isinstance(task, Mapping) and not hasattr(task, "_get_node"):
        return dict(task)
    from omegaconf import OmegaConf
    return OmegaConf.to_container(task, resolve=True)


# --- splits ----------------------------------------------------------------------------------------

def available_splits(task) -> list[str]:
    """The splits of `task` that can be read now: mapped in `splits` (or carved from train with
    `valid_from_train`) and present on disk."""
    task = _as_dict(task)
    found = []
    for split in SPLITS:
        source = _source(task, split)
        if source is not None and _find_file(task, source) is not None:
            found.append(split)
    return found


def load_split(task, split: str, limit: int | None = None) -> list[Example]:
    """Examples of one split of a task (a resolved task config: DictConfig or dict).

    With `valid_from_train: f` and no valid file (mapped or on disk), a seeded fraction f of the train file
    (`split_seed`, default 0) is the valid split and the rest is train. With `drop_ids_in: <split>`,
    train records whose id occurs in that split are dropped (OpenVaccine: RGB's test records are also
    in the Kaggle training set). limit: keep the first `limit` examples.
    """
    task = _as_dict(task)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} (choose from {', '.join(SPLITS)})")
    _check_task(task)
    source = _source(task, split)
    if source is None:
        raise ValueError(f"task {task['name']} has no {split} split (splits: {task.get('splits')})")
    path = _find_file(task, source)
    if path is None:
        raise FileNotFoundError(_download_hint(task, split, source))
    examples = READERS[task["format"]](path, task)
    if not examples:
        raise ValueError(f"{path}: no records")
    held_out_split = task.get("drop_ids_in")
    if held_out_split and split != held_out_split:
        other = _find_file(task, _source(task, held_out_split) or "")
        if other is not None and other != path:
            held_out = {e.id for e in READERS[task["format"]](other, task)}
            examples = [e for e in examples if e.id not in held_out]
    carve = task.get("valid_from_train")
    if split in ("train", "valid") and _carves_valid(task):
        valid_idx = set(_carved_indices(len(examples), float(carve), int(task.get("split_seed") or 0)))
        examples = [e for i, e in enumerate(examples) if (i in valid_idx) == (split == "valid")]
    return examples[:limit] if limit is not None else examples


def _carves_valid(task: dict) -> bool:
    """True when the valid split is carved from train: `valid_from_train` is set and no valid file is
    mapped or found."""
    if not task.get("valid_from_train"):
        return False
    valid = (task.get("splits") or {}).get("valid")
    return valid is None or _find_file(task, valid) is None


def _source(task: dict, split: str) -> str | None:
    splits = task.get("splits") or {}
    if split == "valid" and _carves_valid(task):
        return splits.get("train")
    return splits.get(split)


def _carved_indices(n: int, fraction: float, seed: int) -> list[int]:
    if not 0 < fraction < 1:
        raise ValueError(f"valid_from_train must lie in (0, 1), got {fraction}")
    order = np.random.default_rng(seed).permutation(n)
    return sorted(order[: max(1, round(fraction * n))].tolist())


def data_dir(task: dict) -> Path:
    """The task's folder. The published archives unpack to upper-case suite folders (`RGB/`, `GUE/`) where
    this project's default paths say `rgb/`, `gue/`: when the folder is missing, the other spelling is tried."""
    path = Path(task["data_dir"])
    if not path.exists():
        parts = list(path.parts)
        for k in range(len(parts) - 1, -1, -1):
            if parts[k].lower() == task.get("suite"):
                for spelling in (parts[k].upper(), parts[k].lower()):
                    other = Path(*parts[:k], spelling, *parts[k + 1:])
                    if other.exists():
                        return other
                break
    return path


def _find_file(task: dict, source: str) -> Path | None:
    """The file (folder for GB) a split maps to: `source` is a stem or name in data_dir, or a path.

    PGB is also read in the layout InstaDeep publishes: `<task>/<subtask>_{train,validation,test}.fa` beside
    the `<task>/<subtask>/` folder of OmniGenBench's copy."""
    if not source:
        return None
    # A bare name ("train", "dev") lives in data_dir; a path ("${benchmark_dir}/openvaccine/...") stands alone.
    folder = data_dir(task)
    base = Path(source) if os.path.isabs(source) or os.path.dirname(source) else folder / source
    if task["format"] == "gb":
        return base if base.is_dir() else None
    candidates = [base] + [base.with_name(base.name + suffix) for suffix in SUFFIXES[task["format"]]]
    if task["format"] == "pgb" and base.parent == folder:
        for stem in dict.fromkeys((source, "validation" if source == "valid" else source)):
            candidates += [folder.parent / f"{folder.name}_{stem}{suffix}" for suffix in (".fa", ".fa.gz")]
    return next((c for c in candidates if c.is_file()), None)


_FORMAT_HELP = {
    "rgb_jsonl": "RGB JSON lines files train.json, valid.json, test.json",
    "openvaccine": "OpenVaccine JSON (Kaggle stanford-covid-vaccine records)",
    "pgb": "the task's train/valid/test JSON lines (OmniGenBench's copy; or InstaDeep's <subtask>_{train,validation,"
           "test}.fa beside the folder; or CSV / Parquet) with fields sequence, name, label (labels for multi-output tasks)",
    "gb": "the data set's folders train/ and test/, one sub-folder per class holding one sequence per .txt",
    "gue_csv": "train.csv, dev.csv, test.csv (columns sequence,label)",
}


def _download_hint(task: dict, split: str, source: str) -> str:
    where = Path(source) if os.path.isabs(source) else data_dir(task) / source
    expected = where if task["format"] == "gb" else f"{where}{{{','.join(SUFFIXES[task['format']])}}}"
    return (f"task {task['name']}: {split} split not found (looked for {expected}). Download "
            f"{task.get('source') or 'the benchmark'} and put {_FORMAT_HELP[task['format']]} in "
            f"{task['data_dir']} (pass data_dir=<folder>, or point OMNIGENOME_BENCHMARK_DATA at the "
            f"folder that holds {task['suite']}/)." + (f" Note: {task['download_note']}." if task.get("download_note") else ""))


def _check_task(task: dict) -> None:
    for key in ("name", "suite", "format", "data_dir", "splits", "head", "num_labels"):
        if task.get(key) is None:
            raise ValueError(f"task {task.get('name')!r}: missing config key {key!r}")
    if task["format"] not in READERS:
        raise ValueError(f"task {task['name']}: unknown format {task['format']!r} (choose from {', '.join(FORMATS)})")
    if task["head"] not in HEADS:
        raise ValueError(f"task {task['name']}: unknown head {task['head']!r} (choose from {', '.join(HEADS)})")
