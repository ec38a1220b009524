"""The three inference jobs behind `omnigenome embed | predict | score` and `omnigenome.load(...)`.

A job is built from plain values (`JobSpec`: the command, the model path, device, dtype and the job's
options), so the same job runs in this process, in every rank of torchrun / srun, and in a SLURM array task
(submitit pickles the spec, not the model). `process(records)` takes one chunk of records and returns what
the writer writes, the records skipped (with why), and how many records were taken.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from omnigenome.inference.models import DTYPES, open_model, require_task
from omnigenome.inference.writers import EmbeddingWriter, TableWriter, output_format
from omnigenome.inference.writers import EMBEDDING_FORMATS, TABLE_FORMATS

COMMANDS = ("embed", "predict", "score")


@dataclass
class JobSpec:
    """Everything a job needs, as plain values. options: the command's settings (see each job)."""
    command: str
    model: str
    device: str = "cpu"
    dtype: str = "auto"
    options: dict = field(default_factory=dict)
    trust_remote_code: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


class Job:
    """Common part: the model (opened on first use), the output format check and the metadata."""

    formats: tuple[str, ...] = ()
    max_records = 4096         # records per chunk
    max_nucleotides = 1 << 17  # nucleotides per chunk (bounds the memory of a chunk's results)

    def __init__(self, spec: JobSpec):
        self.spec, self.options = spec, dict(spec.options)
        self._model = None

    @property
    def model(self):
        if self._model is None:
            self._model = open_model(self.spec.model, self.spec.device, self.spec.dtype,
                                     trust_remote_code=self.spec.trust_remote_code)
            self.check_model(self._model)
        return self._model

    def check_model(self, model) -> None:
        pass

    def check_output(self, out) -> str:
        return output_format(out, self.formats)

    def settings(self) -> dict:
        """What the output depends on besides the input and the model (metadata; a resumed job checks it)."""
        return {"dtype": self.spec.dtype, **{k: v for k, v in sorted(self.options.items()) if k not in ("strict",)}}

    def describe(self) -> dict:
        """The output's metadata: the settings as given (dtype "auto" included) and the number format the model
        computed in (`compute_dtype`: "auto" resolved on the machine that ran it)."""
        compute = next(name for name, dtype in DTYPES.items() if dtype == self.model.dtype)
        return {"command": self.spec.command, "model": str(self.spec.model), "settings": self.settings(),
                "compute_dtype": compute}

    @property
    def strict(self) -> bool:
        return bool(self.options.get("strict"))

    @property
    def max_tokens(self) -> int:
        return int(self.options.get("max_tokens") or 8192)


class EmbedJob(Job):
    """options: pool (mean|cls), per_nucleotide, attentions ("LAYERS:HEADS" or None), contacts, max_tokens, strict."""

    formats = EMBEDDING_FORMATS

    def __init__(self, spec: JobSpec):
        super().__init__(spec)
        from omnigenome.inference.embed import check_pool
        check_pool(self.options.setdefault("pool", "mean"))
        self.options.setdefault("per_nucleotide", False)
        self.options.setdefault("attentions", None)
        self.options.setdefault("contacts", False)
        if self.wants_maps:
            self.max_records, self.max_nucleotides = 64, 1 << 14  # L x L maps: small chunks

    @property
    def wants_maps(self) -> bool:
        return self.options.get("attentions") is not None or bool(self.options.get("contacts"))

    def check_output(self, out) -> str:
        fmt = super().check_output(out)
        if self.wants_maps and fmt != ".safetensors":
            raise ValueError(f"{out}: attention and contact maps (one L x L array per record) are written to "
                             f".safetensors only; use --out FILE.safetensors")
        return fmt

    def describe(self) -> dict:
        return {**super().describe(), "hidden_size": self.model.hidden_size}

    def check_model(self, model) -> None:
        if self.wants_maps:
            from omnigenome.inference.maps import model_shape, parse_selection
            if self.options.get("attentions") is not None:
                parse_selection(self.options["attentions"], *model_shape(model))

    def writer(self, path):
        return EmbeddingWriter(path, self.model.hidden_size, bool(self.options["per_nucleotide"]), self.wants_maps)

    def maps_request(self):
        if not self.wants_maps:
            return None
        from omnigenome.inference.maps import model_shape, parse_selection
        sel = self.options.get("attentions")
        return {"attentions": parse_selection(sel, *model_shape(self.model)) if sel is not None else None,
                "contacts": bool(self.options.get("contacts"))}

    def process(self, records):
        from omnigenome.inference.embed import embed_chunk
        chunk, skipped = embed_chunk(self.model, records, self.options["pool"], bool(self.options["per_nucleotide"]),
                                     self.max_tokens, self.strict, self.maps_request())
        return chunk, skipped, len(chunk), chunk.tokens


class PredictJob(Job):
    """options: decode (valid|argmax, structure tasks), probabilities, max_tokens, strict, fold_workers, cache_dir."""

    formats = TABLE_FORMATS

    def __init__(self, spec: JobSpec):
        super().__init__(spec)
        self.options.setdefault("decode", "valid")
        self.options.setdefault("probabilities", False)

    def check_model(self, model) -> None:
        require_task(model)

    def settings(self) -> dict:
        return {k: v for k, v in super().settings().items() if k not in ("fold_workers", "cache_dir")}

    def writer(self, path):
        return TableWriter(path)

    def process(self, records):
        from omnigenome.inference.predict import predict_chunk
        rows, skipped, tokens = predict_chunk(self.model, records, self.options["decode"],
                                              bool(self.options["probabilities"]), self.max_tokens, self.strict,
                                              int(self.options.get("fold_workers") or 1), self.options.get("cache_dir"))
        return rows, skipped, len(rows), tokens


class ScoreJob(Job):
    """options: mutations ("A12G,C30U:G31A"), variant_column, mutation_column, log_probs, max_tokens, strict."""

    formats = TABLE_FORMATS
    max_records, max_nucleotides = 256, 1 << 13  # L masked copies per record: small chunks keep the bar moving

    def __init__(self, spec: JobSpec):
        super().__init__(spec)
        given = [k for k in ("mutations", "variant_column", "mutation_column") if self.options.get(k)]
        if len(given) > 1:
            raise ValueError(f"give one of --mutations, --variant-column, --mutation-column (got {', '.join(given)})")

    def check_model(self, model) -> None:
        model.masked_lm()  # a model without per-nucleotide marginals stops here, in one line

    def extra_columns(self) -> list[str]:
        return [c for c in (self.options.get("variant_column"), self.options.get("mutation_column")) if c]

    def writer(self, path):
        return TableWriter(path)

    def process(self, records):
        from omnigenome.inference.score import score_chunk, split_mutations
        rows, skipped, tokens = score_chunk(self.model, records, split_mutations(self.options.get("mutations")),
                                            self.options.get("variant_column"), self.options.get("mutation_column"),
                                            self.max_tokens, self.strict, bool(self.options.get("log_probs")))
        taken = len(records) - len(skipped)
        return rows, skipped, taken, tokens


def make_job(spec: JobSpec | dict) -> Job:
    if isinstance(spec, dict):
        spec = JobSpec(**spec)
    jobs = {"embed": EmbedJob, "predict": PredictJob, "score": ScoreJob}
    if spec.command not in jobs:
        raise ValueError(f"unknown command {spec.command!r} (choose from {', '.join(COMMANDS)})")
    return jobs[spec.command](spec)

