"""Secondary structure prediction (Seq2Str): decoding the structure head, prediction, zero-shot evaluation.

- `decode`: per-nucleotide probabilities (L, 3) -> dot-bracket (`argmax`, or `valid`: the most
  probable balanced structure, by dynamic programming);
- `predict`: a model's structure-head probabilities for many sequences, and their structures;
- `zero_shot`: score a model and ViennaRNA on a benchmark split (`python evaluate.py task=ssp_zero_shot`).
"""
from omnigenome.ssp.decode import DECODERS, decode, decode_argmax, decode_valid

__all__ = ["DECODERS", "decode", "decode_argmax", "decode_valid"]
