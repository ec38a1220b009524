"""Does the data path keep a GPU fed? Packed, masked batches per second against the training step's demand.

Builds the pretraining DataLoader exactly as training does (token-budget batches of all three objectives'
views, masks drawn in the workers) and times how fast it yields batches with 0, 1, 2, ... workers.
The demand is the step rate of the 52m model on one GPU, which cannot be measured on a CPU machine: it
is assumed from the FLOPs of these very batches (`OmniGenomeConfig.training_flops`) at a stated MFU of a
stated bf16 peak (default: 40 % of an H100's 989 TFLOP/s, the throughput issue's goal). The goal is a
loader at least 10x faster than that demand; the table says how many workers reach it.

    python experiments/bench_loader.py                       # sample corpus, max_tokens 16384
    python experiments/bench_loader.py --corpus corpus/ --workers 0 1 2 4 8
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from omnigenome import OmniGenomeConfig  # noqa: E402
from omnigenome.objectives import PretrainingObjectives  # noqa: E402
from omnigenome.training.datamodule import PretrainDataModule, unflatten_batch  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=None, help="a corpus from `omnigenome prep` (default: sample)")
    ap.add_argument("--max-tokens", type=int, default=16384, help="token budget per micro-batch (data=shards)")
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--batches", type=int, default=150, help="timed batches per measurement")
    ap.add_argument("--peak-tflops", type=float, default=989.0, help="GPU bf16 peak assumed for the demand")
    ap.add_argument("--mfu", type=float, default=0.40, help="MFU assumed for the demand")
    args = ap.parse_args(argv)

    objectives = PretrainingObjectives(mlm={"weight": 1}, str2seq={"weight": 1}, seq2str={"weight": 1})
    sample = None if args.corpus else {"cache_dir": str(ROOT / "data" / "sample_corpus"), "num_records": 3000}
    dm = PretrainDataModule(objectives, corpus_dir=str(args.corpus) if args.corpus else None, sample=sample,
                            max_tokens=args.max_tokens)
    dm.prepare_data()
    dm.setup("fit")
    cfg = OmniGenomeConfig()  # 52m

    rows = []
    demand = None
    for workers in args.workers:
        dm.num_workers = workers
        loader = dm.train_dataloader()
        it = iter(loader)
        next(it)  # start-up (worker processes) is not part of the steady rate
        tokens, flops, n = 0, 0.0, 0
        t0, cpu0 = time.perf_counter(), time.process_time()
        while n < args.batches:
            try:
                batch = unflatten_batch(next(it))  # what training does after the device copy
            except StopIteration:
                it = iter(loader)
                continue
            cu = batch["cu_seqlens"].tolist()
            tokens += batch["num_tokens"]
            flops += cfg.training_flops(b - a for a, b in zip(cu[:-1], cu[1:]))
            n += 1
        elapsed = time.perf_counter() - t0
        main_cpu = time.process_time() - cpu0  # the training process's own share of the data path
        del it, loader
        if demand is None:  # the same batches for every worker count: one demand
            demand = args.mfu * args.peak_tflops * 1e12 / (flops / n)  # steps per second on the GPU
        rows.append((workers, n / elapsed, tokens / elapsed, 1e3 * main_cpu / n))

    print(f"corpus: {len(dm.train_corpus)} train records; max_tokens {args.max_tokens}; three objectives' views")
    print(f"assumed demand: 52m training steps on one GPU at {args.mfu:.0%} MFU of {args.peak_tflops:.0f} TFLOP/s "
          f"= {demand:.1f} steps/s (goal: loader >= 10x = {10 * demand:.0f} batches/s)\n")
    header = ("workers", "batches/s", "tokens/s", "x demand", "main-process CPU ms/batch")
    table = [header] + [(str(w), f"{b:,.1f}", f"{t:,.0f}", f"{b / demand:.1f}x", f"{m:.2f}") for w, b, t, m in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    print("\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in table))
    per_worker = rows[0][1]  # workers=0 is one process building batches
    needed = math.ceil(10 * demand / per_worker)
    print(f"\none process builds {per_worker:,.0f} batches/s ({per_worker / demand:.1f}x the demand), using "
          f"{rows[0][3]:.2f} ms of CPU per batch; {needed} process(es) (one core each) reach 10x.")
    if len(rows) > 1:
        receive = min(m for *_, m in rows[1:])
        print(f"with workers the training process only receives batches: {receive:.2f} ms of its CPU per batch, "
              f"a ceiling of {1e3 / receive:,.0f} batches/s ({1e3 / receive / demand:.0f}x the demand).")


if __name__ == "__main__":
    main()
