"""Comparing fine-tuned backbones on the same test records: the mean and spread over seeds, and each model's
paired difference from a reference model with a bootstrap interval over test records.

A fine-tuning run writes the test split's scored items (`test_predictions.npz`, see
`omnigenome.finetune.report.write_test_predictions`): head outputs, targets and the record each item belongs
to. The bootstrap resamples records, not items: a per-nucleotide task (SSP, SNMD, SNMR, mRNA) resamples whole
sequences with all their nucleotides, since nucleotides of one sequence are not independent. With several seeds,
each resample compares the seed-mean metric of the two models on that resample, so the interval covers the test
records' sampling; the seed spread is reported beside it (mean ± std).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

from omnigenome.metrics import task_metrics


@dataclass
class TestPredictions:
    """The scored test items of one run: preds (N, C), targets (N,) or (N, C), record_index (N,) into
    record_ids (R,), the names of the split's records."""
    preds: np.ndarray
    targets: np.ndarray
    record_index: np.ndarray
    record_ids: np.ndarray

    @classmethod
    def load(cls, path: str | Path) -> "TestPredictions":
        with np.load(path) as z:
            return cls(z["preds"], z["targets"], z["record_index"].astype(np.int64), z["record_ids"])

    @property
    def num_records(self) -> int:
        return len(self.record_ids)

    def score(self, task: Mapping, metric: str, counts: np.ndarray | None = None) -> float:
        """The task's `metric` on these items, each record taken `counts[record]` times (None: once)."""
        preds, targets = self.preds, self.targets
        if counts is not None:
            take = np.repeat(np.arange(len(self.record_index)), counts[self.record_index])
            if take.size == 0:
                return math.nan
            preds, targets = preds[take], targets[take]
        value = task_metrics([metric], torch.from_numpy(preds), torch.from_numpy(targets), task["head"],
                             int(task["num_labels"]), probabilities=False)[metric]
        return float(value)


def mean_std(values: Sequence[float | None]) -> tuple[float, float, int]:
    """(mean, sample standard deviation, n) of the finite values; std is 0 for one value, NaN for none."""
    finite = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not finite:
        return math.nan, math.nan, 0
    mean = sum(finite) / len(finite)
    var = sum((v - mean) ** 2 for v in finite) / (len(finite) - 1) if len(finite) > 1 else 0.0
    return mean, math.sqrt(var), len(finite)


def check_same_records(runs: Mapping[str, Sequence[TestPredictions]]) -> int:
    """The number of test records, after checking that every run scored the same records in the same order
    (a paired comparison needs it). Raises ValueError naming the first model that differs."""
    reference = None
    for model, preds in runs.items():
        for p in preds:
            if reference is None:
                reference = (model, p.record_ids)
            elif len(p.record_ids) != len(reference[1]) or not np.array_equal(p.record_ids, reference[1]):
                raise ValueError(f"{model} was scored on other test records than {reference[0]} "
                                 f"({len(p.record_ids)} vs {len(reference[1])}): data.eval_limit or the data differ, "
                                 f"so they cannot be compared record by record")
    if reference is None:
        raise ValueError("no predictions to compare")
    return len(reference[1])


def bootstrap_seed_means(task: Mapping, metric: str, runs: Mapping[str, Sequence[TestPredictions]],
                         resamples: int = 1000, seed: int = 0) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """The seed-mean `metric` of every model on the whole test split, and on `resamples` bootstrap resamples
    of its records (the same resamples for every model). Returns ({model: value}, {model: (resamples,)})."""
    num_records = check_same_records(runs)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # thousands of small metric computations: threads cost more than they give (6x here)
    try:
        full = {m: mean_std([p.score(task, metric) for p in preds])[0] for m, preds in runs.items()}
        rng = np.random.default_rng(seed)
        draws = {m: np.full(resamples, np.nan) for m in runs}
        for b in range(resamples):
            counts = np.bincount(rng.integers(0, num_records, num_records), minlength=num_records)
            for m, preds in runs.items():
                draws[m][b] = mean_std([p.score(task, metric, counts) for p in preds])[0]
    finally:
        torch.set_num_threads(threads)
    return full, draws


def paired_differences(task: Mapping, metric: str, runs: Mapping[str, Sequence[TestPredictions]], reference: str,
                       resamples: int = 1000, confidence: float = 0.95, seed: int = 0) -> dict[str, dict]:
    """For every model but `reference`: the difference of its seed-mean `metric` from the reference's on the
    whole test split (`delta`), and the percentile bootstrap interval of that difference over test records
    (`low`, `high`, at `confidence`), with the number of resamples where both metrics were defined (`resamples`)
    and the number of test records (`records`)."""
    if reference not in runs:
        raise ValueError(f"reference model {reference!r} has no predictions for task {task['name']}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    full, draws = bootstrap_seed_means(task, metric, runs, resamples, seed)
    records = runs[reference][0].num_records
    out = {}
    for model in runs:
        if model == reference:
            continue
        diff = draws[model] - draws[reference]
        valid = diff[np.isfinite(diff)]
        tail = 100 * (1 - confidence) / 2
        low, high = (np.percentile(valid, [tail, 100 - tail]) if valid.size else (math.nan, math.nan))
        out[model] = {"delta": full[model] - full[reference], "low": float(low), "high": float(high),
                      "resamples": int(valid.size), "records": records}
    return out
