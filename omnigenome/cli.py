"""The `omnigenome` command line.

    omnigenome prep INPUT.fasta[.gz]... --out DIR    FASTA -> folded, sharded train/val corpus

Each subcommand is a `_add_<name>` function that declares its arguments and a `_run_<name>`
function that does the work; more subcommands (fold, design) plug in the same way.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # respects taskset / cgroup CPU pinning
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _add_prep(subparsers) -> None:
    p = subparsers.add_parser(
        "prep", help="build a pretraining corpus from FASTA files",
        description="Normalise (RNA alphabet, upper case), filter by length, de-duplicate exactly, fold with "
                    "ViennaRNA, split train/val by a hash of the sequence, and write DIR/train, DIR/val and "
                    "DIR/manifest.json.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="FASTA or FASTA.gz files")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (must not hold a corpus yet)")
    p.add_argument("--min-length", type=int, default=50, help="drop sequences shorter than this (nt; default 50)")
    p.add_argument("--max-length", type=int, default=1022,
                   help="drop sequences longer than this (nt; default 1022 = 1024 positions - <cls> - <eos>)")
    p.add_argument("--records-per-shard", type=int, default=100_000, help="default 100000")
    p.add_argument("--workers", type=int, default=_available_cores(),
                   help="folding processes (default: all available cores)")
    p.add_argument("--val-fraction", type=float, default=0.01, help="share of sequences for validation (default 0.01)")
    p.add_argument("--seed", type=int, default=0, help="seed of the train/val split hash (default 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=_run_prep)


def _run_prep(args: argparse.Namespace) -> int:
    from omnigenome.data.prep import format_summary, prepare_corpus

    manifest = prepare_corpus(args.inputs, args.out, min_length=args.min_length, max_length=args.max_length,
                              records_per_shard=args.records_per_shard, workers=args.workers,
                              val_fraction=args.val_fraction, seed=args.seed, progress=not args.no_progress)
    print(format_summary(manifest))
    invalid = manifest["invalid"]
    if invalid:
        print(f"{len(invalid)} invalid record(s) skipped, for example:")
        for item in invalid[:5]:
            print(f"  {item['file']}, line {item['line']}: {item['reason']}")
    print(f"wrote {args.out}/train, {args.out}/val and {args.out}/manifest.json")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="omnigenome", description="OmniGenome RNA foundation model tools")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_prep(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 bad input).

    Input errors (malformed FASTA, an output directory that already holds a corpus, bad option
    values) are printed to stderr as one line, without a traceback. argparse usage errors exit
    with status 2 through SystemExit, as usual.
    """
    from omnigenome.data.fasta import FastaError

    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (FastaError, FileExistsError, FileNotFoundError, ValueError) as e:
        print(f"omnigenome {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
