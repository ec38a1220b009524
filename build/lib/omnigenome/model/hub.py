"""Hugging Face interop: read and write OmniGenome checkpoints in transformers' ESM layout.

A checkpoint directory holds `config.json` plus `model.safetensors` or `pytorch_model.bin` (or a sharded
`*.index.json` of either). Three writers produce such directories, and all of them load here:

- the released OmniGenome checkpoints (transformers 4.x): tensor prefix `OmniGenome.`, LayerNorms as
  `...LayerNorm.weight/.bias`, the Seq2Str structure head as top-level `dense.*` / `classifier.*`;
- transformers' `EsmForMaskedLM.save_pretrained`: prefix `esm.`. transformers 5.x renames the block
  LayerNorms to `...LayerNorm.gamma/.beta`, leaves out the tied `lm_head.decoder.weight`, and stores the
  rotary `inv_freq` buffer under the literal name `esm.encoder.layer.*.attention.self.rotary_embeddings.inv_freq`;
- our own `save_pretrained` (below), which writes the transformers 4.x names so that old and new
  loaders both read it.

Every name is first brought to one canonical form (prefix `esm.`, `.weight/.bias`), then compared with
the canonical names of our model, so missing, unexpected and mis-shaped tensors are reported together.
"""
from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import torch

from omnigenome.model.config import OmniGenomeConfig
from omnigenome.tokenizer import EOS_ID, MASK_ID, PAD_ID, OmniGenomeTokenizer

CONFIG_NAME = "config.json"
SAFETENSORS_NAME = "model.safetensors"
PYTORCH_NAME = "pytorch_model.bin"

# Model prefixes written in front of the encoder tensors: transformers' ESM and the released OmniGenome.
_PREFIXES = ("esm.", "OmniGenome.")
# Buffers (not parameters) that some writers store; their values follow from the config, so skip them.
_IGNORED_SUFFIXES = ("rotary_embeddings.inv_freq", "embeddings.position_embeddings.weight", "position_ids")
# Canonical names whose absence is tolerated: the tied decoder, and heads an ESM checkpoint may lack.
_TIED_DECODER = "lm_head.decoder.weight"
_OPTIONAL_PREFIXES = ("esm.contact_head.", "dense.", "classifier.")
_MAX_LISTED = 20


# --- config ----------------------------------------------------------------------------------------
# Fields transformers' EsmConfig needs (or writes) that describe this architecture and never change.
_FIXED_HF_FIELDS = {
    "architectures": ["EsmForMaskedLM"],
    "model_type": "esm",
    "position_embedding_type": "rotary",
    "emb_layer_norm_before": False,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.0,
    "attention_probs_dropout_prob": 0.0,
    "initializer_range": 0.02,
    "is_decoder": False,
    "add_cross_attention": False,
    "is_folding_model": False,
    "esmfold_config": None,
    "vocab_list": None,
    "tie_word_embeddings": True,
    "use_cache": True,
    "pad_token_id": PAD_ID,
    "mask_token_id": MASK_ID,
    "eos_token_id": EOS_ID,
    "bos_token_id": None,
}


def config_from_hf(d: dict) -> OmniGenomeConfig:
    """Read a transformers ESM / released OmniGenome `config.json` dict.

    Optional fields that are absent take transformers' `EsmConfig` defaults, so one directory means the same
    model to both libraries. Settings this architecture cannot represent raise a ValueError.
    """
    required = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size")
    absent = [k for k in required if k not in d]
    if absent:
        raise ValueError(f"config is missing required field(s) {absent}")
    problems = []
    if d.get("position_embedding_type", "absolute") != "rotary":
        problems.append(f"position_embedding_type={d.get('position_embedding_type', 'absolute (default)')!r}"
                        " (only 'rotary' is supported)")
    if d.get("emb_layer_norm_before"):
        problems.append("emb_layer_norm_before=true (no LayerNorm on the embeddings is supported)")
    if d.get("hidden_act", "gelu") != "gelu":
        problems.append(f"hidden_act={d['hidden_act']!r} (only exact 'gelu' is supported)")
    if d.get("is_decoder"):
        problems.append("is_decoder=true (the encoder is bidirectional)")
    # The token ids are fixed by the vocabulary (omnigenome.tokenizer); a config may omit them.
    for key, expected in (("pad_token_id", PAD_ID), ("mask_token_id", MASK_ID)):
        if d.get(key) is not None and d[key] != expected:
            problems.append(f"{key}={d[key]} (the OmniGenome vocabulary fixes it at {expected})")
    if problems:
        raise ValueError("unsupported config: " + "; ".join(problems))
    return OmniGenomeConfig(
        hidden_size=d["hidden_size"],
        num_layers=d["num_hidden_layers"],
        num_heads=d["num_attention_heads"],
        ffn_size=d["intermediate_size"],
        vocab_size=d["vocab_size"],
        max_positions=d.get("max_position_embeddings", 1026),
        layer_norm_eps=d.get("layer_norm_eps", 1e-12),
        token_dropout=bool(d.get("token_dropout", False)),
        num_structure_labels=d.get("num_structure_labels", 3),
        rope_base=d.get("rope_theta", 10000.0),
    )


def config_to_hf(cfg: OmniGenomeConfig) -> dict:
    """The `config.json` dict that transformers' `EsmForMaskedLM` loads; our extras ride along unused."""
    return {
        **_FIXED_HF_FIELDS,
        "hidden_size": cfg.hidden_size,
        "num_hidden_layers": cfg.num_layers,
        "num_attention_heads": cfg.num_heads,
        "intermediate_size": cfg.ffn_size,
        "vocab_size": cfg.vocab_size,
        "max_position_embeddings": cfg.max_positions,
        "layer_norm_eps": cfg.layer_norm_eps,
        "token_dropout": cfg.token_dropout,
        "rope_theta": cfg.rope_base,
        # OmniGenome extras (transformers keeps unknown fields as plain attributes).
        "num_structure_labels": cfg.num_structure_labels,
    }


# --- tensor names ----------------------------------------------------------------------------------
def _name_pairs(num_layers: int) -> list[tuple[str, str]]:
    """(our name, canonical transformers name) for every tensor except the fused qkv and the tied decoder."""
    modules = [("final_norm", "esm.encoder.emb_layer_norm_after"),
               ("mlm_head.dense", "lm_head.dense"),
               ("mlm_head.norm", "lm_head.layer_norm"),
               ("contact_head.regression", "esm.contact_head.regression"),
               ("structure_head.dense", "dense"),
               ("structure_head.classifier", "classifier")]
    for i in range(num_layers):
        hf = f"esm.encoder.layer.{i}"
        modules += [(f"layers.{i}.attn_norm", f"{hf}.attention.LayerNorm"),  # pre-attention norm
                    (f"layers.{i}.attn_out", f"{hf}.attention.output.dense"),
                    (f"layers.{i}.ffn_norm", f"{hf}.LayerNorm"),  # pre-FFN norm
                    (f"layers.{i}.ffn_in", f"{hf}.intermediate.dense"),
                    (f"layers.{i}.ffn_out", f"{hf}.output.dense")]
    pairs = [("embed_tokens.weight", "esm.embeddings.word_embeddings.weight"), ("mlm_head.bias", "lm_head.bias")]
    pairs += [(f"{ours}.{p}", f"{hf}.{p}") for ours, hf in modules for p in ("weight", "bias")]
    return pairs


def _qkv_names(i: int, p: str) -> list[str]:
    """Canonical names of the query, key, value tensors stacked (in that order) in `layers.{i}.qkv.{p}`."""
    return [f"esm.encoder.layer.{i}.attention.self.{n}.{p}" for n in ("query", "key", "value")]


def to_hf_state_dict(model) -> dict[str, torch.Tensor]:
    """Our state dict in canonical transformers names (views of our tensors, plus the tied decoder)."""
    ours = model.state_dict()
    out = {hf: ours[name] for name, hf in _name_pairs(model.config.num_layers)}
    for i in range(model.config.num_layers):
        for p in ("weight", "bias"):
            out.update(zip(_qkv_names(i, p), ours[f"layers.{i}.qkv.{p}"].chunk(3, dim=0)))
    out[_TIED_DECODER] = ours["embed_tokens.weight"]
    return out


def _rotary_buffers(model) -> dict[str, torch.Tensor]:
    """The per-layer rotary `inv_freq` buffers transformers 4.x checkpoints carry (we ignore them on load,
    but writing them keeps transformers from reporting them as missing)."""
    inv_freq = model.rotary.inv_freq.float()
    return {f"esm.encoder.layer.{i}.attention.self.rotary_embeddings.inv_freq": inv_freq
            for i in range(model.config.num_layers)}


def canonical_name(key: str) -> str | None:
    """A checkpoint tensor name in canonical form (prefix `esm.`, `.weight/.bias`); None for ignored buffers."""
    if key.endswith(_IGNORED_SUFFIXES):
        return None
    for prefix in _PREFIXES:
        if key.startswith(prefix):
            key = "esm." + key[len(prefix):]
            break
    else:
        if key.startswith(("embeddings.", "encoder.", "contact_head.")):  # a bare EsmModel checkpoint
            key = "esm." + key
    # TF-era / transformers 5.x LayerNorm names; no tensor of ours is called gamma or beta.
    if key.endswith(".gamma"):
        key = key[: -len("gamma")] + "weight"
    elif key.endswith(".beta"):
        key = key[: -len("beta")] + "bias"
    return key


def _listing(names) -> str:
    names = sorted(names)
    shown = ", ".join(names[:_MAX_LISTED])
    return shown + (f", ... and {len(names) - _MAX_LISTED} more" if len(names) > _MAX_LISTED else "")


# --- files -----------------------------------------------------------------------------------------
def _read_tensor_file(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        return load_file(str(path))
    return torch.load(path, map_location="cpu", weights_only=True)


def read_checkpoint(directory) -> tuple[dict, dict[str, torch.Tensor]]:
    """(config dict, raw state dict) of a checkpoint directory; safetensors preferred over .bin."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"checkpoint directory {str(directory)!r} does not exist")
    config_path = directory / CONFIG_NAME
    if not config_path.is_file():
        raise FileNotFoundError(f"no {CONFIG_NAME} in {str(directory)!r}: a checkpoint directory needs "
                                f"{CONFIG_NAME} plus {SAFETENSORS_NAME} or {PYTORCH_NAME}")
    config = json.loads(config_path.read_text())
    for name in (SAFETENSORS_NAME, PYTORCH_NAME):
        if (directory / name).is_file():
            return config, _read_tensor_file(directory / name)
        index = directory / f"{name}.index.json"
        if index.is_file():  # sharded: weight_map says which shard holds each tensor
            state = {}
            for shard in sorted(set(json.loads(index.read_text())["weight_map"].values())):
                state.update(_read_tensor_file(directory / shard))
            return config, state
    present = sorted(p.name for p in directory.iterdir())
    raise FileNotFoundError(f"no weights in {str(directory)!r}: expected {SAFETENSORS_NAME} or {PYTORCH_NAME}"
                            f" (or a sharded *.index.json); found {present}")


# --- load ------------------------------------------------------------------------------------------
def load_state_dict_hf(model, state: dict[str, torch.Tensor], strict: bool = True) -> None:
    """Copy a transformers-layout state dict (any of the accepted spellings) into `model`.

    Raises ValueError listing missing / unexpected tensors (strict) and any shape mismatch. The structure
    and contact heads may be absent: they keep their fresh initialisation and a warning names them.
    """
    given: dict[str, torch.Tensor] = {}
    spelled: dict[str, str] = {}  # canonical -> name in the file, for messages
    for key, tensor in state.items():
        name = canonical_name(key)
        if name is None:
            continue
        if name in given:
            raise ValueError(f"checkpoint holds both {spelled[name]!r} and {key!r}, which are the same tensor")
        given[name], spelled[name] = tensor, key

    expected = to_hf_state_dict(model)
    missing = set(expected) - set(given) - {_TIED_DECODER}
    optional = {k for k in missing if k.startswith(_OPTIONAL_PREFIXES)}
    missing -= optional
    unexpected = set(given) - set(expected)
    problems = []
    if strict and missing:
        problems.append(f"{len(missing)} missing tensor(s), in transformers ESM names: {_listing(missing)}")
    if strict and unexpected:
        problems.append(f"{len(unexpected)} unexpected tensor(s): {_listing(spelled[k] for k in unexpected)}")
    mismatched = [f"{spelled[k]}: checkpoint {tuple(given[k].shape)}, model {tuple(expected[k].shape)}"
                  for k in sorted(set(given) & set(expected)) if given[k].shape != expected[k].shape]
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatch(es): " + "; ".join(mismatched))
    if problems:
        raise ValueError("checkpoint does not match the model: " + " | ".join(problems))
    embedding = given.get("esm.embeddings.word_embeddings.weight")
    if _TIED_DECODER in given and embedding is not None and not torch.equal(given[_TIED_DECODER], embedding):
        raise ValueError(f"{spelled[_TIED_DECODER]!r} differs from the word embedding, but OmniGenome ties them")
    if optional:
        heads = sorted({"contact head" if k.startswith("esm.contact_head.") else "structure head" for k in optional})
        warnings.warn(f"checkpoint has no {' and no '.join(heads)} ({_listing(optional)}):"
                      " kept at their random initialisation")
    if missing or unexpected:  # only reachable with strict=False
        warnings.warn(f"non-strict load: {len(missing)} missing tensor(s) kept at initialisation"
                      f"{': ' + _listing(missing) if missing else ''}; {len(unexpected)} unexpected ignored"
                      f"{': ' + _listing(spelled[k] for k in unexpected) if unexpected else ''}")

    ours = {}
    for name, hf in _name_pairs(model.config.num_layers):
        if hf in given:
            ours[name] = given[hf]
    current = model.state_dict()
    for i in range(model.config.num_layers):
        for p in ("weight", "bias"):
            parts = list(current[f"layers.{i}.qkv.{p}"].chunk(3, dim=0))
            for j, hf in enumerate(_qkv_names(i, p)):
                if hf in given:
                    parts[j] = given[hf].to(parts[j].dtype)
            ours[f"layers.{i}.qkv.{p}"] = torch.cat(parts, dim=0)
    model.load_state_dict(ours, strict=False)  # completeness was checked above, with better messages


def load_pretrained(cls, directory, strict: bool = True, attention_backend: str = "auto", **overrides):
    """Build `cls` from a checkpoint directory (released OmniGenome, transformers ESM, or our own).

    overrides: OmniGenomeConfig fields to change after reading config.json (e.g. token_dropout=False).
    """
    config_dict, state = read_checkpoint(directory)
    cfg = config_from_hf(config_dict)
    if overrides:
        fields = {f.name for f in dataclasses.fields(OmniGenomeConfig)}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise TypeError(f"unknown argument(s) {unknown}; config overrides must be OmniGenomeConfig fields "
                            f"{sorted(fields)}")
        cfg = dataclasses.replace(cfg, **overrides)
    model = cls(cfg, attention_backend=attention_backend)
    load_state_dict_hf(model, state, strict=strict)
    return model.eval()


# --- save ------------------------------------------------------------------------------------------
def save_pretrained(model, directory) -> None:
    """Write config.json, model.safetensors (transformers 4.x names) and vocab.txt.

    `transformers.EsmForMaskedLM.from_pretrained(directory)` loads the result; the structure head is stored
    as top-level `dense.*` / `classifier.*`, like the released checkpoints (transformers ignores them).
    """
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    # Clone every tensor: the q/k/v chunks share the fused qkv storage and the decoder shares the
    # embedding's, and safetensors refuses tensors that share memory.
    tensors = {**to_hf_state_dict(model), **_rotary_buffers(model)}
    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    config = config_to_hf(model.config)
    config["dtype"] = str(model.embed_tokens.weight.dtype).removeprefix("torch.")
    config["torch_dtype"] = config["dtype"]  # the name transformers 4.x reads
    (directory / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    save_file(state, str(directory / SAFETENSORS_NAME), metadata={"format": "pt"})
    OmniGenomeTokenizer().save_vocabulary(directory)
