"""After fine-tuning: the best checkpoint on the validation and test splits, the baselines beside it, the
results table, `test_metrics.json` and the test split's per-item predictions `test_predictions.npz`; and the
same scoring of any fine-tuned checkpoint (evaluate.py)."""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from omnigenome.constants import SPLITS
from omnigenome.finetune.baselines import baseline_rows
from omnigenome.finetune.datamodule import FinetuneDataModule, plain_task
from omnigenome.utils import fmt_number, markdown_table

log = logging.getLogger("omnigenome")


def metrics_table(task, metrics: dict, stages: Sequence[str] = ("val", "test"),
                  baselines: dict[str, dict[str, float]] | None = None) -> str:
    """The task's metrics (and loss) per stage as a Markdown table; `baselines` ({name: test metrics}) add
    one column each."""
    task = plain_task(task)
    names = [*task["metrics"], "loss"]
    stages = [s for s in stages if any(f"{s}/{n}" in metrics for n in names)]
    baselines = baselines or {}
    header = [task["name"], *(f"model {s}" for s in stages), *(f"{b} test" for b in baselines)]
    rows = [[n, *(fmt_number(metrics.get(f"{s}/{n}")) for s in stages), *(fmt_number(b.get(n)) for b in baselines.values())]
            for n in names]
    return markdown_table(header, rows)


def finite(metrics: dict) -> dict:
    """Metrics with NaN replaced by None (JSON)."""
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in metrics.items()}


def write_test_metrics(output_dir, task, metrics: dict, checkpoint: str | None, datamodule: FinetuneDataModule,
                       steps: int | None = None, baselines: dict[str, dict[str, float]] | None = None,
                       backbone: str | None = None) -> Path:
    """`<output_dir>/test_metrics.json`: the test metrics (`test/<name>` of `metrics`, without the prefix),
    the validation metrics of the same checkpoint, the baselines' test metrics, and what they came from."""
    task = plain_task(task)

    def stage(prefix):
        return finite({k.split("/", 1)[1]: float(v) for k, v in metrics.items() if k.startswith(prefix + "/")})
    record = {
        "task": task["name"],
        "backbone": backbone,
        "metrics": stage("test"),
        "val_metrics": stage("val"),
        "baselines": {name: finite(m) for name, m in (baselines or {}).items()},
        "monitor": task["monitor"],
        "monitor_mode": task["monitor_mode"],
        "checkpoint": checkpoint or None,
        "num_train": len(datamodule.examples["train"]) if "train" in datamodule.examples else None,
        "num_test": len(datamodule.load_examples("test")),
        "truncated": truncated_records(datamodule),
        "steps": steps,
    }
    path = Path(output_dir) / "test_metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


def truncated_records(datamodule: FinetuneDataModule) -> dict[str, list[int]]:
    """{split: [records truncated to the model's maximum, records]} of every split encoded so far."""
    return {s: [int(datamodule.cropped[s]), len(datamodule.encoded[s])] for s in SPLITS if s in datamodule.cropped}


def truncation_line(datamodule: FinetuneDataModule) -> str:
    """One line on the records longer than the model reads (per split), for the printed report."""
    counts = truncated_records(datamodule)
    text = ", ".join(f"{s} {n} of {total}" for s, (n, total) in counts.items())
    limit = min(int(datamodule.task.get("max_length") or datamodule.tokenizer.max_tokens), datamodule.tokenizer.max_tokens)
    return f"records truncated to {limit} tokens (their last nucleotides not read): {text or '-'}"


def write_test_predictions(output_dir, module, datamodule: FinetuneDataModule) -> Path:
    """`<output_dir>/test_predictions.npz` from the module's last evaluated split (the test split): `preds`
    (N, C) head outputs, `targets` (N,) or (N, C), `record_index` (N,) the index of each item's record in the
    test split (a sequence task: one item per record; a per-nucleotide task: one per scored nucleotide),
    `record_ids` (R,) the records' names, so paired comparisons can check they score the same records."""
    preds, targets, records = module.epoch_predictions()
    path = Path(output_dir) / "test_predictions.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, preds=preds.numpy(), targets=targets.numpy(), record_index=records.numpy(),
                        record_ids=np.asarray([str(ex.id) for ex in datamodule.load_examples("test")]))
    return path


def test_best_checkpoint(trainer, module, datamodule: FinetuneDataModule, output_dir: str, baselines: bool = True,
                         fold_workers: int = 1, cache_dir: str | None = None) -> tuple[dict, str]:
    """The best checkpoint (on the task's validation metric) scored on the validation and test splits, with the
    baselines on the same test items; writes test_metrics.json and test_predictions.npz. Returns (metrics, the
    table to print)."""
    best = (trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else None) or None
    metrics = dict(trainer.validate(module, datamodule=datamodule, ckpt_path=best, verbose=False)[0])
    rows = {}
    if datamodule.has_split("test"):
        metrics.update(trainer.test(module, datamodule=datamodule, ckpt_path=best, verbose=False)[0])
        if trainer.is_global_zero:
            if baselines:
                rows = baseline_rows(module.task, datamodule, workers=fold_workers, cache_dir=cache_dir)
            write_test_predictions(output_dir, module, datamodule)
            write_test_metrics(output_dir, module.task, metrics, best, datamodule, trainer.global_step, rows,
                               module.backbone.name)
    lines = [metrics_table(module.task, metrics, baselines=rows), "", f"steps: {trainer.global_step}",
             truncation_line(datamodule), f"best checkpoint: {best or '-'}"]
    return metrics, "\n".join(lines)


def evaluate_checkpoint(ckpt: str, task, trainer, cache_dir: str | None = None, eval_limit: int | None = None,
                        max_tokens: int = 16384, attention_backend: str = "auto", fold_workers: int = 1) -> dict:
    """Score a fine-tuned checkpoint on the test split of `task` (read from the task's data_dir); the backbone,
    LoRA, head and structure input come from the checkpoint. Prints the table and how many items were scored
    (and that it differs from the run's, when it does); returns {"test/<metric>": value}."""
    import torch

    from omnigenome.finetune.module import FinetuneModule
    from omnigenome.training.trainer import evaluation_trainer
    if not hasattr(trainer, "test"):  # a trainer config
        trainer = evaluation_trainer(trainer)
    module = FinetuneModule.from_checkpoint(ckpt, attention_backend)
    task = plain_task(task)
    trained = module.task
    if (trained["head"], int(trained["num_labels"])) != (task["head"], int(task["num_labels"])):
        raise ValueError(f"{ckpt} was fine-tuned on {trained['name']} ({trained['head']}, {trained['num_labels']} "
                         f"outputs); task {task['name']} needs {task['head']} with {task['num_labels']}")
    if trained["name"] != task["name"]:
        log.warning("%s was fine-tuned on %s; scoring it on %s", ckpt, trained["name"], task["name"])
    datamodule = FinetuneDataModule(task, module.backbone.tokenizer, max_tokens=max_tokens,
                                    structure_input=module.hparams.structure_input, cache_dir=cache_dir,
                                    eval_limit=eval_limit, fold_workers=fold_workers)
    metrics = trainer.test(module, datamodule=datamodule, verbose=False)[0]
    if trainer.is_global_zero:
        scored = len(datamodule.load_examples("test"))
        line = f"\n{ckpt}: {scored} test examples scored ({datamodule.cropped.get('test', 0)} truncated)"
        run = torch.load(ckpt, map_location="cpu", weights_only=True, mmap=True).get(FinetuneDataModule.__qualname__)
        if run is not None and run.get("eval_limit") != eval_limit:
            line += (f"; the run scored a different set (data.eval_limit={run['eval_limit']}, here {eval_limit}): "
                     f"pass eval_limit={run['eval_limit']} to score the run's items")
        print(line)
        print(metrics_table(task, metrics, stages=("test",)))
    return metrics
