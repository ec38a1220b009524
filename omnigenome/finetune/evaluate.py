"""Scoring fine-tuning tasks: the encoder to start from, a fine-tuned checkpoint on a test split, and the
baselines every result is read against (majority class / train mean, and ViennaRNA for structure tasks).

Model and baselines are scored on exactly the same items: the datamodule's encoded (cropped) labels,
flattened by `heads.scored_items`, through the one `omnigenome.metrics.task_metrics`.
"""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from omnigenome.finetune.datamodule import Encoded, FinetuneDataModule, collate, plain_task
from omnigenome.finetune.heads import CLASSIFICATION_HEADS, REGRESSION_HEADS, scored_items
from omnigenome.finetune.module import load_finetuned, task_metrics

log = logging.getLogger("omnigenome")


# --- the encoder to fine-tune ----------------------------------------------------------------------

def initial_encoder(cfg):
    """The OmniGenomeModel named by `cfg.init_from`: a train.py checkpoint, a Hugging Face directory,
    "last" (the newest pretraining run's last.ckpt), or None (a random `cfg.model`, said loudly)."""
    import hydra

    from omnigenome.training import run
    init = cfg.get("init_from")
    if init in (None, ""):
        log.warning("=" * 88)
        log.warning("init_from=null: fine-tuning a RANDOMLY INITIALISED model (no pretraining). Smoke tests only;")
        log.warning("pass init_from=<train.py checkpoint | Hugging Face dir | last> for a real run.")
        log.warning("=" * 88)
        return hydra.utils.instantiate(cfg.model)
    path = run.resolve_checkpoint(init, cfg.paths.log_dir, "pretrain") if init == "last" else str(init)
    model = run.load_model(path, cfg.model.get("attention_backend", "auto"))
    c = model.config
    log.info("encoder from %s: %d layers, hidden %d, %s parameters (the model= group's architecture is ignored)",
             path, c.num_layers, c.hidden_size, f"{model.num_parameters():,}")
    return model


# --- reports ---------------------------------------------------------------------------------------

def metrics_table(task, metrics: dict, stages: Sequence[str] = ("val", "test"),
                  baselines: dict[str, dict[str, float]] | None = None) -> str:
    """The task's metrics (and loss) per stage as a text table (also valid Markdown); `baselines`
    ({name: test metrics}) add one column each."""
    task = plain_task(task)
    names = [*task["metrics"], "loss"]
    stages = [s for s in stages if any(f"{s}/{n}" in metrics for n in names)]
    baselines = baselines or {}

    def fmt(v):
        return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{float(v):.4f}"
    rows = [[f"{task['name']}", *(f"model {s}" for s in stages), *(f"{b} test" for b in baselines)]]
    for n in names:
        rows.append([n, *(fmt(metrics.get(f"{s}/{n}")) for s in stages), *(fmt(b.get(n)) for b in baselines.values())])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def write_test_metrics(output_dir, task, metrics: dict, checkpoint: str | None, datamodule: FinetuneDataModule,
                       trainer=None, baselines: dict[str, dict[str, float]] | None = None) -> Path:
    """`<output_dir>/test_metrics.json`: the test metrics (`test/<name>` of `metrics`, without the prefix),
    the validation metrics of the same checkpoint (`val/<name>`), the baselines' test metrics, and what
    they came from."""
    task = plain_task(task)

    def stage(prefix):
        return finite({k.split("/", 1)[1]: float(v) for k, v in metrics.items() if k.startswith(prefix + "/")})
    record = {
        "task": task["name"],
        "metrics": stage("test"),
        "val_metrics": stage("val"),
        "baselines": {name: finite(m) for name, m in (baselines or {}).items()},
        "monitor": task["monitor"],
        "monitor_mode": task["monitor_mode"],
        "checkpoint": checkpoint or None,
        "num_train": len(datamodule.examples["train"]) if "train" in datamodule.examples else None,
        "num_test": len(datamodule.load_examples("test")),
        "cropped_test": datamodule.cropped.get("test", 0),
        "steps": trainer.global_step if trainer is not None else None,
    }
    path = Path(output_dir) / "test_metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


# --- a fine-tuned checkpoint on a split --------------------------------------------------------------

def evaluate_checkpoint(ckpt: str, task, trainer, cache_dir: str | None = None, eval_limit: int | None = None,
                        max_tokens: int = 16384, attention_backend: str = "auto", fold_workers: int = 1) -> dict:
    """Score a fine-tuned checkpoint on the test split of `task` (read from the task's data_dir); the head,
    LoRA and structure input come from the checkpoint. Prints the table; returns {"test/<metric>": value}."""
    module = load_finetuned(ckpt, attention_backend)
    task = plain_task(task)
    trained = module.task
    if (trained["head"], int(trained["num_labels"])) != (task["head"], int(task["num_labels"])):
        raise ValueError(f"{ckpt} was fine-tuned on {trained['name']} ({trained['head']}, {trained['num_labels']} "
                         f"outputs); task {task['name']} needs {task['head']} with {task['num_labels']}")
    if trained["name"] != task["name"]:
        log.warning("%s was fine-tuned on %s; scoring it on %s", ckpt, trained["name"], task["name"])
    datamodule = FinetuneDataModule(task, max_tokens=max_tokens, structure_input=module.hparams.structure_input,
                                    cache_dir=cache_dir, eval_limit=eval_limit, fold_workers=fold_workers)
    metrics = trainer.test(module, datamodule=datamodule, verbose=False)[0]
    if trainer.is_global_zero:
        print(f"\n{ckpt}: {len(datamodule.load_examples('test'))} test examples"
              f" ({datamodule.cropped.get('test', 0)} cropped)")
        print(metrics_table(task, metrics, stages=("test",)))
    return metrics


# --- baselines -------------------------------------------------------------------------------------

def labels_of(items: Sequence[Encoded], head: str) -> torch.Tensor:
    """The labels of encoded examples, as the model's batches hold them."""
    return collate(list(items), head)["labels"]


def constant_prediction(task, train_items: Sequence[Encoded]) -> torch.Tensor:
    """What a context-free predictor outputs for every item, from the training labels: log class frequencies
    for classification (argmax = the majority class), logit of each label's prevalence for multilabel, the
    mean of each target for regression. Shape (C,)."""
    task = plain_task(task)
    head, num = task["head"], int(task["num_labels"])
    labels = labels_of(train_items, head)
    dummy = torch.zeros(labels.shape[0], num)
    _, targets = scored_items(head, dummy, labels)
    if head in CLASSIFICATION_HEADS:
        counts = torch.bincount(targets, minlength=num).double()
        return torch.log((counts + 1) / (counts.sum() + num)).float()  # add-one: unseen classes stay finite
    if head == "multilabel":
        p = targets.double().mean(0).clamp(1e-6, 1 - 1e-6)
        return torch.log(p / (1 - p)).float()
    return targets.double().mean(0).float()


def score_predictions(task, preds: torch.Tensor, items: Sequence[Encoded]) -> dict[str, float]:
    """The task's metrics of per-item predictions `preds` (rows aligned with the items' labels)."""
    task = plain_task(task)
    p, t = scored_items(task["head"], preds, labels_of(items, task["head"]))
    return task_metrics(task["metrics"], p, t, task["head"], int(task["num_labels"]))


def constant_baseline(task, train_items: Sequence[Encoded], test_items: Sequence[Encoded]) -> dict[str, float]:
    """Majority class (classification) / train mean (regression) on the test items."""
    task = plain_task(task)
    value = constant_prediction(task, train_items)
    rows = labels_of(test_items, task["head"]).shape[0]
    return score_predictions(task, value.expand(rows, -1).clone(), test_items)


def is_structure_task(task) -> bool:
    """A secondary structure task: RGB JSON lines whose labels are dot-brackets."""
    task = plain_task(task)
    return task["format"] == "rgb_jsonl" and task.get("label_kind", "structure") == "structure"


def vienna_baseline(task, examples: Sequence, items: Sequence[Encoded], workers: int = 1,
                    cache_dir: str | None = None) -> dict[str, float]:
    """ViennaRNA MFE structures of a structure task's examples, scored as per-nucleotide predictions."""
    from omnigenome.ssp.zero_shot import vienna_structures
    from omnigenome.structure import STRUCTURE_LABELS, to_labels
    task = plain_task(task)
    if not is_structure_task(task):
        raise ValueError(f"task {task['name']} is not a structure task")
    names = task.get("label_names") or list(STRUCTURE_LABELS)
    order = np.asarray([names.index(c) for c in STRUCTURE_LABELS])  # to_labels id -> the task's class id
    structures = vienna_structures([ex.sequence for ex in examples], workers=workers, cache_dir=cache_dir)
    predicted = np.concatenate([order[np.asarray(to_labels(s), dtype=np.int64)][: it.num_nucleotides]
                                for s, it in zip(structures, items)])
    preds = torch.nn.functional.one_hot(torch.from_numpy(predicted), len(names)).float()
    return score_predictions(task, preds, items)


def baseline_rows(task, datamodule: FinetuneDataModule, vienna: bool = True, workers: int = 1,
                  cache_dir: str | None = None) -> dict[str, dict[str, float]]:
    """{"majority" or "mean": metrics, and "ViennaRNA" for structure tasks} on the test split."""
    task = plain_task(task)
    name = "mean" if task["head"] in REGRESSION_HEADS else "majority"
    rows = {name: constant_baseline(task, datamodule.encode("train"), datamodule.encode("test"))}
    if vienna and is_structure_task(task):
        rows["ViennaRNA"] = vienna_baseline(task, datamodule.load_examples("test"), datamodule.encode("test"),
                                            workers=workers, cache_dir=cache_dir)
    return rows


def finite(metrics: dict) -> dict:
    """Metrics with NaN replaced by None (JSON)."""
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in metrics.items()}

