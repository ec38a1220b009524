"""The baseline: ViennaRNA's `inverse_fold` from random starts, restarted until the budget ends."""
from __future__ import annotations

import json
import os
import random
import time

from omnigenome.design.result import DesignResult, hamming
from omnigenome.design.targets import validate_target
from omnigenome.folding import fold


def _inverse_loop(structure: str, budget: float | None, seed: int, report) -> None:
    """RNAinverse restarts from random sequences; `report(dict)` after every attempt."""
    import RNA

    rng = random.Random(seed)
    RNA.init_rand(seed & 0xFFFFFFFF)
    start_clock = time.process_time()
    attempt = 0
    while budget is None or time.process_time() - start_clock < budget:
        attempt += 1
        start = "".join(rng.choice("ACGU") for _ in structure)
        report({"start": start})
        seq, _ = RNA.inverse_fold(start, structure)
        seconds = time.process_time() - start_clock
        mfe = fold(seq)[0]
        solved = mfe == structure and (budget is None or seconds <= budget)
        report({"sequence": seq, "mfe_structure": mfe, "solved": solved, "seconds": seconds, "restarts": attempt - 1})
        if solved:
            return


def rnainverse(structure: str, budget_seconds: float | None = 60.0, seed: int = 0, name: str | None = None) -> DesignResult:
    """Baseline: `RNA.inverse_fold` from random starts until solved or `budget_seconds` CPU seconds.

    One inverse_fold call on a long target can run for minutes, so on Linux the loop runs in a forked
    child whose CPU timer (ITIMER_PROF) ends it exactly at the budget; elsewhere the budget is checked
    between calls. Solved only if `RNA.fold` of the result is the target, within the budget.
    """
    validate_target(structure, name)
    if hasattr(os, "fork") and budget_seconds is not None:
        import signal
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: report attempts as JSON lines; SIGPROF ends it at the budget
            try:
                os.close(read_fd)
                out = os.fdopen(write_fd, "w", buffering=1)
                signal.signal(signal.SIGPROF, signal.SIG_DFL)
                signal.setitimer(signal.ITIMER_PROF, budget_seconds)
                _inverse_loop(structure, budget_seconds, seed, lambda r: out.write(json.dumps(r) + "\n"))
                out.flush()
            finally:
                os._exit(0)
        os.close(write_fd)
        with os.fdopen(read_fd) as inp:
            lines = [json.loads(line) for line in inp if line.endswith("\n")]
        os.waitpid(pid, 0)
        attempts = [a for a in lines if "sequence" in a]
        usage_seconds = budget_seconds if not attempts or not attempts[-1]["solved"] else attempts[-1]["seconds"]
    else:
        lines = []
        _inverse_loop(structure, budget_seconds, seed, lines.append)
        attempts = [a for a in lines if "sequence" in a]
        usage_seconds = attempts[-1]["seconds"] if attempts else 0.0
    if not attempts:  # the budget ended inside the first inverse_fold call: report its start
        start = next((a["start"] for a in lines if "start" in a), "A" * len(structure))
        mfe = fold(start)[0]
        return DesignResult(structure, start, False, round(float(usage_seconds), 4), "rnainverse", seed, name,
                            mfe, hamming(mfe, structure), 0, 0)
    best = attempts[-1] if attempts[-1]["solved"] else min(attempts, key=lambda a: hamming(a["mfe_structure"], structure))
    return DesignResult(structure, best["sequence"], bool(best["solved"]), round(float(usage_seconds), 4), "rnainverse",
                        seed, name, best["mfe_structure"], hamming(best["mfe_structure"], structure),
                        len(attempts), attempts[-1]["restarts"])
