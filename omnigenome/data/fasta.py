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
