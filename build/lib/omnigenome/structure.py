"""Dot-bracket structures: the one parser used by tokenizer, training, evaluation and design.

A structure is a string over `.` (unpaired) and bracket pairs. `()` are the nested pairs that
ViennaRNA writes; `[] {} <>` and letter pairs `Aa`, `Bb`, ... mark pseudoknots in curated
labels (bpRNA). The Seq2Str head predicts the three labels `(`, `)`, `.` per nucleotide.
"""
from __future__ import annotations

import numpy as np

from omnigenome.utils import where

OPENERS = {"(": ")", "[": "]", "{": "}", "<": ">"}
OPENERS.update({chr(c): chr(c).lower() for c in range(ord("A"), ord("Z") + 1)})
CLOSERS = {v: k for k, v in OPENERS.items()}

# Seq2Str label ids, in the order the released structure head uses.
STRUCTURE_LABELS = ("(", ")", ".")
LABEL_ID = {c: i for i, c in enumerate(STRUCTURE_LABELS)}


# Byte -> label for the plain alphabet `( ) .` (255: anything else), for the vectorised fast path.
_PLAIN_LABEL = np.full(256, 255, dtype=np.uint8)
for _c, _label in (("(", 0), (")", 1), (".", 2)):
    _PLAIN_LABEL[ord(_c)] = _label


def pair_table(structure: str, record: str | None = None, allowed: str | None = None,
               strict: bool = True) -> list[int]:
    """Partner index of every position (-1 when unpaired).

    Raises ValueError naming the record and the position of an unmatched bracket or of a
    character outside `allowed` (default: `.` and every bracket kind above). With strict=False an
    unmatched bracket is read as unpaired instead (how an unbalanced `argmax` prediction is scored).
    """
    stacks: dict[str, list[int]] = {}
    pairs = [-1] * len(structure)
    for i, c in enumerate(structure):
        if allowed is not None and c not in allowed:
            raise ValueError(f"{where(record)}invalid structure character {c!r} at position {i + 1}"
                             f" (allowed: {' '.join(repr(a) for a in allowed)})")
        if c == ".":
            continue
        if c in OPENERS:
            stacks.setdefault(c, []).append(i)
        elif c in CLOSERS:
            stack = stacks.get(CLOSERS[c])
            if not stack:
                if not strict:
                    continue
                raise ValueError(f"{where(record)}unbalanced structure: {c!r} at position {i + 1} closes nothing")
            j = stack.pop()
            pairs[i], pairs[j] = j, i
        else:
            raise ValueError(f"{where(record)}invalid structure character {c!r} at position {i + 1}")
    for opener, stack in stacks.items():
        if stack and strict:
            raise ValueError(f"{where(record)}unbalanced structure: {opener!r} at position {stack[-1] + 1} is never closed")
    return pairs


def _plain_labels(structure: str) -> np.ndarray | None:
    """Labels of a balanced structure over `( ) .` only, computed without a Python loop; None for
    anything else (other characters, unbalanced), which `pair_table` then reads or explains."""
    if not structure.isascii():
        return None
    labels = _PLAIN_LABEL[np.frombuffer(structure.encode("ascii"), dtype=np.uint8)]
    if labels.size == 0:
        return labels
    if labels.max() == 255:
        return None
    depth = np.cumsum((labels == 0).astype(np.int32) - (labels == 1))
    return labels if depth.min() >= 0 and depth[-1] == 0 else None


def plain_labels(structure: str, record: str | None = None, length: int | None = None) -> np.ndarray:
    """Seq2Str labels (uint8: 0 `(`, 1 `)`, 2 `.`) of a balanced structure over `( ) .`, the alphabet
    ViennaRNA writes and the str2seq view shows. Raises ValueError naming the record and the position
    of the problem (a length other than `length`, another character, an unmatched bracket)."""
    if length is not None and len(structure) != length:
        raise ValueError(f"{where(record)}structure length {len(structure)} differs from sequence length"
                         f" {length} (first position without a partner: {min(len(structure), length) + 1})")
    labels = _plain_labels(structure)
    if labels is None:
        pair_table(structure, record, allowed="().")  # raises with the details
    return labels


def base_pairs(structure: str, record: str | None = None, strict: bool = True) -> set[tuple[int, int]]:
    """Set of (i, j), i < j, 0-based, pseudoknot brackets included (strict: see `pair_table`)."""
    return {(i, j) for i, j in enumerate(pair_table(structure, record, strict=strict)) if i < j}


def to_labels(structure: str, record: str | None = None) -> list[int]:
    """Per-nucleotide Seq2Str labels: 0 for an opening bracket, 1 for a closing one, 2 unpaired.

    Pseudoknot brackets count as paired (their side decides `(` or `)`), as in the RGB labels.
    """
    plain = _plain_labels(structure)  # the common case, vectorised (training builds it per record)
    if plain is not None:
        return plain.tolist()
    return [2 if j < 0 else (0 if i < j else 1) for i, j in enumerate(pair_table(structure, record))]


def from_pairs(pairs: list[int]) -> str:
    """Dot-bracket of a nested pair table (no pseudoknots)."""
    return "".join("." if j < 0 else ("(" if i < j else ")") for i, j in enumerate(pairs))


# Watson-Crick and wobble pairs, the pairs ViennaRNA's energy model allows (RNA alphabet).
CANONICAL_PAIRS = frozenset({("A", "U"), ("U", "A"), ("G", "C"), ("C", "G"), ("G", "U"), ("U", "G")})


def is_canonical_pair(a: str, b: str) -> bool:
    """True for AU, CG, GU in either order; case-insensitive, T read as U."""
    norm = {"T": "U"}
    a, b = a.upper(), b.upper()
    return (norm.get(a, a), norm.get(b, b)) in CANONICAL_PAIRS


def short_hairpins(structure: str, min_loop: int = 3, record: str | None = None) -> list[tuple[int, int]]:
    """Pairs (i, j), 0-based, that close a hairpin of fewer than `min_loop` unpaired nucleotides.

    ViennaRNA's energy model (like every nearest-neighbour model) forbids hairpins shorter than 3,
    so no sequence folds into a structure that has one. Brackets are matched by `pair_table`.
    """
    pairs = pair_table(structure, record)
    return [(i, j) for i, j in enumerate(pairs)
            if i < j and j - i - 1 < min_loop and all(pairs[k] < 0 for k in range(i + 1, j))]
