"""From the structure head's per-nucleotide probabilities to a dot-bracket structure.

The head predicts, for every nucleotide independently, a distribution over the labels `(`, `)`, `.`
(ids 0, 1, 2 of `omnigenome.structure.STRUCTURE_LABELS`). Two decoders:

- `argmax` (the paper's zero-shot evaluation): the most probable label of every nucleotide. The
  result is often not a structure at all (unbalanced brackets, pairs closing hairpins of 0 nt).
- `valid`: the most probable *balanced* structure under the same per-nucleotide probabilities,
  i.e. the nested pair set P maximising

      sum_{(i,j) in P} log p_i('(') + log p_j(')')  +  sum_{k unpaired} log p_k('.'),

  with at least `min_loop` unpaired nucleotides inside every pair (j - i - 1 >= min_loop) and,
  optionally, only Watson-Crick and GU pairs. Solved exactly by a Nussinov-style dynamic
  programme in O(L^3) time and O(L^2) memory; the inner maximisation is one numpy max-plus
  product per column, so a 500 nt sequence decodes in about a tenth of a second.
"""
from __future__ import annotations

import numpy as np

from omnigenome.structure import LABEL_ID, from_pairs, is_canonical_pair

OPEN, CLOSE, UNPAIRED = LABEL_ID["("], LABEL_ID[")"], LABEL_ID["."]
DECODERS = ("valid", "argmax")

# Log-probabilities are clipped here so that a probability of exactly 0 keeps every score finite
# (-inf - -inf would be NaN); far below anything a softmax of finite logits produces in float32.
_LOG_FLOOR = -1e4


def _check_probs(probs) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3:
        raise ValueError(f"structure probabilities must have shape (length, 3), got {p.shape}")
    if p.shape[0] == 0:
        raise ValueError("cannot decode the structure of an empty sequence")
    if not np.isfinite(p).all() or (p < 0).any():
        raise ValueError("structure probabilities must be finite and non-negative")
    return p


def decode_argmax(probs) -> str:
    """The most probable label of every nucleotide: (L, 3) probabilities -> string of length L.

    May be unbalanced; that is the paper's per-nucleotide prediction, scored by token metrics.
    """
    p = _check_probs(probs)
    return "".join("()."[k] for k in p.argmax(axis=1))


def pair_gain(probs, sequence: str | None = None, canonical_only: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Scores of the DP, in nats relative to "everything unpaired".

    Returns (unpaired (L,), gain (L, L)): unpaired[k] = log p_k('.'), and gain[i, j] for i < j is
    what pairing i with j adds: log p_i('(') + log p_j(')') - log p_i('.') - log p_j('.'), or -inf
    where the pair is not allowed (i >= j, or not canonical / GU when `canonical_only`).
    """
    p = _check_probs(probs)
    logp = np.maximum(np.log(np.maximum(p, 0.0), where=p > 0, out=np.full_like(p, -np.inf)), _LOG_FLOOR)
    unpaired = logp[:, UNPAIRED]
    gain = (logp[:, OPEN] - unpaired)[:, None] + (logp[:, CLOSE] - unpaired)[None, :]
    allowed = np.triu(np.ones(gain.shape, dtype=bool), k=1)
    if canonical_only:
        if sequence is None or len(sequence) != len(p):
            raise ValueError("canonical_only needs the sequence, of the same length as the probabilities")
        s = sequence.upper().replace("T", "U")
        letters = np.frombuffer(s.encode("ascii", errors="replace"), dtype=np.uint8)
        canonical = np.zeros((256, 256), dtype=bool)
        for a in "ACGU":
            for b in "ACGU":
                canonical[ord(a), ord(b)] = is_canonical_pair(a, b)
        allowed &= canonical[letters[:, None], letters[None, :]]
    gain[~allowed] = -np.inf
    return unpaired, gain


def decode_valid(probs, sequence: str | None = None, min_loop: int = 3, canonical_only: bool = False) -> str:
    """The most probable balanced dot-bracket under independent per-nucleotide label probabilities.

    probs: (L, 3) probabilities of `(`, `)`, `.` (rows need not be normalised; a row's scale only
        shifts the objective by a constant).
    sequence: the nucleotides (needed only for `canonical_only`; A, C, G, U/T, any case; other
        letters such as N never pair).
    min_loop: fewest unpaired nucleotides enclosed by a pair (3: ViennaRNA's minimum hairpin).
    Returns a string over `(`, `)`, `.` of length L, nested, every hairpin >= min_loop.
    Ties are broken towards leaving nucleotides unpaired. Time O(L^3), memory O(L^2).
    """
    if min_loop < 0:
        raise ValueError(f"min_loop must be >= 0, got {min_loop}")
    unpaired, gain = pair_gain(probs, sequence, canonical_only)
    n = len(unpaired)
    # best[i, j]: best total gain of a nested pair set inside the half-open interval [i, j).
    # -inf below the diagonal makes max-plus products ignore split points k < i.
    best = np.full((n + 1, n + 1), -np.inf)
    np.fill_diagonal(best, 0.0)
    for j in range(1, n + 1):
        end = j - 1                      # the last nucleotide of [i, j)
        best[:j, j] = best[:j, j - 1]    # `end` unpaired
        last_k = end - 1 - min_loop      # the latest partner k of `end` that leaves a loop of min_loop
        if last_k < 0:
            continue
        # pairing (k, end): best[i, k] (left of k) + gain + best[k + 1, end] (inside the pair)
        inside = gain[: last_k + 1, end] + best[1: last_k + 2, end]
        paired = (best[:j, : last_k + 1] + inside[None, :]).max(axis=1)
        np.maximum(best[:j, j], paired, out=best[:j, j])

    partner = [-1] * n
    stack = [(0, n)]
    while stack:
        i, j = stack.pop()
        while j > i:
            end = j - 1
            last_k = end - 1 - min_loop
            if last_k >= i:
                inside = gain[i: last_k + 1, end] + best[i + 1: last_k + 2, end]
                scores = best[i, i: last_k + 1] + inside
                k = int(scores.argmax())
                if scores[k] > best[i, j - 1]:  # strictly better than leaving `end` unpaired
                    k += i
                    partner[k], partner[end] = end, k
                    stack.append((k + 1, end))
                    j = k
                    continue
            j -= 1
    return from_pairs(partner)


def decode(probs, method: str = "valid", sequence: str | None = None, min_loop: int = 3,
           canonical_only: bool = False) -> str:
    """Dispatch to `decode_valid` or `decode_argmax` by name (see DECODERS)."""
    if method == "valid":
        return decode_valid(probs, sequence, min_loop=min_loop, canonical_only=canonical_only)
    if method == "argmax":
        return decode_argmax(probs)
    raise ValueError(f"unknown decoder {method!r} (choose from {', '.join(DECODERS)})")
