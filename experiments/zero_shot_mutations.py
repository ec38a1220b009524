"""Zero-shot mutation detection (RGB SNMD) and repair (RGB SNMR) from a masked LM, beside a k-mer Markov
baseline trained on the same data and, when given, fine-tuned checkpoints on the same test items.

    python experiments/zero_shot_mutations.py --model logs/pretrain/runs/<run>/checkpoints/last.ckpt \
        [--snmd-ckpt <finetuned snmd best.ckpt>] [--snmr-ckpt <finetuned snmr best.ckpt>] [--limit 200] [--order 3]

- SNMD: every base of the (mutated) test sequence gets its surprisal under the masked LM, -log p(observed base
  | the rest), from exact masked marginals (`omnigenome.inference.score`); the score of "mutated" is
  1 - p(observed), and ROC-AUC is taken against the mutated-base labels over all bases.
- SNMR: at each mutated position (the task's scored positions) the masked LM chooses the original base: the
  most probable of the three bases other than the one observed there (the position is known to be mutated);
  macro-F1 (and accuracy) over the four classes A, U, G, C.
- Baseline: a Markov chain of order k over A, C, G, U (add-one smoothing; lower orders at the 5' end) trained on
  the input sequences of valid.json (the local SNMD/SNMR copy has no train.json; the fine-tuning runs train on
  valid.json too), scoring the same test items through the exact conditional p(x_i | all other bases) of the
  chain, the Markov analogue of a masked marginal.
- Fine-tuned: a checkpoint of `train.py experiment=finetune task=rgb/snmd` (or snmr) scored by
  `omnigenome.finetune.report.evaluate_checkpoint`, the code evaluate.py runs, on the same test items.
Test items: all of test.json, or with --limit N the seeded subset `data.eval_limit=N` / `eval_limit=N` picks.
Metrics: `omnigenome.metrics.task_metrics`. The table is printed and written to --out.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from omnigenome.data.benchmarks import load_split, task_config  # noqa: E402
from omnigenome.metrics import task_metrics  # noqa: E402
from omnigenome.utils import fmt_number, markdown_table  # noqa: E402

BASES = "ACGU"
SNMR_CLASSES = ["A", "U", "G", "C"]  # the task's label_names order


def encode_bases(seq: str) -> np.ndarray:
    table = {b: i for i, b in enumerate(BASES)} | {"T": 3}
    return np.asarray([table.get(c, -1) for c in seq.upper()], dtype=np.int64)


class MarkovChain:
    """Order-k Markov chain over A C G U with add-one smoothing; positions j < k use order j."""

    def __init__(self, order: int):
        self.k = order
        self.counts = [np.ones((4 ** o, 4)) for o in range(order + 1)]

    def fit(self, sequences) -> "MarkovChain":
        for seq in sequences:
            x = encode_bases(seq)
            for j in range(len(x)):
                o = min(j, self.k)
                ctx = x[j - o:j]
                if x[j] < 0 or (ctx < 0).any():
                    continue
                self.counts[o][self._index(ctx), x[j]] += 1
        self.logp = [np.log(c / c.sum(1, keepdims=True)) for c in self.counts]
        return self

    @staticmethod
    def _index(ctx) -> int:
        i = 0
        for c in ctx:
            i = i * 4 + int(c)
        return i

    def _term(self, x, j) -> float:
        o = min(j, self.k)
        ctx = x[j - o:j]
        if x[j] < 0 or (ctx < 0).any():
            return 0.0
        return self.logp[o][self._index(ctx), x[j]]

    def masked_log_probs(self, seq: str, positions) -> np.ndarray:
        """(len(positions), 4) log p(x_i = b | every other base) under the chain."""
        x = encode_bases(seq)
        out = np.zeros((len(positions), 4))
        for r, i in enumerate(positions):
            scores = []
            for b in range(4):
                y = x.copy()
                y[i] = b
                scores.append(sum(self._term(y, j) for j in range(i, min(i + self.k + 1, len(y)))))
            s = np.asarray(scores)
            out[r] = s - np.logaddexp.reduce(s)
        return out


def snmd_scores(log_probs_per_record, examples) -> tuple[torch.Tensor, torch.Tensor]:
    """(preds (N, 2) = [p(observed), 1 - p(observed)], labels (N,)) over every base of the test items."""
    preds, labels = [], []
    for lp, ex in zip(log_probs_per_record, examples):
        x = encode_bases(ex.sequence)
        p_obs = np.where(x >= 0, np.exp(lp[np.arange(len(x)), np.maximum(x, 0)]), 0.5)
        preds.append(np.stack([p_obs, 1 - p_obs], 1))
        labels.append(ex.label)
    return torch.as_tensor(np.concatenate(preds)), torch.as_tensor(np.concatenate(labels))


def snmr_scores(log_probs_per_record, examples) -> tuple[torch.Tensor, torch.Tensor]:
    """(preds (N, 4) over A U G C, labels (N,)) at the mutated positions: the observed base is excluded."""
    order = [BASES.index(c) for c in SNMR_CLASSES]
    preds, labels = [], []
    for lp, ex in zip(log_probs_per_record, examples):
        positions = np.flatnonzero(ex.label != -100)
        x = encode_bases(ex.sequence)[positions]
        p = np.exp(lp)
        p[np.arange(len(positions)), np.maximum(x, 0)] = np.where(x >= 0, 0.0, p[np.arange(len(positions)), 0])
        p = p / p.sum(1, keepdims=True)
        preds.append(p[:, order])
        labels.append(ex.label[positions])
    return torch.as_tensor(np.concatenate(preds)), torch.as_tensor(np.concatenate(labels))


def model_log_probs(model, examples, positions_of, max_tokens: int) -> list[np.ndarray]:
    """Masked-LM log-probabilities (len(positions), 4) per example, positions masked one at a time."""
    from omnigenome.inference.batching import encode_chunk
    from omnigenome.inference.records import Record
    from omnigenome.inference.score import masked_marginals
    mlm = model.model.masked_lm()
    records = [Record(ex.id, ex.sequence, ex.id) for ex in examples]
    ok, _ = encode_chunk(mlm.tokenizer, records, model.model.max_tokens(), strict=True)
    items = [enc for _, enc in ok]
    out = []
    step = 64  # records per call, so the progress shows
    for a in range(0, len(items), step):
        groups = [[(int(p),) for p in positions_of(ex)] for ex in examples[a:a + step]]
        result = masked_marginals(mlm, items[a:a + step], groups, max_tokens)
        out += [np.concatenate(r) if r else np.zeros((0, 4)) for r in result]
        print(f"  masked LM: {min(a + step, len(items))}/{len(items)} records", file=sys.stderr, flush=True)
    return out


def finetuned_metrics(ckpt: str, task: dict, limit: int | None) -> dict:
    import lightning as L

    from omnigenome.finetune.report import evaluate_checkpoint
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_checkpointing=False,
                        enable_model_summary=False)
    metrics = evaluate_checkpoint(ckpt, task, trainer, eval_limit=limit)
    return {k.split("/", 1)[1]: v for k, v in metrics.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="pretrained model: train.py checkpoint or model folder")
    parser.add_argument("--snmd-ckpt", help="fine-tuned SNMD checkpoint (optional)")
    parser.add_argument("--snmr-ckpt", help="fine-tuned SNMR checkpoint (optional)")
    parser.add_argument("--limit", type=int, help="score the seeded subset of N test records (eval_limit=N)")
    parser.add_argument("--order", type=int, default=3, help="order of the Markov baseline (default 3)")
    parser.add_argument("--max-tokens", type=int, default=16384)
    parser.add_argument("--out", default=str(ROOT / "results" / "zero_shot_mutations.md"))
    args = parser.parse_args()

    import omnigenome
    from omnigenome.finetune.datamodule import subset  # the seeded subset eval_limit=N picks
    model = omnigenome.load(args.model)
    rows = []
    for name, scorer, metrics, ckpt in (("rgb/snmd", snmd_scores, ["roc_auc"], args.snmd_ckpt),
                                        ("rgb/snmr", snmr_scores, ["macro_f1", "accuracy"], args.snmr_ckpt)):
        task = task_config(name)
        test = subset(load_split(task, "test"), args.limit, 0)
        train = load_split(task, "valid")
        if name == "rgb/snmd":
            positions_of = lambda ex: np.arange(len(ex.sequence))  # noqa: E731
        else:
            positions_of = lambda ex: np.flatnonzero(ex.label != -100)  # noqa: E731
        started = time.perf_counter()
        chain = MarkovChain(args.order).fit(ex.sequence for ex in train)
        markov = scorer([chain.masked_log_probs(ex.sequence, positions_of(ex)) for ex in test], test)
        print(f"{name}: Markov baseline {time.perf_counter() - started:.0f} s", file=sys.stderr)
        started = time.perf_counter()
        mlm = scorer(model_log_probs(model, test, positions_of, args.max_tokens), test)
        print(f"{name}: masked LM {time.perf_counter() - started:.0f} s", file=sys.stderr)
        head, num = task["head"], int(task["num_labels"])
        zero = task_metrics(metrics, *mlm, head, num, probabilities=True)
        base = task_metrics(metrics, *markov, head, num, probabilities=True)
        tuned = finetuned_metrics(ckpt, task, args.limit) if ckpt else {}
        for m in metrics:
            rows.append([name, m, len(test), int(mlm[1].numel()), fmt_number(zero[m], 3), fmt_number(base[m], 3),
                         fmt_number(tuned.get(m), 3)])
    table = markdown_table(["task", "metric", "test records", "scored bases", "zero-shot masked LM",
                            f"Markov order {args.order} (trained on valid)", "fine-tuned"], rows)
    text = f"model: {args.model}\n\n{table}\n"
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(f"written to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
