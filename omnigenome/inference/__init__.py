"""Using a model on new sequences: embeddings, fine-tuned predictions, zero-shot scores, attention and
contact maps. One implementation behind `omnigenome embed | predict | score` and `omnigenome.load(...)`.

- `records`: input files (FASTA, CSV/TSV, JSON lines, stdin) streamed as records that know their file and line;
- `models`: opening a fine-tuned / pretraining checkpoint or a Hugging Face folder on a device, in a dtype;
- `batching`: which records a model can take (the long-sequence rule: skip and report) and batches by length;
- `embed`, `predict`, `score`, `maps`: the four jobs on one chunk of records;
- `writers`: streaming, atomic output files with their metadata;
- `jobs`, `runner`, `parallel`: a job over a whole input, in one process or in parts across ranks / job arrays;
- `api`: `load(path)` -> `InferenceModel` with `embed`, `predict`, `score`, `attentions`, `contacts`.

Layer: beside ssp/ and design/ (above model/ and data/); neither Lightning nor Hydra is imported.
"""
from omnigenome.inference.api import InferenceModel, load

__all__ = ["InferenceModel", "load"]
