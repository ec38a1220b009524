"""The geometry of a target's pair table that the designer works with: its subproblems (nodes), the loop
positions whose base does not enter its energy, and the loops and mismatches around a pair."""
from __future__ import annotations

from typing import Sequence

# Each node is at most this share of the node around it: node lengths fall geometrically (see design_nodes).
NODE_SHRINK = 0.8


def design_nodes(pairs: Sequence[int], min_node: int, shrink: float = NODE_SHRINK) -> list[tuple[int, int]]:
    """Subproblems, innermost first: (i, j) for helices' outermost pairs enclosing >= min_node nt, each
    at most `shrink` times as long as the smallest chosen node (or the whole target) around it.

    Without the ladder, a chain of nested short helices (Eterna100 #74: 43 nodes of 42-374 nt, 8 nt
    apart) is designed once per helix, at almost the cost of the whole target each time; with it (8
    nodes), node lengths fall geometrically and all nodes together cost a bounded multiple of one root
    step."""
    n = len(pairs)
    helices = [(i, j) for i, j in enumerate(pairs)
               if i < j and min_node <= j - i + 1 < n and not (i > 0 and j + 1 < n and pairs[i - 1] == j + 1)]
    chosen = [(0, n - 1)]
    for i, j in sorted(helices, key=lambda ij: ij[0] - ij[1]):  # outermost first
        around = min((b - a for a, b in chosen if a <= i and j <= b), default=n - 1) + 1
        if j - i + 1 <= shrink * around:
            chosen.append((i, j))
    return sorted(chosen[1:], key=lambda ij: (ij[1] - ij[0], ij[0]))


def inert_positions(pairs: Sequence[int]) -> frozenset[int]:
    """Unpaired positions whose base does not enter the target's free energy in the nearest-neighbour
    model: not beside a pair (mismatches, dangles) and not in a hairpin loop of 3, 4 or 6 bases (Turner
    2004's special triloops, tetraloops and hexaloops). In a loop, A pairs only with U, so A there gives
    misfolds the fewest partners: the designer keeps these positions A."""
    n = len(pairs)
    special = set()
    for i, j in enumerate(pairs):
        if i < j and j - i - 1 in (3, 4, 6) and all(pairs[k] < 0 for k in range(i + 1, j)):
            special.update(range(i + 1, j))
    return frozenset(i for i in range(n) if i not in special
                     and all(not 0 <= k < n or pairs[k] < 0 for k in (i - 1, i, i + 1)))


def small_loops(pairs: Sequence[int], i: int, size: int) -> set[int]:
    """Positions of the interior loops and bulges of at most `size` unpaired bases on either side of
    the pair at i in the pair table `pairs` (inside and outside it), with their other closing pair."""
    n, (a, b) = len(pairs), sorted((i, pairs[i]))
    found = set()
    k, l = a + 1, b - 1  # inside: the first pair met from each end must be one pair
    while k < l and pairs[k] < 0:
        k += 1
    while l > k and pairs[l] < 0:
        l -= 1
    if k < l and pairs[k] == l and (k - a - 1) + (b - l - 1) <= size:
        found.update(range(a + 1, k + 1), range(l, b))
    k, l = a - 1, b + 1  # outside
    while k >= 0 and pairs[k] < 0:
        k -= 1
    while l < n and pairs[l] < 0:
        l += 1
    if k >= 0 and l < n and pairs[k] == l and (a - k - 1) + (l - b - 1) <= size:
        found.update(range(k, a), range(b + 1, l + 1))
    return found


def loop_mismatches(pairs: Sequence[int], i: int, max_pairs: int) -> set[int]:
    """The mismatch and dangle positions of the two loops the pair at i closes (inside and around it):
    for every closing pair of such a loop, the positions right beside it inside the loop. A loop
    closed by more than `max_pairs` pairs (a large multiloop, the exterior loop) adds nothing.

    In the nearest-neighbour model a loop's energy beyond its size and closing pairs hangs on exactly
    these bases (terminal mismatches, dangles), so they decide whether a lone pair or a short helix
    that is a branch of a multiloop forms."""
    n, (a, b) = len(pairs), sorted((i, pairs[i]))
    k = a - 1  # the pair closing the loop around (a, b): walk left past the sibling branches
    while k >= 0 and not pairs[k] > b:
        k = pairs[k] - 1 if 0 <= pairs[k] < k else k - 1
    found: set[int] = set()
    for lo, hi in ((a, b), (k, pairs[k]) if k >= 0 else (-1, n)):
        branches, p = [], lo + 1
        while p < hi:
            if pairs[p] > p:
                branches.append((p, pairs[p]))
                p = pairs[p] + 1
            else:
                p += 1
        if len(branches) + (lo >= 0) > max_pairs:
            continue
        if lo >= 0:
            found.update((lo + 1, hi - 1))
        found.update(x for c, d in branches for x in (c - 1, d + 1) if lo < x < hi)
    return found
