"""Sequence operators of RNA design; every one keeps the target's pairs canonical.

Sequences are lists of "A", "C", "G", "U" (RNA alphabet). Paired positions are always changed
together with their partner, so each of the six canonical pairs (GC, CG, AU, UA, GU, UG) stays
reachable and no operator leaves a pair that ViennaRNA cannot form.
"""
from __future__ import annotations

import random
from typing import Sequence

from omnigenome.structure import CANONICAL_PAIRS

PAIRS = (("G", "C"), ("C", "G"), ("A", "U"), ("U", "A"), ("G", "U"), ("U", "G"))
# Proposal weights: GC pairs are the most stable and the usual fix for a pair that does not form;
# AU and wobble pairs weaken a helix that is too sticky (a misfold elsewhere) and break symmetry.
PAIR_WEIGHTS = (3.0, 3.0, 1.5, 1.5, 0.5, 0.5)
# Unpaired positions: A pairs weakly (only with U), so A-rich loops rarely form unwanted pairs.
BASES = ("A", "C", "G", "U")
BASE_WEIGHTS = (3.0, 1.0, 1.0, 1.0)
COMPLEMENTS = {"A": (("U", 1.0),), "C": (("G", 1.0),), "G": (("C", 3.0), ("U", 1.0)), "U": (("A", 3.0), ("G", 1.0))}


def _weighted(rng: random.Random, items, weights, exclude=None):
    choices = [(x, w) for x, w in zip(items, weights) if x != exclude]
    total = sum(w for _, w in choices)
    r = rng.random() * total
    for x, w in choices:
        r -= w
        if r < 0:
            return x
    return choices[-1][0]


def initial_sequence(pairs: Sequence[int], rng: random.Random) -> list[str]:
    """A (re)started design: GC or CG for every pair, A for unpaired positions, and G right 3' of every
    helix end (unless that base is also right 5' of a pair, or in a 3-nt hairpin, which has no mismatch).

    Each helix then meets its loop with the GA first mismatch (hairpins, interior loops) or a stacking 3'
    G dangle (multiloops, the exterior loop): stabilising terms of the Turner model, the way Eterna players
    boost loops, which helps short helices beat competing structures.
    """
    n = len(pairs)
    seq = ["A"] * n
    for i, j in enumerate(pairs):
        if i < j:
            seq[i], seq[j] = rng.choice((("G", "C"), ("C", "G")))
            if j - i > 4 and all(pairs[k] < 0 for k in range(i + 1, j)):
                seq[i + 1] = "G"
    for k in range(1, n):
        if (pairs[k] < 0 and pairs[k - 1] >= 0 and not (k + 1 < n and pairs[k + 1] >= 0)
                and pairs[k - 1] != k + 3):
            seq[k] = "G"
    return seq


def mutate_position(seq: list[str], pairs: Sequence[int], i: int, rng: random.Random) -> None:
    """Change position i in place; a paired position changes with its partner to another canonical pair."""
    j = pairs[i]
    if j < 0:
        seq[i] = _weighted(rng, BASES, BASE_WEIGHTS, exclude=seq[i])
        return
    a, b = (i, j) if i < j else (j, i)
    seq[a], seq[b] = _weighted(rng, PAIRS, PAIR_WEIGHTS, exclude=(seq[a], seq[b]))


def complement(base: str, rng: random.Random) -> str:
    """A base that pairs canonically with `base` (Watson-Crick preferred, wobble sometimes)."""
    options = COMPLEMENTS[base]
    return _weighted(rng, [b for b, _ in options], [w for _, w in options])


def repair_pairs(seq: list[str], pairs: Sequence[int], changed: Sequence[int], rng: random.Random) -> None:
    """After positions `changed` were rewritten (e.g. refilled by the model), make their pairs canonical
    again by changing the partner; the rewritten side wins. Also fixes any other non-canonical pair."""
    done = set()
    for i in changed:
        j = pairs[i]
        if j >= 0 and (seq[i], seq[j]) not in CANONICAL_PAIRS:
            seq[j] = complement(seq[i], rng)
        done.add(i)
    for i, j in enumerate(pairs):
        if i < j and (seq[i], seq[j]) not in CANONICAL_PAIRS:
            seq[j] = complement(seq[i], rng)


def crossover(a: Sequence[str], b: Sequence[str], pairs: Sequence[int], rng: random.Random) -> list[str]:
    """One-point crossover on structural units: an unpaired position or a pair (i, j) comes from parent
    `a` when its 5' position is before a random cut, else from `b`, so pairs are never split."""
    cut = rng.randrange(1, len(a)) if len(a) > 1 else 0
    child = list(a)
    for i, j in enumerate(pairs):
        if i < cut or (0 <= j < i):
            continue
        child[i] = b[i]
        if j > i:
            child[j] = b[j]
    return child


def is_complementary(seq: Sequence[str], pairs: Sequence[int]) -> bool:
    """Every pair of the target is canonical in `seq`."""
    return all((seq[i], seq[j]) in CANONICAL_PAIRS for i, j in enumerate(pairs) if i < j)


def boost_pair(seq: list[str], pairs: Sequence[int], i: int, rng: random.Random) -> None:
    """Stabilise the target pair at i (i must be paired) in place, the way designers fix a pair that
    does not form: make it GC or CG and give it stabilising neighbours in its loops (each with
    probability 1/2): a G right inside the pair's 5' base and an A right inside its 3' base (the
    GA first mismatch of hairpin and interior loops), and a purine 3' of the pair on its outer side
    (a stacking 3' dangle in multi- and exterior loops). Only target-unpaired neighbours change."""
    a, b = sorted((i, pairs[i]))
    seq[a], seq[b] = rng.choice((("G", "C"), ("C", "G")))
    n = len(pairs)
    if b - a > 4 and pairs[a + 1] < 0 and rng.random() < 0.5:
        seq[a + 1] = "G"
    if b - a > 4 and pairs[b - 1] < 0 and rng.random() < 0.5:
        seq[b - 1] = "A"
    if b + 1 < n and pairs[b + 1] < 0 and rng.random() < 0.5:
        seq[b + 1] = rng.choice("AG")
