"""Design targets: validation (before any work starts) and reading target files."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from omnigenome.structure import pair_table, short_hairpins

TARGET_CHARS = "()."
MIN_HAIRPIN = 3  # ViennaRNA (and every nearest-neighbour model) forbids shorter hairpin loops


@dataclass(frozen=True)
class Target:
    """One design target: a name (for messages and tables) and a nested dot-bracket."""
    name: str
    structure: str


def validate_target(structure: str, name: str | None = None) -> str:
    """Return `structure` if some sequence could fold into it, else raise ValueError saying why.

    Checks, in this order: not empty; only `(`, `)` and `.`; balanced brackets (the position of the
    first unmatched one); no hairpin loop shorter than 3 unpaired nucleotides (its 1-based positions).
    `name` (e.g. "targets.txt line 3") prefixes every message.
    """
    where = f"target {name}: " if name is not None else "target: "
    if not structure:
        raise ValueError(f"{where}empty structure")
    try:
        pair_table(structure, allowed=TARGET_CHARS)
    except ValueError as e:
        raise ValueError(f"{where}{e}") from None
    short = short_hairpins(structure, MIN_HAIRPIN)
    if short:
        i, j = short[0]
        more = f" (and {len(short) - 1} more)" if len(short) > 1 else ""
        raise ValueError(f"{where}hairpin loop shorter than {MIN_HAIRPIN} at positions {i + 1}..{j + 1}: "
                         f"{structure[i:j + 1]!r} has {j - i - 1} unpaired nucleotide(s){more}; "
                         f"no sequence folds into it")
    return structure


def read_targets(path: str | Path) -> list[Target]:
    """Targets of a file, all validated before the caller starts designing.

    Two formats: one dot-bracket per line (blank lines and `#` comments skipped; an optional
    whitespace-separated name after the structure), or a tab-separated table with a header that has a
    `Secondary Structure` column (the Eterna100 files; `Puzzle #` and `Puzzle Name` name the targets).
    Errors name the file and line.
    """
    path = Path(path)
    lines = path.read_text().splitlines()
    targets: list[Target] = []
    if lines and "\t" in lines[0] and "Secondary Structure" in lines[0].split("\t"):
        rows = csv.DictReader(lines, delimiter="\t")
        for lineno, row in enumerate(rows, start=2):
            structure = (row.get("Secondary Structure") or "").strip()
            label = row.get("Puzzle #") or str(lineno - 1)
            where = f"{path} line {lineno}"
            targets.append(Target(str(label).strip(), validate_target(structure, where)))
        return targets
    for lineno, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        structure, *rest = text.split(None, 1)
        where = f"{path} line {lineno}"
        targets.append(Target(rest[0].strip() if rest else str(len(targets) + 1), validate_target(structure, where)))
    if not targets:
        raise ValueError(f"{path}: no targets")
    return targets
