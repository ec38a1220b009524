"""Held-out design targets: natural RNA secondary structures (ArchiveII and bpRNA test splits).

    python experiments/design_heldout.py --budget 10 --workers 2                 # the designer, 90 targets
    python experiments/design_heldout.py trajectories=1 --out results/heldout_one_trajectory  # an ablation

The Eterna100 puzzles are what the designer is measured on; these targets are what it is checked on, so
that a change that only fits the 100 puzzles shows. The set is fixed by the data and a seed: the nested
(`(`, `)`, `.` only), designable (no hairpin under 3 nt), distinct test-split labels of
`../shared/data/rgb/RNA-SSP-{Archive2,bpRNA}/test.json`, shuffled with `--pick-seed`, of which
`--short` of 40-149 nt and `--long` of 150-400 nt. Many natural structures are not the MFE structure of any
sequence, so no method designs all of them.

The targets are written to OUT/targets.tsv (the Eterna100 columns) and run by `experiments/eterna100.py`
(same options: `--methods`, `--seed`, designer settings as key=value, resumable), which prints and writes the table.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "experiments"))

import eterna100  # noqa: E402

from omnigenome.design.targets import validate_target  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "rgb"
SPLITS = {"archive2": "RNA-SSP-Archive2/test.json", "bprna": "RNA-SSP-bpRNA/test.json"}


def natural_targets(data: Path, short: int, long: int, seed: int) -> list[tuple[str, str]]:
    """(name, structure) of `short` targets of 40-149 nt, then `long` of 150-400 nt."""
    found: dict[str, str] = {}  # structure -> name (first split and line that has it)
    skipped = {"outside 40-400 nt": 0, "pseudoknot brackets": 0, "hairpin under 3 nt": 0, "repeated": 0}
    for split, rel in SPLITS.items():
        path = data / rel
        if not path.exists():
            raise SystemExit(f"{path} not found (the RGB SSP test split; see ../shared/data/README.md)")
        for lineno, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            label = json.loads(line)["label"]
            reason = ("outside 40-400 nt" if not 40 <= len(label) <= 400 else
                      "pseudoknot brackets" if set(label) - set("().") else
                      "repeated" if label in found else None)
            if reason is None:
                try:
                    validate_target(label)
                except ValueError:
                    reason = "hairpin under 3 nt"
            if reason:
                skipped[reason] += 1
            else:
                found[label] = f"{split}:{lineno}"
    print(f"{len(found)} candidate targets; skipped " + ", ".join(f"{n} {why}" for why, n in skipped.items()),
          file=sys.stderr)
    rng = random.Random(seed)
    pool = sorted(found.items())
    rng.shuffle(pool)
    shorts = [(name, s) for s, name in pool if len(s) < 150][:short]
    longs = [(name, s) for s, name in pool if len(s) >= 150][:long]
    return shorts + longs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--short", type=int, default=60, help="targets of 40-149 nt (default 60)")
    ap.add_argument("--long", type=int, default=30, help="targets of 150-400 nt (default 30)")
    ap.add_argument("--pick-seed", type=int, default=0, help="seed of the choice of targets (default 0)")
    ap.add_argument("--data", type=Path, default=DATA, help="folder with the RGB SSP splits (default ../shared/data/rgb)")
    ap.add_argument("--out", type=Path, default=Path("results/heldout"))
    ap.add_argument("--budget", type=float, default=10.0, help="CPU seconds per target (default 10)")
    args, rest = ap.parse_known_args(argv)
    targets = natural_targets(args.data, args.short, args.long, args.pick_seed)
    args.out.mkdir(parents=True, exist_ok=True)
    tsv = args.out / "targets.tsv"
    with open(tsv, "w") as f:
        f.write("Puzzle #\tPuzzle Name\tSecondary Structure\n")
        for k, (name, structure) in enumerate(targets, start=1):
            f.write(f"{k}\t{name}\t{structure}\n")
    print(f"{len(targets)} natural targets -> {tsv}", file=sys.stderr)
    return eterna100.main(["--data", str(tsv), "--out", str(args.out), "--budget", str(args.budget),
                           "--methods", "designer", "--title", "Natural held-out targets", *rest])


if __name__ == "__main__":
    sys.exit(main())
