"""Throughput of `omnigenome prep` against a plain serial loop of `RNA.fold` over the same sequences.

Inputs are real: the first `--per-file` records of each ../shared/data/rna_fasta/*.fasta (Rfam 5S,
tRNA, RNase P, an RNAcentral sample) and the first `--transcripts` Arabidopsis transcripts of
../shared/data/plant_transcripts/arabidopsis_regions.json (5'UTR + CDS + 3'UTR, cut into windows
of `--max-length` nt), copied to temporary files so that the pipeline reads files like a real run.

In one run, each measurement `--repeats` times (the best is kept, the machine may be shared):
  serial      `RNA.fold(s)` in a Python loop over exactly the sequences the pipeline folds
  prep w=1    prepare_corpus end to end (read, normalise, window, de-duplicate, plan, fold, write
              shards, merge) with one folding process
  prep w=2    the same with two folding processes
Overhead = pipeline time with 1 worker / serial time - 1; speed-up = 1 worker time / 2 worker time.
Then the cost of full-length windows (`--probe` windows of 1022 nt folded serially), from which
the core-hours per million sequences follow.

    python experiments/bench_prep.py                       # about 2 minutes on 2 cores
    python experiments/bench_prep.py --per-file 300 --transcripts 40 --repeats 2
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import RNA  # noqa: E402

from omnigenome.data.fasta import read_fasta  # noqa: E402
from omnigenome.data.prep import (WORK, FoldConfig, PrepConfig, WindowConfig, plan_corpus, prepare_corpus,  # noqa: E402
                                  windows)
from omnigenome.data.shards import ShardedCorpus  # noqa: E402
from omnigenome.tokenizer import OmniGenomeTokenizer  # noqa: E402


def sample_inputs(data: Path, tmp: Path, per_file: int, transcripts: int) -> list[Path]:
    files = []
    for src in sorted((data / "rna_fasta").glob("*.fasta")):
        dst = tmp / src.name
        dst.write_text("".join(f">{r.id}\n{r.sequence}\n" for r in itertools.islice(read_fasta(src), per_file)))
        files.append(dst)
    src = data / "plant_transcripts" / "arabidopsis_regions.json"
    dst = tmp / "arabidopsis_regions.jsonl"
    with open(src) as f:
        dst.write_text("".join(itertools.islice(f, transcripts)))
    files.append(dst)
    return files


def config(args, workers: int) -> PrepConfig:
    return PrepConfig(max_length=args.max_length, long_policy="window", window=WindowConfig(overlap=args.overlap),
                      records_per_shard=args.records_per_shard, progress=False,
                      fold=FoldConfig(workers=workers))


def planned_sequences(files: list[Path], tmp: Path, args) -> list[str]:
    """The sequences the pipeline will fold (its own plan stage), in plan order."""
    out = tmp / "plan-only"
    plan = plan_corpus(files, out, config(args, 1))
    seqs = []
    for unit in plan["units"]:
        with open(out / WORK / "units" / f"{unit['name']}.tsv") as f:
            seqs += [line.rstrip("\n").split("\t")[1] for line in f]
    shutil.rmtree(out)
    return seqs


def cpu_seconds() -> float:
    """CPU time of this process and of its finished child processes (the folding pool)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def time_serial(seqs: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of a plain RNA.fold loop."""
    start, cpu = time.perf_counter(), cpu_seconds()
    for s in seqs:
        RNA.fold(s)
    return time.perf_counter() - start, cpu_seconds() - cpu


def time_pipeline(files: list[Path], tmp: Path, args, workers: int) -> tuple[float, float, int]:
    out = tmp / f"prep-w{workers}"
    shutil.rmtree(out, ignore_errors=True)
    start, cpu = time.perf_counter(), cpu_seconds()
    manifest = prepare_corpus(files, out, config(args, workers))
    elapsed, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    n = manifest["train"]["records"] + manifest["val"]["records"]
    assert n == len(ShardedCorpus(out / "train")) + len(ShardedCorpus(out / "val"))
    shutil.rmtree(out)
    return elapsed, cpu, n


def probe_full_windows(data: Path, n: int) -> float:
    """CPU seconds per 1022-nt window of real transcripts (serial RNA.fold)."""
    normalize = OmniGenomeTokenizer(alphabet="U").normalize
    seqs = []
    with open(data / "plant_transcripts" / "arabidopsis_regions.json") as f:
        for line in f:
            d = json.loads(line)
            s = normalize(d["5utr"] + d["cds"] + d["3utr"])
            seqs += [s[a:b] for a, b in windows(len(s), 1022, 128) if b - a == 1022]
            if len(seqs) >= n:
                break
    seqs = seqs[:n]
    return time_serial(seqs)[1] / len(seqs)  # CPU time: robust to other jobs on the machine


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument("--per-file", type=int, default=150, help="records from each rna_fasta file")
    p.add_argument("--transcripts", type=int, default=12, help="Arabidopsis transcripts (windowed)")
    p.add_argument("--max-length", type=int, default=400, help="window length for long transcripts (nt)")
    p.add_argument("--overlap", type=int, default=50)
    p.add_argument("--records-per-shard", type=int, default=100_000)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--probe", type=int, default=4, help="1022-nt windows to time (0: skip)")
    args = p.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench_prep-") as tmp:
        tmp = Path(tmp)
        files = sample_inputs(args.data, tmp, args.per_file, args.transcripts)
        seqs = planned_sequences(files, tmp, args)
        nt = sum(map(len, seqs))
        print(f"{len(seqs)} sequences to fold ({nt:,} nt, mean {nt / len(seqs):.0f} nt, "
              f"max {max(map(len, seqs))} nt) from {len(files)} files", flush=True)
        best: dict = {}  # run -> (wall, cpu) of the fastest repeat
        for _ in range(args.repeats):
            # Interleaved, so that a change in the load of a shared machine hits all three alike.
            runs = {"serial": time_serial(seqs)}
            for w in (1, 2):
                wall, cpu, n = time_pipeline(files, tmp, args, w)
                assert n == len(seqs)
                runs[w] = (wall, cpu)
            for key, value in runs.items():
                best[key] = min(best.get(key, value), value)
        per_window = probe_full_windows(args.data, args.probe) if args.probe else None

    n = len(seqs)
    (serial, serial_cpu), (w1, w1_cpu), (w2, w2_cpu) = best["serial"], best[1], best[2]
    rows = [("serial RNA.fold loop", serial, serial_cpu, ""),
            ("omnigenome prep, 1 worker", w1, w1_cpu,
             f"overhead {100 * (w1 / serial - 1):+.1f}% wall, {100 * (w1_cpu / serial_cpu - 1):+.1f}% CPU"),
            ("omnigenome prep, 2 workers", w2, w2_cpu,
             f"speed-up {w1 / w2:.2f}x vs 1 worker; workers got {w2_cpu / (2 * w2):.0%} of 2 cores")]
    print("\n| run | records | wall s | CPU s | records/s | |\n|---|---:|---:|---:|---:|---|")
    for name, seconds, cpu, note in rows:
        print(f"| {name} | {n} | {seconds:.2f} | {cpu:.2f} | {n / seconds:.1f} | {note} |")
    load = os.getloadavg()[0]
    print(f"\nload average during the run: {load:.2f} on {os.cpu_count()} cores"
          + (" (shared machine: wall-clock speed-ups are limited by other jobs)" if load > os.cpu_count() else ""))
    per_seq = w1_cpu / n
    print(f"\ncost at this length mix (mean {nt / n:.0f} nt): {per_seq * 1e3:.1f} ms per sequence per core "
          f"= {per_seq * 1e6 / 3600:.1f} core-hours per million sequences")
    if per_window is not None:
        print(f"full-length 1022-nt transcript windows ({args.probe} folded): {per_window:.2f} CPU s each "
              f"= {per_window * 1e6 / 3600:,.0f} core-hours per million windows")


if __name__ == "__main__":
    main()
