"""From records to model batches: which records a model can take, and batches built by length.

The long-sequence rule (one rule for every job): a record longer than the model reads (its `max_tokens`,
special tokens included; for a fine-tuned model also the task's `max_length`, and with the structure in
context only half of it) is **skipped and reported**, never truncated: an embedding, a prediction or a
score of the first 1022 nt would be silently about another sequence. Cut long sequences into windows
before (e.g. `omnigenome prep long_policy=window`). A record with a character the tokenizer cannot encode,
or an empty one, is skipped and reported the same way; `strict` makes the first such record an error.

Streaming: records are taken in chunks (a few thousand records, a bounded number of nucleotides), each
chunk is sorted by length and cut into batches of at most `max_tokens` tokens (packed: the sum of the
lengths; padded: records x the longest), and its results go out in input order before the next chunk is
read, so memory does not grow with the input.
"""
from __future__ import annotations

from typing import Callable, Iterable, Iterator, NamedTuple, Sequence

from omnigenome.inference.records import Record
from omnigenome.model.backbones import EncodedSequence

SKIP_REASONS = ("empty", "invalid", "too_long", "mutation")


class Skipped(NamedTuple):
    """A record the model cannot take: its id, where it is, why (one of SKIP_REASONS) and the message."""
    id: str
    where: str
    reason: str
    message: str

    def to_dict(self) -> dict:
        return {"id": self.id, "where": self.where, "reason": self.reason, "message": self.message}


class SkippedRecord(ValueError):
    """Raised in strict mode for the first record the model cannot take (the message names it)."""


def structure_window(max_tokens: int) -> int:
    """Nucleotides of `<cls> seq <eos> struct <eos>` that fit in max_tokens tokens."""
    return (max_tokens - 3) // 2


def encode_record(tokenizer, record: Record, max_tokens: int, structure: str | None = None
                  ) -> EncodedSequence | Skipped:
    """The record as the model reads it, or why it cannot: empty, a character the tokenizer cannot encode
    (the message names the record and the position), or longer than `max_tokens` tokens."""
    if not record.sequence:
        return Skipped(record.id, record.where, "empty", f"{record.describe()}: empty sequence")
    try:
        encoded = tokenizer.encode(record.sequence, structure, record.id, max_tokens)
    except ValueError as e:
        reason = "empty" if "empty sequence" in str(e) else "invalid"
        return Skipped(record.id, record.where, reason, f"{record.where}: {e}")
    if encoded.cropped:
        nt = len(record.sequence)
        limit = structure_window(max_tokens) if structure is not None else None
        if limit is None and getattr(tokenizer, "packed", False):
            limit = max_tokens - 2
        reads = f"{limit} nt" if limit is not None else f"{max_tokens} tokens"
        context = " with its structure in context" if structure is not None else ""
        return Skipped(record.id, record.where, "too_long",
                       f"{record.describe()}: {nt} nt is longer than the model reads{context} ({reads}); "
                       f"records are not truncated: cut it into windows first")
    return encoded


def check_length(tokenizer, record: Record, max_tokens: int, with_structure: bool) -> Skipped | None:
    """Before folding a structure: a record too long to take with its structure in context."""
    if with_structure and len(record.sequence) > structure_window(max_tokens):
        return Skipped(record.id, record.where, "too_long",
                       f"{record.describe()}: {len(record.sequence)} nt is longer than the model reads with its "
                       f"structure in context ({structure_window(max_tokens)} nt); records are not truncated: "
                       f"cut it into windows first")
    return None


def chunked(records: Iterable[Record], max_records: int = 4096, max_nucleotides: int = 1 << 18
            ) -> Iterator[list[Record]]:
    """Consecutive records in lists of at most max_records records and about max_nucleotides nucleotides."""
    chunk, size = [], 0
    for record in records:
        chunk.append(record)
        size += len(record.sequence)
        if len(chunk) >= max_records or size >= max_nucleotides:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def length_batches(lengths: Sequence[int], max_tokens: int, packed: bool) -> list[list[int]]:
    """Indices into `lengths` (tokens per item) in batches of at most max_tokens tokens, longest first.

    packed: a batch costs the sum of its lengths; padded: (items) x (its longest). An item longer than the
    budget gets a batch of its own."""
    order = sorted(range(len(lengths)), key=lambda k: (-lengths[k], k))
    batches: list[list[int]] = []
    current: list[int] = []
    cost = 0
    for k in order:
        n = lengths[k]
        new_cost = cost + n if packed else (len(current) + 1) * max(n, lengths[current[0]] if current else 0)
        if current and new_cost > max_tokens:
            batches.append(current)
            current, new_cost = [], n
        current.append(k)
        cost = new_cost
    if current:
        batches.append(current)
    return batches


def encode_chunk(tokenizer, records: Sequence[Record], max_tokens: int, strict: bool = False,
                 structures: Callable[[list[str]], list[str]] | None = None
                 ) -> tuple[list[tuple[int, EncodedSequence]], list[Skipped]]:
    """Encode a chunk: ([(position in chunk, encoded)], [skipped]). With `structures` (a function from
    sequences to dot-brackets, e.g. ViennaRNA MFE), inputs are `<cls> seq <eos> struct <eos>`; only
    records that pass the character and length checks are folded."""
    ok: list[tuple[int, EncodedSequence]] = []
    skipped: list[Skipped] = []

    def skip(s: Skipped):
        if strict:
            raise SkippedRecord(s.message)
        skipped.append(s)

    takes = []
    for k, record in enumerate(records):
        result = encode_record(tokenizer, record, max_tokens)
        if isinstance(result, Skipped):
            skip(result)
            continue
        if structures is None:
            ok.append((k, result))
            continue
        too_long = check_length(tokenizer, record, max_tokens, True)
        if too_long is not None:
            skip(too_long)
        else:
            takes.append(k)
    if structures is not None and takes:
        folded = structures([records[k].sequence for k in takes])
        for k, structure in zip(takes, folded):
            result = encode_record(tokenizer, records[k], max_tokens, structure)
            if isinstance(result, Skipped):
                skip(result)
            else:
                ok.append((k, result))
    return ok, skipped
