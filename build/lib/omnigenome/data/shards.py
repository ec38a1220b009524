"""On-disk training records: (id, sequence, dot-bracket structure), sharded and memory-mapped.

Layout of a corpus directory::

    index.json            {"format": "omnigenome-shards", "version": 1, "num_records", "num_nucleotides",
                           "shards": [{"name": "shard-00000", "num_records", "num_nucleotides"}, ...]}
    shard-00000/
        sequence.npy      uint8 (total nucleotides,): the shard's sequences concatenated, ASCII
        structure.npy     uint8 (total nucleotides,): their dot-brackets, aligned with sequence.npy
        offsets.npy       int64 (records + 1,): record i is [offsets[i], offsets[i+1])
        ids.txt           one record id per line

Each shard is written to a temporary directory and renamed into place, and index.json is written
last (temp file + os.replace): a reader sees a complete corpus or none (no index.json), never
half a shard.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Iterable, NamedTuple

import numpy as np

FORMAT = "omnigenome-shards"
VERSION = 1
INDEX = "index.json"


class Record(NamedTuple):
    id: str
    sequence: str
    structure: str


def shard_name(i: int) -> str:
    return f"shard-{i:05d}"


def write_json_atomic(path: Path, obj) -> None:
    """Write JSON to a temp file beside `path`, then os.replace: readers never see a partial file."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=1) + "\n")
    os.replace(tmp, path)


def _write_shard(out_dir: Path, number: int, ids: list[str], sequences: list[bytes], structures: list[bytes]) -> dict:
    """Write one shard through a temp directory; returns its index entry."""
    name = shard_name(number)
    final = out_dir / name
    tmp = out_dir / f".{name}.tmp-{os.getpid()}"
    for stale in out_dir.glob(f".{name}.tmp-*"):  # left by this shard's killed writers
        shutil.rmtree(stale, ignore_errors=True)
    tmp.mkdir()
    try:
        lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
        offsets = np.zeros(len(sequences) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        np.save(tmp / "sequence.npy", np.frombuffer(b"".join(sequences), dtype=np.uint8))
        np.save(tmp / "structure.npy", np.frombuffer(b"".join(structures), dtype=np.uint8))
        np.save(tmp / "offsets.npy", offsets)
        (tmp / "ids.txt").write_bytes("".join(f"{i}\n" for i in ids).encode("utf-8"))
        if final.exists():  # left by an interrupted earlier run (there is no index.json, see write_shards)
            shutil.rmtree(final)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"name": name, "num_records": len(ids), "num_nucleotides": int(offsets[-1])}


def _encode_records(records: Iterable[tuple[str, str, str]]):
    """Validate (id, sequence, structure) records; yield (id, sequence bytes, structure bytes)."""
    for rid, sequence, structure in records:
        if len(sequence) != len(structure):
            raise ValueError(f"record {rid!r}: sequence length {len(sequence)} differs from structure length"
                             f" {len(structure)}")
        if not sequence:
            raise ValueError(f"record {rid!r}: empty sequence")
        if not rid or "\n" in rid or "\r" in rid:
            raise ValueError(f"record {rid!r}: an id must be a non-empty single line")
        try:
            yield rid, sequence.encode("ascii"), structure.encode("ascii")
        except UnicodeEncodeError:
            raise ValueError(f"record {rid!r}: sequence and structure must be ASCII") from None


def write_shard(out_dir: str | os.PathLike, number: int, records: Iterable[tuple[str, str, str]]) -> dict:
    """Write one shard `out_dir/shard-<number>` atomically (temp directory + rename); returns its index entry.

    For writers that produce shards independently (one per work unit, possibly on different machines)
    and write the index afterwards with `write_index`. An existing shard of that number is replaced.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    encoded = list(_encode_records(records))
    return _write_shard(out_dir, number, [r[0] for r in encoded], [r[1] for r in encoded], [r[2] for r in encoded])


def write_index(out_dir: str | os.PathLike, shards: list[dict]) -> dict:
    """Write `out_dir/index.json` (atomically) for shard entries as returned by `write_shard`; returns it."""
    index = {
        "format": FORMAT,
        "version": VERSION,
        "num_records": sum(s["num_records"] for s in shards),
        "num_nucleotides": sum(s["num_nucleotides"] for s in shards),
        "shards": list(shards),
    }
    write_json_atomic(Path(out_dir) / INDEX, index)
    return index


def write_shards(records: Iterable[tuple[str, str, str]], out_dir: str | os.PathLike,
                 records_per_shard: int = 100_000) -> dict:
    """Write (id, sequence, structure) records as a corpus directory; returns the index (also index.json).

    Records are consumed as a stream; one shard's worth is held in memory at a time. Sequence and
    structure must have the same length and be ASCII, ids must be one line (ValueError naming the
    record). `out_dir` is created; one that already holds an index.json is refused (FileExistsError).
    """
    if records_per_shard < 1:
        raise ValueError(f"records_per_shard must be >= 1, got {records_per_shard}")
    out_dir = Path(out_dir)
    if (out_dir / INDEX).exists():
        raise FileExistsError(f"{out_dir} already holds a corpus ({INDEX}); delete it or choose another directory")
    out_dir.mkdir(parents=True, exist_ok=True)

    shards: list[dict] = []
    ids: list[str] = []
    sequences: list[bytes] = []
    structures: list[bytes] = []
    for rid, sequence, structure in _encode_records(records):
        ids.append(rid)
        sequences.append(sequence)
        structures.append(structure)
        if len(ids) == records_per_shard:
            shards.append(_write_shard(out_dir, len(shards), ids, sequences, structures))
            ids, sequences, structures = [], [], []
    if ids:
        shards.append(_write_shard(out_dir, len(shards), ids, sequences, structures))
    index = write_index(out_dir, shards)
    return index


class _Shard:
    """Lazily opened arrays of one shard (memory-mapped; ids read on first use)."""

    def __init__(self, directory: Path):
        self.directory = directory
        self._offsets = self._sequence = self._structure = None
        self._ids: list[str] | None = None

    @property
    def offsets(self) -> np.ndarray:
        if self._offsets is None:
            self._offsets = np.load(self.directory / "offsets.npy", mmap_mode="r")
        return self._offsets

    def record(self, i: int) -> Record:
        if self._sequence is None:
            self._sequence = np.load(self.directory / "sequence.npy", mmap_mode="r")
            self._structure = np.load(self.directory / "structure.npy", mmap_mode="r")
            # Split on "\n" only: str.splitlines would also split at characters such as U+2028 in an id.
            self._ids = (self.directory / "ids.txt").read_bytes().decode("utf-8").split("\n")[:-1]
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        return Record(self._ids[i], self._sequence[a:b].tobytes().decode("ascii"),
                      self._structure[a:b].tobytes().decode("ascii"))


class ShardedCorpus:
    """Read-only random access to a corpus directory written by `write_shards`.

    Nothing but index.json is read in __init__; shard arrays are memory-mapped on first access, and
    pickling drops them, so a corpus object passes cheaply to DataLoader worker processes (each
    worker maps the files itself and the OS page cache is shared).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        index_path = self.path / INDEX
        if not index_path.is_file():
            raise FileNotFoundError(
                f"no corpus at {self.path}: {INDEX} is missing. Create one from FASTA files with "
                f"`omnigenome prep INPUT.fasta... --out DIR` (then use DIR/train or DIR/valid).")
        self.index = json.loads(index_path.read_text())
        if self.index.get("format") != FORMAT or self.index.get("version") != VERSION:
            raise ValueError(f"{index_path}: not an {FORMAT} version {VERSION} index "
                             f"(format={self.index.get('format')!r}, version={self.index.get('version')!r})")
        counts = [s["num_records"] for s in self.index["shards"]]
        # starts[k] = global index of shard k's first record; starts[-1] = number of records.
        self._starts = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]).astype(np.int64)
        self._shards = [_Shard(self.path / s["name"]) for s in self.index["shards"]]
        self._lengths: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self._starts[-1])

    @property
    def num_nucleotides(self) -> int:
        return int(self.index["num_nucleotides"])

    @property
    def lengths(self) -> np.ndarray:
        """Sequence length of every record, int64 (len(self),), from the offsets only."""
        if self._lengths is None:
            parts = [np.diff(shard.offsets) for shard in self._shards]
            self._lengths = np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)
        return self._lengths

    def __getitem__(self, i: int) -> Record:
        n = len(self)
        i = int(i)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"record index {i} out of range for a corpus of {n} records")
        k = int(np.searchsorted(self._starts, i, side="right")) - 1
        return self._shards[k].record(i - int(self._starts[k]))

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __getstate__(self) -> dict:
        # Drop memory maps and caches: workers reopen lazily instead of receiving copies.
        state = self.__dict__.copy()
        state["_shards"] = [s.directory for s in self._shards]
        state["_lengths"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        state["_shards"] = [_Shard(d) for d in state["_shards"]]
        self.__dict__.update(state)

    def __repr__(self) -> str:
        return f"ShardedCorpus({str(self.path)!r}, records={len(self)}, nucleotides={self.num_nucleotides})"
