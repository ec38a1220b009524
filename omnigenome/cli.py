"""The `omnigenome` command line.

    omnigenome prep INPUT.fasta[.gz]... --out DIR [key=value ...]   FASTA -> folded, sharded train/valid corpus
    omnigenome fold SEQ... | --input FASTA                          secondary structures (model or ViennaRNA)
    omnigenome design --structure DB | --targets FILE [key=value]   sequences that fold into target structures
    omnigenome embed MODEL INPUT --out FILE                         embeddings (and attention / contact maps)
    omnigenome predict CKPT INPUT --out FILE                        a fine-tuned model's predictions
    omnigenome score MODEL INPUT --out FILE                         zero-shot surprisal, PLL, mutation effects

Each subcommand is a `_add_<name>` function that declares its arguments and a `_run_<name>` function that
does the work. Settings are `key=value` overrides of the command's config in conf/ (prep: conf/prep/,
design: conf/design/); files and switches are options. Nothing heavy is imported before a command runs,
so `omnigenome --help` answers at once.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence


def _split_settings(items: Sequence[str]) -> tuple[list[str], list[str]]:
    """(positional arguments, `key=value` settings): an argument with `=` that is not an existing file is a
    setting (`+key=value` and `~key` too)."""
    positional, settings = [], []
    for item in items:
        key = item.split("=", 1)[0].lstrip("+~")
        is_setting = ("=" in item or item.startswith("~")) and key.replace(".", "").replace("_", "").isalnum()
        (settings if is_setting and not os.path.exists(item) else positional).append(item)
    return positional, settings


class _IntermixedParser(argparse.ArgumentParser):
    """Positionals may follow options (`prep IN.fa --out DIR long_policy=window`): parse intermixed."""

    _parsing = False

    def parse_known_args(self, args=None, namespace=None):
        if self._parsing:  # parse_known_intermixed_args calls back into parse_known_args
            return super().parse_known_args(args, namespace)
        self._parsing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._parsing = False


def _add_prep(subparsers) -> None:
    p = subparsers.add_parser(
        "prep", help="build a pretraining corpus from FASTA files",
        description="Normalise (RNA alphabet, upper case), filter by length, drop or window long sequences, "
                    "de-duplicate exactly and (with cd-hit-est) near-duplicates, fold with ViennaRNA, split "
                    "train/valid by a hash of the sequence, and write DIR/train, DIR/valid and DIR/manifest.json. "
                    "Settings come from conf/prep/<config>.yaml; change any of them with key=value arguments "
                    "(e.g. long_policy=window near_dup.enabled=true fold.workers=8 executor.name=slurm). "
                    "An interrupted run finishes when the same command is run again.")
    p.add_argument("inputs", nargs="*", metavar="INPUT",
                   help="FASTA / FASTA.gz files or JSON lines of transcript regions, and key=value settings")
    p.add_argument("--out", metavar="DIR", help="output directory (or out=DIR)")
    p.add_argument("--config", default="default", metavar="NAME", help="conf/prep/NAME.yaml (default: default)")
    p.set_defaults(run=_run_prep)
    p.__class__ = _IntermixedParser


def _run_prep(args: argparse.Namespace) -> int:
    from omnigenome.data.prep import format_summary, kept, load_config, progress, run_prep

    inputs, overrides = _split_settings(args.inputs)
    cfg = load_config(args.config, overrides)
    inputs = inputs or list(cfg.inputs)
    out = args.out or cfg.out
    if not inputs:
        raise ValueError("no input files given")
    if not out:
        raise ValueError("no output directory given (--out DIR)")
    try:
        manifest = run_prep(cfg, inputs, out)
    except RuntimeError as e:  # units not folded (a failed array task): rerunning finishes them
        print(f"omnigenome prep: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        done = progress(out)
        state = f"{done[0]} of {done[1]} work units folded" if done else "nothing folded yet"
        print(f"\nomnigenome prep: interrupted ({state}); run the same command again to continue", file=sys.stderr)
        return 130
    if manifest is None:
        return 0
    print(format_summary(manifest))
    invalid = manifest["invalid"]
    if invalid:
        print(f"{len(invalid)} invalid record(s) skipped, for example:")
        for item in invalid[:5]:
            print(f"  {item['file']}, line {item['line']}: {item['reason']}")
    print(f"wrote {out}/train, {out}/valid and {out}/manifest.json")
    if not kept(manifest):
        counts = manifest["counts"]
        why = ("the input holds no records" if not counts["input"] else
               ", ".join(f"{counts[k]} {k.replace('_', ' ')}" for k in ("invalid", "too_short", "too_long", "duplicate",
                                                                          "near_duplicate") if counts[k]))
        print(f"omnigenome prep: error: no record kept ({why}); the corpus in {out} is empty", file=sys.stderr)
        return 1
    return 0


def _add_fold(subparsers) -> None:
    p = subparsers.add_parser(
        "fold", help="predict secondary structures (dot-bracket) from a checkpoint or with ViennaRNA",
        description="Print each sequence's structure as FASTA-like blocks: '>id', the sequence, the dot-bracket "
                    "(with the free energy in kcal/mol for --engine vienna). The model's Seq2Str head is decoded "
                    "with --decode: 'valid' (default) is the most probable balanced structure of AU, CG and GU pairs "
                    "(--no-canonical allows any pair), 'argmax' the most "
                    "probable label of each nucleotide (may be unbalanced).")
    p.add_argument("sequences", nargs="*", metavar="SEQ", help="sequences (A C G U/T N, any case)")
    p.add_argument("--input", metavar="FASTA", help="read sequences from a FASTA or FASTA.gz file")
    p.add_argument("--ckpt", metavar="PATH", help="train.py checkpoint or Hugging Face model directory")
    p.add_argument("--engine", choices=("model", "vienna"), default="model",
                   help="model: the checkpoint's structure head (default); vienna: ViennaRNA MFE")
    p.add_argument("--decode", choices=("valid", "argmax"), default="valid", help="default: valid")
    p.add_argument("--min-loop", type=int, default=3, help="fewest unpaired nt inside a pair for 'valid' (default 3)")
    p.add_argument("--canonical", action=argparse.BooleanOptionalAction, default=True,
                   help="'valid' structures use only AU, CG and GU pairs (default; measured better in docs/structure.md)")
    p.add_argument("--plot", metavar="DIR", help="also draw each structure to DIR/<id>.svg")
    p.add_argument("--dtype", choices=("auto", "fp32", "bf16"), default="auto",
                   help="the model's number format: auto (default) is bf16 where the CPU or GPU computes it natively")
    p.set_defaults(run=_run_fold)


def _svg_name(record_id: str, used: set[str]) -> str:
    """A file name from a record id: unsafe characters replaced, repeats numbered."""
    import re
    base = re.sub(r"[^A-Za-z0-9._-]", "_", record_id).strip(".") or "seq"
    name, n = f"{base}.svg", 1
    while name in used:
        n += 1
        name = f"{base}_{n}.svg"
    used.add(name)
    return name


def _read_records(args: argparse.Namespace) -> list[tuple[str, str]]:
    """(id, sequence) of the SEQ arguments (seq1, seq2, ...) and of --input; an empty file says so."""
    records = [(f"seq{i + 1}", s) for i, s in enumerate(args.sequences)]
    if args.input:
        from omnigenome.data.fasta import read_fasta
        from_file = [(r.id, r.sequence) for r in read_fasta(args.input)]
        if not from_file:
            raise ValueError(f"{args.input}: the file holds no sequence (it is empty)")
        records += from_file
    if not records:
        raise ValueError("no sequences: give SEQ arguments or --input FASTA")
    return records


def _run_fold(args: argparse.Namespace) -> int:
    from pathlib import Path

    from omnigenome.tokenizer import check_nucleotides
    from omnigenome.utils import available_cores

    records = _read_records(args)
    if args.engine == "model" and not args.ckpt:
        raise ValueError("--engine model needs --ckpt PATH (or use --engine vienna)")
    if args.engine == "vienna" and args.ckpt:
        raise ValueError("--ckpt is for --engine model; ViennaRNA needs no checkpoint")
    for rid, sequence in records:  # one definition of a valid sequence for both engines
        check_nucleotides(sequence, rid)

    sequences = [s for _, s in records]
    if args.engine == "vienna":
        from omnigenome.folding import fold_many
        folded = fold_many(sequences, workers=min(available_cores(), len(sequences)))
        structures = [s for s, _ in folded]
        notes = [f" ({energy:.2f})" for _, energy in folded]
    else:
        from omnigenome.model.loading import load_model
        from omnigenome.ssp.decode import decode
        from omnigenome.ssp.predict import structure_probabilities
        model = load_model(args.ckpt)
        limit = model.config.max_nucleotides
        for rid, sequence in records:
            if len(sequence) > limit:
                raise ValueError(f"record {rid!r}: {len(sequence)} nt is longer than the {limit} nt the model "
                                 f"reads; fold it with --engine vienna (no length limit)")
        probs = structure_probabilities(model, sequences, ids=[rid for rid, _ in records], dtype=args.dtype)
        structures = [decode(p, args.decode, s, min_loop=args.min_loop, canonical_only=args.canonical)
                      for p, s in zip(probs, sequences)]
        notes = [""] * len(structures)
    for (rid, sequence), structure, note in zip(records, structures, notes):
        print(f">{rid}\n{sequence}\n{structure}{note}")

    if args.plot:
        import RNA
        from omnigenome.structure import pair_table
        out = Path(args.plot)
        out.mkdir(parents=True, exist_ok=True)
        used: set[str] = set()
        for (rid, sequence), structure in zip(records, structures):
            try:
                pair_table(structure, allowed="().")
            except ValueError:  # an unbalanced argmax prediction has no drawing
                print(f"omnigenome fold: {rid}: not drawn, the structure is unbalanced", file=sys.stderr)
                continue
            path = out / _svg_name(rid, used)
            if not RNA.svg_rna_plot(sequence.upper().replace("T", "U"), structure, str(path)):
                raise RuntimeError(f"ViennaRNA could not draw {rid} to {path}")
        print(f"plots: {out}/ ({len(used)} SVG files)", file=sys.stderr)
    return 0


def _add_design(subparsers) -> None:
    p = subparsers.add_parser(
        "design", help="design RNA sequences that fold into target structures (Str2Seq)",
        description="Design a sequence for each target dot-bracket whose ViennaRNA MFE structure equals the "
                    "target exactly. Prints, per target, the target, the designed sequence and whether it folds "
                    "into the target (with --json: one JSON object per line). The budget is CPU time of the "
                    "process designing the target (time.process_time), so results do not depend on machine "
                    "load; a design stops as soon as it is solved. All targets are checked before any work starts. "
                    "The method's settings come from conf/design/<method>.yaml; change them with key=value "
                    "arguments (e.g. trajectories=1).")
    p.add_argument("settings", nargs="*", metavar="KEY=VALUE", help="settings of the method (conf/design/)")
    p.add_argument("--structure", action="append", default=[], metavar="DOT_BRACKET",
                   help="a target structure (repeat for several)")
    p.add_argument("--targets", metavar="FILE",
                   help="targets, one dot-bracket per line (optionally followed by a name), or an Eterna100 TSV")
    p.add_argument("--method", choices=("local", "ga", "rnainverse"), default="local",
                   help="local: hierarchical local search (default); ga: the paper's MLM-guided genetic "
                        "algorithm; rnainverse: ViennaRNA's inverse_fold restarted (baseline)")
    p.add_argument("--budget-seconds", type=float, default=60.0, metavar="S",
                   help="CPU seconds per target (default 60)")
    p.add_argument("--seed", type=int, default=0, help="random seed; same seed, same design (default 0)")
    p.add_argument("--workers", type=int, default=1, help="targets designed in parallel processes (default 1)")
    p.add_argument("--model", metavar="PATH", help="train.py checkpoint or Hugging Face directory whose MLM "
                                                   "head proposes nucleotides (optional)")
    p.add_argument("--json", action="store_true",
                   help="one JSON object per target: structure, sequence, solved, seconds, ...")
    p.set_defaults(run=_run_design)
    p.__class__ = _IntermixedParser


def _run_design(args: argparse.Namespace) -> int:
    import json

    from omnigenome.design import Target, design_many, load_settings, read_targets, validate_target

    extra, overrides = _split_settings(args.settings)
    if extra:
        raise ValueError(f"unexpected argument(s) {' '.join(extra)}: settings are key=value (conf/design/{args.method}.yaml)")
    settings = load_settings(args.method, overrides)
    targets = [Target(str(i + 1), validate_target(s, f"--structure {i + 1}")) for i, s in enumerate(args.structure)]
    if args.targets:
        targets += read_targets(args.targets)
    if not targets:
        raise ValueError("no targets: give --structure DOT_BRACKET or --targets FILE")
    if args.budget_seconds <= 0:
        raise ValueError(f"--budget-seconds must be positive, got {args.budget_seconds}")
    if args.model and args.method == "rnainverse":
        raise ValueError("--model is for --method local or ga; rnainverse uses no model")
    solved = 0
    for r in design_many(targets, args.method, args.budget_seconds, args.seed, args.model, args.workers, settings):
        solved += r.solved
        if args.json:
            print(json.dumps(r.to_dict()), flush=True)
        else:
            verdict = "folds into the target" if r.solved else f"does not fold into the target ({r.distance} positions differ)"
            print(f">{r.name} {verdict}; {r.seconds:.2f} CPU s\n{r.structure}\n{r.sequence}", flush=True)
            if not r.solved:
                print(f"{r.mfe_structure} (MFE structure)", flush=True)
    print(f"solved {solved} of {len(targets)}", file=sys.stderr)
    return 0


# --- inference: embed, predict, score (omnigenome.inference) ----------------------------------------------

_INPUT_HELP = ("FASTA / FASTA.gz, CSV / TSV (optionally .gz) or JSON lines with a sequence column, or - for "
               "standard input")
_MODEL_HELP = ("a fine-tuned checkpoint (train.py experiment=finetune: its backbone is used), a pretraining "
               "checkpoint of train.py, or a Hugging Face model folder (anything init_from= accepts)")
_RULES = ("Records are read as a stream and batched by length (packed for OmniGenome models); memory does not grow "
          "with the input. A record the model cannot take (a character its tokenizer cannot encode, an empty "
          "sequence, or longer than the model reads) is skipped, never truncated: each one is named with its file, "
          "line, id and reason, counted in a summary line at the end and listed in the output's metadata "
          "(--strict makes the first one an error). Under torchrun / srun (RANK/WORLD_SIZE or "
          "SLURM_PROCID/SLURM_NTASKS) each rank runs one part of the input; --executor local|slurm --parts N runs "
          "the parts as a job array; parts are written atomically to OUT.parts/ with a manifest, a rerun redoes "
          "only the missing ones, and the merged output equals a one-process run.")


def _add_inference_options(p, model_help: str = _MODEL_HELP) -> None:
    p.add_argument("model", metavar="MODEL", help=model_help)
    p.add_argument("input", metavar="INPUT", help=_INPUT_HELP)
    p.add_argument("--out", required=True, metavar="FILE", help="output file; its suffix picks the format")
    p.add_argument("--column", metavar="NAME", help="sequence column of a CSV / JSON-lines input "
                                                    "(default: sequence, else seq)")
    p.add_argument("--id-column", metavar="NAME", help="id column (default: id, else name, else FILE:LINE)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: CUDA when available)")
    p.add_argument("--dtype", choices=("auto", "fp32", "bf16"), default="auto",
                   help="compute dtype (default auto: bf16 where the CPU or GPU computes it natively, else fp32; "
                        "--dtype fp32 forces fp32); outputs are float32 either way")
    p.add_argument("--max-tokens", type=int, default=8192, metavar="N",
                   help="tokens per batch (packed) or padded tokens per batch (default 8192)")
    p.add_argument("--strict", action="store_true", help="stop at the first record the model cannot take")
    p.add_argument("--trust-remote-code", action="store_true", help="allow a model folder's own modelling code")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    g = p.add_argument_group("job arrays (submitit; the cluster extra)")
    g.add_argument("--executor", choices=("local", "slurm"), help="run the input in --parts parts as a job array: "
                                                                  "local processes or SLURM")
    g.add_argument("--parts", type=int, default=4, metavar="N", help="number of parts / array tasks (default 4)")
    g.add_argument("--slurm-partition", metavar="NAME")
    g.add_argument("--slurm-time-min", type=int, default=600, metavar="MIN", help="time limit per task (default 600)")
    g.add_argument("--slurm-cpus", type=int, default=4, metavar="N", help="CPUs per task (default 4)")
    g.add_argument("--slurm-gpus", type=int, default=0, metavar="N", help="GPUs per task (default 0)")
    g.add_argument("--slurm-mem-gb", type=float, default=16, metavar="GB", help="memory per task (default 16)")
    g.add_argument("--slurm-param", action="append", default=[], metavar="KEY=VALUE",
                   help="an additional sbatch parameter, e.g. account=myproj (repeatable)")
    g.add_argument("--no-wait", action="store_true", help="submit and return; rerun the command later to merge")


def _run_inference(args: argparse.Namespace, command: str, options: dict, extra_columns=()) -> int:
    from pathlib import Path

    from omnigenome.inference import parallel
    from omnigenome.inference.jobs import JobSpec, make_job
    from omnigenome.inference.records import STDIN, InputFile
    from omnigenome.inference.runner import run_range, summary

    if not Path(args.model).exists():
        raise FileNotFoundError(f"{args.model}: no such checkpoint file or model folder")
    spec = JobSpec(command, str(Path(args.model).resolve()), args.device, args.dtype,
                   {**options, "max_tokens": args.max_tokens, "strict": args.strict}, args.trust_remote_code)
    job = make_job(spec)
    out = Path(args.out).resolve()
    job.check_output(out)
    input_spec = {"path": args.input if args.input == STDIN else str(Path(args.input).resolve()),
                  "column": args.column, "id_column": args.id_column, "extra_columns": list(extra_columns),
                  "name": args.input}
    with InputFile(**input_spec) as source:
        rank, world = parallel.rank_and_world()
        try:
            if args.executor:
                slurm = {"partition": args.slurm_partition, "timeout_min": args.slurm_time_min,
                         "cpus_per_task": args.slurm_cpus, "gpus_per_task": args.slurm_gpus, "mem_gb": args.slurm_mem_gb,
                         "additional_parameters": dict(kv.split("=", 1) for kv in args.slurm_param)}
                bad = [kv for kv in args.slurm_param if "=" not in kv]
                if bad:
                    raise ValueError(f"--slurm-param {bad[0]!r}: expected KEY=VALUE")
                metadata = parallel.run_on_executor(job, source, input_spec, out, args.executor, args.parts, slurm,
                                                    wait=not args.no_wait)
            elif world > 1:
                metadata = parallel.run_as_rank(job, source, out, rank, world, progress=not args.no_progress)
            else:
                metadata = run_range(job, source, out, progress=not args.no_progress)
        except RuntimeError as e:  # failed parts: a rerun redoes them
            print(f"omnigenome {command}: {e}", file=sys.stderr)
            return 1
    if metadata is None:  # another rank merges, or a job array was submitted without waiting
        return 0
    print(summary(metadata, args.out), file=sys.stderr)
    return 0


def _add_embed(subparsers) -> None:
    p = subparsers.add_parser(
        "embed", help="embeddings of sequences (per sequence and per nucleotide), attention and contact maps",
        description="Write per-sequence embeddings (the encoder's final hidden states, pooled with --pool) and, "
                    "with --per-nucleotide, per-nucleotide embeddings, in input order with the record ids. Formats "
                    "by suffix: .safetensors (tensors embeddings (n, H), nucleotide_embeddings and "
                    "nucleotide_offsets; ids and metadata in the header), .npy (OUT.npy (n, H); ids one per line in "
                    "the sidecar OUT.ids.txt; OUT.nucleotides.npy and OUT.offsets.npy; metadata in OUT.meta.json), "
                    ".parquet (columns id, embedding, nucleotide_embeddings; metadata in the file). --attentions and "
                    "--contacts add per-record maps over the nucleotides (attentions.<k>, contacts.<k>; "
                    ".safetensors only). " + _RULES)
    _add_inference_options(p)
    p.add_argument("--pool", choices=("mean", "cls"), default="mean",
                   help="mean over the nucleotides' states (default) or the first token's state")
    p.add_argument("--per-nucleotide", action="store_true", help="also write one (length, H) array per record")
    p.add_argument("--attentions", nargs="?", const="all", metavar="LAYERS:HEADS",
                   help="attention maps of these layers and heads, e.g. --attentions=-1 (the last layer; write negative indices with =), 0,3:all, 10-15:0-3 "
                        "(default when given alone: all)")
    p.add_argument("--contacts", action="store_true", help="contact maps from the contact head")
    p.set_defaults(run=_run_embed)


def _run_embed(args: argparse.Namespace) -> int:
    return _run_inference(args, "embed", {"pool": args.pool, "per_nucleotide": args.per_nucleotide,
                                          "attentions": args.attentions, "contacts": args.contacts})


def _add_predict(subparsers) -> None:
    p = subparsers.add_parser(
        "predict", help="predictions of a fine-tuned checkpoint on new sequences",
        description="Run a checkpoint of `train.py experiment=finetune` (backbone, LoRA, head, label names and "
                    "structure_input rebuilt from the checkpoint, as evaluate.py does; structure_input folds each "
                    "sequence with ViennaRNA) and write one row per record: class and prob_<label> columns, "
                    "regression values, multi-label probabilities, or per-nucleotide labels / values; structure "
                    "tasks give the dot-bracket (--decode). Inputs longer than the task's max_length are skipped. "
                    "Formats by suffix: .csv (lists as JSON text; metadata in OUT.meta.json), .jsonl, .parquet. "
                    + _RULES)
    _add_inference_options(p, "a fine-tuned checkpoint of train.py experiment=finetune (checkpoints/best.ckpt)")
    p.add_argument("--decode", choices=("valid", "argmax"), default="valid",
                   help="structure tasks: the most probable balanced structure (default) or per-nucleotide argmax")
    p.add_argument("--probabilities", action="store_true",
                   help="per-nucleotide tasks: also the (length, classes) probabilities")
    p.add_argument("--fold-workers", type=int, default=1, metavar="N", help="ViennaRNA processes (structure_input)")
    p.add_argument("--cache-dir", metavar="DIR", help="cache ViennaRNA structures here (structure_input)")
    p.set_defaults(run=_run_predict)


def _run_predict(args: argparse.Namespace) -> int:
    if args.executor:
        raise ValueError("predict runs in one process or under torchrun / srun; --executor is for embed and score")
    return _run_inference(args, "predict", {"decode": args.decode, "probabilities": args.probabilities,
                                            "fold_workers": args.fold_workers, "cache_dir": args.cache_dir})


def _add_score(subparsers) -> None:
    p = subparsers.add_parser(
        "score", help="zero-shot scores from the masked-LM head: surprisal, pseudo-log-likelihood, mutation effects",
        description="Exact masked marginals (each position masked in turn, copies packed into batches; a sequence of "
                    "L nt costs L passes) over A, C, G, U, in nats. Without mutations, one row per record: length, "
                    "scored (A/C/G/U positions), pll (pseudo-log-likelihood), pll_per_nt, surprisal (per nucleotide, "
                    "null at N; --log-probs adds the (L, 4) log-probabilities). With --mutations A12G,C30U:G31A "
                    "(1-based, checked against each sequence; ':' joins substitutions of one variant), "
                    "--mutation-column or --variant-column (a variant sequence of the same length), one row per "
                    "variant: effect = log p(variant) - log p(reference) summed over its positions, all masked in "
                    "the reference. OmniGenome models use their masked-LM head; Hugging Face masked LMs need a "
                    "single-nucleotide tokenizer. Formats: .csv, .jsonl, .parquet. " + _RULES)
    _add_inference_options(p)
    p.add_argument("--mutations", metavar="LIST", help="variants scored for every record, e.g. A12G,C30U:G31A")
    p.add_argument("--mutation-column", metavar="NAME", help="a column of variants per record (comma list)")
    p.add_argument("--variant-column", metavar="NAME", help="a column with each record's variant sequence")
    p.add_argument("--log-probs", action="store_true", help="also the (L, 4) log-probabilities of A, C, G, U")
    p.set_defaults(run=_run_score)


def _run_score(args: argparse.Namespace) -> int:
    return _run_inference(args, "score", {"mutations": args.mutations, "mutation_column": args.mutation_column,
                                          "variant_column": args.variant_column, "log_probs": args.log_probs},
                          extra_columns=[c for c in (args.mutation_column, args.variant_column) if c])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="omnigenome", description="OmniGenome RNA foundation model tools")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_prep(subparsers)
    _add_fold(subparsers)
    _add_design(subparsers)
    _add_embed(subparsers)
    _add_predict(subparsers)
    _add_score(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 bad input).

    Input errors (malformed FASTA, an output directory that already holds a corpus, bad option
    values) are printed to stderr as one line, without a traceback. argparse usage errors exit
    with status 2 through SystemExit, as usual.
    """
    from omnigenome.extras import MissingExtra

    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (FileExistsError, FileNotFoundError, ValueError, MissingExtra) as e:  # FastaError, SettingsError too
        print(f"omnigenome {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\nomnigenome {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
