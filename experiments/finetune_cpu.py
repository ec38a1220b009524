"""The README's CPU fine-tuning measurement: a tiny pretrained model fine-tuned on every RGB task present in
../shared/data and on the four GUE tasks there, beside the majority / mean predictor and (structure tasks)
ViennaRNA, in one table.

    python experiments/finetune_cpu.py init_from=logs/pretrain/runs/<run>/checkpoints/last.ckpt [seeds=[1]]

Runs `experiments/compare_models.py` with the one model (`models={tiny: <init_from>}`), the tasks below (tasks
without a training split, SNMD and SNMR, fine-tune on their validation split with 10% held out: no_train=valid)
and the CPU budget below, one thread per cell; every other key=value is passed on (a compare_models setting, or
a train.py override that overrides the budget). Then writes `<results_dir>/cpu.md`. Resumable like
compare_models: finished cells are reused.
"""
from __future__ import annotations

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
    import compare_models
    opts = dict(a.split("=", 1) for a in argv if a.split("=", 1)[0] in ("init_from", "model_name"))
    extra = [a for a in argv if a.split("=", 1)[0] not in opts]
    name = opts.get("model_name", "tiny")
    results = Path(next((a.split("=", 1)[1] for a in extra if a.startswith("results_dir=")), "results/cpu"))
    # One thread per run: on two cores shared with other work, torch's two OpenMP threads contend with the
    # other processes and a step runs 5-20x slower (measured here: 0.8 s vs 4-24 s per 4096-token step).
    argv_compare = [f"models={{{name}: {opts.get('init_from', 'last')}}}", f"tasks=[{','.join(RGB + GUE)}]",
                    "no_train=valid", "seeds=[1]", f"results_dir={results}", "threads=1", *BUDGET, *extra]
    print(f"$ python experiments/compare_models.py {' '.join(argv_compare)}", flush=True)
    status = compare_models.main(argv_compare)
    if status == 2:  # a bad setting: nothing ran
        return status
    table = cpu_table(results.resolve(), name, RGB + GUE, compare_models)
    (results / "cpu.md").write_text(table + "\n")
    print("\n" + table)
    return status


def cpu_table(results: Path, model: str, tasks: list[str], compare_models) -> str:
    """One row per task: the monitored metric of the model (mean ± std over seeds), the constant baseline and
    ViennaRNA, plus train size, steps and the fine-tuning wall time of one cell."""
    from omnigenome.finetune.comparison import mean_std
    cells = compare_models.load_cells(results, [model])
    lines = ["| task | metric | tiny fine-tuned | majority / mean | ViennaRNA | train examples | test examples | steps | seeds | minutes per run |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for task in tasks:
        group = cells.get((task, model))
        if not group:
            lines.append(f"| {task} | - | not run | | | | | | | |")
            continue
        monitor = group[0]["monitor"]
        mean, std, n = mean_std([c["metrics"].get(monitor) for c in group])
        base = group[0].get("baselines") or {}
        const = base.get("majority") or base.get("mean") or {}
        vienna = base.get("ViennaRNA") or {}

        def f(v):
            return "-" if v is None else f"{v:.3f}"
        minutes = sum(c.get("seconds", 0) for c in group) / len(group) / 60
        lines.append(f"| {task} | {monitor} | {compare_models._fmt(mean, std, n)} | {f(const.get(monitor))} | "
                     f"{f(vienna.get(monitor)) if vienna else ''} | {group[0].get('num_train')} | {group[0].get('num_test')} | "
                     f"{group[0].get('steps')} | {len(group)} | {minutes:.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
