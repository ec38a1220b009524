"""Zero-shot structure prediction from a small model pretrained on CPU for a fixed wall time.

    python experiments/zero_shot_cpu.py --minutes 10

1. Corpus: the *sequences* of the Archive2 and bpRNA training splits (their curated labels are never
   read for training), refolded with ViennaRNA MFE, minus any sequence that also occurs in a test
   split; 2% held out for validation. Written as shards once and reused (`--work-dir`).
2. Pretraining: the project's tiny model and all three objectives (conf/train.yaml with
   data=shards), on CPU, stopped after `--minutes`; the learning rate warms up, then follows a cosine
   over the *time* budget (the step count a budget buys depends on the machine).
3. Zero-shot evaluation of the Seq2Str head on the Archive2 and bpRNA test splits with the `valid`
   decoder (with and without `canonical_only`) and the `argmax` decoder, with ViennaRNA MFE beside it: one
   table. The model is saved in the Hugging Face layout, so
   `python evaluate.py evaluation=ssp_zero_shot task=rgb/ssp_archive2 ckpt=<work-dir>/model` scores it again.

The model learns ViennaRNA's structures, so ViennaRNA itself is the ceiling it approaches.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from datetime import timedelta
from pathlib import Path

import hydra
import lightning as L
import torch
from lightning.pytorch.callbacks import TQDMProgressBar

from omnigenome.data.benchmarks import load_split, task_config
from omnigenome.data.shards import INDEX, write_shards
from omnigenome.folding import mfe_structures
from omnigenome.settings import benchmark_dir, compose
from omnigenome.ssp.zero_shot import format_table, score_split
from omnigenome.training.trainer import quiet_lightning

DATASETS = ("archive2", "bprna")


def split(dataset: str, name: str, benchmark_root: Path, limit: int | None = None) -> list:
    return load_split(task_config(f"rgb/ssp_{dataset}", benchmark_dir=benchmark_root), name, limit=limit)


def build_corpus(benchmark_root: Path, out: Path, workers: int, max_length: int, valid_fraction: float = 0.02,
                 seed: int = 0) -> Path:
    """Shards of (id, training-split sequence of at most `max_length` nt, ViennaRNA MFE structure); reused when
    present."""
    if (out / "train" / INDEX).is_file() and (out / "valid" / INDEX).is_file():
        return out
    test = {r.sequence.upper() for d in DATASETS for r in split(d, "test", benchmark_root)}
    seen, records = set(), []
    for d in DATASETS:
        for r in split(d, "train", benchmark_root):
            s = r.sequence.upper()
            if s in seen or s in test or len(s) > max_length:
                continue
            seen.add(s)
            records.append((f"{d}-{r.id}", s))
    print(f"corpus: {len(records)} distinct training-split sequences of at most {max_length} nt (test sequences "
          f"removed), folding with ViennaRNA")
    structures = mfe_structures([s for _, s in records], workers=workers, cache_dir=out.parent / "cache", progress=True)
    rng = torch.Generator().manual_seed(seed)
    is_valid = torch.rand(len(records), generator=rng) < valid_fraction
    rows = [(rid, s, t) for (rid, s), t in zip(records, structures)]
    write_shards((r for r, v in zip(rows, is_valid) if not v), out / "train")
    write_shards((r for r, v in zip(rows, is_valid) if v), out / "valid")
    return out


class TimeCosineLR(L.Callback):
    """Linear warmup over `warmup_steps`, then cosine decay to `min_ratio` x lr over the wall-time budget."""

    def __init__(self, budget_s: float, warmup_steps: int = 40, min_ratio: float = 0.1):
        self.budget_s, self.warmup_steps, self.min_ratio = budget_s, warmup_steps, min_ratio
        self.start = self.base = None

    def on_train_start(self, trainer, pl_module):
        self.start = time.monotonic()
        self.base = [g["lr"] for g in trainer.optimizers[0].param_groups]

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        step = trainer.global_step
        if step < self.warmup_steps:
            factor = (step + 1) / self.warmup_steps
        else:
            progress = min(1.0, (time.monotonic() - self.start) / self.budget_s)
            factor = self.min_ratio + (1 - self.min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
        for group, base in zip(trainer.optimizers[0].param_groups, self.base):
            group["lr"] = base * factor


def pretrain(corpus: Path, minutes: float, work_dir: Path, overrides: list[str]):
    """The project's pretraining config with data=shards, trained for `minutes` of wall time."""
    budget_s = minutes * 60
    cfg = compose("train", overrides=[
        "data=shards", f"data.corpus_dir={corpus}", "data.max_tokens=4096", "data.num_workers=0",
        "data.pin_memory=false", "trainer=cpu", "trainer.max_steps=-1", "callbacks=none", "logger=none",
        "module.scheduler=null", f"paths.output_dir={work_dir}", *overrides])
    quiet_lightning()
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = hydra.utils.instantiate(cfg.data)
    module = hydra.utils.instantiate(cfg.module)
    model = module.model
    # train.py's progress bar (no epoch count: the run ends on time, not after a number of epochs)
    bar = TQDMProgressBar(refresh_rate=10)
    trainer = hydra.utils.instantiate(cfg.trainer, logger=False, callbacks=[TimeCosineLR(budget_s), bar],
                                      max_time=timedelta(seconds=budget_s), enable_progress_bar=True,
                                      limit_val_batches=0, enable_checkpointing=False)
    print(f"pretraining {model.num_parameters():,} parameters for {minutes:g} min on CPU")
    start = time.monotonic()
    trainer.fit(module, datamodule=datamodule)
    info = {"steps": trainer.global_step, "minutes": (time.monotonic() - start) / 60,
            "train_loss": float(trainer.callback_metrics.get("train/loss", float("nan")))}
    return model.eval(), info


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[1].strip(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=10.0, help="pretraining wall time (default 10)")
    p.add_argument("--benchmark-root", type=Path, default=Path(benchmark_dir()),
                   help="folder holding rgb/RNA-SSP-* (default $OMNIGENOME_BENCHMARK_DATA or ../shared/data)")
    p.add_argument("--work-dir", type=Path, default=Path("data") / "zero_shot_cpu",
                   help="corpus, ViennaRNA cache and the trained model (default data/zero_shot_cpu)")
    p.add_argument("--workers", type=int, default=2, help="ViennaRNA folding processes (default 2)")
    p.add_argument("--max-length", type=int, default=400,
                   help="longest training sequence in the corpus (default 400 nt: folding time grows as length^3, "
                        "and bpRNA's few long records would take most of it)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's choice). On a CPU shared with other jobs, 1 thread can be "
                        "many times faster than 2 oversubscribed ones")
    p.add_argument("--limit", type=int, default=None, help="score only the first N test records (quick checks)")
    p.add_argument("--model", type=Path, help="score this model instead of pretraining one (e.g. <work-dir>/model)")
    p.add_argument("overrides", nargs="*", help="extra Hydra overrides of conf/train.yaml, e.g. model.num_layers=6")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    if args.model:
        from omnigenome.model.loading import load_model
        model = load_model(args.model)
    else:
        corpus = build_corpus(args.benchmark_root, args.work_dir / "corpus", args.workers, args.max_length)
        model, info = pretrain(corpus, args.minutes, args.work_dir / "run", args.overrides)
        model.save_pretrained(args.work_dir / "model")
        print(f"\npretrained {info['steps']} steps in {info['minutes']:.1f} min (final train loss "
              f"{info['train_loss']:.3f}); model saved to {args.work_dir / 'model'}")

    rows = {}
    for d in DATASETS:
        records = split(d, "test", args.benchmark_root, limit=args.limit)
        scored = score_split(records, model, decoders=("valid", "argmax"), canonical_only=(False, True),
                             workers=args.workers, cache_dir=args.work_dir / "cache")
        rows.update({f"{d} test: {name}": s for name, s in scored.items()})
    print(format_table(rows, "zero-shot secondary structure prediction (Seq2Str head, no fine-tuning)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
