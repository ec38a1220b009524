"""FASTA reader: plain or gzip, multi-line records, errors that name the file and the line.

Only the layout is checked here (headers, records, text). The nucleotide alphabet is checked by
`OmniGenomeTokenizer.normalize`, so that there is one validator for the whole project.
"""
from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path
from typing import BinaryIO, Iterator, NamedTuple

_GZIP_MAGIC = b"\x1f\x8b"
# Control characters that never occur in a text FASTA file (tab, newlines, form feed are fine).
_BINARY_BYTES = bytes(c for c in range(32) if c not in b"\t\n\r\x0b\x0c") + b"\x7f"


class FastaError(ValueError):
    """Malformed FASTA input; the message names the file and the 1-based line."""


class FastaRecord(NamedTuple):
    id: str          # the header up to its first whitespace, without '>'
    sequence: str    # all sequence lines joined, whitespace removed, case kept as written
    line: int        # 1-based line number of the header


def _open(path: Path) -> BinaryIO:
    """Open for binary reading; gzip is recognised by its magic bytes, whatever the file name."""
    with open(path, "rb") as f:
        magic = f.read(2)
    return gzip.open(path, "rb") if magic == _GZIP_MAGIC else open(path, "rb")


def read_fasta(path: str | os.PathLike) -> Iterator[FastaRecord]:
    """Yield the records of a FASTA or FASTA.gz file in file order.

    Blank lines are ignored. Raises FastaError (file and line in the message) for sequence data
    before the first header, a header without an id, a header with no sequence after it, binary /
    non-text bytes, and a corrupt gzip stream.
    """
    path = Path(path)
    header: tuple[str, int] | None = None  # (id, line) of the record being read
    chunks: list[str] = []
    lineno = 0

    def error(message: str, line: int) -> FastaError:
        return FastaError(f"{path}, line {line}: {message}")

    def finish() -> FastaRecord:
        rid, line = header
        if not chunks:
            raise error(f"record {rid!r} has no sequence (empty record)", line)
        return FastaRecord(rid, "".join(chunks), line)

    with _open(path) as f:
        try:
            for lineno, raw in enumerate(f, start=1):
                if len(raw.translate(None, _BINARY_BYTES)) != len(raw):
                    raise error("binary or non-text data (is this a FASTA file?)", lineno)
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise error("binary or non-text data: bytes that are not UTF-8 text", lineno) from None
                if text.startswith(">"):
                    if header is not None:
                        yield finish()
                    fields = text[1:].split(None, 1)
                    if not fields:
                        raise error("header without an id ('>' alone)", lineno)
                    header, chunks = (fields[0], lineno), []
                    continue
                data = "".join(text.split())
                if not data:
                    continue
                if header is None:
                    raise error("sequence data before the first '>' header", lineno)
                chunks.append(data)
        except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
            raise error(f"cannot read compressed data ({e})", lineno + 1) from None
    if header is not None:
        yield finish()


# Transcript regions in JSON lines (PlantRNA-FM's arabidopsis_regions.json): one transcript per line.
REGION_KEYS = ("5utr", "cds", "3utr")
JSON_SUFFIXES = (".json", ".jsonl", ".json.gz", ".jsonl.gz")


def read_regions_jsonl(path: str | os.PathLike) -> Iterator[FastaRecord]:
    """Yield one record per line of a JSON-lines file of transcript regions, plain or gzip.

    Each line is an object with (some of) the keys "5utr", "cds", "3utr"; the record is the whole
    transcript, 5'UTR + CDS + 3'UTR concatenated, with the id `<file stem>:<line>` (the files carry
    no ids) and `line` the 1-based line. Raises FastaError naming file and line for a line that is
    not such an object.
    """
    import json

    path = Path(path)
    stem = path.name.split(".")[0]
    lineno = 0
    with _open(path) as f:
        try:
            for lineno, raw in enumerate(f, start=1):
                if not raw.strip():
                    continue
                try:
                    obj = json.loads(raw)
                except (UnicodeDecodeError, ValueError):
                    raise FastaError(f"{path}, line {lineno}: not a JSON object (binary data or broken JSON)") from None
                if not isinstance(obj, dict) or not any(isinstance(obj.get(k), str) for k in REGION_KEYS):
                    raise FastaError(f"{path}, line {lineno}: expected an object with keys {', '.join(REGION_KEYS)}")
                sequence = "".join(obj.get(k) or "" for k in REGION_KEYS)
                if not sequence:
                    raise FastaError(f"{path}, line {lineno}: all regions are empty (empty record)")
                yield FastaRecord(f"{stem}:{lineno}", sequence, lineno)
        except (OSError, EOFError, zlib.error) as e:
            raise FastaError(f"{path}, line {lineno + 1}: cannot read compressed data ({e})") from None


def read_sequences(path: str | os.PathLike) -> Iterator[FastaRecord]:
    """Records of any supported input: JSON lines of transcript regions (.json, .jsonl, optionally .gz)
    through `read_regions_jsonl`, everything else as FASTA / FASTA.gz through `read_fasta`."""
    if str(path).lower().endswith(JSON_SUFFIXES):
        return read_regions_jsonl(path)
    return read_fasta(path)
