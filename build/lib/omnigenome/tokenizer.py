"""Single-nucleotide tokenizer with the vocabulary of the released OmniGenome checkpoints."""
from __future__ import annotations

import re
from typing import Sequence

import numpy as np
import torch

from omnigenome.structure import plain_labels
from omnigenome.utils import where

VOCAB = ("<cls>", "<pad>", "<eos>", "<unk>", "A", "C", "G", "T", "N", "U", "a", "c", "g", "t", "n", "u",
         "(", ")", ".", "*", "1", "2", "3", "<mask>")
TOKEN_ID = {t: i for i, t in enumerate(VOCAB)}
CLS_ID, PAD_ID, EOS_ID, UNK_ID, MASK_ID = 0, 1, 2, 3, 23
IUPAC_AMBIGUOUS = "RYSWKMBDHV"  # ambiguity codes other than N; all of them become N

# One byte -> token id table for the characters a normalised sequence or structure may hold.
_LUT = np.full(128, -1, dtype=np.int64)
for _tok, _id in TOKEN_ID.items():
    if len(_tok) == 1:
        _LUT[ord(_tok)] = _id


class OmniGenomeTokenizer:
    """Maps nucleotide strings (and dot-brackets) to the 24 ids of the released checkpoints.

    alphabet: "T" (default; the released checkpoints and design code work in the T alphabet),
        "U" (map T to U), or None (keep U and T as written; they are distinct ids).
    uppercase: fold lower case to upper case (default). When False, lower case keeps its own ids.
    IUPAC ambiguity codes become N; any other character raises a ValueError naming record and position.
    """

    vocab = VOCAB
    cls_token_id, pad_token_id, eos_token_id, unk_token_id, mask_token_id = CLS_ID, PAD_ID, EOS_ID, UNK_ID, MASK_ID
    nucleotide_ids = tuple(TOKEN_ID[c] for c in "ACGTNUacgtnu")

    def __init__(self, alphabet: str | None = "T", uppercase: bool = True):
        if alphabet not in ("T", "U", None):
            raise ValueError(f"alphabet must be 'T', 'U' or None, got {alphabet!r}")
        self.alphabet, self.uppercase = alphabet, uppercase
        src = IUPAC_AMBIGUOUS + IUPAC_AMBIGUOUS.lower()
        dst = "N" * len(IUPAC_AMBIGUOUS) + ("N" if uppercase else "n") * len(IUPAC_AMBIGUOUS)
        if alphabet == "T":
            src, dst = src + "Uu", dst + "Tt"
        elif alphabet == "U":
            src, dst = src + "Tt", dst + "Uu"
        self._table = str.maketrans(src, dst)
        valid = "ACGTUN" if uppercase else "ACGTUNacgtun"
        if alphabet == "T":
            valid = valid.replace("U", "").replace("u", "")
        elif alphabet == "U":
            valid = valid.replace("T", "").replace("t", "")
        self._invalid = re.compile(f"[^{valid}]")
        # Ids the model may sample when it must fill in a nucleotide (MLM random replacement, design).
        self.canonical_ids = tuple(TOKEN_ID[c] for c in ("ACGT" if alphabet != "U" else "ACGU"))

    @property
    def vocab_size(self) -> int:
        return len(VOCAB)

    # --- strings -------------------------------------------------------------------------------
    def normalize(self, sequence: str, record: str | None = None) -> str:
        """Apply case and U/T handling, IUPAC codes to N; raise on anything else."""
        if not sequence:
            raise ValueError(f"{where(record)}empty sequence")
        if not sequence.isascii():  # before upper(): it can change the length ("ß" -> "SS")
            i = next(i for i, c in enumerate(sequence) if not c.isascii())
            raise ValueError(f"{where(record)}invalid nucleotide {sequence[i]!r} at position {i + 1}")
        s = sequence.upper() if self.uppercase else sequence
        s = s.translate(self._table)
        bad = self._invalid.search(s)
        if bad:
            i = bad.start()
            raise ValueError(f"{where(record)}invalid nucleotide {sequence[i]!r} at position {i + 1}")
        return s

    def check_structure(self, structure: str, length: int, record: str | None = None) -> str:
        """Validate a dot-bracket against its sequence: same length, only ( ) ., balanced."""
        plain_labels(structure, record, length)
        return structure

    # --- ids -----------------------------------------------------------------------------------
    @staticmethod
    def _ids(s: str) -> np.ndarray:
        return _LUT[np.frombuffer(s.encode("ascii"), dtype=np.uint8)]

    def encode(self, sequence: str, structure: str | None = None, record: str | None = None) -> list[int]:
        """`<cls> seq <eos>`, or `<cls> seq <eos> struct <eos>` when a structure is given."""
        return self.encode_array(sequence, structure, record).tolist()

    def encode_array(self, sequence: str, structure: str | None = None, record: str | None = None) -> np.ndarray:
        seq = self.normalize(sequence, record)
        parts = [[CLS_ID], self._ids(seq), [EOS_ID]]
        if structure is not None:
            parts += [self._ids(self.check_structure(structure, len(seq), record)), [EOS_ID]]
        return np.concatenate([np.asarray(p, dtype=np.int64) for p in parts])

    def __call__(self, sequences: str | Sequence[str], structures: Sequence[str | None] | None = None,
                 records: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """Encode a batch, right-padded: {'input_ids': (B, L) long, 'attention_mask': (B, L) long}."""
        if isinstance(sequences, str):
            sequences = [sequences]
        structures = structures if structures is not None else [None] * len(sequences)
        records = records if records is not None else [str(i) for i in range(len(sequences))]
        encoded = [self.encode_array(s, t, r) for s, t, r in zip(sequences, structures, records)]
        width = max(len(e) for e in encoded)
        ids = torch.full((len(encoded), width), PAD_ID, dtype=torch.long)
        mask = torch.zeros((len(encoded), width), dtype=torch.long)
        for i, e in enumerate(encoded):
            ids[i, : len(e)] = torch.from_numpy(e)
            mask[i, : len(e)] = 1
        return {"input_ids": ids, "attention_mask": mask}

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        ids = ids.tolist() if hasattr(ids, "tolist") else ids
        toks = (VOCAB[i] for i in ids)
        if skip_special_tokens:
            return "".join(t for t in toks if len(t) == 1)
        return "".join(toks)

    def save_vocabulary(self, directory) -> None:
        """Write vocab.txt (one token per line, line number = id), as transformers' EsmTokenizer reads."""
        from pathlib import Path
        Path(directory, "vocab.txt").write_text("\n".join(VOCAB) + "\n")


_CHECKER = OmniGenomeTokenizer(alphabet=None)


def check_nucleotides(sequence: str, record: str | None = None) -> str:
    """The one definition of a valid nucleotide string (A C G U T N and IUPAC codes, any case, not empty):
    returns `sequence` unchanged, or raises ValueError naming the record and the position."""
    _CHECKER.normalize(sequence, record)
    return sequence
