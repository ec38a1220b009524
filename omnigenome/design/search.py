"""The default designer: hierarchical, mismatch-focused local search with joint pair mutations.

What makes it fast on long multi-loop targets:
- Hierarchical decomposition. Every helix that closes a substructure of at least `min_node` nt is a
  node; nodes are designed bottom-up, each folded on its own (folding costs ~n^3, so designing four
  100-nt branches is ~16x cheaper per step than refolding the 400-nt whole), and a parent starts
  from its children's solutions, so its search only repairs the junctions. Node lengths fall
  geometrically (each at most 0.8x the node around it), so a chain of nested short helices costs a
  few root steps, not one near-root design per helix. A node is designed with the unpaired base on
  either side of it (`node_flanks`): in its loop those bases are its closing pair's mismatch (dangles),
  and without them a node folded alone lacks that stabilisation (of the 208 nodes of the Eterna
  players' V2 solutions, 155 fold alone as in the target, 182 with their flanks).
- A boosted start. A (re)started design has GC pairs, A in loops and G right 3' of every helix end
  (`init_mismatch`): each helix meets its loop with the GA terminal mismatch or a stacking 3' dangle,
  as Eterna players boost loops.
- Targeted mutations. Positions whose MFE partner differs from the target's are mutated (90% of
  steps), paired positions together with their partner to another of the six canonical pairs.
- A in inert loop positions. A loop base that is neither beside a pair nor in a special (3, 4 or
  6 nt) hairpin does not enter the target's energy; it only gives misfolds partners, and A has the
  fewest (only U). Such positions stay A (`loop_a`), as Eterna players fill loops, so the search
  does not drift through loop bases that can only hurt.
- One fold compound per candidate gives both the MFE structure and the target's energy; the cost
  is (positions paired wrongly) + (target energy - MFE), so a move can improve even when the MFE
  structure does not change. Neutral moves are accepted (drift over plateaus).
- Screened proposals (negative design by cutting planes). Evaluating a structure's energy costs
  microseconds, folding costs milliseconds (~100 ms at 400 nt). So each step draws several
  proposals (one per 20 nt), scores each by (energy of the target) - (energy of the most stable
  misfold seen so far on this segment), and keeps the best if it screens no worse; up to
  `screen_rounds` (8) such rounds of mutation run between two folds, fewer once the target beats
  every known misfold. Every fold adds its misfold to the pool of competitors (cutting planes: the
  screen is a lower bound of the energy gap that tightens with each fold). At 400 nt a round (20
  proposals, 24 competitors) costs ~3 ms, ~3% of one fold, so a step makes several mutations per fold.
- Neighbourhood enumeration on stagnation: the combinations of the pairs and bases at and beside
  a mispaired position (and its target and MFE partners), of the small interior loops beside its
  pairs and of the mismatches of the loops its target pair closes are screened (all of them, or
  by coordinate descent when there are too many) and the best six folded. Lone pairs and short
  helices depend on exactly these few nucleotides (stacks, mismatches, dangles, tandem
  mismatches), in combinations that one random mutation at a time rarely finds.
- On stagnation: the per-position ensemble defect (one partition function, not every step)
  chooses where to perturb; the model, if given, refills those positions. After repeated failure
  the whole design restarts.
- A portfolio (`Portfolio`, two trajectories by default): independent searches from different
  seeds take turns of 20 evaluations, and the first to solve wins. Time to solve is heavy-tailed
  (one start solves a 400-nt puzzle in seconds, another stays a lone pair short for minutes), and
  a long target rarely restarts within a minute, so taking turns beats one trajectory at 2x speed.

The trajectory depends only on the seed, never on the budget, so one run gives the outcome of
every smaller budget (its time to solve).
"""
from __future__ import annotations

import functools
import itertools
import math
import random
import threading
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from omnigenome.design.operators import BASES, PAIRS, boost_pair, initial_sequence, mutate_position, repair_pairs
from omnigenome.folding import positional_defect, score_design, structure_energies
from omnigenome.structure import CANONICAL_PAIRS, pair_table


class Clock:
    """The budget of one design: CPU time of this process (`time.process_time`: user + system time of all
    its threads, so results do not depend on how loaded the machine is) and, optionally, a number of
    evaluations (folds), which ends a trajectory at the same point on every machine. None: no limit."""

    def __init__(self, seconds: float | None, max_evaluations: int | None = None):
        self.seconds = seconds
        self.max_evaluations = max_evaluations
        self.evaluations = 0  # every fold of every trajectory that shares this clock
        self.start = time.process_time()

    def elapsed(self) -> float:
        return time.process_time() - self.start

    def exhausted(self) -> bool:
        return ((self.seconds is not None and self.elapsed() >= self.seconds)
                or (self.max_evaluations is not None and self.evaluations >= self.max_evaluations))


class Stop(Exception):
    """Budget spent (raised between evaluations)."""


@dataclass
class Candidate:
    seq: list[str]
    mfe_structure: str
    wrong: list[int]          # positions whose MFE partner differs from the target's
    gap: float                # target energy - MFE (kcal/mol), >= 0
    defect: list[float] | None = None  # per-position ensemble defect (ensemble objective only)

    @property
    def cost(self) -> float:
        if self.defect is not None:  # expected number of nucleotides paired unlike the target
            return sum(self.defect)
        return len(self.wrong) + self.gap


class Evaluator:
    """Folds candidates of one target segment and counts evaluations (checks the clock first)."""

    def __init__(self, clock: Clock, counter: list[int]):
        self.clock = clock
        self.counter = counter
        self.gate = None  # called before each evaluation (a portfolio's turn-taking)

    def __call__(self, seq: list[str], target: str, pairs: Sequence[int], ensemble: bool = False) -> Candidate:
        if self.gate is not None:
            self.gate()
        if self.clock.exhausted():
            raise Stop
        self.counter[0] += 1
        self.clock.evaluations += 1
        score = score_design("".join(seq), target, ensemble)
        mfe_pairs = pair_table(score.mfe_structure)
        wrong = [i for i, (p, q) in enumerate(zip(mfe_pairs, pairs)) if p != q]
        return Candidate(seq, score.mfe_structure, wrong, max(0.0, score.energy_gap), score.defect)


def design_nodes(pairs: Sequence[int], min_node: int, shrink: float = 0.8) -> list[tuple[int, int]]:
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
    misfolds the fewest partners (`loop_a`)."""
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


_CANONICAL = np.zeros((256, 256), dtype=bool)  # by ASCII code of the two bases
for _a, _b in CANONICAL_PAIRS:
    _CANONICAL[ord(_a), ord(_b)] = True


class Competitors:
    """Misfolds seen while designing one segment (the most recent `size`), and the cheap screen of a
    proposal against them: (energy of the target) - (energy of the most stable competitor).

    A competitor's pairs that the proposal cannot form (not canonical on it) are opened before its
    energy is evaluated: ViennaRNA would otherwise score them as non-standard pairs, and a mutation
    that breaks an unwanted pair would look no better than one that keeps it.
    """

    def __init__(self, target: str, size: int):
        self.target = target
        self.size = size
        self.structures: list[str] = []
        self._pairs: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # structure -> its pairs (i < j)
        self._i = self._j = self._owner = np.zeros(0, dtype=np.int64)

    def add(self, cand: Candidate) -> None:
        """Remember the candidate's MFE structure if it is a misfold."""
        if not cand.wrong:
            return
        structure = cand.mfe_structure
        if structure in self.structures:
            self.structures.remove(structure)
        else:
            table = np.asarray(pair_table(structure))
            i = np.flatnonzero(table > np.arange(len(table)))
            self._pairs[structure] = (i, table[i])
        self.structures.append(structure)
        for old in self.structures[:-self.size]:
            del self._pairs[old]
        self.structures = self.structures[-self.size:]
        pairs = [self._pairs[s] for s in self.structures]
        self._i = np.concatenate([i for i, _ in pairs])
        self._j = np.concatenate([j for _, j in pairs])
        self._owner = np.repeat(np.arange(len(pairs)), [len(i) for i, _ in pairs])
        self._chars = np.frombuffer("".join(self.structures).encode(), dtype=np.uint8).reshape(len(pairs), -1)

    def screen(self, seq: Sequence[str]) -> float:
        """Lower is better; < 0: the target is more stable than every known competitor."""
        sequence = "".join(seq)
        codes = np.frombuffer(sequence.encode(), dtype=np.uint8)
        bad = ~_CANONICAL[codes[self._i], codes[self._j]]
        structures = self.structures
        if bad.any():
            chars = self._chars.copy()
            chars[self._owner[bad], self._i[bad]] = chars[self._owner[bad], self._j[bad]] = ord(".")
            structures = [row.tobytes().decode() for row in chars]
        energies = structure_energies(sequence, [self.target, *structures])
        return energies[0] - min(energies[1:])


@dataclass
class LocalSearchSettings:
    """Numbers of the default designer (steps are evaluations; none depends on the budget)."""
    focus: float = 0.9            # share of mutations at a wrongly paired position (or its neighbour)
    patience: int = 60            # non-improving steps before a perturbation ...
    patience_per_nt: float = 0.5  # ... plus this many per nucleotide of the segment
    perturb_fraction: float = 0.05  # share of the segment's positions perturbed (at least 2)
    perturbations: int = 6        # perturbations without a new best before giving up (root: restart)
    node_steps: int = 300         # step cap of a non-root node of <= 100 nt; larger nodes get
                                  # proportionally fewer (cap ~ 1/length^2, each step costs ~length^3)
    min_node: int = 40            # smallest substructure designed on its own
    node_shrink: float = 0.8      # a node is at most this share of the node around it (see `design_nodes`)
    node_flanks: int = 1          # 1: a node is designed with the unpaired base on either side of it
    model_share: float = 0.5      # with a model: share of perturbations refilled by it
    boost: float = 0.15           # share of mutations at a paired position that use `boost_pair`
    init_gc_share: float = 1.0    # share of GC / CG pairs in a (re)started design; AU / UA for the rest
    init_mismatch: int = 1        # 1: a (re)started design has G right 3' of every helix end (`initial_sequence`)
    temperature: float = 0.0      # > 0: accept a worse design with probability exp(-increase / temperature)
    objective: str = "mfe"        # mfe: wrong pairs + energy gap; ensemble: sum of ensemble defect;
                                  # hybrid: mfe for the substructures, ensemble for the whole target
    screen_per_nt: float = 0.05   # proposals screened per round: this many per nucleotide (at least 1)
    screen_pool: int = 24         # competitor structures (recent MFE misfolds) the screen scores against
    screen_rounds: int = 8        # rounds of screened mutation between two folds (see `_screened_mutations`)
    enumerate_limit: int = 2048   # on stagnation, neighbourhood combinations screened (see `_enumerate`)
    enumerate_loop: int = 8       # interior loops of up to this many unpaired bases join the neighbourhood
    enumerate_mismatch: int = 4   # loops closed by up to this many pairs add their mismatches (see `loop_mismatches`)
    loop_a: float = 1.0           # share of mutations at an inert loop position that make it A (see `inert_positions`)
    enumerate_keep: int = 16      # best-screening combinations kept ...
    enumerate_folds: int = 6      # ... of which this many are folded (see `_fold_screened`)
    trajectories: int = 2         # independent searches of the target taking turns (see `Portfolio`)
    turn: int = 20                # evaluations per turn

    def __post_init__(self):
        if self.objective not in ("mfe", "ensemble", "hybrid"):
            raise ValueError(f"objective must be mfe, ensemble or hybrid, got {self.objective!r}")
        if min(self.trajectories, self.turn, self.screen_rounds) < 1:
            raise ValueError(f"trajectories, turn and screen_rounds must be >= 1, got {self.trajectories}, "
                             f"{self.turn} and {self.screen_rounds}")


class TargetSearch:
    """What every designer of one target holds: the target and its pair table, the random streams
    (Python's for choices, numpy's for sampling, both from the seed's `rng`), the budget and settings."""

    def __init__(self, target: str, rng: random.Random, clock: Clock, settings):
        self.target = target
        self.pairs = pair_table(target, allowed="().")
        self.rng = rng
        self.np_rng = np.random.default_rng(rng.getrandbits(64))
        self.clock = clock
        self.s = settings


class LocalSearch(TargetSearch):
    """One trajectory of the default designer (see the module docstring); `run` returns (best candidate,
    solved). `Portfolio` runs several of them in turns."""

    def __init__(self, target: str, rng: random.Random, clock: Clock, settings: LocalSearchSettings | None = None,
                 proposer=None):
        super().__init__(target, rng, clock, settings or LocalSearchSettings())
        self.proposer = proposer
        self.evaluations = [0]
        self.evaluate = Evaluator(clock, self.evaluations)
        self.restarts = 0
        self.best: Candidate | None = None  # best evaluated design of the whole target
        self.current: list[str] | None = None  # the whole design being built (before its first evaluation)
        self._inert_of, self._inert_set = None, frozenset()

    # --- one segment ---------------------------------------------------------------------------
    def _pick(self, cand: Candidate, n: int) -> int:
        if cand.defect is not None and self.rng.random() < self.s.focus:
            return self.rng.choices(range(n), weights=[d + 1e-3 for d in cand.defect])[0]
        if cand.wrong and self.rng.random() < self.s.focus:
            i = self.rng.choice(cand.wrong)
            if self.rng.random() < 0.2:  # a neighbour: the fix is often the adjacent pair / mismatch
                i = min(n - 1, max(0, i + self.rng.choice((-2, -1, 1, 2))))
            return i
        return self.rng.randrange(n)

    def _perturb(self, cand: Candidate, target: str, pairs: Sequence[int]) -> list[str]:
        """Mutate the positions of highest ensemble defect (sampled by defect) of the best design."""
        n = len(pairs)
        k = max(2, int(self.s.perturb_fraction * n))
        if self.clock.exhausted():
            raise Stop
        defect = cand.defect or positional_defect("".join(cand.seq), target)[0]
        w = np.asarray(defect) + 1e-3
        chosen = self.np_rng.choice(n, size=min(k, n), replace=False, p=w / w.sum())
        seq = list(cand.seq)
        if self.proposer is not None and self.proposer.fits(n) and self.rng.random() < self.s.model_share:
            seq = self.proposer.fill([seq], target, [sorted(chosen.tolist())], self.np_rng)[0]
            repair_pairs(seq, pairs, chosen.tolist(), self.rng)
            for i in chosen.tolist():
                if self._makes_a(pairs, i):
                    seq[i] = "A"
        else:
            for i in chosen:
                self._mutate(seq, pairs, int(i))
        return seq

    def _inert(self, pairs: Sequence[int]) -> frozenset[int]:
        """`inert_positions` of the segment being designed (computed once per segment)."""
        if pairs is not self._inert_of:
            self._inert_of, self._inert_set = pairs, inert_positions(pairs)
        return self._inert_set

    def _makes_a(self, pairs: Sequence[int], i: int) -> bool:
        """Whether a change at position i sets A: at an inert loop position, with probability `loop_a`."""
        return bool(self.s.loop_a) and i in self._inert(pairs) and self.rng.random() < self.s.loop_a

    def _mutate(self, seq: list[str], pairs: Sequence[int], i: int) -> None:
        """Mutate position i (see `mutate_position`), or set A where `_makes_a` says so."""
        if self._makes_a(pairs, i):
            seq[i] = "A"
        else:
            mutate_position(seq, pairs, i, self.rng)

    def _propose(self, cur: Candidate, pairs: Sequence[int], seq: list[str] | None = None) -> list[str]:
        """One mutation of `seq` (default: the current design's), aimed at a position the current design
        pairs wrongly most of the time."""
        new = list(cur.seq if seq is None else seq)
        i = self._pick(cur, len(pairs))
        if pairs[i] >= 0 and self.rng.random() < self.s.boost:
            boost_pair(new, pairs, i, self.rng)
        else:
            self._mutate(new, pairs, i)
        return new

    def _screened_mutations(self, cur: Candidate, pairs: Sequence[int], pool: Competitors, screens: int) -> list[str]:
        """The next design to fold: up to `screen_rounds` rounds from the current design, each drawing
        `screens` proposals and keeping the best-screening one if it screens no worse than the design so
        far; stops early once the target beats every known competitor (screen < 0). The proposals aim
        at the positions the last fold found wrongly paired."""
        seq, score = cur.seq, math.inf
        for _ in range(self.s.screen_rounds):
            if self.clock.exhausted():
                raise Stop
            proposals = [self._propose(cur, pairs, seq) for _ in range(screens)]
            new_score, new = min(((pool.screen(p), p) for p in proposals), key=lambda sp: sp[0])
            if new_score <= score:
                seq, score = new, new_score
            if score < 0:
                break
        return seq

    def _enumerate(self, cur: Candidate, pairs: Sequence[int], pool: Competitors) -> list[list[str]]:
        """The best-screening variants (`enumerate_keep`, best first) of the neighbourhood of one
        mispaired position: the units (a target pair, six ways, or an unpaired base, four ways) at and
        right beside it, its target partner and its MFE partner (stacked pairs, loop mismatches,
        dangles), the small interior loops beside its pair in the target and in the MFE structure
        (their bases and other closing pair, see `small_loops`), and the mismatches and dangles of the
        two loops its target pair closes (see `loop_mismatches`). Every combination is screened when
        there are at most `enumerate_limit`; beyond, that many are screened by coordinate descent
        (each unit in turn takes its best option given the others) from the current design, then from
        random ones. This is what makes lone pairs and short helices form and unwanted pairs beside
        them open: their fate hangs on the few nucleotides around them, in combinations (a tandem GA
        mismatch with the right closing pairs) that one random mutation at a time rarely finds."""
        i = self.rng.choice(cur.wrong)
        mfe_pairs = pair_table(cur.mfe_structure)
        ends = {i, pairs[i], mfe_pairs[i]} - {-1}  # with its target and MFE partners
        positions = {k for e in ends for k in (e - 1, e, e + 1) if 0 <= k < len(pairs)}
        for table in (pairs, mfe_pairs):
            for e in ends:
                if table[e] >= 0:
                    positions |= small_loops(table, e, self.s.enumerate_loop)
        for e in ends:  # (enumerate_mismatch=0 adds nothing: every loop has a closing pair)
            if pairs[e] >= 0:
                positions |= loop_mismatches(pairs, e, self.s.enumerate_mismatch)
        units = []
        for k in sorted(positions):
            unit = (k,) if pairs[k] < 0 else tuple(sorted((k, pairs[k])))
            if unit not in units:
                units.append(unit)
        options = [PAIRS if len(u) == 2 else ("A",) if self.s.loop_a >= 1 and u[0] in self._inert(pairs) else BASES
                   for u in units]
        screened: dict[tuple, tuple[float, list[str]]] = {}  # combination -> (screen, variant)

        def screen(combo: tuple) -> float:
            if combo not in screened:
                if len(screened) % 100 == 0 and self.clock.exhausted():
                    raise Stop
                seq = list(cur.seq)
                for unit, value in zip(units, combo):
                    for pos, base in zip(unit, value):
                        seq[pos] = base
                screened[combo] = (pool.screen(seq), seq)
            return screened[combo][0]

        if math.prod(len(o) for o in options) <= self.s.enumerate_limit:
            for combo in itertools.product(*options):
                screen(combo)
        else:
            combo = [tuple(cur.seq[p] for p in unit) for unit in units]
            while len(screened) < self.s.enumerate_limit:
                improved = True
                while improved and len(screened) < self.s.enumerate_limit:
                    improved = False
                    for u in self.rng.sample(range(len(units)), len(units)):
                        value = min(options[u], key=lambda v: screen((*combo[:u], v, *combo[u + 1:])))
                        if screen((*combo[:u], value, *combo[u + 1:])) < screen(tuple(combo)):
                            combo[u], improved = value, True
                combo = [self.rng.choice(o) for o in options]
        ranked = sorted(screened.values(), key=lambda sv: sv[0])
        return [seq for _, seq in ranked[:self.s.enumerate_keep]]

    def _fold_screened(self, variants: list[list[str]], target: str, pairs: Sequence[int], pool: Competitors,
                       ens: bool) -> Candidate:
        """Fold up to `enumerate_folds` of the variants, each time the one that screens best against the
        pool, which every fold extends by its misfold (cutting planes); returns the best folded."""
        best = None
        for _ in range(min(self.s.enumerate_folds, len(variants))):
            k = min(range(len(variants)), key=lambda k: pool.screen(variants[k]))
            cand = self.evaluate(variants.pop(k), target, pairs, ens)
            pool.add(cand)
            if best is None or cand.cost < best.cost:
                best = cand
            if not best.wrong:
                break
        return best

    def walk(self, seq: list[str], target: str, pairs: Sequence[int], max_steps: int | None) -> Candidate:
        """Local search on one segment until solved, `max_steps` evaluations, or `perturbations` failures."""
        n = len(pairs)
        ens = self.s.objective == "ensemble" or (self.s.objective == "hybrid" and n == len(self.pairs))
        cur = self.evaluate(seq, target, pairs, ens)
        best = self._note(cur, n)
        screens = max(1, round(self.s.screen_per_nt * n))
        pool = Competitors(target, self.s.screen_pool)
        pool.add(cur)
        patience = self.s.patience + int(self.s.patience_per_nt * n)
        stale, failures, steps = 0, 0, 0
        while cur.wrong and (max_steps is None or steps < max_steps):
            if stale >= patience:
                if failures >= self.s.perturbations:
                    break
                failures += 1
                stale = 0
                if self.s.enumerate_limit and failures % 2 == 1:  # first try the neighbourhood exhaustively
                    before = self.evaluations[0]
                    cand = self._fold_screened(self._enumerate(cur, pairs, pool), target, pairs, pool, ens)
                    steps += self.evaluations[0] - before
                    if cand.cost < cur.cost:
                        cur = cand
                        if cur.cost < best.cost or not cur.wrong:
                            best, failures = self._note(cur, n), 0
                        continue
                cur = self.evaluate(self._perturb(best, target, pairs), target, pairs, ens)
                pool.add(cur)
                steps += 1
                if cur.cost < best.cost or not cur.wrong:
                    best, failures = self._note(cur, n), 0
                continue
            new = self._screened_mutations(cur, pairs, pool, screens)
            cand = self.evaluate(new, target, pairs, ens)
            pool.add(cand)
            steps += 1
            if cand.cost <= cur.cost or (self.s.temperature > 0 and
                                         self.rng.random() < math.exp((cur.cost - cand.cost) / self.s.temperature)):
                improved = cand.cost < best.cost
                cur = cand
                if cur.cost < best.cost or not cur.wrong:
                    best, failures = self._note(cur, n), 0
                stale = 0 if improved else stale + 1
            else:
                stale += 1
        return best

    def _note(self, cand: Candidate, n: int) -> Candidate:
        """Remember the best design of the whole target (what a run stopped by the budget returns)."""
        if n == len(self.pairs) and (self.best is None or cand.cost < self.best.cost or not cand.wrong):
            self.best = cand
        return cand

    # --- whole target --------------------------------------------------------------------------
    def _design_once(self) -> Candidate:
        pairs, n = self.pairs, len(self.pairs)
        seq = initial_sequence(pairs, self.rng, self.s.init_gc_share, bool(self.s.init_mismatch))
        for i, j in design_nodes(pairs, self.s.min_node, self.s.node_shrink):
            cap = 30 + int(self.s.node_steps * min(1.0, (100 / (j - i + 1)) ** 2))
            if self.s.node_flanks:  # the unpaired bases beside the node's pair: its dangles in context
                i, j = i - (i > 0 and pairs[i - 1] < 0), j + (j + 1 < n and pairs[j + 1] < 0)
            sub_pairs = [p - i if p >= 0 else -1 for p in pairs[i:j + 1]]
            self.current = seq
            sub = self.walk(seq[i:j + 1], self.target[i:j + 1], sub_pairs, cap)
            seq[i:j + 1] = sub.seq
        self.current = seq
        return self.walk(seq, self.target, pairs, None)

    def run(self) -> tuple[Candidate | None, bool]:
        """Design with restarts until solved or the budget is spent; returns (best candidate, solved).

        The candidate is None when the budget ran out before the whole target was evaluated once
        (`current` then holds the partial design)."""
        try:
            while True:
                cand = self._design_once()
                if not cand.wrong:
                    return cand, True
                self.restarts += 1
        except Stop:
            return self.best, False


class Portfolio:
    """The default designer: `trajectories` independent local searches of one target (each from its
    own seed) that take turns of `turn` evaluations until one solves it or the budget is spent.

    The time a local search needs is heavy-tailed: from one start a long target is solved in
    seconds, from another it stays one lone pair short for minutes. Taking turns solves it as soon
    as any trajectory does, at the cost of running each at 1/k of the speed. The searches are
    threads that hand the turn to one another, so exactly one runs at a time (the CPU clock counts
    them all) and the interleaving, like each trajectory, depends only on the seed."""

    def __init__(self, target: str, rng: random.Random, clock: Clock, settings: LocalSearchSettings | None = None,
                 proposer=None):
        self.s = settings = settings or LocalSearchSettings()
        self.searches = [LocalSearch(target, random.Random(rng.getrandbits(64)), clock, settings, proposer)
                         for _ in range(settings.trajectories)]
        self.active = 0                 # whose turn it is
        self.finished = [False] * len(self.searches)
        self.solved: int | None = None  # the search that solved the target
        self.over = False               # solved, or a search failed: the others stop at their next turn
        self.cond = threading.Condition()
        for k, search in enumerate(self.searches):
            search.evaluate.gate = functools.partial(self._gate, k)

    @property
    def evaluations(self) -> int:
        return sum(s.evaluations[0] for s in self.searches)

    @property
    def restarts(self) -> int:
        return sum(s.restarts for s in self.searches)

    @property
    def current(self) -> list[str] | None:
        return self.searches[0].current

    def _next(self, k: int) -> None:  # hand the turn on (the caller holds the lock)
        order = [(k + d) % len(self.searches) for d in range(1, len(self.searches) + 1)]
        self.active = next((m for m in order if not self.finished[m]), k)
        self.cond.notify_all()

    def _gate(self, k: int) -> None:
        if self.searches[k].evaluations[0] % self.s.turn == 0:
            with self.cond:
                self._next(k)
                self.cond.wait_for(lambda: self.active == k or self.over)
        if self.over:
            raise Stop

    def _work(self, k: int, results: list) -> None:
        with self.cond:
            self.cond.wait_for(lambda: self.active == k)
        try:
            results[k] = self.searches[k].run()
        except BaseException as error:  # re-raised by `run` in the calling thread
            results[k] = error
        with self.cond:
            self.finished[k] = True
            if isinstance(results[k], BaseException):
                self.over = True
            elif results[k][1]:
                self.over, self.solved = True, k
            self._next(k)

    def run(self) -> tuple[Candidate | None, bool]:
        """Same contract as `LocalSearch.run`: (the solving or best candidate, solved)."""
        results: list = [None] * len(self.searches)
        threads = [threading.Thread(target=self._work, args=(k, results), daemon=True)
                   for k in range(len(self.searches))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for result in results:
            if isinstance(result, BaseException):
                raise result
        if self.solved is not None:
            return results[self.solved]
        found = [cand for cand, _ in results if cand is not None]
        return (min(found, key=lambda c: c.cost) if found else None), False
