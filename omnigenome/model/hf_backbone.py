"""Any masked-LM encoder that transformers builds with AutoConfig / AutoModel, behind the backbone interface.

`HFBackbone.from_pretrained(folder)` loads the encoder (AutoModel) and the model's own tokenizer
(AutoTokenizer) from a local folder: transformers' ESM (Nucleotide Transformer v1 / Agro-NT: 6-mer
EsmTokenizer), BERT- and RoBERTa-style models, and every RNA/DNA model the `multimolecule` package registers
with the Auto classes (RNA-FM, RNA-MSM, SpliceBERT, UTR-BERT, UTR-LM, RiNALMo, DNABERT, DNABERT-2, ...;
imported only when a folder's model_type needs it). A folder whose config carries `auto_map` (its own
modelling code, e.g. DNABERT-2's original or NT v2) loads only with `trust_remote_code=True`.

How a nucleotide finds its token (`HFTokenizer.kind`), read off the tokenizer with a probe sequence:
- single: one token per nucleotide (RNA-FM, SpliceBERT): nucleotide n reads its own token;
- chunked: tokens cover consecutive runs (Nucleotide Transformer's 6-mers with single-letter fall-back,
  DNABERT-2's BPE): nucleotide n reads the token whose span contains it;
- kmer: overlapping k-mers written as words (DNABERT, 3UTRBERT): nucleotide n reads the k-mer centred on it,
  k-mer `clamp(n - (k - 1) // 2, 0, L - k)`, so the first and last nucleotides read the first and last k-mer.
U/T and case follow the model's vocabulary (a vocabulary with U and no T gets T -> U, and so on), unless
`alphabet=` / `lowercase=` say otherwise. A character the tokenizer cannot represent stops with the record,
position and character. The longest input is `max_position_embeddings` (minus the two rows fairseq-lineage
models leave unused: ESM, RoBERTa, RNA-FM ...), capped by the tokenizer's `model_max_length`.
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import itertools
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn as nn

from omnigenome.model.backbones import Backbone, EncodedSequence, batch_layout
from omnigenome.utils import where

# Model types `import multimolecule` (0.2.x) registers with transformers' Auto classes.
MULTIMOLECULE_MODEL_TYPES = frozenset("""
    a2zchromatin ablang ablang2 amplify aparent aparent2 basenji basset borzoi bpfold bpnet calm carp chrombpnet
    deepcpgdna deepmel deepsea deepstarr deltasplice dnabert dnabert2 dnaberts enformer ernierna framepool hal
    hyenadna malinois maxentscan mmsplice mpradragonn mtsplice openspliceai optimus5prime optmrl pangolin procapnet
    progen2 proteinbert ribonanzanet rinalmo rnabert rnaernie rnafm rnamsm scbasset splicebert spotrna
    sptransformer ufold utrbert utrlm xpresso""".split())
# The first row of the position table the first token uses, for model types whose positions do not start at 0
# (read off their embedding code): fairseq lineage (ESM, RoBERTa) counts from padding_idx + 1; RNA-FM, UTR-LM
# and CaLM keep an upstream shift of one more (ERNIE-RNA's sinusoidal table is counted alike, to be safe);
# RNA-MSM starts at 1. BERT lineage (BERT, SpliceBERT, DNABERT, UTR-BERT, RNABERT, ...) starts at 0. The longest
# input is the table's rows minus this offset.
_FAIRSEQ_POSITIONS = ("esm", "roberta", "xlm-roberta", "camembert")
_SHIFTED_POSITIONS = ("rnafm", "utrlm", "calm", "ernierna")
_FIXED_POSITION_OFFSET = {"rnamsm": 1}
_QUERY_NAMES = ("query", "q_proj", "q", "q_lin", "query_proj", "wq", "to_q")
_VALUE_NAMES = ("value", "v_proj", "v", "v_lin", "value_proj", "wv", "to_v")
_FUSED_NAMES = ("wqkv", "qkv", "qkv_proj", "c_attn", "query_key_value", "to_qkv")  # query, key, value stacked
_PIECE_MARKERS = ("##", "\u2581", "\u0120")  # WordPiece continuation, SentencePiece, byte-level BPE
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".ckpt", ".h5", ".msgpack", ".index.json")
_UNBOUNDED = 10 ** 8  # a tokenizer's model_max_length above this means "not set"


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """transformers' load-report tables and progress bars are not what a user asked for."""
    from transformers.utils import logging as hf_logging
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def _clean(piece: str) -> str:
    for marker in _PIECE_MARKERS:
        if piece.startswith(marker):
            return piece[len(marker):]
    return piece


def check_folder(path: str | os.PathLike, trust_remote_code: bool = False) -> dict:
    """config.json of a model folder, after the checks that come before transformers builds anything:
    remote code only with trust_remote_code, a model type transformers knows (importing multimolecule only
    for the types it provides). Raises ValueError naming the folder, the model type and what to do."""
    folder = Path(path)
    if not folder.exists():
        raise ValueError(f"{folder}: no such model folder; a hub id cannot be downloaded at run time: download it "
                         f"once (huggingface-cli download {folder} --local-dir models/{folder.name}) and pass the folder")
    if not (folder / "config.json").is_file():
        raise ValueError(f"{folder}: no config.json; a model folder is what save_pretrained writes (a hub id "
                         f"cannot be downloaded at run time: download the model once and pass its folder)")
    config = json.loads((folder / "config.json").read_text())
    model_type = config.get("model_type")
    auto_map = dict(config.get("auto_map") or {})
    tokenizer_config = folder / "tokenizer_config.json"
    if tokenizer_config.is_file() and json.loads(tokenizer_config.read_text()).get("auto_map"):
        auto_map["tokenizer"] = "tokenizer_config.json"
    if auto_map:
        if not trust_remote_code:
            raise ValueError(f"{folder} (model_type {model_type!r}) needs trust_remote_code=true: its config.json "
                             f"declares auto_map, the folder ships its own modelling code ({', '.join(auto_map)}); "
                             f"read that code, then pass finetune.trust_remote_code=true")
        return config
    if not model_type:
        raise ValueError(f"{folder}/config.json names no model_type, so transformers cannot tell what to build")
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING
    if model_type in CONFIG_MAPPING:
        return config
    if model_type in MULTIMOLECULE_MODEL_TYPES:
        if importlib.util.find_spec("multimolecule") is None:
            from omnigenome.extras import install_hint
            raise ValueError(f"{folder}: model_type {model_type!r} is provided by the multimolecule package: "
                             f"{install_hint('multimolecule')} (multimolecule is AGPL-3.0)")
        importlib.import_module("multimolecule")  # registers its models with the Auto classes
        if model_type in CONFIG_MAPPING:
            return config
    raise ValueError(f"{folder}/config.json: model_type {model_type!r} is unknown to transformers; if the folder "
                     f"ships its own modelling code, add its auto_map to config.json and pass "
                     f"finetune.trust_remote_code=true, else upgrade transformers (multimolecule provides "
                     f"{', '.join(sorted(MULTIMOLECULE_MODEL_TYPES))})")


def _without_pooler(model: nn.Module) -> nn.Module:
    """AutoModel adds a pooler (dense + tanh over the first token; new random weights for a masked-LM folder)
    that no head here reads: dropped, where the model is built to run without one (`add_pooling_layer`), so it
    neither counts as trainable nor leaves unused parameters to distributed training."""
    if getattr(model, "pooler", None) is not None and "add_pooling_layer" in inspect.signature(type(model).__init__).parameters:
        model.pooler = None
    return model


class HFTokenizer:
    """The tokenizer side of `HFBackbone`: the model's own tokenizer, the nucleotide -> token mapping, padded
    batches. Built without the model's weights (what a data module needs)."""

    packed = False
    supports_structure = False

    def __init__(self, tokenizer, config: dict, name: str, alphabet: str | None = None, lowercase: bool | None = None,
                 source: str | None = None):
        self.tokenizer, self.name, self.source = tokenizer, name, source or name  # source: the folder, for messages
        self.model_type = config.get("model_type")
        self.unk_id = tokenizer.unk_token_id
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        specials = set(tokenizer.all_special_tokens)
        self.pieces = {_clean(t) for t in tokenizer.get_vocab()
                       if t not in specials and not (t.startswith("<") and t.endswith(">") and len(t) > 2)} - {""}
        self.chars = set("".join(self.pieces))
        self.lower, self.t_to = self._normalisation(alphabet, lowercase)
        self.alphabet = {"U": "U", "T": "T", None: "as written"}[self.t_to]
        self.presplit, self.k = self._presplit()
        self.kind = self._kind()
        self.max_tokens = self._max_tokens(config)

    @classmethod
    def from_pretrained(cls, path, trust_remote_code: bool = False, alphabet: str | None = None,
                        lowercase: bool | None = None) -> "HFTokenizer":
        config = check_folder(path, trust_remote_code)
        from transformers import AutoTokenizer
        with _quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(str(path), trust_remote_code=trust_remote_code)
        return cls(tokenizer, config, Path(path).name, alphabet, lowercase, str(path))

    # --- what the model was trained on ---------------------------------------------------------
    def _normalisation(self, alphabet, lowercase) -> tuple[bool, str | None]:
        lower = (bool(self.chars & set("acgtu")) and not self.chars & set("ACGTU")) if lowercase is None else lowercase
        u, t = ("u", "t") if lower else ("U", "T")
        if alphabet is None:
            t_to = "U" if u in self.chars and t not in self.chars else "T" if t in self.chars and u not in self.chars else None
        elif str(alphabet).upper() in ("U", "RNA"):
            t_to = "U"
        elif str(alphabet).upper() in ("T", "DNA"):
            t_to = "T"
        else:
            raise ValueError(f"alphabet must be U, T or null (read from the vocabulary), got {alphabet!r}")
        return lower, t_to

    def normalise(self, sequence: str) -> str:
        """The sequence in the case and U/T of the model's vocabulary."""
        s = sequence.lower() if self.lower else sequence.upper()
        if self.t_to == "U":
            return s.replace("T", "U").replace("t", "u")
        if self.t_to == "T":
            return s.replace("U", "T").replace("u", "t")
        return s

    def _letters(self) -> str:
        fourth = self.t_to or ("U" if "U" in {c.upper() for c in self.chars} and "T" not in
                               {c.upper() for c in self.chars} else "T")
        letters = "ACG" + fourth
        return letters.lower() if self.lower else letters

    def _probe(self, pattern: str = "ACGTACGTACGTTGCAAGCT") -> str:
        letters = self._letters()
        return "".join(letters["ACGT".index(c)] for c in pattern)

    def _presplit(self) -> tuple[str, int]:
        """How the text is given to the tokenizer: "none" (as one string), "chars" (space-separated) or "kmer"
        (space-separated overlapping k-mers): the first that the tokenizer reads without unknown tokens."""
        probe = self._probe()
        letters = self._letters()
        candidates = [("none", 1)] + [("chars", 1) if k == 1 else ("kmer", k) for k in range(8, 0, -1)
                                      if all("".join(p) in self.pieces for p in itertools.product(letters, repeat=k))]
        for mode, k in candidates:
            ids = self._encode_text(self._text(probe, mode, k))[0]
            if self.unk_id is None or self.unk_id not in ids:
                return mode, k
        hint = (" The tokenizer lower-cases its input (do_lower_case) but its vocabulary is upper-case: re-save it "
                "with do_lower_case=False." if self.tokenizer.init_kwargs.get("do_lower_case") and not self.lower else "")
        raise ValueError(f"{self.source}: its {type(self.tokenizer).__name__} reads the nucleotides of {probe!r} as "
                         f"its unknown token, as one string, spaced or as k-mers: a tokenizer that cannot represent a "
                         f"nucleotide.{hint or ' Give the folder the tokenizer files the model was trained with, or set finetune.alphabet / finetune.lowercase.'}")

    def _kind(self) -> str:
        if self.presplit == "kmer":
            return "kmer"
        if self.presplit == "chars" or all(len(p) == 1 for p in self.pieces):
            return "single"
        probe = self._probe()
        ids, special, offsets = self._encode_text(self._text(probe, self.presplit, self.k))
        content = [j for j, s in enumerate(special) if not s or ids[j] == self.unk_id]
        spans = self._spans(probe, ids, content, offsets, "probe")
        if len(spans) >= 2 and spans[1][0] < spans[0][1]:  # overlapping: k-mers in one string (RnaTokenizer(nmers))
            self.k = spans[0][1] - spans[0][0]
            return "kmer"
        return "chunked"

    def _position_offset(self, config: dict) -> int:
        """The row of the position table the first token uses (see _FAIRSEQ_POSITIONS)."""
        pad = config.get("pad_token_id")
        pad = int(pad) if isinstance(pad, int) else 1
        if self.model_type in _FAIRSEQ_POSITIONS:
            return pad + 1
        if self.model_type in _SHIFTED_POSITIONS:
            return pad + 2
        return _FIXED_POSITION_OFFSET.get(self.model_type, 0)

    def _max_tokens(self, config: dict) -> int:
        limit = None
        for key in ("max_position_embeddings", "n_positions", "max_seq_len", "max_sequence_length"):
            if isinstance(config.get(key), int) and config[key] > 0:
                limit = config[key] - (self._position_offset(config) if key == "max_position_embeddings" else 0)
                break
        model_max = getattr(self.tokenizer, "model_max_length", None)
        if isinstance(model_max, int) and 0 < model_max < _UNBOUNDED and (limit is None or model_max < limit):
            limit = model_max
        return int(limit) if limit else _UNBOUNDED

    # --- encoding ------------------------------------------------------------------------------
    @staticmethod
    def _text(seq: str, mode: str, k: int) -> str:
        if mode == "chars":
            return " ".join(seq)
        if mode == "kmer":
            return " ".join(seq[i:i + k] for i in range(len(seq) - k + 1))
        return seq

    def _encode_text(self, text: str):
        fast = bool(getattr(self.tokenizer, "is_fast", False))
        enc = self.tokenizer(text, add_special_tokens=True, return_special_tokens_mask=True,
                             return_offsets_mapping=fast)
        return list(enc["input_ids"]), list(enc["special_tokens_mask"]), enc.get("offset_mapping")

    def _spans(self, seq: str, ids, content, offsets, record) -> list[tuple[int, int]]:
        """[start, end) in the sequence of every content token (overlapping for k-mers)."""
        k = self.k
        if offsets is not None:
            spans = []
            for j in content:
                s, e = offsets[j]
                if self.presplit == "chars":
                    spans.append((s // 2, s // 2 + 1))
                elif self.presplit == "kmer":
                    spans.append((s // (k + 1), s // (k + 1) + k))
                else:
                    spans.append((s, e))
            return spans
        pieces = self.tokenizer.tokenize(self._text(seq, self.presplit, k))  # a slow tokenizer: line pieces up
        if len(pieces) != len(content):
            raise ValueError(f"{where(record)}{type(self.tokenizer).__name__} gave {len(pieces)} pieces for "
                             f"{len(content)} tokens; cannot map nucleotides to tokens")
        if self.presplit == "kmer":
            return [(w, w + k) for w in range(len(pieces))]
        spans, at = [], 0
        for piece in pieces:
            text = _clean(piece)
            if piece == self.tokenizer.unk_token or not text:
                spans.append((at, at + 1))
                at += 1
            elif seq[at:at + len(text)].lower() == text.lower():
                spans.append((at, at + len(text)))
                at += len(text)
            else:  # overlapping k-mers in one string
                return [(w, w + len(_clean(pieces[0]))) for w in range(len(pieces))]
        return spans

    def encode(self, sequence: str, structure: str | None = None, record: str | None = None,
               max_tokens: int | None = None) -> EncodedSequence:
        """Token ids of the sequence and the token each nucleotide reads; inputs over `max_tokens` (at most
        the model's) are truncated: their last tokens are cut, and the nucleotides they held are not read."""
        if structure is not None:
            raise ValueError(f"{self.name} reads sequences only: structure_input needs an OmniGenome backbone")
        if not sequence:
            raise ValueError(f"{where(record)}empty sequence")
        seq = self.normalise(sequence)
        for pos, ch in enumerate(seq):
            if ch not in self.chars:
                raise ValueError(f"{where(record)}character {sequence[pos]!r} at position {pos + 1} is not in the "
                                 f"vocabulary of {self.name}'s tokenizer ({self.source}): a tokenizer that cannot "
                                 f"represent this nucleotide (remove the record or replace the character)")
        if self.kind == "kmer" and len(seq) < self.k:
            raise ValueError(f"{where(record)}{len(seq)} nt is shorter than the {self.k}-mers of {self.name}")
        ids, special, offsets = self._encode_text(self._text(seq, self.presplit, self.k))
        content = [j for j, s in enumerate(special) if not s or ids[j] == self.unk_id]
        spans = self._spans(seq, ids, content, offsets, record)
        for j, (a, b) in zip(content, spans):
            if ids[j] == self.unk_id:
                raise ValueError(f"{where(record)}{seq[a:b]!r} at position {a + 1} is read as the unknown token of "
                                 f"{self.name}'s tokenizer ({self.source}): a tokenizer that cannot represent these "
                                 f"nucleotides (remove the record or replace them)")
        nucleotide_token = self._map(seq, content, spans, record)
        limit = min(max_tokens or self.max_tokens, self.max_tokens)
        if len(ids) <= limit:
            return EncodedSequence(np.asarray(ids, dtype=np.int64), nucleotide_token)
        ends_special = bool(special[-1])
        keep = limit - 1 if ends_special else limit
        ids = ids[:keep] + ([ids[-1]] if ends_special else [])
        read = int(np.searchsorted(nucleotide_token, keep))  # the nucleotides whose token is kept (monotone map)
        return EncodedSequence(np.asarray(ids, dtype=np.int64), nucleotide_token[:read], cropped=True)

    def _map(self, seq: str, content, spans, record) -> np.ndarray:
        n = len(seq)
        if self.kind == "kmer":
            k = self.k
            if len(content) != n - k + 1:
                raise ValueError(f"{where(record)}{n} nt should give {n - k + 1} overlapping {k}-mers, the tokenizer "
                                 f"gave {len(content)} tokens")
            return np.asarray(content, dtype=np.int64)[np.clip(np.arange(n) - (k - 1) // 2, 0, n - k)]
        out = np.full(n, -1, dtype=np.int64)
        for j, (a, b) in zip(content, spans):
            out[a:b] = j
        if (out < 0).any():
            p = int(np.flatnonzero(out < 0)[0])
            raise ValueError(f"{where(record)}{seq[p]!r} at position {p + 1} is read by no token of {self.name}'s "
                             f"tokenizer ({self.source}): a tokenizer that cannot represent this nucleotide")
        return out

    def collate(self, items: Sequence[EncodedSequence]) -> dict:
        return batch_layout(items, packed=False, pad_id=self.pad_id)


class HFBackbone(Backbone):
    """A transformers encoder and its tokenizer; `forward` runs a padded batch and flattens it to (B * L, H)."""

    def __init__(self, model: nn.Module, tokenizer: HFTokenizer, files: dict[str, bytes],
                 trust_remote_code: bool = False):
        super().__init__()
        self.model, self.tokenizer, self.name = model, tokenizer, tokenizer.name
        self._files, self.trust_remote_code = files, trust_remote_code
        config = model.config
        self.hidden_size = int(getattr(config, "hidden_size", None) or getattr(config, "d_model", None)
                               or model.get_input_embeddings().embedding_dim)

    @classmethod
    def from_pretrained(cls, path, trust_remote_code: bool = False, alphabet: str | None = None,
                        lowercase: bool | None = None) -> "HFBackbone":
        tokenizer = HFTokenizer.from_pretrained(path, trust_remote_code, alphabet, lowercase)
        from transformers import AutoModel
        with _quiet_transformers():
            model, info = AutoModel.from_pretrained(str(path), trust_remote_code=trust_remote_code,
                                                    output_loading_info=True)
        missing = sorted(k for k in info.get("missing_keys", ()) if "pooler" not in k)
        if missing:
            warnings.warn(f"{path}: {len(missing)} encoder weights are not in the folder and start random: "
                          f"{', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''}", stacklevel=2)
        files = {p.name: p.read_bytes() for p in Path(path).iterdir()
                 if p.is_file() and not p.name.endswith(_WEIGHT_SUFFIXES) and p.stat().st_size < 8 * 2 ** 20}
        return cls(_without_pooler(model).eval(), tokenizer, files, trust_remote_code)

    def spec(self) -> dict:
        return {"type": "hf", "name": self.name, "files": self._files, "trust_remote_code": self.trust_remote_code,
                "alphabet": self.tokenizer.t_to, "lowercase": self.tokenizer.lower}

    @classmethod
    def from_spec(cls, spec: dict) -> "HFBackbone":
        """The architecture and tokenizer a checkpoint stored (config and tokenizer files), fresh weights."""
        from transformers import AutoConfig, AutoModel
        with tempfile.TemporaryDirectory() as folder:
            for name, data in spec["files"].items():
                Path(folder, name).write_bytes(data)
            tokenizer = HFTokenizer.from_pretrained(folder, spec["trust_remote_code"], spec["alphabet"], spec["lowercase"])
            tokenizer.name = tokenizer.source = spec["name"]  # messages name the model, not the temporary folder
            with _quiet_transformers():
                config = AutoConfig.from_pretrained(folder, trust_remote_code=spec["trust_remote_code"])
                model = AutoModel.from_config(config, trust_remote_code=spec["trust_remote_code"])
        return cls(_without_pooler(model), tokenizer, spec["files"], spec["trust_remote_code"])

    def forward(self, batch: dict) -> torch.Tensor:
        out = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        hidden = out.last_hidden_state if getattr(out, "last_hidden_state", None) is not None else out[0]
        return hidden.reshape(-1, hidden.shape[-1])

    def attention_projections(self) -> list[tuple[str, list[tuple[int, int]] | None]]:
        separate, fused = [], []
        for name, module in self.model.named_modules():
            if isinstance(module, nn.Linear):
                leaf = name.rsplit(".", 1)[-1].lower()
                if leaf in _QUERY_NAMES or leaf in _VALUE_NAMES:
                    separate.append((f"model.{name}", None))
                elif leaf in _FUSED_NAMES and module.out_features % 3 == 0:
                    third = module.out_features // 3
                    fused.append((f"model.{name}", [(0, third), (2 * third, 3 * third)]))
        return separate or fused
