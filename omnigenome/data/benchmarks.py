"""Readers of the public benchmark files (read where they lie; nothing is copied into the project).

Secondary structure prediction (RGB "RNA-SSP-*" folders: Archive2, bpRNA, RNAStralign): one folder per
data set with `train.json`, `valid.json`, `test.json`, each JSON lines `{"seq": ..., "label": ...}`
where `label` is the dot-bracket structure (bpRNA labels may hold pseudoknot brackets `[]{}<>`).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from omnigenome.finetune.tasks import iter_json_lines
from omnigenome.structure import pair_table
from omnigenome.tokenizer import OmniGenomeTokenizer

# Data set name (as in `dataset=<name>`) -> folder name of the RGB benchmark.
SSP_DATASETS = {"archive2": "RNA-SSP-Archive2", "bprna": "RNA-SSP-bpRNA", "rnastralign": "RNA-SSP-RNAStralign"}
SSP_SPLITS = ("train", "valid", "test")
_CHECKER = OmniGenomeTokenizer(alphabet=None)  # the one definition of a valid nucleotide string


class StructureRecord(NamedTuple):
    id: str          # "<file name>:<line>" unless the record has an "id" field
    sequence: str    # as written in the file (any case, IUPAC codes allowed)
    structure: str   # dot-bracket, same length, balanced (pseudoknot brackets allowed)


def ssp_dir(dataset: str, benchmark_root: str | os.PathLike) -> Path:
    """Folder of an SSP data set under the benchmark root: `<root>/rgb/RNA-SSP-<Name>`."""
    if dataset not in SSP_DATASETS:
        raise ValueError(f"unknown structure data set {dataset!r} (choose from {', '.join(SSP_DATASETS)})")
    return Path(benchmark_root) / "rgb" / SSP_DATASETS[dataset]


def read_structure_jsonl(path: str | os.PathLike) -> list[StructureRecord]:
    """All records of one JSON-lines file; blank lines are skipped.

    Raises ValueError naming the file and line for a line that is not a JSON object with string
    fields `seq` and `label`, an empty sequence, a character that is not a nucleotide (A C G U T N or
    an IUPAC code, any case), a label whose length differs from the sequence's, or an unbalanced label.
    """
    path = Path(path)
    records = []
    for number, where, obj in iter_json_lines(path):  # the one JSON-lines reader (finetune/tasks.py)
        if not isinstance(obj.get("seq"), str) or not isinstance(obj.get("label"), str):
            raise ValueError(f"{where}: expected an object with string fields 'seq' and 'label'")
        sequence, structure = obj["seq"], obj["label"]
        try:
            _CHECKER.normalize(sequence)
            if len(structure) != len(sequence):
                raise ValueError(f"label length {len(structure)} differs from sequence length {len(sequence)}")
            pair_table(structure)
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None
        records.append(StructureRecord(str(obj.get("id", f"{path.name}:{number}")), sequence, structure))
    return records


def load_ssp_split(dataset: str, split: str = "test", data_dir: str | os.PathLike | None = None,
                   benchmark_root: str | os.PathLike | None = None, limit: int | None = None) -> list[StructureRecord]:
    """Records of one split of an SSP data set.

    dataset: "archive2", "bprna" or "rnastralign" (used in messages, and to find the folder when
        `data_dir` is not given). data_dir: the folder holding `<split>.json`; default
        `ssp_dir(dataset, benchmark_root)`. limit: keep the first `limit` records (quick runs).
    Raises FileNotFoundError saying what to download and where to put it when the file is missing.
    """
    if split not in SSP_SPLITS:
        raise ValueError(f"unknown split {split!r} (choose from {', '.join(SSP_SPLITS)})")
    if data_dir is None:
        if benchmark_root is None:
            raise ValueError("give data_dir or benchmark_root")
        data_dir = ssp_dir(dataset, benchmark_root)
    path = Path(data_dir) / f"{split}.json"
    if not path.is_file():
        folder = SSP_DATASETS.get(dataset, Path(data_dir).name)
        raise FileNotFoundError(
            f"{dataset} {split} split not found: no {path}. Download the {folder} folder of the OmniGenome RGB "
            f"benchmark (JSON lines {{\"seq\", \"label\"}}: train.json, valid.json, test.json) and put it at "
            f"{data_dir}, or point OMNIGENOME_BENCHMARK_DATA at the directory that holds rgb/{folder}/.")
    records = read_structure_jsonl(path)
    if not records:
        raise ValueError(f"{path}: no records")
    return records[:limit] if limit is not None else records
