"""Streaming, atomic output files: embeddings (.safetensors, .npy, .parquet) and tables (.csv, .jsonl,
.parquet), each with the run's metadata (counts of records written and skipped, and why).

Every file is written under a temporary name beside its final path and moved into place with os.replace
when complete, so a reader (or a rerun) never sees half a file. Data goes to disk chunk by chunk; what stays
in memory grows only by a few bytes per record (ids, for the formats that keep them in one header).

Embedding layouts (n records of the output, in input order; H the hidden size; float32):

- `.safetensors`: tensors `embeddings` (n, H); with per-nucleotide embeddings `nucleotide_embeddings`
  (sum of lengths, H) and `nucleotide_offsets` (n + 1,) int64 (record k's rows are offsets[k]:offsets[k+1]);
  with maps `attentions.<k>` (layers, heads, L, L) and `contacts.<k>` (L, L) for record k. The header's
  metadata holds `ids` (a JSON list, in row order) and `omnigenome` (the run's metadata, JSON).
- `.npy`: OUT.npy (n, H); ids in the sidecar OUT.ids.txt, one per line in row order; with per-nucleotide
  embeddings OUT.nucleotides.npy (sum of lengths, H) and OUT.offsets.npy (n + 1,); metadata in OUT.meta.json.
- `.parquet`: one row per record, columns `id`, `embedding` (fixed-size list of H float32) and with
  per-nucleotide embeddings `nucleotide_embeddings` (list of fixed-size lists); metadata in the file's
  key-value metadata under `omnigenome`.
Tables: `.csv` (lists as JSON text; metadata in OUT.meta.json), `.jsonl` (one JSON object per line; metadata
in OUT.meta.json), `.parquet` (metadata under `omnigenome`).
"""
from __future__ import annotations

import json
import math
import os
import shutil
import struct
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np

EMBEDDING_FORMATS = (".safetensors", ".npy", ".parquet")
TABLE_FORMATS = (".csv", ".jsonl", ".parquet")
META_KEY = "omnigenome"


def output_format(path: str | os.PathLike, allowed: tuple[str, ...]) -> str:
    suffix = Path(path).suffix.lower()
    if suffix == ".json":
        suffix = ".jsonl"
    if suffix not in allowed:
        raise ValueError(f"{path}: unknown output format {Path(path).suffix or '(no suffix)'!r} "
                         f"(choose from {', '.join(allowed)})")
    return suffix


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def _check_out_dir(path: Path) -> None:
    if not path.parent.exists():
        raise FileNotFoundError(f"{path}: the output folder {path.parent} does not exist")


def write_json_atomic(path: Path, obj) -> None:
    tmp = _tmp(path)
    tmp.write_text(json.dumps(obj, indent=1) + "\n")
    os.replace(tmp, path)


def sidecars(path: str | os.PathLike) -> dict[str, Path]:
    """The files that travel with an output besides itself (ids, metadata, per-nucleotide arrays)."""
    p = Path(path)
    stem = p.with_suffix("")
    return {"ids": stem.with_name(stem.name + ".ids.txt"), "meta": stem.with_name(stem.name + ".meta.json"),
            "nucleotides": stem.with_name(stem.name + ".nucleotides.npy"),
            "offsets": stem.with_name(stem.name + ".offsets.npy")}


def read_metadata(path: str | os.PathLike) -> dict:
    """The run metadata of an output file of any format."""
    p = Path(path)
    if p.suffix == ".safetensors":
        from safetensors import safe_open
        with safe_open(str(p), framework="numpy") as f:
            return json.loads(f.metadata()[META_KEY])
    if p.suffix == ".parquet":
        import pyarrow.parquet as pq
        return json.loads(pq.ParquetFile(p).metadata.metadata[META_KEY.encode()])
    return json.loads(sidecars(p)["meta"].read_text())


# --- .npy written as a stream ----------------------------------------------------------------------------

class NpyStream:
    """A .npy file of float32 (or int64) rows appended one block at a time; the header (shape) is written
    last into 128 reserved bytes, so nothing is held in memory."""

    HEADER = 128

    def __init__(self, path: Path, width: int | None, dtype: str = "<f4"):
        self.path, self.width, self.dtype = path, width, np.dtype(dtype)
        self.f = open(path, "wb")
        self.f.write(b"\0" * self.HEADER)
        self.rows = 0

    def write(self, array: np.ndarray) -> None:
        a = np.ascontiguousarray(array, dtype=self.dtype)
        if self.width is not None and (a.ndim != 2 or a.shape[1] != self.width):
            raise ValueError(f"expected rows of width {self.width}, got shape {a.shape}")
        self.f.write(a.tobytes())
        self.rows += a.shape[0]

    def close(self) -> None:
        shape = (self.rows,) if self.width is None else (self.rows, self.width)
        text = f"{{'descr': '{self.dtype.str}', 'fortran_order': False, 'shape': {shape}, }}"
        header = text.ljust(self.HEADER - 10 - 1) + "\n"
        self.f.seek(0)
        self.f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1"))
        self.f.close()


# --- embeddings -------------------------------------------------------------------------------------------

class EmbeddingWriter:
    """Writes EmbeddingChunks (see `omnigenome.inference.embed`) to one of EMBEDDING_FORMATS."""

    def __init__(self, path: str | os.PathLike, hidden_size: int, per_nucleotide: bool = False, maps: bool = False):
        self.path = Path(path)
        self.format = output_format(self.path, EMBEDDING_FORMATS)
        _check_out_dir(self.path)
        if maps and self.format != ".safetensors":
            raise ValueError(f"{path}: attention and contact maps (one L x L array per record) are written to "
                             f".safetensors only; use --out FILE.safetensors")
        self.hidden, self.per_nucleotide, self.maps = hidden_size, per_nucleotide, maps
        self.count, self.nucleotides = 0, 0
        self._work = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", dir=self.path.parent))
        self._ids = open(self._work / "ids.txt", "w", encoding="utf-8")
        self._pooled = NpyStream(self._work / "embeddings.npy", hidden_size)
        self._per_nt = NpyStream(self._work / "nucleotides.npy", hidden_size) if per_nucleotide else None
        self._offsets = NpyStream(self._work / "offsets.npy", None, "<i8") if per_nucleotide else None
        if self._offsets is not None:
            self._offsets.write(np.zeros(1, dtype=np.int64))
        self._maps = open(self._work / "maps.bin", "wb") if maps else None
        self._map_index: list[tuple[str, list[int], int, int]] = []
        self._parquet = None

    def add(self, chunk) -> None:
        n = len(chunk.ids)
        if n == 0:
            return
        for rid in chunk.ids:
            if "\n" in rid:
                raise ValueError(f"record id {rid!r} holds a line break")
            self._ids.write(rid + "\n")
        self._pooled.write(chunk.pooled)
        if self._per_nt is not None:
            lengths = np.asarray([a.shape[0] for a in chunk.per_nucleotide], dtype=np.int64)
            self._offsets.write(self.nucleotides + np.cumsum(lengths))
            self.nucleotides += int(lengths.sum())
            for a in chunk.per_nucleotide:
                self._per_nt.write(a)
        if self._maps is not None:
            for k, maps in enumerate(chunk.maps):
                for name in ("attentions", "contacts"):
                    if name in maps:
                        a = np.ascontiguousarray(maps[name], dtype="<f4")
                        start = self._maps.tell()
                        self._maps.write(a.tobytes())
                        self._map_index.append((f"{name}.{self.count + k}", list(a.shape), start, self._maps.tell()))
        if self.format == ".parquet":
            self._add_parquet(chunk)
        self.count += n

    def _add_parquet(self, chunk) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq
        h = self.hidden
        columns = {"id": pa.array(chunk.ids, pa.string()),
                   "embedding": pa.FixedSizeListArray.from_arrays(pa.array(chunk.pooled.astype(np.float32).ravel()), h)}
        if self.per_nucleotide:
            lengths = [a.shape[0] for a in chunk.per_nucleotide]
            flat = np.concatenate(chunk.per_nucleotide).astype(np.float32) if lengths else np.zeros((0, h), np.float32)
            inner = pa.FixedSizeListArray.from_arrays(pa.array(flat.ravel()), h)
            offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
            columns["nucleotide_embeddings"] = pa.ListArray.from_arrays(offsets, inner)
        table = pa.table(columns)
        if self._parquet is None:
            self._parquet = pq.ParquetWriter(_tmp(self.path), table.schema)
        self._parquet.write_table(table)

    def close(self, metadata: dict) -> Path:
        """Finish the files and move them into place; returns the output path."""
        self._ids.close()
        self._pooled.close()
        if self._per_nt is not None:
            self._per_nt.close()
            self._offsets.close()
        if self._maps is not None:
            self._maps.close()
        try:
            if self.format == ".npy":
                self._close_npy(metadata)
            elif self.format == ".safetensors":
                self._close_safetensors(metadata)
            else:
                self._close_parquet(metadata)
        finally:
            shutil.rmtree(self._work, ignore_errors=True)
        return self.path

    def abort(self) -> None:
        for f in (self._ids, self._maps):
            if f is not None:
                f.close()
        if self._parquet is not None:
            self._parquet.close()
            _tmp(self.path).unlink(missing_ok=True)
        shutil.rmtree(self._work, ignore_errors=True)

    def _close_npy(self, metadata: dict) -> None:
        side = sidecars(self.path)
        moves = [(self._work / "embeddings.npy", self.path), (self._work / "ids.txt", side["ids"])]
        if self.per_nucleotide:
            moves += [(self._work / "nucleotides.npy", side["nucleotides"]), (self._work / "offsets.npy", side["offsets"])]
        for src, dst in moves:
            os.replace(src, dst)
        for stale in ("nucleotides", "offsets"):  # a previous run's per-nucleotide files no longer belong
            if not self.per_nucleotide:
                side[stale].unlink(missing_ok=True)
        write_json_atomic(side["meta"], metadata)

    def _close_safetensors(self, metadata: dict) -> None:
        ids = (self._work / "ids.txt").read_text(encoding="utf-8").splitlines()
        entries = []  # (name, dtype, shape, source file, start, stop)

        def npy_entry(name, file, shape, dtype):
            size = int(np.prod(shape)) * (4 if dtype == "F32" else 8)
            entries.append((name, dtype, shape, file, NpyStream.HEADER, NpyStream.HEADER + size))
        npy_entry("embeddings", self._work / "embeddings.npy", [self.count, self.hidden], "F32")
        if self.per_nucleotide:
            npy_entry("nucleotide_embeddings", self._work / "nucleotides.npy", [self.nucleotides, self.hidden], "F32")
            npy_entry("nucleotide_offsets", self._work / "offsets.npy", [self.count + 1], "I64")
        for name, shape, start, stop in self._map_index:
            entries.append((name, "F32", shape, self._work / "maps.bin", start, stop))
        header, at = {"__metadata__": {"ids": json.dumps(ids), META_KEY: json.dumps(metadata)}}, 0
        for name, dtype, shape, _, start, stop in entries:
            header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [at, at + stop - start]}
            at += stop - start
        text = json.dumps(header, separators=(",", ":")).encode()
        text += b" " * ((-len(text)) % 8)
        tmp = _tmp(self.path)
        with open(tmp, "wb") as out:
            out.write(struct.pack("<Q", len(text)) + text)
            for _, _, _, file, start, stop in entries:
                with open(file, "rb") as src:
                    src.seek(start)
                    left = stop - start
                    while left:
                        block = src.read(min(left, 1 << 24))
                        out.write(block)
                        left -= len(block)
        os.replace(tmp, self.path)

    def _close_parquet(self, metadata: dict) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq
        if self._parquet is None:  # nothing written: an empty table of the right schema
            fields = [("id", pa.string()), ("embedding", pa.list_(pa.float32(), self.hidden))]
            if self.per_nucleotide:
                fields.append(("nucleotide_embeddings", pa.list_(pa.list_(pa.float32(), self.hidden))))
            self._parquet = pq.ParquetWriter(_tmp(self.path), pa.schema(fields))
        self._parquet.add_key_value_metadata({META_KEY: json.dumps(metadata)})
        self._parquet.close()
        os.replace(_tmp(self.path), self.path)


def read_embeddings(path: str | os.PathLike, block: int = 4096) -> Iterator:
    """The records of an embedding output in blocks, as EmbeddingChunks (for merging parts)."""
    from omnigenome.inference.embed import EmbeddingChunk
    p = Path(path)
    fmt = output_format(p, EMBEDDING_FORMATS)
    if fmt == ".npy":
        side = sidecars(p)
        pooled = np.load(p, mmap_mode="r")
        ids = side["ids"].read_text(encoding="utf-8").splitlines()
        per_nt = np.load(side["nucleotides"], mmap_mode="r") if side["offsets"].is_file() else None
        offsets = np.load(side["offsets"]) if per_nt is not None else None
        for a in range(0, len(ids), block):
            b = min(a + block, len(ids))
            nts = [np.asarray(per_nt[offsets[k]:offsets[k + 1]]) for k in range(a, b)] if per_nt is not None else None
            yield EmbeddingChunk(ids[a:b], np.asarray(pooled[a:b]), nts)
    elif fmt == ".safetensors":
        from safetensors import safe_open
        with safe_open(str(p), framework="numpy") as f:
            ids = json.loads(f.metadata()["ids"])
            keys = set(f.keys())
            pooled = f.get_slice("embeddings")
            has_nt = "nucleotide_offsets" in keys
            offsets = f.get_tensor("nucleotide_offsets") if has_nt else None
            nt = f.get_slice("nucleotide_embeddings") if has_nt else None
            for a in range(0, len(ids), block):
                b = min(a + block, len(ids))
                nts = None
                if has_nt:
                    rows = nt[int(offsets[a]):int(offsets[b])] if offsets[b] > offsets[a] else np.zeros((0, pooled.get_shape()[1]), np.float32)
                    nts = [rows[offsets[k] - offsets[a]:offsets[k + 1] - offsets[a]] for k in range(a, b)]
                maps = None
                if any(k.startswith(("attentions.", "contacts.")) for k in keys):
                    maps = [{name: f.get_tensor(f"{name}.{k}") for name in ("attentions", "contacts")
                             if f"{name}.{k}" in keys} for k in range(a, b)]
                yield EmbeddingChunk(ids[a:b], pooled[a:b], nts, maps)
    else:
        import pyarrow.parquet as pq
        pf = pq.ParquetFile(p)
        for batch in pf.iter_batches(batch_size=block):
            d = batch.to_pydict()
            h = len(d["embedding"][0]) if d["embedding"] else 0
            pooled = np.asarray(d["embedding"], dtype=np.float32).reshape(-1, h)
            nts = None
            if "nucleotide_embeddings" in d:
                nts = [np.asarray(x, dtype=np.float32).reshape(-1, h) for x in d["nucleotide_embeddings"]]
            yield EmbeddingChunk(d["id"], pooled, nts)


# --- tables -----------------------------------------------------------------------------------------------

def _cell(value):
    if value is None:
        return ""
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(_finite(value), separators=(",", ":"))
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    return str(value)


def _finite(value):
    """NaN / inf as None, recursively (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


class TableWriter:
    """Writes rows (dicts with the same keys) to .csv, .jsonl or .parquet, streaming and atomically."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.format = output_format(self.path, TABLE_FORMATS)
        _check_out_dir(self.path)
        self.count, self.columns = 0, None
        self._tmp = _tmp(self.path)
        self._file = open(self._tmp, "w", encoding="utf-8", newline="") if self.format != ".parquet" else None
        self._parquet = None

    def add(self, rows: list[dict]) -> None:
        if not rows:
            return
        if self.columns is None:
            self.columns = list(rows[0])
            if self.format == ".csv":
                self._file.write(",".join(_csv_quote(c) for c in self.columns) + "\n")
        if self.format == ".csv":
            for row in rows:
                self._file.write(",".join(_csv_quote(_cell(row.get(c))) for c in self.columns) + "\n")
        elif self.format == ".jsonl":
            for row in rows:
                self._file.write(json.dumps(_finite(row), separators=(",", ":")) + "\n")
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq
            table = pa.Table.from_pylist([_finite(r) for r in rows])
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self._tmp, table.schema)
            self._parquet.write_table(table.cast(self._parquet.schema))
        self.count += len(rows)

    def close(self, metadata: dict) -> Path:
        if self.format == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self._tmp, pa.schema([("id", pa.string())]))
            self._parquet.add_key_value_metadata({META_KEY: json.dumps(metadata)})
            self._parquet.close()
        else:
            self._file.close()
        os.replace(self._tmp, self.path)
        if self.format != ".parquet":
            write_json_atomic(sidecars(self.path)["meta"], metadata)
        return self.path

    def abort(self) -> None:
        if self._file is not None:
            self._file.close()
        if self._parquet is not None:
            self._parquet.close()
        self._tmp.unlink(missing_ok=True)

    def append_file(self, part: str | os.PathLike) -> None:
        """Append the rows of another table of the same format and columns (merging parts)."""
        part = Path(part)
        if self.format == ".parquet":
            import pyarrow.parquet as pq
            pf = pq.ParquetFile(part)
            if pf.metadata.num_rows == 0:
                return
            table = pf.read()
            table = table.replace_schema_metadata(None)
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self._tmp, table.schema)
            self._parquet.write_table(table.cast(self._parquet.schema))
            self.count += table.num_rows
            return
        with open(part, encoding="utf-8", newline="") as f:
            if self.format == ".csv":
                header = f.readline()
                if not header:
                    return
                if self.columns is None:
                    self._file.write(header)
                    self.columns = header
            for line in f:
                self._file.write(line)
                self.count += 1


def _csv_quote(text: str) -> str:
    if any(c in text for c in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text
