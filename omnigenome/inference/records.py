"""Input records for inference: FASTA / FASTA.gz, CSV / TSV (optionally .gz) or JSON lines with a sequence
column, standard input (`-`), or sequences given in Python.

Every record carries where it came from (`FILE, line N`), so a message about it names the file, the line and
the record id. Reading streams: records come one at a time, so memory does not grow with the input. The
layout of a file is checked while reading (a malformed FASTA stops with the file and line); whether the model
can take a sequence (its characters, its length) is decided later, per model (`omnigenome.inference.batching`).
"""
from __future__ import annotations

import csv
import gzip
import io
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple

from omnigenome.data.readers import json_lines
from omnigenome.utils import where as record_prefix

SEQUENCE_COLUMNS = ("sequence", "seq")  # tried in this order when no --column is given
ID_COLUMNS = ("id", "name")
FASTA_SUFFIXES = (".fa", ".fasta", ".fna", ".ffn", ".frn")
TABLE_SUFFIXES = (".csv", ".tsv")
JSON_SUFFIXES = (".json", ".jsonl", ".ndjson")
STDIN = "-"


class Record(NamedTuple):
    """One input sequence. `where`: "FILE, line N" (or "sequence K" for sequences given in Python);
    `extra`: other columns a job reads (a variant sequence, a list of mutations), by name."""
    id: str
    sequence: str
    where: str
    extra: dict | None = None

    def describe(self) -> str:
        """"FILE, line N, record 'x'": how messages name this record."""
        return f"{self.where}, {record_prefix(self.id).rstrip(': ')}"


def input_format(path: str | os.PathLike) -> str:
    """"fasta", "table" or "jsonl" from the file name (a .gz ending is looked through), else from its first
    non-blank character ('>' FASTA, '{' JSON lines, anything else a table)."""
    name = str(path).lower()
    if name.endswith(".gz"):
        name = name[:-3]
    if name.endswith(FASTA_SUFFIXES):
        return "fasta"
    if name.endswith(TABLE_SUFFIXES):
        return "table"
    if name.endswith(JSON_SUFFIXES):
        return "jsonl"
    with _open_text(Path(path)) as f:
        for line in f:
            if line.strip():
                return {">": "fasta", "{": "jsonl"}.get(line.lstrip()[0], "table")
    return "fasta"


def _open_text(path: Path):
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rt", encoding="utf-8", newline="") if gz else open(path, encoding="utf-8", newline="")


class InputFile:
    """A file of records, read as many times as needed (counting, then streaming a range of it).

    path: the file, or "-" for standard input (copied once to a temporary file, so that reading still
    streams and can be repeated; messages name it `<stdin>`).
    column / id_column: the sequence and id columns of a table or JSON lines (default: the first of
        `sequence`, `seq`; ids from `id` or `name` when present, else `<file name>:<line>`).
    extra_columns: further columns to read into `Record.extra` (e.g. a variant sequence).
    name: how messages and metadata name the input (default: the path as given).
    """

    def __init__(self, path: str | os.PathLike, column: str | None = None, id_column: str | None = None,
                 extra_columns: Iterable[str] = (), name: str | None = None):
        self.column, self.id_column, self.extra_columns = column, id_column, tuple(c for c in extra_columns if c)
        self._tmp = None
        if str(path) == STDIN:
            self._tmp = tempfile.NamedTemporaryFile(prefix="omnigenome-stdin-", delete=False)
            shutil.copyfileobj(sys.stdin.buffer, self._tmp)
            self._tmp.close()
            self.path, self.name = Path(self._tmp.name), "<stdin>"
        else:
            self.path, self.name = Path(path), str(name or path)
            if not self.path.is_file():
                raise FileNotFoundError(f"{self.name}: no such input file")
        self.format = input_format(self.path)
        self._count: int | None = None

    @property
    def is_stdin(self) -> bool:
        return self._tmp is not None

    def close(self) -> None:
        if self._tmp is not None:
            Path(self._tmp.name).unlink(missing_ok=True)
            self._tmp = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def fingerprint(self) -> dict:
        """What identifies the input for a resumable job: name, size and modification time."""
        st = self.path.stat()
        return {"path": os.path.abspath(self.name) if not self.is_stdin else "<stdin>", "size": st.st_size,
                "mtime_ns": st.st_mtime_ns}

    def count(self) -> int:
        """Number of records (one pass over the file, cached). An empty input is an error."""
        if self._count is None:
            self._count = sum(1 for _ in self._records())
            if self._count == 0:
                raise ValueError(f"{self.name}: the input holds no sequence (it is empty)")
        return self._count

    def __iter__(self) -> Iterator[Record]:
        return self.records()

    def records(self, start: int = 0, stop: int | None = None) -> Iterator[Record]:
        """Records start..stop-1 (0-based, file order); raises ValueError for an input with no records."""
        seen = False
        for k, record in enumerate(self._records()):
            seen = True
            if stop is not None and k >= stop:
                return
            if k >= start:
                yield record
        if not seen:
            raise ValueError(f"{self.name}: the input holds no sequence (it is empty)")

    # --- readers ---------------------------------------------------------------------------------
    def _records(self) -> Iterator[Record]:
        reader = {"fasta": self._fasta, "table": self._table, "jsonl": self._jsonl}[self.format]
        return reader()

    def _fasta(self) -> Iterator[Record]:
        from omnigenome.data.fasta import FastaError, read_fasta
        if self.extra_columns:
            raise ValueError(f"{self.name}: a FASTA file has no columns ({', '.join(self.extra_columns)}); "
                             f"give a CSV or JSON-lines input")
        try:
            for r in read_fasta(self.path):
                yield Record(r.id, r.sequence, f"{self.name}, line {r.line}")
        except FastaError as e:
            if self.is_stdin:
                raise FastaError(str(e).replace(str(self.path), "<stdin>", 1)) from None
            raise

    def _pick(self, names: list[str], where: str) -> tuple[str, str | None, list[str]]:
        """(sequence column, id column or None, extra columns) of a header / the first object."""
        if self.column:
            if self.column not in names:
                raise ValueError(f"{where}: no sequence column {self.column!r} (columns: {', '.join(names)})")
            column = self.column
        else:
            column = next((c for c in SEQUENCE_COLUMNS if c in names), None)
            if column is None:
                raise ValueError(f"{where}: no sequence column (looked for {', '.join(map(repr, SEQUENCE_COLUMNS))}; "
                                 f"columns: {', '.join(names) or 'none'}); name it with --column")
        if self.id_column:
            if self.id_column not in names:
                raise ValueError(f"{where}: no id column {self.id_column!r} (columns: {', '.join(names)})")
            id_column = self.id_column
        else:
            id_column = next((c for c in ID_COLUMNS if c in names and c != column), None)
        for c in self.extra_columns:
            if c not in names:
                raise ValueError(f"{where}: no column {c!r} (columns: {', '.join(names)})")
        return column, id_column, list(self.extra_columns)

    def _table(self) -> Iterator[Record]:
        stem = Path(self.name).name
        with _open_text(self.path) as f:
            first = f.readline()
            if not first.strip():
                return
            dialect = "excel-tab" if "\t" in first and "," not in first else "excel"
            reader = csv.reader(io.StringIO(first), dialect=dialect)
            header = [h.strip() for h in next(reader)]
            column, id_column, extra = self._pick(header, f"{self.name}, line 1")
            index = header.index(column)
            id_index = header.index(id_column) if id_column else None
            extra_index = [header.index(c) for c in extra]
            rows = csv.reader(f, dialect=dialect)
            line = 2
            for row in rows:
                if row:
                    where = f"{self.name}, line {line}"
                    if len(row) != len(header):
                        raise ValueError(f"{where}: {len(row)} fields, the header has {len(header)}")
                    rid = row[id_index].strip() if id_index is not None else f"{stem}:{line}"
                    yield Record(rid or f"{stem}:{line}", row[index].strip(), where,
                                 {c: row[i] for c, i in zip(extra, extra_index)} if extra else None)
                line = rows.line_num + 2

    def _jsonl(self) -> Iterator[Record]:
        stem = Path(self.name).name
        picked = None
        with _open_text(self.path) as f:
            for number, where, obj in json_lines(f, self.name):
                if not isinstance(obj, dict):
                    raise ValueError(f"{where}: expected a JSON object")
                if picked is None:
                    picked = self._pick(list(obj), where)
                column, id_column, extra = picked
                if column not in obj:
                    raise ValueError(f"{where}: missing field {column!r}")
                sequence = obj[column]
                if not isinstance(sequence, str):
                    raise ValueError(f"{where}: field {column!r} is not a string")
                rid = obj.get(id_column) if id_column else None
                yield Record(str(rid) if rid not in (None, "") else f"{stem}:{number}", sequence.strip(), where,
                             {c: obj.get(c) for c in extra} if extra else None)


def python_records(sequences) -> list[Record]:
    """Records of sequences given in Python: a string, a list of strings (ids "0", "1", ...), a dict
    {id: sequence}, a list of (id, sequence) pairs, or Records (from `InputFile`, kept as they are)."""
    if isinstance(sequences, (list, tuple)) and sequences and all(isinstance(s, Record) for s in sequences):
        return list(sequences)
    if isinstance(sequences, str):
        items = [("0", sequences)]
    elif isinstance(sequences, dict):
        items = [(str(k), v) for k, v in sequences.items()]
    else:
        items = [(str(k), s) if isinstance(s, str) else (str(s[0]), s[1]) for k, s in enumerate(sequences)]
    if not items:
        raise ValueError("no sequences given")
    for rid, s in items:
        if not isinstance(s, str):
            raise ValueError(f"record {rid!r}: the sequence is not a string ({type(s).__name__})")
    return [Record(rid, s, f"sequence {k}") for k, (rid, s) in enumerate(items)]
