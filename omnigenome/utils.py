"""Small helpers every layer may use: CPU cores, record names in messages, Markdown tables."""
from __future__ import annotations

import math
import os
from typing import Iterable, Sequence


def available_cores() -> int:
    """CPU cores this process may run on (respects taskset, cgroups and SLURM's CPU pinning)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def where(record: str | None) -> str:
    """The prefix of a message about one record: "record 'x': " (empty when the record has no name)."""
    return f"record {record!r}: " if record is not None else ""


def fmt_number(value, digits: int = 4) -> str:
    """A table cell: "-" for a missing or NaN value, else the number with `digits` decimals."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, (int, float)):
        return f"{float(value):.{digits}f}"
    return str(value)


def markdown_table(header: Sequence[str], rows: Iterable[Sequence], title: str | None = None) -> str:
    """A Markdown table with columns padded to a common width, so it also reads as plain text.

    Cells are converted with `str`; format numbers first (see `fmt_number`)."""
    lines = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = ["| " + " | ".join(c.ljust(w) for c, w in zip(line, widths)) + " |" for line in lines]
    text.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return ((title + "\n") if title else "") + "\n".join(text)


def cpu_bf16_units() -> str | None:
    """The CPU's native bf16 matrix support, by name ("AMX", "AVX512-BF16", "Arm BF16"), or None.

    Read from the kernel's CPU flags: bf16 without such units is emulated and slower than fp32 (measured: see
    docs/performance.md), so it is only worth using where one of these is present."""
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
    except OSError:  # not Linux: not detected (trainer.precision=bf16-mixed asks for bf16 anyway)
        return None
    flags = set()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            flags |= set(line.split(":", 1)[1].split())
    if "amx_bf16" in flags:
        return "AMX"
    if "avx512_bf16" in flags:
        return "AVX512-BF16"
    if "bf16" in flags or "svebf16" in flags or "smebf16" in flags:
        return "Arm BF16"
    return None
