"""Start-up time of the command line: `omnigenome --help` beside `python -c pass` (the floor) and `import torch`
(what the light paths avoid), measured in the same run.

    python experiments/bench_startup.py [--repeats 10]

Each command runs `--repeats` times in a fresh process; the table gives the median and the best wall time.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time

from omnigenome.utils import markdown_table


def timed(command: list[str], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return times


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args(argv)
    cli = shutil.which("omnigenome") or sys.exit("the `omnigenome` command is not on PATH: pip install the package")
    commands = {
        "python -c pass (the floor)": [sys.executable, "-c", "pass"],
        "python -c 'import omnigenome'": [sys.executable, "-c", "import omnigenome"],
        "omnigenome --help": [cli, "--help"],
        "omnigenome design --help": [cli, "design", "--help"],
        "python -c 'import torch' (reference)": [sys.executable, "-c", "import torch"],
    }
    rows = []
    for name, command in commands.items():
        times = timed(command, args.repeats)
        rows.append([name, f"{statistics.median(times):.3f}", f"{min(times):.3f}"])
        print(f"{name}: median {statistics.median(times):.3f} s", flush=True)
    print("\n" + markdown_table(["command", "median s", "best s"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
