"""Peak memory of `omnigenome embed` on a 2 MB and a 20 MB FASTA: streaming keeps it flat.

The FASTA files are generated into a temporary folder from ../shared/data/rna_fasta and the Arabidopsis
transcripts of ../shared/data/plant_transcripts (cut into windows of at most 1000 nt), repeated with a few
random substitutions per copy until the size is reached. Each run is `omnigenome embed` on a random tiny
model (conf/model/tiny.yaml: 4 layers, hidden 128) in its own process; its peak RSS (ru_maxrss) is read by a
wrapper process. Baseline in the same run: the same command on a 1-record FASTA (the model and libraries
alone). Per-nucleotide embeddings (--per-nucleotide) go to disk too, so they do not change the peak.

    python experiments/bench_embed.py [--sizes 2 20] [--format .npy] [--per-nucleotide] [--threads 2] [--model micro]

`--model micro` (1 layer, hidden 16) makes the compute negligible, so the same streaming path is measured on a
machine too slow or too busy for the tiny model on 20 MB.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from omnigenome import OmniGenomeModel  # noqa: E402
from omnigenome.utils import markdown_table  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
MODELS = {"tiny": dict(hidden_size=128, num_layers=4, num_heads=8, ffn_size=512),  # conf/model/tiny.yaml
          "micro": dict(hidden_size=16, num_layers=1, num_heads=2, ffn_size=32)}
WRAPPER = ("import resource, subprocess, sys, time; t = time.perf_counter(); rc = subprocess.run(sys.argv[1:]).returncode; "
           "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, time.perf_counter() - t, rc)")


def source_records() -> list[str]:
    from omnigenome.data.fasta import read_fasta
    seqs = [r.sequence for f in sorted((SHARED / "rna_fasta").glob("*.fasta")) for r in read_fasta(f)]
    with open(SHARED / "plant_transcripts" / "arabidopsis_regions.json") as f:
        for line in f:
            d = json.loads(line)
            t = "".join(d.get(k) or "" for k in ("5utr", "cds", "3utr"))
            seqs += [t[a:a + 1000] for a in range(0, len(t), 1000) if len(t[a:a + 1000]) >= 50]
    return [s for s in seqs if 0 < len(s) <= 1000]


def write_fasta(path: Path, megabytes: float, seqs: list[str], seed: int = 0) -> int:
    rng = np.random.default_rng(seed)
    target, n = megabytes * 1e6, 0
    with open(path, "w") as f:
        while f.tell() < target:
            s = list(seqs[n % len(seqs)])
            for i in rng.integers(0, len(s), size=3):
                s[i] = "ACGU"[rng.integers(4)]
            f.write(f">r{n}\n{''.join(s)}\n")
            n += 1
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[2, 20], help="FASTA sizes in MB")
    parser.add_argument("--format", default=".npy", choices=(".npy", ".safetensors", ".parquet"))
    parser.add_argument("--per-nucleotide", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", choices=list(MODELS), default="tiny")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        torch.manual_seed(0)
        OmniGenomeModel(**MODELS[args.model]).save_pretrained(tmp / "tiny")
        seqs = source_records()
        inputs = [("1 record (baseline: model and libraries)", tmp / "one.fa", None)]
        (tmp / "one.fa").write_text(f">r0\n{seqs[0]}\n")
        for mb in args.sizes:
            path = tmp / f"{mb:g}mb.fa"
            n = write_fasta(path, mb, seqs)
            inputs.append((f"{mb:g} MB FASTA", path, n))
        rows = []
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
        for name, path, n in inputs:
            out = tmp / f"out{args.format}"
            cmd = [sys.executable, "-m", "omnigenome.cli", "embed", str(tmp / "tiny"), str(path), "--out", str(out),
                   "--no-progress", "--device", "cpu"] + (["--per-nucleotide"] if args.per_nucleotide else [])
            done = subprocess.run([sys.executable, "-c", WRAPPER, *cmd], capture_output=True, text=True, env=env)
            rss_kb, seconds, rc = done.stdout.split()[-3:]
            if rc != "0":
                raise SystemExit(done.stderr[-2000:])
            nt = sum(len(line.strip()) for line in open(path) if not line.startswith(">"))
            size = sum(p.stat().st_size for p in tmp.glob("out*")) / 1e6
            rows.append([name, n or 1, f"{nt:,}", f"{float(seconds):.0f}", f"{nt / float(seconds):,.0f}",
                         f"{size:.1f}", f"{int(rss_kb) / 1024:.0f}"])
            print(rows[-1], flush=True)
    print(markdown_table(["input", "records", "nucleotides", "seconds", "nt/s", "output MB", "peak RSS MB"], rows,
                         title=f"\nomnigenome embed, {args.model} model, CPU {args.threads} threads, {args.format}"
                               f"{' with per-nucleotide embeddings' if args.per_nucleotide else ''}"))


if __name__ == "__main__":
    main()
