"""Eterna100-V2: how many of the 100 puzzles each design method solves within a CPU-time budget.

    python experiments/eterna100.py --budget 60 --workers 2                 # the full benchmark
    python experiments/eterna100.py --budget 5 --limit 10                   # a quick look
    python experiments/eterna100.py --puzzles 1,5,7 --methods designer,ga
    python experiments/eterna100.py trajectories=1 --methods designer --out results/one_trajectory  # an ablation

Methods: `designer` (omnigenome.design's default local search, no model), `ga` (the paper's genetic
algorithm; MLM-guided with --model) and `rnainverse` (ViennaRNA's inverse_fold from random starts,
restarted until the budget ends). Solved means `RNA.fold` of the design equals the target, found
within the budget. Budgets are CPU seconds of the worker process (time.process_time), so a loaded
machine gives the same counts, only later. Every method's trajectory is independent of its budget,
so one run at budget B also gives the solved count at every smaller budget (from the time to solve):
the table lists several.

Each (method, puzzle) result is appended to OUT/results.jsonl as it finishes; a rerun skips those
already there (same budget, seed and designer settings), so an interrupted run resumes. Writes OUT/summary.md,
OUT/results.csv and OUT/solved_vs_budget.png (if matplotlib is installed), and prints the summary.
Puzzles run largest first, one process per worker, one core each.
"""
from __future__ import annotations

import argparse
import csv
import json
import multiprocessing as mp
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from omnigenome.design import LocalSearchSettings, design, load_settings  # noqa: E402
from omnigenome.design.targets import validate_target  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "eterna100" / "eterna100_vienna2.txt"
METHOD_OF = {"designer": "local", "ga": "ga", "rnainverse": "rnainverse"}
CHECKPOINTS = (1, 5, 10, 20, 30, 60, 120, 300, 600)


def load_puzzles(path: Path) -> list[dict]:
    """Rows of the Eterna100 TSV: number, name, structure (validated)."""
    puzzles = []
    with open(path) as f:
        for row in csv.DictReader(f, delimiter="\t"):
            number = int(row["Puzzle #"])
            structure = validate_target(row["Secondary Structure"].strip(), f"puzzle {number}")
            puzzles.append({"puzzle": number, "name": row["Puzzle Name"], "structure": structure})
    return puzzles


def run_task(task: dict) -> dict:
    """One (method, puzzle) in a worker process; exceptions become a result with an error."""
    start = time.time()
    try:
        r = design(task["structure"], METHOD_OF[task["method"]], task["budget"], task["seed"],
                   model=task.get("model"), name=str(task["puzzle"]), settings=task.get("settings"))
        out = {"sequence": r.sequence, "solved": r.solved, "seconds": r.seconds, "distance": r.distance,
               "evaluations": r.evaluations, "restarts": r.restarts}
    except Exception as e:  # one failure must not end the benchmark
        out = {"sequence": "", "solved": False, "seconds": task["budget"], "distance": len(task["structure"]),
               "error": f"{type(e).__name__}: {e}"}
    keys = ("method", "puzzle", "name", "length", "budget", "seed")
    changed = {"settings": task["changed"]} if task.get("changed") else {}
    return {**{k: task[k] for k in keys}, **changed, **out, "wall_seconds": round(time.time() - start, 2)}


def solved_within(records: list[dict], budget: float) -> int:
    return sum(1 for r in records if r["solved"] and r["seconds"] <= budget)


def summarise(records: dict[str, list[dict]], puzzles: list[dict], budget: float, workers: int,
              changed: dict | None = None, title: str = "Eterna100-V2") -> str:
    """Markdown: solved counts by budget, median time to solve, then one row per puzzle."""
    checkpoints = [b for b in CHECKPOINTS if b < budget] + [budget]
    methods = list(records)
    lines = [f"{title}, {len(puzzles)} puzzles, budget {budget:g} CPU s per puzzle, {workers} worker(s)"
             + ("".join(f", designer {k}={v}" for k, v in changed.items()) if changed else ""), ""]
    lines.append("| method | " + " | ".join(f"solved ≤{b:g} s" for b in checkpoints) + " | median time to solve (s) |")
    lines.append("|---" * (len(checkpoints) + 2) + "|")
    for m in methods:
        times = [r["seconds"] for r in records[m] if r["solved"] and r["seconds"] <= budget]
        median = f"{statistics.median(times):.2f}" if times else "-"
        done = len(records[m])
        counts = " | ".join(str(solved_within(records[m], b)) for b in checkpoints)
        note = f" ({done} run)" if done < len(puzzles) else ""
        lines.append(f"| {m}{note} | {counts} | {median} |")
    lines += ["", "| # | name | nt | " + " | ".join(f"{m}" for m in methods) + " |", "|---|---|---" + "|---" * len(methods) + "|"]
    by = {m: {r["puzzle"]: r for r in records[m]} for m in methods}
    for p in puzzles:
        cells = []
        for m in methods:
            r = by[m].get(p["puzzle"])
            cells.append("" if r is None else (f"{r['seconds']:.1f} s" if r["solved"] and r["seconds"] <= budget
                                               else f"no (d={r['distance']})"))
        lines.append(f"| {p['puzzle']} | {p['name'][:40]} | {len(p['structure'])} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_csv(path: Path, records: dict[str, list[dict]], puzzles: list[dict], budget: float) -> None:
    by = {m: {r["puzzle"]: r for r in rs} for m, rs in records.items()}
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["puzzle", "name", "length"] + [f"{m}_{k}" for m in records for k in ("solved", "seconds", "sequence")])
        for p in puzzles:
            row = [p["puzzle"], p["name"], len(p["structure"])]
            for m in records:
                r = by[m].get(p["puzzle"])
                row += ["", "", ""] if r is None else [int(r["solved"] and r["seconds"] <= budget), r["seconds"], r["sequence"]]
            w.writerow(row)


def plot(path: Path, records: dict[str, list[dict]], budget: float, n: int, title: str = "Eterna100-V2") -> str:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no plot (pip install matplotlib)"
    fig, ax = plt.subplots(figsize=(6, 4))
    grid = [budget * i / 400 for i in range(1, 401)]
    for m, rs in records.items():
        ax.plot(grid, [solved_within(rs, b) for b in grid], label=m)
    ax.set_xscale("log")
    ax.set_xlabel("budget per puzzle (CPU seconds)")
    ax.set_ylabel(f"puzzles solved (of {n})")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return f"plot: {path}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=float, default=60.0, help="CPU seconds per puzzle and method (default 60)")
    ap.add_argument("--workers", type=int, default=2, help="processes, one puzzle each at a time (default 2)")
    ap.add_argument("--out", type=Path, default=Path("results/eterna100"), help="output folder")
    ap.add_argument("--methods", default="designer,rnainverse", help="comma-separated: designer, ga, rnainverse")
    ap.add_argument("--limit", type=int, help="only the first N puzzles")
    ap.add_argument("--puzzles", help="only these puzzle numbers, e.g. 1,5,7")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", help="checkpoint or Hugging Face directory for the designer / ga (optional)")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="Eterna100 TSV (default: ../shared/data)")
    ap.add_argument("--title", default="Eterna100-V2", help="what the table and plot call the targets")
    ap.add_argument("settings", nargs="*", metavar="KEY=VALUE",
                    help="change a setting of the designer (conf/design/local.yaml), e.g. trajectories=1; "
                         "recorded with each designer result")
    args = ap.parse_intermixed_args(argv)

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHOD_OF]
    if unknown:
        ap.error(f"unknown method(s) {', '.join(unknown)} (choose from {', '.join(METHOD_OF)})")
    try:
        settings = load_settings("local", args.settings)
    except ValueError as e:
        ap.error(str(e))
    defaults = asdict(LocalSearchSettings.load())
    changed = {k: v for k, v in asdict(settings).items() if v != defaults[k]}
    puzzles = load_puzzles(args.data)
    if args.puzzles:
        wanted = {int(x) for x in args.puzzles.split(",")}
        puzzles = [p for p in puzzles if p["puzzle"] in wanted]
    if args.limit:
        puzzles = puzzles[:args.limit]
    args.out.mkdir(parents=True, exist_ok=True)
    results_path = args.out / "results.jsonl"
    done = {}
    if results_path.exists():
        for line in results_path.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                same = r.get("settings", {}) == (changed if r["method"] == "designer" else {})
                if r["budget"] == args.budget and r["seed"] == args.seed and same and "error" not in r:
                    done[(r["method"], r["puzzle"])] = r
    tasks = [{"method": m, "puzzle": p["puzzle"], "name": p["name"], "structure": p["structure"],
              "length": len(p["structure"]), "budget": args.budget, "seed": args.seed, "model": args.model,
              **({"settings": settings, "changed": changed} if m == "designer" else {})}
             for p in puzzles for m in methods if (m, p["puzzle"]) not in done]
    tasks.sort(key=lambda t: -t["length"])  # longest first: the short ones fill the gaps at the end
    print(f"{len(puzzles)} puzzles x {len(methods)} methods: {len(tasks)} to run, "
          f"{len(puzzles) * len(methods) - len(tasks)} already in {results_path}", file=sys.stderr)
    if tasks:
        with open(results_path, "a") as out, mp.get_context("fork").Pool(args.workers, maxtasksperchild=20) as pool:
            for k, r in enumerate(pool.imap_unordered(run_task, tasks), 1):
                out.write(json.dumps(r) + "\n")
                out.flush()
                done[(r["method"], r["puzzle"])] = r
                status = f"solved in {r['seconds']:.1f} s" if r["solved"] else f"not solved (d={r['distance']})"
                print(f"[{k}/{len(tasks)}] {r['method']} puzzle {r['puzzle']} ({r['length']} nt): {status}"
                      + (f" ERROR {r['error']}" if "error" in r else ""), file=sys.stderr, flush=True)

    wanted = {p["puzzle"] for p in puzzles}
    records = {m: [r for (mm, p), r in sorted(done.items()) if mm == m and p in wanted] for m in methods}
    table = summarise(records, puzzles, args.budget, args.workers, changed, args.title)
    (args.out / "summary.md").write_text(table + "\n")
    write_csv(args.out / "results.csv", records, puzzles, args.budget)
    print(table)
    print(plot(args.out / "solved_vs_budget.png", records, args.budget, len(puzzles), args.title), file=sys.stderr)
    print(f"wrote {args.out}/summary.md, {args.out}/results.csv, {results_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
