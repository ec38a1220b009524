"""The README's CPU fine-tuning measurement: a tiny pretrained model fine-tuned on every RGB task present in
../shared/data and on the four GUE tasks there, beside the majority / mean predictor and (structure tasks)
ViennaRNA, in one table.

    python experiments/finetune_cpu.py init_from=logs/pretrain/runs/<run>/checkpoints/last.ckpt [seeds=[1]]

Runs `experiments/run_suite.py` for suite=rgb (tasks without a training split, SNMD and SNMR, fine-tune on
their validation split with 10% held out: no_train=valid) and suite=gue, with the CPU budget below (every
argument not named here is passed on to train.py and overrides it), then writes `<results_dir>/cpu.md`.
Resumable like run_suite: finished cells are reused.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))

RGB = ["rgb/ssp_archive2", "rgb/ssp_bprna", "rgb/snmd", "rgb/snmr", "rgb/mrna"]
GUE = ["gue/prom_300_tata", "gue/prom_core_all", "gue/tf_0", "gue/mouse_0"]
# A CPU budget (two shared cores): 200 optimizer steps of 4096-token batches (800k tokens: 2.5 epochs of
# Archive2's training split, a fraction of the large ones), linear decay after 20 warmup steps, validation
# every 100 steps on the whole validation split, the best checkpoint scored on the whole test split.
BUDGET = ["trainer.max_steps=200", "trainer.max_epochs=-1", "trainer.val_check_interval=100",
          "trainer.check_val_every_n_epoch=null", "data.max_tokens=4096", "module.optimizer.lr=1e-3",
          "module.scheduler.warmup_steps=20", "logger=csv"]


def main(argv: list[str]) -> int:
    import run_suite
    opts = dict(a.split("=", 1) for a in argv if a.split("=", 1)[0] in ("init_from", "seeds", "model", "results_dir"))
    extra = [a for a in argv if a.split("=", 1)[0] not in opts]
    model = opts.get("model", "tiny")
    results = Path(opts.get("results_dir", "results/cpu"))
    common = [f"model={model}", f"init_from={opts.get('init_from', 'last')}", f"seeds={opts.get('seeds', '[1]')}",
              f"results_dir={results}", *BUDGET, *extra]
    # One thread per run: on two cores shared with other work, torch's two OpenMP threads contend with the
    # other processes and a step runs 5-20x slower (measured here: 0.8 s vs 4-24 s per 4096-token step).
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    status = 0
    for suite, tasks in (("rgb", RGB), ("gue", GUE)):
        argv_suite = [f"suite={suite}", f"tasks=[{','.join(tasks)}]", "no_train=valid", *common]
        print(f"$ python experiments/run_suite.py {' '.join(argv_suite)}", flush=True)
        status |= subprocess.run([sys.executable, "experiments/run_suite.py", *argv_suite], cwd=ROOT, env=env).returncode
    table = combined_table(results, model, RGB + GUE, run_suite)
    (results / "cpu.md").write_text(table + "\n")
    print("\n" + table)
    return status


def combined_table(results: Path, model: str, tasks: list[str], run_suite) -> str:
    """One row per task: the monitored metric of the model (mean ± std over seeds), the constant baseline and
    ViennaRNA, plus train size, steps and the fine-tuning wall time of one cell."""
    lines = ["| task | metric | tiny fine-tuned | majority / mean | ViennaRNA | train examples | test examples | steps | seeds | minutes per run |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for task in tasks:
        suite = task.split("/")[0]
        cells = [json.loads(p.read_text()) for p in sorted((results / suite / model / "cells").glob(
            f"{run_suite.cell_name(task, 0).rsplit('__seed', 1)[0]}__seed*.json"))]
        if not cells:
            lines.append(f"| {task} | - | not run | | | | | | | |")
            continue
        monitor = cells[0]["monitor"]
        mean, std = run_suite.mean_std([c["metrics"].get(monitor) for c in cells])
        base = cells[0].get("baselines") or {}
        const = base.get("majority") or base.get("mean") or {}
        vienna = base.get("ViennaRNA") or {}

        def f(v):
            return "-" if v is None else f"{v:.3f}"
        minutes = sum(c.get("seconds", 0) for c in cells) / len(cells) / 60
        lines.append(f"| {task} | {monitor} | {run_suite.fmt(mean, std, len(cells))} | {f(const.get(monitor))} | "
                     f"{f(vienna.get(monitor)) if vienna else ''} | {cells[0].get('num_train')} | {cells[0].get('num_test')} | "
                     f"{cells[0].get('steps')} | {len(cells)} | {minutes:.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
