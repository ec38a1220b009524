"""The three stages of `omnigenome prep` (see `omnigenome.data.prep` for the whole job and its output).

1. plan (one process, streaming): read every input, normalise, filter by length, cut long sequences into
   windows or drop them, exact de-duplication over all inputs (hash set), then near-duplicate removal with
   cd-hit-est, split train/valid by a hash of the sequence, and cut the kept records into fixed work units
   of `records_per_shard` (one unit = one output shard). `.work/plan.json` is written last; a rerun that
   finds it (for the same inputs and settings) skips this stage.
2. fold (per unit, here or as a submitit job array): fold the unit's sequences with ViennaRNA in a process
   pool, write its shard atomically, then its result file. A unit whose result file exists is never folded
   again.
3. merge: the units' results -> train/index.json, valid/index.json, then manifest.json last.

Every input record lands in exactly one bucket, checked in this order: invalid (a character the tokenizer
rejects; listed with file, line and id), too_short, too_long (long_policy=drop) or windowed
(long_policy=window; its windows are counted under "windows"), duplicate (the same normalised sequence as an
earlier record, in any input file), near_duplicate (a non-representative member of a cd-hit-est cluster),
kept_train / kept_valid.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Iterable, Iterator

from omnigenome.data.dedup import ExactDeduplicator, find_cdhit, near_duplicates
from omnigenome.data.fasta import read_sequences
from omnigenome.data.shards import INDEX, shard_name, write_index, write_json_atomic, write_shard
from omnigenome.folding import fold_many
from omnigenome.tokenizer import OmniGenomeTokenizer
from omnigenome.utils import available_cores

MANIFEST = "manifest.json"
MANIFEST_VERSION = 3
WORK = ".work"
PLAN = "plan.json"
CORPUS_SPLITS = ("train", "valid")  # a pretraining corpus has no test split
COUNT_KEYS = ("input", "kept_train", "kept_valid", "too_short", "too_long", "windowed", "invalid", "duplicate",
              "near_duplicate")
WINDOW_KEYS = ("made", "kept_train", "kept_valid", "duplicate", "near_duplicate")


# --- helpers -----------------------------------------------------------------------------------
def is_validation(sequence: str, valid_fraction: float, seed: int = 0) -> bool:
    """Deterministic train/valid assignment from a hash of the (normalised) sequence.

    Depends only on the sequence and the seed, not on file order, so the same sequence is in the
    same split in every run and in every corpus prepared with that seed.
    """
    digest = hashlib.blake2b(f"{seed}:{sequence}".encode("ascii"), digest_size=8).digest()
    return int.from_bytes(digest, "big") < valid_fraction * 2 ** 64


def windows(length: int, size: int, overlap: int) -> list[tuple[int, int]]:
    """[start, end) windows of `size` covering 0..length, consecutive ones sharing `overlap` nt.

    The stride is size - overlap; the last window ends at `length` (it may overlap its predecessor
    by more), so every nucleotide is covered and every window has the full size.
    """
    if length <= size:
        return [(0, length)]
    stride = size - overlap
    starts = list(range(0, length - size + 1, stride))
    if starts[-1] + size < length:
        starts.append(length - size)
    return [(s, s + size) for s in starts]


def window_id(record_id: str, start: int, end: int) -> str:
    """`<id>/w<first>-<last>`, 1-based inclusive positions in the normalised sequence."""
    return f"{record_id}/w{start + 1}-{end}"


def _plan_settings(cfg) -> dict:
    """The settings the output depends on (workers, executor and progress do not change it)."""
    settings = {"min_length": cfg.min_length, "max_length": cfg.max_length, "long_policy": cfg.long_policy,
                "exact_dedup": cfg.dedup.exact, "near_dup": cfg.near_dup.enabled,
                "valid_fraction": cfg.valid_fraction, "seed": cfg.seed, "records_per_shard": cfg.records_per_shard,
                "alphabet": "U", "structures": "ViennaRNA MFE (omnigenome.folding.fold)"}
    if cfg.long_policy == "window":
        settings["window_overlap"] = cfg.window.overlap
    if cfg.near_dup.enabled:
        settings["near_dup_identity"] = cfg.near_dup.identity
        settings["near_dup_both_strands"] = cfg.near_dup.both_strands
    return settings


def _fingerprint(inputs: list[Path], settings: dict) -> str:
    """Identifies a plan: the plan settings and each input's path, size and modification time."""
    stats = [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in inputs]
    return hashlib.blake2b(json.dumps([stats, settings]).encode(), digest_size=16).hexdigest()


def _read_unit(path: Path) -> Iterator[tuple[str, str]]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            rid, sequence = line.rstrip("\n").split("\t")
            yield rid, sequence


# --- stage 1: plan -----------------------------------------------------------------------------
def _scan(inputs: list[Path], cfg, work: Path):
    """Stream the inputs once; write the surviving (kind, split, id, sequence) rows to work/candidates.tsv.

    kind is "r" for a whole record, "w" for a window. split is "train" or "valid", from a hash of the
    whole record's sequence, so that all windows of a record are in the same split (overlapping
    windows in both would leak validation data into training). Returns counts, window counts,
    per-input record counts and the invalid records.
    """
    tokenizer = OmniGenomeTokenizer(alphabet="U")
    dedup = ExactDeduplicator() if cfg.dedup.exact else None
    counts = dict.fromkeys(COUNT_KEYS, 0)
    wcounts = dict.fromkeys(WINDOW_KEYS, 0)
    per_input: list[dict] = []
    invalid: list[dict] = []
    with open(work / "candidates.tsv", "w", encoding="utf-8") as out:
        for path in inputs:
            n_before = counts["input"]
            for record in read_sequences(path):
                counts["input"] += 1
                try:
                    sequence = tokenizer.normalize(record.sequence, record=record.id)
                except ValueError as e:
                    counts["invalid"] += 1
                    invalid.append({"id": record.id, "file": str(path), "line": record.line, "reason": str(e)})
                    continue
                if "\t" in record.id:  # FASTA ids never hold whitespace; JSON-lines ids are ours
                    raise ValueError(f"{path}, line {record.line}: record id {record.id!r} contains a tab")
                if len(sequence) < cfg.min_length:
                    counts["too_short"] += 1
                    continue
                if len(sequence) > cfg.max_length and cfg.long_policy == "drop":
                    counts["too_long"] += 1
                    continue
                split = "valid" if is_validation(sequence, cfg.valid_fraction, cfg.seed) else "train"
                if len(sequence) > cfg.max_length:
                    counts["windowed"] += 1
                    for start, end in windows(len(sequence), cfg.max_length, cfg.window.overlap):
                        wcounts["made"] += 1
                        piece = sequence[start:end]
                        if dedup is not None and not dedup.first(piece):
                            wcounts["duplicate"] += 1
                        else:
                            out.write(f"w\t{split}\t{window_id(record.id, start, end)}\t{piece}\n")
                elif dedup is not None and not dedup.first(sequence):
                    counts["duplicate"] += 1
                else:
                    out.write(f"r\t{split}\t{record.id}\t{sequence}\n")
            per_input.append({"path": str(path), "records": counts["input"] - n_before})
    return counts, wcounts, per_input, invalid


def _candidates(work: Path) -> Iterator[tuple[str, str, str, str]]:
    with open(work / "candidates.tsv", encoding="utf-8") as f:
        for line in f:
            kind, split, rid, sequence = line.rstrip("\n").split("\t")
            yield kind, split, rid, sequence


def _make_plan(inputs: list[Path], cfg, work: Path, fingerprint: str) -> dict:
    """Stage 1; writes work/units/<unit>.tsv and work/plan.json (last), returns the plan."""
    if work.exists():
        shutil.rmtree(work)  # an interrupted earlier plan stage, or a plan for other settings
    (work / "units").mkdir(parents=True)
    counts, wcounts, per_input, invalid = _scan(inputs, cfg, work)

    removed: set[int] = set()
    if cfg.near_dup.enabled:
        nd = cfg.near_dup
        removed = near_duplicates((s for *_, s in _candidates(work)), work, nd.identity, nd.program,
                                  nd.threads, nd.memory_mb, nd.both_strands)

    units: list[dict] = []
    current: dict[str, tuple[dict, Any] | None] = dict.fromkeys(CORPUS_SPLITS)
    numbers = dict.fromkeys(CORPUS_SPLITS, 0)

    def add(split: str, rid: str, sequence: str) -> None:
        if current[split] is None:
            unit = {"name": f"{split}-{numbers[split]:05d}", "split": split, "shard": shard_name(numbers[split]),
                    "records": 0, "nucleotides": 0, "cost": 0}
            numbers[split] += 1
            units.append(unit)
            current[split] = (unit, open(work / "units" / f"{unit['name']}.tsv", "w", encoding="utf-8"))
        unit, f = current[split]
        f.write(f"{rid}\t{sequence}\n")
        unit["records"] += 1
        unit["nucleotides"] += len(sequence)
        unit["cost"] += len(sequence) ** 3  # folding time grows about as length^3
        if unit["records"] == cfg.records_per_shard:
            f.close()
            current[split] = None

    try:
        for position, (kind, split, rid, sequence) in enumerate(_candidates(work)):
            if position in removed:
                (wcounts if kind == "w" else counts)["near_duplicate"] += 1
                continue
            (wcounts if kind == "w" else counts)[f"kept_{split}"] += 1
            add(split, rid, sequence)
    finally:
        for item in current.values():
            if item is not None:
                item[1].close()

    accounted = sum(counts[k] for k in COUNT_KEYS if k != "input")
    assert accounted == counts["input"], f"manifest counts do not add up: {counts}"
    assert sum(wcounts[k] for k in WINDOW_KEYS if k != "made") == wcounts["made"], wcounts
    plan = {"fingerprint": fingerprint, "settings": _plan_settings(cfg), "inputs": per_input, "counts": counts,
            "windows": wcounts, "invalid": invalid, "units": units}
    write_json_atomic(work / PLAN, plan)
    (work / "candidates.tsv").unlink()
    for name in ("near_dup.fasta", "near_dup.cdhit"):
        (work / name).unlink(missing_ok=True)
    return plan


def plan_corpus(inputs: Iterable[str | os.PathLike], out_dir: str | os.PathLike, cfg) -> dict:
    """Stage 1, or the plan a previous run left for the same inputs and settings; returns the plan.

    Raises FileExistsError when out_dir holds a finished corpus (manifest.json) or a corpus that
    this pipeline did not start; CdHitMissing (a FileNotFoundError) when near-duplicate removal is
    asked for and cd-hit-est is missing; FastaError naming file and line for malformed input.
    """
    inputs = [Path(p) for p in inputs]
    if not inputs:
        raise ValueError("no input files given")
    for p in inputs:
        if not p.is_file():
            raise FileNotFoundError(f"input file not found: {p}")
    out_dir = Path(out_dir)
    work = out_dir / WORK
    if (out_dir / MANIFEST).exists() and (work / PLAN).exists() and not cfg.keep_work:
        # Killed between writing the manifest and removing the work files: the corpus is complete.
        shutil.rmtree(work)
    if (out_dir / MANIFEST).exists():
        raise FileExistsError(f"{out_dir} already holds a prepared corpus ({out_dir / MANIFEST}); "
                              f"delete it or choose another --out")
    if not (work / PLAN).exists():
        existing = [p for p in (out_dir / s / INDEX for s in CORPUS_SPLITS) if p.exists()]
        if existing:
            raise FileExistsError(f"{out_dir} already holds a corpus ({existing[0]}); delete it or choose another --out")
    if cfg.near_dup.enabled:
        find_cdhit(cfg.near_dup.program)  # fail before reading anything
    fingerprint = _fingerprint(inputs, _plan_settings(cfg))
    if (work / PLAN).exists():
        plan = json.loads((work / PLAN).read_text())
        if plan["fingerprint"] == fingerprint:
            return plan
        raise FileExistsError(f"{out_dir} holds an unfinished preparation of other inputs or settings "
                              f"({work / PLAN}); rerun that command to finish it, or delete {out_dir}")
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        return _make_plan(inputs, cfg, work, fingerprint)
    except Exception:  # malformed input, cd-hit failure: leave nothing behind
        shutil.rmtree(work, ignore_errors=True)
        if created:
            shutil.rmtree(out_dir, ignore_errors=True)
        raise


# --- stage 2: fold -----------------------------------------------------------------------------
def _result_path(out_dir: Path, unit: str) -> Path:
    return out_dir / WORK / "units" / f"{unit}.done.json"


def pending_units(out_dir: str | os.PathLike, plan: dict) -> list[dict]:
    """The plan's units that have no result file yet, in plan order."""
    return [u for u in plan["units"] if not _result_path(Path(out_dir), u["name"]).exists()]


def fold_units(out_dir: str | os.PathLike, unit_names: list[str], workers: int | None = None,
               progress: bool = True) -> list[str]:
    """Stage 2 for some units: fold, write each unit's shard atomically, then its result file.

    Units that already have a result file are skipped, so this may be called again after an
    interruption, and from several processes or machines for disjoint unit lists (the job-array
    tasks). workers: folding processes (None = all available cores). Returns the units folded.
    """
    from tqdm import tqdm

    out_dir = Path(out_dir)
    plan = json.loads((out_dir / WORK / PLAN).read_text())
    by_name = {u["name"]: u for u in plan["units"]}
    todo = [by_name[n] for n in unit_names if not _result_path(out_dir, n).exists()]
    workers = workers or available_cores()
    bar = tqdm(total=sum(u["records"] for u in todo), desc="folding", unit="rec", disable=not progress,
               smoothing=0.05, dynamic_ncols=True)
    try:
        for unit in todo:
            bar.set_postfix_str(unit["name"])
            rows = list(_read_unit(out_dir / WORK / "units" / f"{unit['name']}.tsv"))
            sequences = [s for _, s in rows]
            # Longest first: fold_many orders its chunks by cost within the unit.
            structures = fold_many(sequences, workers=workers, bar=bar)
            number = int(unit["shard"].split("-")[1])
            entry = write_shard(out_dir / unit["split"], number,
                                ((rid, s, t) for (rid, s), (t, _) in zip(rows, structures)))
            paired = sum(len(t) - t.count(".") for t, _ in structures)
            write_json_atomic(_result_path(out_dir, unit["name"]), {"unit": unit["name"], "shard": entry,
                                                                    "paired": paired})
    finally:
        bar.close()
    return [u["name"] for u in todo]


# --- stage 3: merge ----------------------------------------------------------------------------
def _remove_temp_files(directory: Path) -> None:
    """Temp files and directories of writers killed mid-write (`.<name>.tmp-<pid>`)."""
    if directory.is_dir():
        for p in directory.glob(".*.tmp-*"):
            shutil.rmtree(p) if p.is_dir() else p.unlink()


def merge_corpus(out_dir: str | os.PathLike, keep_work: bool = False) -> dict:
    """Stage 3: the units' results -> the split indexes and manifest.json (written last); returns the manifest.

    Raises RuntimeError naming the units without a result (not folded yet, or their task failed).
    """
    out_dir = Path(out_dir)
    work = out_dir / WORK
    plan = json.loads((work / PLAN).read_text())
    missing = [u["name"] for u in pending_units(out_dir, plan)]
    if missing:
        raise RuntimeError(f"{len(missing)} work unit(s) not folded yet ({', '.join(missing[:5])}"
                           f"{', ...' if len(missing) > 5 else ''}); rerun the same command to finish them")
    splits: dict[str, dict] = {}
    paired = 0
    for split in CORPUS_SPLITS:
        entries = []
        for unit in (u for u in plan["units"] if u["split"] == split):
            result = json.loads(_result_path(out_dir, unit["name"]).read_text())
            entries.append(result["shard"])
            paired += result["paired"]
        (out_dir / split).mkdir(parents=True, exist_ok=True)
        _remove_temp_files(out_dir / split)
        index = write_index(out_dir / split, entries)
        splits[split] = {"records": index["num_records"], "nucleotides": index["num_nucleotides"],
                         "shards": len(entries)}
    nucleotides = splits["train"]["nucleotides"] + splits["valid"]["nucleotides"]
    manifest = {
        "version": MANIFEST_VERSION,
        "settings": plan["settings"],
        "inputs": plan["inputs"],
        "counts": plan["counts"],
        "windows": plan["windows"],
        "train": splits["train"],
        "valid": splits["valid"],
        "paired_fraction": round(paired / nucleotides, 6) if nucleotides else 0.0,
        "invalid": plan["invalid"],
    }
    _remove_temp_files(out_dir)
    write_json_atomic(out_dir / MANIFEST, manifest)
    if not keep_work:
        shutil.rmtree(work)
    return manifest
