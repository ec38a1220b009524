"""Fine-tune one model on every task of a suite over several seeds; write a results table and a bar chart.

    python experiments/run_suite.py suite=rgb model=tiny init_from=logs/pretrain/runs/<run>/checkpoints/last.ckpt \
        seeds=[1,2,3] [tasks=[rgb/ssp_archive2,rgb/mrna]] [no_train=valid] [results_dir=results] \
        [<train.py override> ...]      e.g. module.optimizer.lr=1e-3 trainer.max_epochs=5 data.train_limit=2000

Each (task, seed) cell runs `python train.py experiment=finetune task=<task> seed=<seed> init_from=<...>`
(plus every argument this script does not know, passed through) in a subprocess, with its run directory at
`<results_dir>/<suite>/<model>/runs/<task>/seed<k>`, and stores the cell's test metrics (and the baselines
train.py scores on the same items: majority class / train mean, ViennaRNA on structure tasks) in
`<results_dir>/<suite>/<model>/cells/<task>__seed<k>.json`. A cell whose file exists is not rerun, so an
interrupted suite continues where it stopped (delete a cell file to rerun it).

Then, over every model under `<results_dir>/<suite>/`: `results.md` and `results.csv` (mean ± std over seeds of
every test metric, per task and model, baselines included) and `results.png` (the monitored metric per task,
one bar per model). Tasks whose data is missing are listed as skipped, with the reason. Tasks without a
training split (RGB SNMD/SNMR in ../shared/data ship only valid/test) are skipped, or with `no_train=valid`
fine-tuned on their validation split with 10% of it held out for checkpoint selection.

`report=only` rewrites the tables and chart from the cells present, running nothing.
"""
from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KNOWN = {"suite": None, "model": None, "init_from": None, "seeds": "[1,2,3]", "tasks": None,
         "results_dir": "results", "no_train": "skip", "report": "run", "timeout": None}
# Baseline columns: the majority class (classification) and the train mean (regression) share one.
BASELINE_MODELS = ("majority / mean", "ViennaRNA")
BASELINE_COLUMN = {"majority": "majority / mean", "mean": "majority / mean", "ViennaRNA": "ViennaRNA"}


def parse_args(argv: list[str]) -> tuple[dict, list[str]]:
    """key=value arguments: this script's own (KNOWN) and the rest, passed through to train.py."""
    args, passthrough = dict(KNOWN), []
    for a in argv:
        key, sep, value = a.partition("=")
        if not sep:
            raise SystemExit(f"run_suite: expected key=value, got {a!r}")
        if key in KNOWN:
            args[key] = value
        else:
            passthrough.append(a)
    if not args["suite"] or not args["model"]:
        raise SystemExit("run_suite: suite= and model= are required (model names the results folder)")
    if args["no_train"] not in ("skip", "valid"):
        raise SystemExit("run_suite: no_train must be skip or valid")
    args["seeds"] = [int(s) for s in parse_list(args["seeds"])]
    args["tasks"] = parse_list(args["tasks"]) if args["tasks"] else None
    return args, passthrough


def parse_list(text: str) -> list[str]:
    """`[a,b]`, `a,b` or `a` -> ["a", "b"]."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:-1]
    return [t.strip().strip("'\"") for t in text.split(",") if t.strip()]


def cell_name(task: str, seed: int) -> str:
    return f"{task.replace('/', '__')}__seed{seed}"


# --- running cells -------------------------------------------------------------------------------------

def task_plan(name: str, no_train: str) -> tuple[list[str] | None, str | None]:
    """(extra overrides, None) for a task that can run, or (None, reason) for one to skip."""
    from omnigenome.finetune.tasks import available_splits, task_config
    task = task_config(name)
    found = available_splits(task)
    if "test" not in found:
        return None, f"no test split under {task['data_dir']}"
    if "train" in found:
        return [], None
    if no_train == "valid" and "valid" in found:
        return ["task.splits.train=" + task["splits"]["valid"], "task.splits.valid=null", "task.valid_from_train=0.1"], None
    if "valid" in found:
        return None, "no training split (only valid/test); no_train=valid fine-tunes on the validation split"
    return None, f"no training split under {task['data_dir']}"


def run_cell(task: str, seed: int, args: dict, extra: list[str], passthrough: list[str], model_dir: Path) -> dict:
    run_dir = model_dir / "runs" / task / f"seed{seed}"
    command = [sys.executable, "train.py", "experiment=finetune", f"task={task}", f"seed={seed}",
               f"init_from={args['init_from'] or 'null'}", f"hydra.run.dir={run_dir}", *extra, *passthrough]
    print(f"\n[{time.strftime('%H:%M:%S')}] {task} seed {seed}: {' '.join(command[1:])}", flush=True)
    start = time.perf_counter()
    log_path = run_dir / "run_suite.log"
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        status = subprocess.run(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                timeout=float(args["timeout"]) if args["timeout"] else None).returncode
    seconds = time.perf_counter() - start
    result_file = run_dir / "test_metrics.json"
    if status != 0 or not result_file.is_file():
        tail = log_path.read_text()[-2000:]
        raise RuntimeError(f"exit status {status}; see {log_path}\n{tail}")
    result = json.loads(result_file.read_text())
    return {**result, "seed": seed, "model": args["model"], "init_from": args["init_from"], "seconds": seconds,
            "command": " ".join(command[1:])}


def run_suite(args: dict, passthrough: list[str]) -> dict:
    from omnigenome.finetune.tasks import task_names
    suite_dir = Path(args["results_dir"]) / args["suite"]
    model_dir = suite_dir / args["model"]
    (model_dir / "cells").mkdir(parents=True, exist_ok=True)
    tasks = args["tasks"] or task_names(args["suite"])
    status = {"skipped": {}, "failed": {}, "done": [], "reused": []}
    for task in tasks:
        extra, reason = task_plan(task, args["no_train"])
        if extra is None:
            print(f"skip {task}: {reason}", flush=True)
            status["skipped"][task] = reason
            continue
        for seed in args["seeds"]:
            path = model_dir / "cells" / f"{cell_name(task, seed)}.json"
            if path.is_file():
                status["reused"].append(path.name)
                continue
            try:
                cell = run_cell(task, seed, args, extra, passthrough, model_dir)
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                print(f"FAILED {task} seed {seed}: {e}", flush=True)
                status["failed"][f"{task} seed {seed}"] = str(e).splitlines()[0]
                continue
            path.write_text(json.dumps(cell, indent=2) + "\n")
            status["done"].append(path.name)
            print(f"  {cell['monitor']} = {cell['metrics'].get(cell['monitor'])} ({cell.get('seconds', 0):.0f} s)", flush=True)
    (model_dir / "status.json").write_text(json.dumps(status, indent=2) + "\n")
    return status


# --- reporting -----------------------------------------------------------------------------------------

def load_cells(suite_dir: Path) -> list[dict]:
    """Every cell of every model of a suite, plus one baseline cell per (task, baseline, seed 0) taken from
    the first model cell that carries it (baselines do not depend on the seed)."""
    cells, baselines = [], {}
    for path in sorted(suite_dir.glob("*/cells/*.json")):
        cell = json.loads(path.read_text())
        cell["model"] = path.parent.parent.name
        cells.append(cell)
        for name, metrics in (cell.get("baselines") or {}).items():
            column = BASELINE_COLUMN.get(name, name)
            baselines.setdefault((cell["task"], column), {**cell, "model": column, "seed": 0, "metrics": metrics})
    return cells + list(baselines.values())


def mean_std(values: list[float]) -> tuple[float, float]:
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return math.nan, math.nan
    mean = sum(values) / len(values)
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1) if len(values) > 1 else 0.0
    return mean, math.sqrt(var)


def summarise(cells: list[dict]) -> list[dict]:
    """Rows (task, model, metric, mean, std, n) over seeds."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for c in cells:
        groups.setdefault((c["task"], c["model"]), []).append(c)
    rows = []
    for (task, model), group in sorted(groups.items()):
        for metric in group[0]["metrics"]:
            if metric == "loss":
                continue
            mean, std = mean_std([g["metrics"].get(metric) for g in group])
            rows.append({"task": task, "model": model, "metric": metric, "mean": mean, "std": std,
                         "n": len(group), "monitor": group[0]["monitor"]})
    return rows


def fmt(mean: float, std: float, n: int) -> str:
    if math.isnan(mean):
        return "-"
    return f"{mean:.3f} ± {std:.3f}" if n > 1 else f"{mean:.3f}"


def model_order(rows: list[dict]) -> list[str]:
    models = sorted({r["model"] for r in rows} - set(BASELINE_MODELS))
    return models + [b for b in BASELINE_MODELS if any(r["model"] == b for r in rows)]


def write_report(suite_dir: Path, skipped: dict[str, str] | None = None) -> dict[str, Path]:
    cells = load_cells(suite_dir)
    rows = summarise(cells)
    paths = {"csv": suite_dir / "results.csv", "md": suite_dir / "results.md", "png": suite_dir / "results.png"}
    with open(paths["csv"], "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["task", "model", "metric", "mean", "std", "n"])
        writer.writeheader()
        for r in rows:
            writer.writerow({k: r[k] for k in writer.fieldnames})
    models = model_order(rows)
    tasks = sorted({r["task"] for r in rows})
    by_key = {(r["task"], r["model"], r["metric"]): r for r in rows}
    lines = [f"# {suite_dir.name}: test metrics, mean ± std over seeds", "",
             "Monitored metric of each task (the one checkpoints are selected on):", "",
             "| task | metric | " + " | ".join(models) + " |", "|---|---|" + "---|" * len(models)]
    for task in tasks:
        monitor = next(r["monitor"] for r in rows if r["task"] == task)
        cells_txt = [fmt(by_key[k]["mean"], by_key[k]["std"], by_key[k]["n"]) if (k := (task, m, monitor)) in by_key
                     else "" for m in models]
        lines.append(f"| {task} | {monitor} | " + " | ".join(cells_txt) + " |")
    lines += ["", "All metrics:", "", "| task | metric | " + " | ".join(models) + " |", "|---|---|" + "---|" * len(models)]
    for task in tasks:
        metrics = list(dict.fromkeys(r["metric"] for r in rows if r["task"] == task))
        for metric in metrics:
            cells_txt = [fmt(by_key[k]["mean"], by_key[k]["std"], by_key[k]["n"]) if (k := (task, m, metric)) in by_key
                         else "" for m in models]
            lines.append(f"| {task} | {metric} | " + " | ".join(cells_txt) + " |")
    seeds = {m: sorted({c["seed"] for c in cells if c["model"] == m}) for m in models if m not in BASELINE_MODELS}
    lines += ["", "Seeds: " + "; ".join(f"{m}: {s}" for m, s in seeds.items())]
    if skipped:
        lines += ["", "Skipped tasks:", ""] + [f"- {t}: {reason}" for t, reason in skipped.items()]
    paths["md"].write_text("\n".join(lines) + "\n")
    if not plot(rows, models, tasks, paths["png"], suite_dir.name):
        del paths["png"]
    return paths


def plot(rows: list[dict], models: list[str], tasks: list[str], path: Path, title: str) -> bool:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no bar chart (pip install matplotlib)")
        return False
    monitor = {t: next(r["monitor"] for r in rows if r["task"] == t) for t in tasks}
    by_key = {(r["task"], r["model"], r["metric"]): r for r in rows}
    width = 0.8 / max(1, len(models))
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(tasks) * max(1, len(models)) / 2), 4))
    for k, model in enumerate(models):
        xs, ys, es = [], [], []
        for i, t in enumerate(tasks):
            r = by_key.get((t, model, monitor[t]))
            if r is not None and not math.isnan(r["mean"]):
                xs.append(i + (k - (len(models) - 1) / 2) * width)
                ys.append(r["mean"])
                es.append(r["std"])
        ax.bar(xs, ys, width, yerr=es, capsize=2, label=model)
    ax.set_xticks(range(len(tasks)))
    ax.set_xticklabels([f"{t}\n({monitor[t]})" for t in tasks], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("test score (monitored metric)")
    ax.set_title(f"{title}: mean ± std over seeds")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def main(argv: list[str]) -> int:
    os.chdir(ROOT)
    args, passthrough = parse_args(argv)
    suite_dir = Path(args["results_dir"]) / args["suite"]
    skipped = {}
    if args["report"] != "only":
        status = run_suite(args, passthrough)
        skipped = status["skipped"]
        print(f"\n{len(status['done'])} cells run, {len(status['reused'])} reused, {len(status['failed'])} failed, "
              f"{len(status['skipped'])} tasks skipped")
    else:
        status_file = suite_dir / args["model"] / "status.json"
        skipped = json.loads(status_file.read_text())["skipped"] if status_file.is_file() else {}
    paths = write_report(suite_dir, skipped)
    print("\n" + paths["md"].read_text())
    print("written: " + ", ".join(str(p) for p in paths.values()))
    return 1 if args["report"] != "only" and status["failed"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
