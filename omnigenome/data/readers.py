"""Readers of the public benchmark formats: one `Example` per record, labels shaped by the task's head.

Each reader takes the path of one split and the task config (a plain dict: `head`, `num_labels`,
`label_names`, `fields`, ...) and reads the suite's files as published (nothing is copied into the project):

- `rgb_jsonl`: RGB JSON lines (`{"seq": ..., "label": ...}`; SNMD/SNMR: `{"seq", "mut", "ratio"}`).
- `openvaccine`: OpenVaccine (Kaggle stanford-covid-vaccine) records, as JSON lines (RGB-mRNA) or as
  the "column" JSON that pandas writes (`{"column": {"row": value}}`), optionally zipped.
- `pgb`: plant-genomic-benchmark: OmniGenBench's JSON lines copy (what the OmniGenome paper used), the
  InstaDeep FASTA files (header `name|label[|label...]`), or CSV / Parquet with columns `sequence`, `name`,
  `label` (multi-output tasks: `labels`).
- `gb`: Genomic Benchmarks folders `<split>/<class>/*.txt`, one sequence per file.
- `gue_csv`: GUE (DNABERT-2) CSV `sequence,label`.

Problems in a file raise ValueError("FILE, line N: problem").
"""
from __future__ import annotations

import csv
import functools
import json
import math
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from omnigenome.constants import IGNORE_INDEX, TOKEN_HEADS
from omnigenome.structure import LABEL_ID, to_labels
from omnigenome.tokenizer import OmniGenomeTokenizer, check_nucleotides

FORMATS = ("rgb_jsonl", "openvaccine", "pgb", "gb", "gue_csv")


@dataclass(frozen=True)
class Example:
    """One record of a task.

    id: "<file>:<line>" (or the record's own id), used in messages.
    sequence: as written in the file (the tokenizer normalises case, U/T and IUPAC codes later).
    label, by head: sequence_classification int64 shape (); multilabel float32 (num_labels,) of 0/1;
        sequence_regression float32 (num_labels,); token_classification int64 (len(sequence),) with
        -100 where not scored; token_regression float32 (len(sequence), num_labels) with NaN where not
        scored.
    structure: the dot-bracket of the record when the data set has one: the label itself in structure
        prediction tasks, the data set's own structure in OpenVaccine; else None.
    """
    id: str
    sequence: str
    label: np.ndarray
    structure: str | None = None

# --- shared record checks --------------------------------------------------------------------------

def _check_sequence(sequence: Any, where: str, field: str = "sequence") -> str:
    if not isinstance(sequence, str):
        raise ValueError(f"{where}: {field} is not a string")
    try:
        check_nucleotides(sequence)
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None
    return sequence


def _class_ids(task: dict) -> dict[str, int]:
    names = task.get("label_names") or [str(i) for i in range(int(task["num_labels"]))]
    return {str(n): i for i, n in enumerate(names)}


def _class_label(value: Any, task: dict, where: str) -> int:
    """A class given by id (int, "3", 3.0) or by one of `label_names`."""
    num = int(task["num_labels"])
    names = _class_ids(task)
    if isinstance(value, str) and value.strip() in names and task.get("label_names"):
        return names[value.strip()]
    try:
        as_float = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: unknown class {value!r} (classes: {', '.join(names)})") from None
    if not as_float.is_integer() or not 0 <= as_float < num:
        raise ValueError(f"{where}: class {value!r} out of range (expected an id in 0..{num - 1})")
    return int(as_float)


def _number_list(value: Any, where: str) -> list[float]:
    """A label that may be one number or a list: JSON/Python list text, numpy's "[0 1 0]", or a list."""
    if isinstance(value, (list, tuple, np.ndarray)):
        items = list(value)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        items = [value]
    elif isinstance(value, str) and value.strip():
        items = [x for x in re.split(r"[\s,;]+", value.strip().strip("[]()")) if x]
    else:
        raise ValueError(f"{where}: empty label")
    try:
        return [float(x) for x in items]
    except (TypeError, ValueError):
        raise ValueError(f"{where}: label {value!r} is not a number or a list of numbers") from None


def _sequence_label(value: Any, task: dict, where: str) -> np.ndarray:
    """Label of a sequence-level head from one field value."""
    head, num = task["head"], int(task["num_labels"])
    if head == "sequence_classification":
        return np.asarray(_class_label(value, task, where), dtype=np.int64)
    values = _number_list(value, where)
    if len(values) != num:
        raise ValueError(f"{where}: label has {len(values)} values, the task has num_labels={num}")
    if any(not math.isfinite(v) for v in values):
        raise ValueError(f"{where}: label holds a value that is not a finite number")
    if head == "multilabel" and any(v not in (0.0, 1.0) for v in values):
        raise ValueError(f"{where}: multilabel label must hold only 0 and 1, got {value!r}")
    if head not in ("multilabel", "sequence_regression"):
        raise ValueError(f"{where}: head {head} needs per-position labels, not one value per sequence")
    return np.asarray(values, dtype=np.float32)


def _mask_tokens(label: np.ndarray, task: dict) -> np.ndarray:
    """Unscore positions >= scored_length."""
    n = task.get("scored_length")
    if n is not None and label.shape[0] > n:
        label = label.copy()
        label[n:] = IGNORE_INDEX if label.dtype == np.int64 else np.nan
    return label


# --- JSON lines (RGB) ------------------------------------------------------------------------------

def json_lines(lines: Iterable[str], where_file) -> Iterator[tuple[int, str, Any]]:
    """(line number, "FILE, line N", parsed value) for each non-blank line; a line that is not JSON
    raises ValueError naming the file and line."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{where_file}, line {number}"
        try:
            value = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{where}: not valid JSON ({e.msg})") from None
        yield number, where, value


def iter_json_lines(path: str | os.PathLike) -> Iterator[tuple[int, str, dict]]:
    """(line number, "FILE, line N", object) for each non-blank line of a JSON-lines file.
    Raises ValueError naming the file and line for a line that is not a JSON object."""
    path = Path(path)
    with open(path, encoding="utf-8") as f:
        for number, where, obj in json_lines(f, path):
            if not isinstance(obj, dict):
                raise ValueError(f"{where}: expected a JSON object")
            yield number, where, obj


def _field(obj: dict, task: dict, key: str, where: str, default: str) -> Any:
    name = (task.get("fields") or {}).get(key, default)
    if name not in obj:
        raise ValueError(f"{where}: missing field {name!r}")
    return obj[name]


def read_rgb_jsonl(path: Path, task: dict) -> list[Example]:
    """RGB JSON lines. `label_kind` says how the label is read:

    structure: `label` is a dot-bracket -> 3-class `(` `)` `.` labels (`structure.to_labels`).
    mutation_detection (SNMD): the input is the mutated sequence `mut`; label 1 where it differs
        from the reference `seq`, else 0.
    mutation_repair (SNMR): the input is `mut`; at mutated positions the label is the reference
        base (one of `label_names`, T and U alike); unmutated positions are not scored (-100).
    tokens: `label` is a string or list of per-position class names (or ids).
    Field names come from `fields` (defaults: sequence `seq`, label `label`, reference `seq`).
    """
    kind = task.get("label_kind", "structure")
    if kind == "structure" and task.get("label_names") and sorted(task["label_names"]) != sorted(LABEL_ID):
        raise ValueError(f"task {task['name']}: structure labels are {list(LABEL_ID)}, not {task['label_names']}")
    if task["head"] != "token_classification":
        raise ValueError(f"task {task['name']}: rgb_jsonl reads per-nucleotide classes; head must be token_classification")
    # mutation labels compare bases in the alphabet of the label names (SNMR's A, U, G, C), whatever the file's
    names = set(task.get("label_names") or ())
    normalizer = OmniGenomeTokenizer(alphabet="U" if "U" in names else "T" if "T" in names else None)
    classes = _class_ids(task)
    examples = []
    for number, where, obj in iter_json_lines(path):
        record_id = str(obj.get("id", f"{path.name}:{number}"))
        if kind == "structure":
            sequence = _check_sequence(_field(obj, task, "sequence", where, "seq"), where)
            structure = _field(obj, task, "label", where, "label")
            if not isinstance(structure, str):
                raise ValueError(f"{where}: label is not a dot-bracket string")
            if len(structure) != len(sequence):
                raise ValueError(f"{where}: label length {len(structure)} differs from sequence length {len(sequence)}")
            try:
                ids = to_labels(structure)
            except ValueError as e:
                raise ValueError(f"{where}: {e}") from None
            label = np.asarray(ids, dtype=np.int64)[...]
            if task.get("label_names"):  # to_labels counts in LABEL_ID order; use label_names' order
                order = np.asarray([classes[c] for c in sorted(LABEL_ID, key=LABEL_ID.get)], dtype=np.int64)
                label = order[label]
        elif kind in ("mutation_detection", "mutation_repair"):
            sequence = _check_sequence(_field(obj, task, "sequence", where, "mut"), where, "mutated sequence")
            reference = _check_sequence(_field(obj, task, "reference", where, "seq"), where, "reference sequence")
            if len(reference) != len(sequence):
                raise ValueError(f"{where}: reference length {len(reference)} differs from sequence length {len(sequence)}")
            mut, ref = normalizer.normalize(sequence), normalizer.normalize(reference)
            if kind == "mutation_detection":
                label = np.fromiter((a != b for a, b in zip(mut, ref)), dtype=np.int64, count=len(mut))
            else:
                label = np.full(len(mut), IGNORE_INDEX, dtype=np.int64)
                for i, (a, b) in enumerate(zip(mut, ref)):
                    if a != b:
                        if b not in classes:
                            raise ValueError(f"{where}: unknown class {b!r} at position {i + 1} (classes: {', '.join(classes)})")
                        label[i] = classes[b]
        elif kind == "tokens":
            sequence = _check_sequence(_field(obj, task, "sequence", where, "seq"), where)
            values = _field(obj, task, "label", where, "label")
            if isinstance(values, str) and "," in values:
                values = values.split(",")
            if len(values) != len(sequence):
                raise ValueError(f"{where}: label length {len(values)} differs from sequence length {len(sequence)}")
            label = np.asarray([_class_label(v, task, where) for v in values], dtype=np.int64)
        else:
            raise ValueError(f"task {task['name']}: unknown label_kind {kind!r}")
        examples.append(Example(record_id, sequence, _mask_tokens(label, task),
                                structure if kind == "structure" else None))
    return examples


# --- OpenVaccine -----------------------------------------------------------------------------------

def _openvaccine_records(path: Path) -> list[tuple[str, dict]]:
    """("FILE, line N" or "FILE, record N", record) of an OpenVaccine file: JSON lines, or one JSON
    object of columns {"column": {"row": value}} as pandas writes it; `.zip` holds one such file.
    The parsed records of the last few files are kept (train and valid both read the Kaggle set)."""
    stat = path.stat()
    return _parsed_openvaccine(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=2)
def _parsed_openvaccine(path: str, mtime_ns: int, size: int) -> list[tuple[str, dict]]:
    return list(_iter_openvaccine(Path(path)))


def _iter_openvaccine(path: Path) -> Iterator[tuple[str, dict]]:
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as z:
            members = [m for m in z.namelist() if not m.endswith("/")]
            if len(members) != 1:
                raise ValueError(f"{path}: expected one JSON file in the archive, found {len(members)}")
            text = z.read(members[0]).decode("utf-8")
        where_file = f"{path}!{members[0]}"
    else:
        text = path.read_text(encoding="utf-8")
        where_file = str(path)
    stripped = text.lstrip()
    try:
        whole = json.loads(stripped) if stripped.startswith(("{", "[")) else None
    except json.JSONDecodeError:
        whole = None  # JSON lines: several objects, one a line
    if isinstance(whole, list):
        for k, rec in enumerate(whole, start=1):
            yield f"{where_file}, record {k}", rec
    elif isinstance(whole, dict) and whole and all(isinstance(v, dict) for v in whole.values()):
        columns = list(whole)
        rows = list(whole[columns[0]])
        for k, row in enumerate(rows, start=1):
            yield f"{where_file}, record {k} (row {row})", {c: whole[c].get(row) for c in columns}
    elif isinstance(whole, dict):
        yield f"{where_file}, line 1", whole
    else:
        for _, where, rec in json_lines(text.splitlines(), where_file):
            yield where, rec


def read_openvaccine(path: Path, task: dict) -> list[Example]:
    """OpenVaccine records: `sequence`, `structure`, and one list per target in `label_names`
    (reactivity, deg_Mg_pH10, deg_Mg_50C) covering the first `seq_scored` positions. Label:
    float32 (len(sequence), targets), NaN past the measured (and `scored_length`) positions."""
    if task["head"] != "token_regression":
        raise ValueError(f"task {task['name']}: openvaccine data needs head token_regression")
    targets = list(task.get("label_names") or [])
    if len(targets) != int(task["num_labels"]):
        raise ValueError(f"task {task['name']}: label_names must name the {task['num_labels']} target fields")
    examples = []
    for where, rec in _openvaccine_records(path):
        if not isinstance(rec, dict):
            raise ValueError(f"{where}: expected a JSON object")
        sequence = _check_sequence(_field(rec, task, "sequence", where, "sequence"), where)
        structure = rec.get((task.get("fields") or {}).get("structure", "structure"))
        if structure is not None:
            if not isinstance(structure, str) or len(structure) != len(sequence):
                raise ValueError(f"{where}: structure length differs from sequence length {len(sequence)}")
        label = np.full((len(sequence), len(targets)), np.nan, dtype=np.float32)
        for t, name in enumerate(targets):
            values = rec.get(name)
            if not isinstance(values, list):
                raise ValueError(f"{where}: missing target list {name!r}")
            if len(values) > len(sequence):
                raise ValueError(f"{where}: label length {len(values)} of {name!r} exceeds sequence length {len(sequence)}")
            try:
                label[: len(values), t] = np.asarray(values, dtype=np.float32)
            except (TypeError, ValueError):
                raise ValueError(f"{where}: {name!r} holds a value that is not a number") from None
        examples.append(Example(str(rec.get("id") or where), sequence, _mask_tokens(label, task), structure))
    return examples


# --- CSV / Parquet (PGB, GUE) ----------------------------------------------------------------------

def _table_rows(path: Path, columns: tuple[str, ...], optional: tuple[str, ...] = ()) -> Iterator[tuple[int, str, tuple]]:
    """(line, "FILE, line N", values of `columns`) for each row of a CSV file (header on line 1) or a
    Parquet file (counted as "row N" from 1). A column in `optional` that the file lacks reads as None."""
    name = path.name.lower()
    required = [c for c in columns if c not in optional]
    if name.endswith(".parquet"):
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise ImportError(f"reading {path} needs pyarrow: pip install pyarrow (or convert it to CSV)") from None
        table = pq.read_table(path)
        missing = [c for c in required if c not in table.column_names]
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(missing)} (has {', '.join(table.column_names)})")
        data = [table.column(c).to_pylist() if c in table.column_names else [None] * table.num_rows for c in columns]
        for k, values in enumerate(zip(*data), start=1):
            yield k, f"{path}, row {k}", values
        return
    if name.endswith(".gz"):
        import gzip
        handle = gzip.open(path, "rt", encoding="utf-8", newline="")
    else:
        handle = open(path, encoding="utf-8", newline="")
    with handle as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{path}, line 1: empty file (expected a header with {', '.join(required)})")
        header = [h.strip() for h in header]
        missing = [c for c in required if c not in header]
        if missing:
            raise ValueError(f"{path}, line 1: missing column(s) {', '.join(missing)} (header: {', '.join(header)})")
        index = [header.index(c) if c in header else None for c in columns]
        line = 2
        for row in reader:
            if row:  # csv skips nothing itself; a blank line is an empty row
                if len(row) != len(header):
                    raise ValueError(f"{path}, line {line}: {len(row)} fields, the header has {len(header)}")
                yield line, f"{path}, line {line}", tuple(None if i is None else row[i] for i in index)
            line = reader.line_num + 1


def _json_rows(path: Path, columns: tuple[str, ...], optional: tuple[str, ...] = ()) -> Iterator[tuple[int, str, tuple]]:
    """(line, "FILE, line N", values of `columns`) for each object of a JSON-lines file."""
    for number, where, obj in iter_json_lines(path):
        missing = [c for c in columns if c not in optional and c not in obj]
        if missing:
            raise ValueError(f"{where}: missing field(s) {', '.join(missing)} (has {', '.join(obj)})")
        yield number, where, tuple(obj.get(c) for c in columns)


def _fasta_rows(path: Path) -> Iterator[tuple[int, str, tuple]]:
    """(line, "FILE, line N", (sequence, label, name)) of the InstaDeep plant-genomic-benchmark FASTA files,
    whose headers are `name|label` or, for multi-output tasks, `name|label|label|...`."""
    from omnigenome.data.fasta import read_fasta
    for record in read_fasta(path):
        name, *labels = record.id.split("|")
        where = f"{path}, line {record.line}"
        if not labels:
            raise ValueError(f"{where}: header {record.id!r} carries no label (expected name|label)")
        yield record.line, where, (record.sequence, labels[0] if len(labels) == 1 else labels, name)


_FASTA_SUFFIXES = (".fa", ".fasta", ".fa.gz", ".fasta.gz")


def read_table(path: Path, task: dict) -> list[Example]:
    """PGB and GUE: one sequence-level example per row of a CSV / Parquet table, a JSON-lines file or a PGB
    FASTA file. Column names come from `fields` (defaults `sequence`, `label`, and `name` as the id when the
    file has it, else "FILE:LINE")."""
    if task["head"] in TOKEN_HEADS:
        raise ValueError(f"task {task['name']}: {task['format']} tables hold one label per sequence; head {task['head']} needs per-position labels")
    fields = task.get("fields") or {}
    columns = (fields.get("sequence", "sequence"), fields.get("label", "label"), fields.get("id", "name"))
    # Fast path for class labels written as ids or names; anything else goes through _class_label.
    classes = {str(i): i for i in range(int(task["num_labels"]))}
    if task["head"] == "sequence_classification" and task.get("label_names"):
        classes.update(_class_ids(task))
    name = path.name.lower()
    if name.endswith((".json", ".jsonl")):
        rows = _json_rows(path, columns, optional=columns[2:])
    elif name.endswith(_FASTA_SUFFIXES):
        rows = _fasta_rows(path)
    else:
        rows = _table_rows(path, columns, optional=columns[2:])
    examples = []
    for line, where, (sequence, value, record_id) in rows:
        _check_sequence(sequence or "", where)
        if task["head"] == "sequence_classification":
            cls = classes.get(value.strip()) if isinstance(value, str) else None
            label = np.array(cls if cls is not None else _class_label(value, task, where), dtype=np.int64)
        else:
            label = _sequence_label(value, task, where)
        examples.append(Example(str(record_id) if record_id else f"{path.name}:{line}", sequence, label))
    return examples


# --- Genomic Benchmarks folders --------------------------------------------------------------------

def read_gb_folder(folder: Path, task: dict) -> list[Example]:
    """Genomic Benchmarks split folder `<split>/<class>/*.txt`, one sequence per file (its lines are
    joined). Class ids follow `label_names` when given, else the sorted class folder names."""
    if task["head"] != "sequence_classification":
        raise ValueError(f"task {task['name']}: gb folders hold classes; head must be sequence_classification")
    class_dirs = sorted(p for p in folder.iterdir() if p.is_dir())
    names = task.get("label_names") or [p.name for p in class_dirs]
    if len(names) != int(task["num_labels"]):
        raise ValueError(f"task {task['name']}: {len(names)} classes ({', '.join(names)}) but num_labels={task['num_labels']}")
    ids = {n: i for i, n in enumerate(names)}
    examples = []
    for class_dir in class_dirs:
        if class_dir.name not in ids:
            raise ValueError(f"{class_dir}: unknown class {class_dir.name!r} (class folders: {', '.join(names)})")
        for file in sorted(class_dir.glob("*.txt")):
            lines = file.read_text(encoding="utf-8").split()
            where = f"{file}, line 1"
            sequence = _check_sequence("".join(lines), where)
            examples.append(Example(f"{class_dir.name}/{file.name}", sequence,
                                    np.asarray(ids[class_dir.name], dtype=np.int64)))
    return examples


READERS = {"rgb_jsonl": read_rgb_jsonl, "openvaccine": read_openvaccine, "pgb": read_table,
           "gb": read_gb_folder, "gue_csv": read_table}
# File endings each format reads, in the order they are tried for a split name ("train" -> train.json ...).
SUFFIXES = {"rgb_jsonl": (".json", ".jsonl"), "openvaccine": (".json", ".jsonl", ".json.zip"),
            "pgb": (".json", ".jsonl", ".csv", ".parquet", ".csv.gz") + _FASTA_SUFFIXES, "gb": ("",),
            "gue_csv": (".csv",)}
