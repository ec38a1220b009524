"""Running a job over an input file: streaming chunks, a progress bar, the output and its metadata, and the
report of what was skipped. In one process, or split into parts across ranks or a SLURM job array
(`omnigenome.inference.parallel`), whose merged output equals the one-process output.

The metadata of an output (in the file, or in OUT.meta.json; see `omnigenome.inference.writers`):
    command, model, settings (the job's options), input (its name), hidden_size (embed),
    records (records read), written (records taken), rows (rows written: one per variant for mutation
    scores), skipped {reason: count} over empty / invalid / too_long / mutation, skipped_records
    [{id, where, reason, message}] (every skipped record, in input order).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from tqdm import tqdm

from omnigenome.inference.batching import SKIP_REASONS, chunked

SHOW_SKIPPED = 5  # skipped records printed on stderr (all of them are in the metadata)


def combine(parts: list[dict]) -> dict:
    """The metadata of a whole job from the metadata of its parts, in order (one part: itself)."""
    first = parts[0]
    meta = {k: v for k, v in first.items() if k not in ("records", "written", "rows", "skipped", "skipped_records")}
    meta["records"] = sum(p["records"] for p in parts)
    meta["written"] = sum(p["written"] for p in parts)
    meta["rows"] = sum(p["rows"] for p in parts)
    meta["skipped"] = {r: sum(p["skipped"].get(r, 0) for p in parts) for r in SKIP_REASONS}
    meta["skipped_records"] = [s for p in parts for s in p["skipped_records"]]
    return meta


def run_range(job, source, out, start: int = 0, stop: int | None = None, progress: bool = True,
              desc: str | None = None, allow_empty: bool = False) -> dict:
    """Run `job` on records start..stop-1 of `source` (an InputFile) and write `out`; returns the metadata.

    A record the model cannot take is skipped and listed (strict: the first one is an error). When no
    record at all could be taken, nothing is written and ValueError says why (unless allow_empty: a part
    of a larger job may hold only skipped records)."""
    job.check_output(out)
    total = (stop if stop is not None else source.count()) - start
    model = job.model  # opened before the writer: a bad model stops before any file is made
    writer = job.writer(out)
    counts = {"records": 0, "written": 0, "rows": 0, "skipped": {r: 0 for r in SKIP_REASONS}, "skipped_records": []}
    bar = tqdm(total=total, desc=desc or job.spec.command, unit="rec", disable=not progress, smoothing=0.1,
               file=sys.stderr)
    started, tokens = time.perf_counter(), 0
    try:
        for records in chunked(source.records(start, stop), job.max_records, job.max_nucleotides):
            result, skipped, taken, used = job.process(records)
            writer.add(result)
            counts["records"] += len(records)
            counts["written"] += taken
            counts["rows"] += len(result)
            for s in skipped:
                counts["skipped"][s.reason] += 1
                counts["skipped_records"].append(s.to_dict())
            tokens += used
            bar.update(len(records))
            bar.set_postfix_str(f"{tokens / max(time.perf_counter() - started, 1e-9):,.0f} tok/s"
                                + (f", {sum(counts['skipped'].values())} skipped" if any(counts["skipped"].values()) else ""))
        bar.close()
        if counts["written"] == 0 and not allow_empty:
            first = counts["skipped_records"][0]["message"] if counts["skipped_records"] else "no records"
            raise ValueError(f"{source.name}: no record could be taken ({counts['records']} read, all skipped); "
                             f"the first: {first}")
        metadata = {**job.describe(), "input": source.name, **counts}
        writer.close(metadata)
    except BaseException:
        bar.close()
        writer.abort()
        raise
    del model
    return metadata


def summary(metadata: dict, out) -> str:
    """What a run did, for stderr: counts, the first skipped records, where the output is."""
    skipped = metadata["skipped"]
    n_skipped = sum(skipped.values())
    verb = {"embed": "embedded", "predict": "predicted", "score": "scored"}[metadata["command"]]
    lines = [f"{verb} {metadata['written']} of {metadata['records']} records -> {out}"
             + (f" ({metadata['rows']} rows)" if metadata["rows"] != metadata["written"] else "")]
    if n_skipped:
        why = ", ".join(f"{n} {r.replace('_', ' ')}" for r, n in skipped.items() if n)
        lines.append(f"skipped {n_skipped} record(s) ({why}); all are listed in the output's metadata:")
        lines += [f"  {s['message']}" for s in metadata["skipped_records"][:SHOW_SKIPPED]]
        if n_skipped > SHOW_SKIPPED:
            lines.append(f"  ... and {n_skipped - SHOW_SKIPPED} more")
    return "\n".join(lines)


def merge(job_command: str, parts: list[Path], part_meta: list[dict], out: Path) -> dict:
    """Merge part outputs (same format as `out`, in order) into `out`; returns the combined metadata."""
    from omnigenome.inference.writers import EmbeddingWriter, TableWriter, read_embeddings
    metadata = combine(part_meta)
    if job_command == "embed":
        settings = metadata["settings"]
        maps = settings.get("attentions") is not None or bool(settings.get("contacts"))
        writer = EmbeddingWriter(out, metadata["hidden_size"], bool(settings.get("per_nucleotide")), maps)
        try:
            for part in parts:
                for chunk in read_embeddings(part):
                    writer.add(chunk)
            writer.close(metadata)
        except BaseException:
            writer.abort()
            raise
    else:
        writer = TableWriter(out)
        try:
            for part in parts:
                writer.append_file(part)
            writer.close(metadata)
        except BaseException:
            writer.abort()
            raise
    return metadata
