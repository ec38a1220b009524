"""Fine-tune a list of backbones on a list of tasks over seeds, and write the comparison table.

    python experiments/compare_models.py models="{omnigenome: <ckpt or folder>, rnafm: <folder>}" \
        tasks=[rgb/ssp_archive2,gue/prom_300_tata] seeds=[1,2] [results_dir=...] [no_train=valid] \
        [<train.py override> ...]      e.g. trainer.max_steps=200 data.train_limit=2000 finetune.lora.rank=8

Settings are Hydra overrides of conf/compare.yaml (its keys: models, tasks or suite, seeds, results_dir, no_train,
report_only, parallel, threads, timeout, bootstrap.*); every other key=value is passed on to
`train.py experiment=finetune` for every cell alike, after composing the train config with it once per task, so a
misspelt key stops at once in one line. Each (model, task, seed) cell runs

    python train.py experiment=finetune task=<task> seed=<seed> init_from=<the model's> hydra.run.dir=<run dir> ...

in its own process, with its run directory at `<results_dir>/runs/<model>/<task>/seed<k>` (best checkpoint,
test_metrics.json, test_predictions.npz, the cell's log), and stores its result in
`<results_dir>/cells/<model>/<task>__seed<k>.json`. A cell whose result exists is not run again (it must have
been run with the same init_from and overrides; the command says which differ), so an interrupted comparison
continues where it stopped; delete a cell file to rerun it.

Then `results.md`, `results.csv` and `results.png` under results_dir: per task the monitored test metric of every
model as mean ± std over seeds, beside the baselines scored on the same test items (majority class / train mean,
ViennaRNA MFE on structure tasks); each model's paired difference from the first model with a bootstrap interval
over test records (`omnigenome.finetune.comparison`); every metric; and per run the records truncated to the
model's maximum in each split. Tasks whose data is missing, or that have no training split (unless
no_train=valid), are listed as skipped with the reason.
"""
from __future__ import annotations

import csv
import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from omnigenome.settings import SettingsError, compose  # noqa: E402
from omnigenome.utils import markdown_table  # noqa: E402

# train.py settings every cell sets itself.
CELL_KEYS = ("experiment", "task", "seed", "init_from", "hydra.run.dir")
# Baseline columns: the majority class (classification) and the train mean (regression) share one.
BASELINE_COLUMN = {"majority": "majority / mean", "mean": "majority / mean", "ViennaRNA": "ViennaRNA"}
BASELINES = ("majority / mean", "ViennaRNA")
VALID_AS_TRAIN = ["task.splits.train=valid", "task.splits.valid=null", "task.valid_from_train=0.1"]


# --- settings ------------------------------------------------------------------------------------------

def split_arguments(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """(overrides of conf/compare.yaml, overrides passed on to train.py): an argument belongs to compare.yaml
    when its top-level key is one of that config's keys."""
    from omegaconf import OmegaConf

    from omnigenome.settings import conf_files
    with conf_files().joinpath("compare.yaml").open() as f:
        keys = set(OmegaConf.load(f).keys())
    ours, passed = [], []
    for arg in argv:
        key, sep, _ = arg.partition("=")
        if not sep:
            raise SettingsError(f"expected key=value, got {arg!r}")
        (ours if key.lstrip("+~").split(".")[0] in keys else passed).append(arg)
    return ours, passed


def load_settings(argv: Sequence[str]) -> tuple[dict, list[str]]:
    """The comparison's settings (conf/compare.yaml with its overrides, as a plain dict) and the train.py
    overrides. Raises SettingsError (one line) for a setting that does not exist or cannot be used."""
    from omegaconf import OmegaConf
    ours, passed = split_arguments(argv)
    settings = OmegaConf.to_container(compose("compare", ours), resolve=True)
    for arg in passed:
        key = arg.partition("=")[0].lstrip("+~")
        if key in CELL_KEYS:
            raise SettingsError(f"{key} is set by each cell (models= gives each model's init_from, tasks= / suite= "
                                f"the tasks, seeds= the seeds); leave {key}= out")
    models = settings["models"] or {}
    if not isinstance(models, dict):
        raise SettingsError(f"models must map names to init_from, e.g. models=\"{{omnigenome: PATH, rnafm: PATH}}\"; "
                            f"got {models!r}")
    settings["models"] = {str(k): (None if v in (None, "", "null") else str(v)) for k, v in models.items()}
    if not settings["models"] and not settings["report_only"]:
        raise SettingsError('models= is required: models="{name: init_from, ...}" (the first is the reference)')
    if settings["tasks"] and settings["suite"]:
        raise SettingsError("give tasks=[...] or suite=<name>, not both")
    if not settings["tasks"] and not settings["suite"] and not settings["report_only"]:
        raise SettingsError("tasks=[suite/name,...] or suite=<rgb|pgb|gb|gue> is required")
    if settings["suite"]:
        from omnigenome.data.benchmarks import task_names
        try:
            settings["tasks"] = task_names(settings["suite"])
        except ValueError as e:
            raise SettingsError(str(e)) from None
    if settings["no_train"] not in ("skip", "valid"):
        raise SettingsError(f"no_train must be skip or valid, got {settings['no_train']!r}")
    try:
        settings["seeds"] = [int(s) for s in settings["seeds"]]
    except (TypeError, ValueError):
        raise SettingsError(f"seeds must be a list of integers, got {settings['seeds']!r}") from None
    if int(settings["parallel"]) < 1:
        raise SettingsError(f"parallel must be >= 1, got {settings['parallel']}")
    settings["results_dir"] = str(Path(settings["results_dir"]).resolve())
    return settings, passed


def train_config(task: str, train_overrides: Sequence[str], extra: Sequence[str] = ()):
    """The config one cell of `task` runs with (init_from left out): composing it checks every override."""
    return compose("train", ["experiment=finetune", f"task={task}", *extra, *train_overrides])


def resolve_models(settings: dict, cfg) -> dict[str, str | None]:
    """Each model's init_from as a path ("last" resolved once, so every cell starts from the same file), after
    checking that its tokenizer loads (remote code, unknown model type, a tokenizer that cannot represent a
    nucleotide stop here, in one line naming the model). cfg: a cell's train config (see `train_config`)."""
    from omnigenome.model.loading import load_tokenizer
    from omnigenome.training.checkpoints import resolve_init_from
    resolved = {}
    for name, init_from in settings["models"].items():
        try:
            path = resolve_init_from(init_from, cfg.paths.log_dir)
            if path is not None:
                load_tokenizer(path, trust_remote_code=bool(cfg.finetune.trust_remote_code),
                               alphabet=cfg.finetune.alphabet, lowercase=cfg.finetune.lowercase)
        except (ValueError, FileNotFoundError, ImportError) as e:
            raise SettingsError(f"model {name}: {' '.join(str(e).split())}") from None
        resolved[name] = str(Path(path).resolve()) if path is not None else None
    return resolved


# --- the plan ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Cell:
    model: str
    init_from: str | None
    task: str
    seed: int
    extra: tuple[str, ...] = ()  # task overrides of the plan (no_train=valid)

    @property
    def name(self) -> str:
        return f"{self.task.replace('/', '__')}__seed{self.seed}"


def task_plan(task: str, no_train: str, cfg=None) -> tuple[list[str] | None, str | None]:
    """(extra train overrides, None) for a task that can run, or (None, the reason) for one to skip.
    cfg: the task's train config (see `train_config`; default: without overrides)."""
    from omnigenome.data.benchmarks import available_splits
    from omnigenome.finetune.datamodule import plain_task
    spec = plain_task((cfg if cfg is not None else train_config(task, ())).task)
    found = available_splits(spec)
    if "test" not in found:
        return None, f"no test split under {spec['data_dir']}"
    if "train" in found:
        return [], None
    if "valid" in found and no_train == "valid":
        return list(VALID_AS_TRAIN), None
    if "valid" in found:
        return None, "no training split (only valid/test); no_train=valid fine-tunes on the validation split"
    return None, f"no training split under {spec['data_dir']}"


def plan(settings: dict, models: dict[str, str | None], configs: dict) -> tuple[list[Cell], dict]:
    """The cells to run (task-major, then model, then seed) and {task: reason} of the tasks skipped.
    configs: {task: its train config}."""
    cells, skipped = [], {}
    for task in settings["tasks"]:
        extra, reason = task_plan(task, settings["no_train"], configs[task])
        if extra is None:
            skipped[task] = reason
            continue
        cells += [Cell(model, path, task, seed, tuple(extra)) for model, path in models.items()
                  for seed in settings["seeds"]]
    return cells, skipped


# --- running cells -----------------------------------------------------------------------------------

def run_dir_of(results_dir: Path, cell: Cell) -> Path:
    return results_dir / "runs" / cell.model / cell.task / f"seed{cell.seed}"


def cell_file(results_dir: Path, cell: Cell) -> Path:
    return results_dir / "cells" / cell.model / f"{cell.name}.json"


def run_cell(cell: Cell, results_dir: Path, train_overrides: Sequence[str], settings: dict) -> dict:
    """Fine-tune one cell with train.py in a subprocess; returns its test_metrics.json record. Raises
    RuntimeError (with the end of its log) when the run fails."""
    run_dir = run_dir_of(results_dir, cell)
    if run_dir.is_dir() and not (run_dir / "checkpoints" / "last.ckpt").is_file():
        shutil.rmtree(run_dir)  # a failed attempt; a run stopped by a signal (last.ckpt) resumes instead
    run_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(ROOT / "train.py"), "experiment=finetune", f"task={cell.task}", f"seed={cell.seed}",
               f"init_from={cell.init_from or 'null'}", f"hydra.run.dir={run_dir}", *cell.extra, *train_overrides]
    env = dict(os.environ)
    if settings.get("threads"):
        env["OMP_NUM_THREADS"] = str(settings["threads"])
    log_path = run_dir / "compare.log"
    with open(log_path, "w") as log:
        status = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                timeout=float(settings["timeout"]) if settings.get("timeout") else None).returncode
    result = run_dir / "test_metrics.json"
    if status != 0 or not result.is_file():
        tail = "\n".join(log_path.read_text().splitlines()[-15:])
        raise RuntimeError(f"exit status {status}; log {log_path}:\n{tail}")
    return json.loads(result.read_text())


def _settings_of(cell: Cell, train_overrides: Sequence[str]) -> dict:
    """What a stored cell must share with this command to be reused."""
    return {"init_from": cell.init_from, "overrides": [*cell.extra, *train_overrides]}


def run_cells(cells: Sequence[Cell], settings: dict, train_overrides: Sequence[str],
              runner: Callable[..., dict] = run_cell) -> dict:
    """Run the cells without a result (`runner(cell, results_dir, train_overrides, settings)`, `parallel` at a
    time); cells with a result are reused. Returns {"done", "reused": [cell file names], "failed": {cell: reason}}."""
    results_dir = Path(settings["results_dir"])
    todo, status = [], {"done": [], "reused": [], "failed": {}}
    for cell in cells:
        path = cell_file(results_dir, cell)
        if not path.is_file():
            todo.append(cell)
            continue
        stored = json.loads(path.read_text())
        wanted = _settings_of(cell, train_overrides)
        differ = [k for k in wanted if stored.get(k) != wanted[k]]
        if differ:
            raise SettingsError(f"{path} was run with other settings ({', '.join(f'{k}: {stored.get(k)} vs {wanted[k]}' for k in differ)}): "
                                f"pass another results_dir=, or delete the cell file to rerun it")
        status["reused"].append(f"{cell.model}/{cell.name}")
    lock = threading.Lock()

    def one(cell: Cell) -> None:
        label = f"{cell.model} {cell.task} seed {cell.seed}"
        with lock:
            print(f"[{time.strftime('%H:%M:%S')}] start {label}", flush=True)
        start = time.perf_counter()
        try:
            record = runner(cell, results_dir, train_overrides, settings)
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            with lock:
                print(f"[{time.strftime('%H:%M:%S')}] FAILED {label}: {e}", flush=True)
                status["failed"][label] = str(e).splitlines()[0]
            return
        seconds = time.perf_counter() - start
        record = {**record, "model": cell.model, "task": cell.task, "seed": cell.seed, "seconds": seconds,
                  "run_dir": str(run_dir_of(results_dir, cell).relative_to(results_dir)),
                  **_settings_of(cell, train_overrides)}
        path = cell_file(results_dir, cell)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=2) + "\n")
        with lock:
            status["done"].append(f"{cell.model}/{cell.name}")
            value = record["metrics"].get(record["monitor"])
            print(f"[{time.strftime('%H:%M:%S')}] done {label}: {record['monitor']} = "
                  f"{'-' if value is None else f'{value:.4f}'} ({seconds / 60:.1f} min)", flush=True)

    with ThreadPoolExecutor(max_workers=int(settings["parallel"])) as pool:
        list(pool.map(one, todo))
    return status


# --- the report --------------------------------------------------------------------------------------

def load_cells(results_dir: Path, models: Sequence[str]) -> dict[tuple[str, str], list[dict]]:
    """{(task, model): cell records, by seed} of the models' stored cells."""
    cells: dict[tuple[str, str], list[dict]] = {}
    for model in models:
        for path in sorted((results_dir / "cells" / model).glob("*.json")):
            record = json.loads(path.read_text())
            cells.setdefault((record["task"], model), []).append(record)
    for group in cells.values():
        group.sort(key=lambda r: r["seed"])
    return cells


def _fmt(mean: float, std: float, n: int) -> str:
    if n == 0 or math.isnan(mean):
        return "-"
    return f"{mean:.3f} ± {std:.3f}" if n > 1 else f"{mean:.3f}"


def _num(value) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def summary_rows(cells: dict[tuple[str, str], list[dict]], tasks: Sequence[str], models: Sequence[str]) -> list[dict]:
    """One row per (task, column, metric): the models' mean ± std over seeds, then the baselines (from the first
    model's first cell that carries them: they are scored on the same test items)."""
    from omnigenome.finetune.comparison import mean_std
    rows = []
    for task in tasks:
        groups = [(m, cells[(task, m)]) for m in models if (task, m) in cells]
        if not groups:
            continue
        first = groups[0][1][0]
        metrics = [k for k in first["metrics"] if k not in ("loss", "items")]
        for model, group in groups:
            for metric in metrics:
                mean, std, n = mean_std([c["metrics"].get(metric) for c in group])
                rows.append({"task": task, "model": model, "metric": metric, "mean": mean, "std": std, "n": n,
                             "monitor": first["monitor"], "mode": first["monitor_mode"]})
        baselines = next((c["baselines"] for _, group in groups for c in group if c.get("baselines")), {})
        for name, values in baselines.items():
            for metric in metrics:
                value = values.get(metric)
                rows.append({"task": task, "model": BASELINE_COLUMN.get(name, name), "metric": metric,
                             "mean": math.nan if value is None else float(value), "std": 0.0, "n": int(value is not None),
                             "monitor": first["monitor"], "mode": first["monitor_mode"]})
    return rows


def paired_rows(cells: dict[tuple[str, str], list[dict]], tasks: Sequence[str], models: Sequence[str],
                results_dir: Path, bootstrap: dict) -> tuple[list[dict], dict[str, str]]:
    """Each model's paired difference from the first model on each task's monitored metric (see
    `omnigenome.finetune.comparison.paired_differences`); and {task: why not} where it cannot be computed."""
    from omnigenome.data.benchmarks import task_config
    from omnigenome.finetune.comparison import TestPredictions, paired_differences
    rows, missing = [], {}
    for task in tasks:
        present = [m for m in models if (task, m) in cells]
        if len(present) < 2 or present[0] != models[0]:
            if present:
                missing[task] = f"needs {models[0]} and another model"
            continue
        runs = {}
        for model in present:
            paths = [results_dir / c["run_dir"] / "test_predictions.npz" for c in cells[(task, model)]]
            if not all(p.is_file() for p in paths):
                missing[task] = f"{model}: test_predictions.npz missing in {paths[0].parent}"
                break
            runs[model] = [TestPredictions.load(p) for p in paths]
        else:
            first = cells[(task, models[0])][0]
            try:
                diffs = paired_differences(task_config(task), first["monitor"], runs, models[0],
                                           int(bootstrap["resamples"]), float(bootstrap["confidence"]),
                                           int(bootstrap["seed"]))
            except ValueError as e:
                missing[task] = str(e)
                continue
            rows += [{"task": task, "model": m, "metric": first["monitor"], "mode": first["monitor_mode"], **d}
                     for m, d in diffs.items()]
    return rows, missing


def write_report(settings: dict, tasks: Sequence[str], models: Sequence[str], skipped: dict | None = None,
                 failed: dict | None = None) -> dict[str, Path]:
    """results.md, results.csv and results.png under results_dir, from the stored cells."""
    results_dir = Path(settings["results_dir"])
    cells = load_cells(results_dir, models)
    tasks = [t for t in tasks if any((t, m) in cells for m in models)]
    rows = summary_rows(cells, tasks, models)
    diffs, no_diff = paired_rows(cells, tasks, models, results_dir, settings["bootstrap"])
    columns = [*models, *(b for b in BASELINES if any(r["model"] == b for r in rows))]
    by_key = {(r["task"], r["model"], r["metric"]): r for r in rows}
    diff_of = {(d["task"], d["model"]): d for d in diffs}
    confidence = f"{100 * float(settings['bootstrap']['confidence']):g}%"

    def cell_text(task, column, metric):
        r = by_key.get((task, column, metric))
        return _fmt(r["mean"], r["std"], r["n"]) if r else ""

    monitored = []
    for task in tasks:
        r0 = next(r for r in rows if r["task"] == task)
        arrow = "↑" if r0["mode"] == "max" else "↓"
        monitored.append([task, f"{r0['monitor']} {arrow}", *(cell_text(task, c, r0["monitor"]) for c in columns)])
    paired = []
    for d in diffs:
        paired.append([d["task"], d["metric"], d["model"], f"{d['delta']:+.3f}",
                       f"[{d['low']:+.3f}, {d['high']:+.3f}]", d["records"], d["resamples"]])
    every = []
    for task in tasks:
        metrics = list(dict.fromkeys(r["metric"] for r in rows if r["task"] == task))
        every += [[task, m, *(cell_text(task, c, m) for c in columns)] for m in metrics]
    runs = []
    for task in tasks:
        for model in models:
            group = cells.get((task, model))
            if not group:
                continue
            c = group[0]
            truncated = c.get("truncated") or {}
            text = ", ".join(f"{s} {n}/{total}" for s, (n, total) in truncated.items()) or "-"
            minutes = sum(g.get("seconds", 0) for g in group) / len(group) / 60
            runs.append([task, model, ", ".join(str(g["seed"]) for g in group), c.get("num_train"), c.get("num_test"),
                         text, c.get("steps"), f"{minutes:.1f}"])
    seeds = sorted({c["seed"] for group in cells.values() for c in group})
    lines = [f"# Model comparison: test metrics, mean ± std over seeds {seeds}", "",
             f"Reference: {models[0]}. Baselines are scored on the same test items. Δ is a model's seed-mean test "
             f"metric minus the reference's (Δ > 0: higher, which is better for ↑ metrics and worse for ↓ ones); the "
             f"interval is a {confidence} percentile bootstrap over test records "
             f"({settings['bootstrap']['resamples']} resamples; a per-nucleotide task resamples whole sequences).",
             "", "## Monitored metric", "",
             markdown_table(["task", "metric", *columns], monitored), ""]
    if paired:
        lines += [f"## Paired difference from {models[0]} ({confidence} bootstrap interval over test records)", "",
                  markdown_table(["task", "metric", "model", "Δ", f"{confidence} interval", "test records",
                                  "resamples"], paired), ""]
    if no_diff:
        lines += ["No paired difference for: " + "; ".join(f"{t}: {why}" for t, why in no_diff.items()), ""]
    lines += ["## All metrics", "", markdown_table(["task", "metric", *columns], every), "",
              "## Runs", "", "Records truncated to the model's maximum length (their last nucleotides not read), "
              "per split: truncated/records.", "",
              markdown_table(["task", "model", "seeds", "train records", "test records", "truncated", "steps",
                              "minutes per run"], runs), ""]
    if skipped:
        lines += ["Skipped tasks:", "", *(f"- {t}: {why}" for t, why in skipped.items()), ""]
    if failed:
        lines += ["Failed cells:", "", *(f"- {c}: {why}" for c, why in failed.items()), ""]
    paths = {"md": results_dir / "results.md", "csv": results_dir / "results.csv"}
    results_dir.mkdir(parents=True, exist_ok=True)
    paths["md"].write_text("\n".join(lines))
    with open(paths["csv"], "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["task", "model", "metric", "mean", "std", "n", "delta", "ci_low", "ci_high", "records"])
        for r in rows:
            d = diff_of.get((r["task"], r["model"])) if r["metric"] == r["monitor"] else None
            writer.writerow([r["task"], r["model"], r["metric"], r["mean"], r["std"], r["n"],
                             *((d["delta"], d["low"], d["high"], d["records"]) if d else ("", "", "", ""))])
    png = plot(rows, tasks, columns, results_dir / "results.png", seeds)
    if png is not None:
        paths["png"] = png
    return paths


def plot(rows: list[dict], tasks: Sequence[str], columns: Sequence[str], path: Path, seeds) -> Path | None:
    """The monitored metric of every task, one bar per model (error bar: std over seeds) and baseline."""
    from omnigenome.extras import MissingExtra, require
    try:
        matplotlib = require("matplotlib")
    except MissingExtra as e:
        print(f"no plot: {e}")
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    by_key = {(r["task"], r["model"], r["metric"]): r for r in rows}
    monitor = {t: next(r for r in rows if r["task"] == t) for t in tasks}
    width = 0.8 / max(1, len(columns))
    fig, axes = plt.subplots(1, len(tasks), figsize=(max(4.0, 2.2 * len(tasks) + 0.4 * len(columns)), 3.6),
                             squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for k, column in enumerate(columns):
            r = by_key.get((task, column, monitor[task]["monitor"]))
            if r is None or math.isnan(r["mean"]):
                continue
            ax.bar(k * width, r["mean"], width, yerr=r["std"] if r["n"] > 1 else None, capsize=2,
                   label=column, color=f"C{k}", hatch="//" if column in BASELINES else None)
        ax.set_title(task, fontsize=8)
        ax.set_xticks([])
        arrow = "higher" if monitor[task]["mode"] == "max" else "lower"
        ax.set_ylabel(f"{monitor[task]['monitor']} ({arrow} is better)", fontsize=8)
    legend = {}
    for ax in axes[0]:  # a baseline may show on some tasks only (ViennaRNA: structure tasks)
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    fig.legend(list(legend.values()), list(legend), loc="lower center", ncol=min(6, len(legend)), fontsize=8)
    fig.suptitle(f"test metric, mean ± std over seeds {list(seeds)}", fontsize=9)
    fig.tight_layout(rect=(0, 0.1, 1, 0.95))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# --- the command ------------------------------------------------------------------------------------

def compare(argv: Sequence[str], runner: Callable[..., dict] = run_cell) -> int:
    settings, train_overrides = load_settings(argv)
    results_dir = Path(settings["results_dir"])
    if settings["report_only"]:
        if not (results_dir / "cells").is_dir():
            raise SettingsError(f"report_only=true: no cells under {results_dir} (results_dir=?)")
        models = list(settings["models"]) or sorted(p.name for p in (results_dir / "cells").iterdir() if p.is_dir())
        status_file = results_dir / "status.json"
        status = json.loads(status_file.read_text()) if status_file.is_file() else {}
        tasks = settings["tasks"] or sorted({json.loads(p.read_text())["task"]
                                             for p in results_dir.glob("cells/*/*.json")})
        paths = write_report(settings, tasks, models, status.get("skipped"), status.get("failed"))
        print(paths["md"].read_text())
        return 0
    # every override, task and model is checked before anything runs
    configs = {task: train_config(task, train_overrides) for task in settings["tasks"]}
    models = resolve_models(settings, configs[settings["tasks"][0]])
    cells, skipped = plan(settings, models, configs)
    for task, why in skipped.items():
        print(f"skip {task}: {why}", flush=True)
    start = time.perf_counter()
    status = run_cells(cells, settings, train_overrides, runner)
    status["skipped"] = skipped
    status["seconds"] = time.perf_counter() - start
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "status.json").write_text(json.dumps(status, indent=2) + "\n")
    print(f"\n{len(status['done'])} cells run, {len(status['reused'])} reused, {len(status['failed'])} failed, "
          f"{len(skipped)} tasks skipped ({status['seconds'] / 60:.1f} min)", flush=True)
    paths = write_report(settings, settings["tasks"], list(models), skipped, status["failed"])
    print("\n" + paths["md"].read_text())
    print("written: " + ", ".join(str(p) for p in paths.values()))
    return 1 if status["failed"] else 0


def main(argv: Sequence[str]) -> int:
    try:
        return compare(argv)
    except SettingsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
