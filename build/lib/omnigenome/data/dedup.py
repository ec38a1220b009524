"""Duplicate removal for corpus preparation: exact (hash set) and near-duplicate (cd-hit-est clusters).

Exact: a 16-byte blake2b digest of each normalised sequence in a set, about 100 bytes of memory per
distinct sequence (10 GB for 100 million), whatever the sequence lengths; the first occurrence
in input order is kept. A collision of two different sequences is about as likely as 2^-128 per
pair, far below any hardware error rate.

Near-duplicate: cd-hit-est (Debian/Ubuntu package `cd-hit`) clusters sequences at a given identity;
the representative of each cluster is kept and every other member is a near-duplicate.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Iterable

DIGEST_BYTES = 16


def sequence_digest(sequence: str) -> bytes:
    """16-byte blake2b digest of a (normalised, ASCII) sequence."""
    return hashlib.blake2b(sequence.encode("ascii"), digest_size=DIGEST_BYTES).digest()


class ExactDeduplicator:
    """`first(sequence)` is True the first time a sequence is seen, False for every repeat."""

    def __init__(self):
        self._seen: set[bytes] = set()

    def first(self, sequence: str) -> bool:
        digest = sequence_digest(sequence)
        if digest in self._seen:
            return False
        self._seen.add(digest)
        return True

    def __len__(self) -> int:
        return len(self._seen)


class CdHitMissing(FileNotFoundError):
    """cd-hit-est was asked for (near-duplicate removal) but is not installed."""


def find_cdhit(program: str = "cd-hit-est") -> str:
    """Full path of the cd-hit-est binary; CdHitMissing with install instructions when absent."""
    found = shutil.which(program)
    if found is None:
        raise CdHitMissing(
            f"near-duplicate removal (near_dup.enabled=true) needs {program!r}, which is not installed or not "
            f"on PATH. Install the Debian/Ubuntu package `cd-hit` (apt-get install cd-hit; conda: bioconda::cd-hit), "
            f"set near_dup.program to its path, or turn it off with near_dup.enabled=false.")
    return found


def cdhit_word_size(identity: float) -> int:
    """cd-hit-est's word length -n for an identity threshold -c (its user guide's table).

    Shorter words are needed at lower identity so that similar sequences still share words;
    cd-hit-est accepts thresholds down to 0.75.
    """
    if not 0.75 <= identity <= 1.0:
        raise ValueError(f"cd-hit-est identity must be in [0.75, 1.0], got {identity}")
    for threshold, word in ((0.95, 10), (0.90, 8), (0.88, 7), (0.85, 6), (0.80, 5)):
        if identity >= threshold:
            return word
    return 4


_MEMBER = re.compile(r"^\d+\s+\d+(?:nt|aa),\s+>(.*?)\.\.\.\s+(\*|at\b.*)$")


def parse_clstr(path: str | os.PathLike) -> tuple[list[str], list[str]]:
    """Representatives and non-representative members (sequence names) of a cd-hit .clstr file."""
    representatives: list[str] = []
    members: list[str] = []
    with open(path) as f:
        for lineno, line in enumerate(f, start=1):
            line = line.rstrip("\n")
            if not line or line.startswith(">Cluster"):
                continue
            m = _MEMBER.match(line)
            if m is None:
                raise ValueError(f"{path}, line {lineno}: not a cd-hit cluster member line: {line!r}")
            (representatives if m.group(2) == "*" else members).append(m.group(1))
    return representatives, members


def near_duplicates(sequences: Iterable[str], work_dir: str | os.PathLike, identity: float = 0.9,
                    program: str = "cd-hit-est", threads: int = 1, memory_mb: int = 2000,
                    both_strands: bool = False) -> set[int]:
    """Positions (0-based, in the order given) of the sequences cd-hit-est finds near-duplicate.

    Writes `work_dir/near_dup.fasta` (names are positions, so ids never reach cd-hit's header
    handling; T alphabet, which cd-hit-est reads) and runs cd-hit-est at `identity` with the word
    size for it, `threads` (-T, 0 = all cores) and `memory_mb` (-M, 0 = unlimited). Sequences are
    compared on the given strand only unless `both_strands` (transcripts have a strand).
    Deterministic for a given input and identity. Raises CdHitMissing when the program is absent,
    RuntimeError with cd-hit's output when it fails.
    """
    binary = find_cdhit(program)
    word = cdhit_word_size(identity)
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    fasta, out = work_dir / "near_dup.fasta", work_dir / "near_dup.cdhit"
    n = 0
    with open(fasta, "w") as f:
        for n, sequence in enumerate(sequences, start=1):
            f.write(f">{n - 1}\n{sequence.replace('U', 'T')}\n")
    if n == 0:
        return set()
    cmd = [binary, "-i", str(fasta), "-o", str(out), "-c", str(identity), "-n", str(word), "-T", str(threads),
           "-M", str(memory_mb), "-d", "0", "-r", "1" if both_strands else "0"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed (exit {result.returncode}):\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    representatives, members = parse_clstr(f"{out}.clstr")
    if len(representatives) + len(members) != n:
        raise RuntimeError(f"cd-hit-est clustered {len(representatives) + len(members)} of {n} sequences ({out}.clstr)")
    return {int(name) for name in members}
