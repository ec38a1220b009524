"""Raw sequence files -> a pretraining corpus: normalise, filter, window, de-duplicate, fold, split, shard.

    omnigenome prep IN.fasta.gz... --out DIR [key=value ...]      (settings: conf/prep/default.yaml)

Output directory::

    train/          ShardedCorpus (see omnigenome.data.shards)
    valid/          ShardedCorpus
    manifest.json   where every input record went; the counts add up to the input count
    .work/          while the job runs: the plan, one input file and one result file per work unit
                    (removed at the end unless keep_work)

The job runs in three restartable stages (`omnigenome.data.prep_stages`); the fold stage runs here or as a
submitit job array (`omnigenome.data.prep_executor`). The output depends only on the inputs and the plan
settings (not on workers, executor, timing, or interruptions): a killed job rerun with the same command
gives byte-identical files.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

from omnigenome.data.prep_stages import COUNT_KEYS, MANIFEST, WORK, fold_units, merge_corpus, pending_units, plan_corpus
from omnigenome.settings import SettingsError
from omnigenome.utils import markdown_table

__all__ = ["MANIFEST", "WORK", "format_summary", "load_config", "prepare_corpus", "progress", "run_prep"]

EXECUTORS = ("none", "local", "slurm")


def load_config(name: str = "default", overrides: Sequence[str] = ()):
    """conf/prep/<name>.yaml with Hydra-style `key=value` overrides (`+key=value` adds a key), checked.

    Raises SettingsError naming an unknown key (and the valid ones) or a value that is not allowed."""
    from omnigenome.settings import compose
    cfg = compose(f"prep/{name}", overrides)
    check_settings(cfg)
    return cfg


def check_settings(cfg) -> None:
    """Every setting has a value it can take; else SettingsError naming key, value and what is allowed."""
    def need(ok: bool, key: str, allowed: str) -> None:
        if not ok:
            value = cfg
            for part in key.split("."):
                value = value[part]
            raise SettingsError(f"{key}={value!r}: must be {allowed}")

    def integer(key: str, low: int) -> None:
        value = cfg
        for part in key.split("."):
            value = value[part]
        need(isinstance(value, int) and not isinstance(value, bool) and value >= low, key, f"an integer >= {low}")

    integer("min_length", 1)
    integer("max_length", 1)
    need(cfg.min_length <= cfg.max_length, "min_length", f"<= max_length ({cfg.max_length})")
    need(cfg.long_policy in ("drop", "window"), "long_policy", "drop or window")
    integer("window.overlap", 0)
    need(cfg.long_policy != "window" or cfg.window.overlap < cfg.max_length, "window.overlap",
         f"< max_length ({cfg.max_length})")
    integer("records_per_shard", 1)
    need(isinstance(cfg.valid_fraction, (int, float)) and 0 <= cfg.valid_fraction < 1, "valid_fraction",
         "a number in [0, 1)")
    integer("seed", 0)
    need(cfg.fold.workers is None or (isinstance(cfg.fold.workers, int) and cfg.fold.workers >= 1), "fold.workers",
         "null (all available cores) or an integer >= 1")
    need(cfg.executor.name in EXECUTORS, "executor.name", " or ".join(EXECUTORS))
    integer("executor.tasks", 1)
    need(isinstance(cfg.near_dup.identity, (int, float)) and 0.75 <= cfg.near_dup.identity <= 1,
         "near_dup.identity", "a number in [0.75, 1] (cd-hit-est's -c)")


def run_prep(cfg, inputs: Iterable[str | os.PathLike] | None = None,
             out_dir: str | os.PathLike | None = None) -> dict | None:
    """Plan, fold (here or on the configured submitit executor) and merge; returns the manifest.

    With executor.wait=false on a cluster, returns None after submitting; rerun the same command
    to merge once the array has finished.
    """
    check_settings(cfg)
    inputs = list(inputs if inputs is not None else cfg.inputs)
    out_dir = Path(out_dir if out_dir is not None else cfg.out or "")
    if not str(out_dir) or str(out_dir) == ".":
        raise ValueError("no output directory given (--out DIR or out=DIR)")
    plan = plan_corpus(inputs, out_dir, cfg)
    todo = [u["name"] for u in pending_units(out_dir, plan)]
    if todo and cfg.executor.name == "none":
        fold_units(out_dir, todo, cfg.fold.workers, cfg.progress)
    elif todo:
        from omnigenome.data.prep_executor import fold_on_executor
        if not fold_on_executor(out_dir, plan, todo, cfg):
            return None
    return merge_corpus(out_dir, cfg.keep_work)


def prepare_corpus(inputs: Iterable[str | os.PathLike], out_dir: str | os.PathLike, config=None, *,
                   workers: int | None = None, progress: bool | None = None, **settings) -> dict:
    """Prepare `out_dir/train`, `out_dir/valid` and `out_dir/manifest.json`; returns the manifest.

    inputs: FASTA / FASTA.gz files or JSON lines of transcript regions (see fasta.read_sequences),
        read in the order given.
    config: settings from `load_config`; default: conf/prep/default.yaml.
    workers (fold.workers), progress and any setting of the config as keywords override it; nested ones
        as dicts, e.g. `window={"overlap": 40}`.
    Sequences are stored upper case in the RNA alphabet (T -> U, IUPAC codes -> N).
    Raises FastaError (a ValueError naming file and line) for malformed input, before anything is
    folded, and FileExistsError if out_dir already holds a corpus.
    """
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    cfg = config if config is not None else load_config()
    if workers is not None:
        settings["fold"] = {**settings.get("fold", {}), "workers": workers}
    if progress is not None:
        settings["progress"] = progress
    try:
        cfg = OmegaConf.merge(cfg, settings)
    except OmegaConfBaseException as e:
        raise SettingsError(f"prepare_corpus(): {str(e).splitlines()[0]} (settings: {', '.join(cfg)})") from None
    return run_prep(cfg, inputs, out_dir)


def kept(manifest: dict) -> int:
    """Records and windows the corpus holds."""
    counts, windows = manifest["counts"], manifest["windows"]
    return counts["kept_train"] + counts["kept_valid"] + windows["kept_train"] + windows["kept_valid"]


def progress(out_dir: str | os.PathLike) -> tuple[int, int] | None:
    """(work units folded, units planned) of an unfinished job in out_dir, or None when there is no plan."""
    import json
    plan_path = Path(out_dir) / WORK / "plan.json"
    if not plan_path.is_file():
        return None
    plan = json.loads(plan_path.read_text())
    return len(plan["units"]) - len(pending_units(out_dir, plan)), len(plan["units"])


def format_summary(manifest: dict) -> str:
    """Where the input records went, as a table."""
    counts = manifest["counts"]
    total = max(counts["input"], 1)
    rows = [(key, f"{counts[key]:,}", f"{100 * counts[key] / total:.2f}%") for key in COUNT_KEYS]
    if manifest["windows"]["made"]:
        rows += [(f"windows {k}", f"{v:,}", "") for k, v in manifest["windows"].items()]
    rows += [("train nt", f"{manifest['train']['nucleotides']:,}", ""),
             ("valid nt", f"{manifest['valid']['nucleotides']:,}", "")]
    return markdown_table(("records", "count", "share"), rows)
