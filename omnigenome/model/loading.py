"""Loading an OmniGenome encoder for use: from a checkpoint of `train.py` or a Hugging Face directory.

Plain torch (no Lightning, no Hydra): a Lightning checkpoint is a dict that `torch.load` reads; this
project's modules store the architecture beside the weights (`omnigenome_config`), so a checkpoint
loads without its run's config.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
import torch.nn as nn

from omnigenome.model.backbones import Backbone, OmniGenomeBackbone, OmniGenomeSequenceTokenizer
from omnigenome.model.config import OmniGenomeConfig
from omnigenome.model.hf_backbone import HFBackbone, HFTokenizer
from omnigenome.model.modeling import OmniGenomeModel


def read_checkpoint(path: str | os.PathLike) -> dict:
    """The dict of a checkpoint file written by train.py (weights only: nothing is executed on load)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    if not isinstance(ckpt, dict) or "omnigenome_config" not in ckpt or "state_dict" not in ckpt:
        raise ValueError(f"{path}: not a checkpoint written by train.py (no 'omnigenome_config' entry)")
    return ckpt


def load_model(path: str | os.PathLike, attention_backend: str = "auto") -> OmniGenomeModel:
    """An OmniGenomeModel from a pretraining checkpoint of train.py (`.ckpt`) or a Hugging Face directory
    (released OmniGenome weights, transformers' EsmForMaskedLM, or our own `save_pretrained`). In eval mode."""
    p = Path(path)
    if p.is_dir():
        return OmniGenomeModel.from_pretrained(p, attention_backend=attention_backend)
    if not p.exists():
        raise FileNotFoundError(f"{path}: neither a checkpoint file nor a Hugging Face model directory")
    ckpt = read_checkpoint(p)
    model = OmniGenomeModel(OmniGenomeConfig(**ckpt["omnigenome_config"]), attention_backend=attention_backend)
    state = {k[len("model."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{path}: the encoder's weights do not match its config ({len(missing)} missing, "
                         f"{len(unexpected)} unexpected, e.g. {(missing or unexpected)[0]}); a fine-tuned checkpoint "
                         f"with LoRA is read by omnigenome.load, not load_model")
    return model.eval()


def is_omnigenome_path(path: str | os.PathLike) -> bool:
    """A train.py checkpoint, or a Hugging Face folder of an OmniGenome / ESM model that this project's
    encoder reads (model_type esm, or the released OmniGenome config)."""
    p = Path(path)
    if p.is_file():
        return True
    config = p / "config.json"
    if not config.is_file():
        return False
    d = json.loads(config.read_text())
    if d.get("model_type") not in ("esm", "omnigenome") or d.get("position_embedding_type", "absolute") != "rotary":
        return False
    # A rotary ESM of another vocabulary (Agro-NT's 6-mers) is an ESM, but not one our tokenizer reads.
    if d.get("vocab_size", 24) != 24:
        return False
    vocab = p / "vocab.txt"
    return not vocab.is_file() or len(vocab.read_text().split()) == 24


def load_tokenizer(path: str | os.PathLike | None, random_model=None, trust_remote_code: bool = False,
                   alphabet: str | None = None, lowercase: bool | None = None):
    """The tokenizer side of `load_backbone(path, ...)`, without loading any weights."""
    if path in (None, "") or is_omnigenome_path(path):
        if path in (None, ""):
            if random_model is None:
                raise ValueError("load_tokenizer: give a checkpoint path or a model to initialise at random")
            max_positions = (random_model.config.max_positions if isinstance(random_model, nn.Module)
                             else random_model.get("max_positions", 1026))
        elif Path(path).is_file():
            max_positions = read_checkpoint(path)["omnigenome_config"].get("max_positions", 1026)
        else:
            max_positions = json.loads((Path(path) / "config.json").read_text()).get("max_position_embeddings", 1026)
        return OmniGenomeSequenceTokenizer(max_positions - 2, alphabet or "T")
    return HFTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code, alphabet=alphabet,
                                       lowercase=lowercase)


def load_backbone(path: str | os.PathLike | None, random_model=None, trust_remote_code: bool = False,
                  attention_backend: str = "auto", alphabet: str | None = None,
                  lowercase: bool | None = None) -> Backbone:
    """The backbone in `path`: a train.py checkpoint or an OmniGenome / ESM folder (OmniGenomeBackbone), or
    any other Hugging Face masked-LM folder (HFBackbone). path=None builds `random_model` (an OmniGenomeModel,
    or its Hydra config) with random weights.

    alphabet: U/T of the input (default: the model's: T for OmniGenome, read from the tokenizer otherwise).
    lowercase: the case of a Hugging Face model's input (default: read from its vocabulary; OmniGenome
    upper-cases its input)."""
    if path in (None, ""):
        if random_model is None:
            raise ValueError("load_backbone: give a checkpoint path or a model to initialise at random")
        if not isinstance(random_model, nn.Module):
            import hydra
            random_model = hydra.utils.instantiate(random_model)
        return OmniGenomeBackbone(random_model, name="random", alphabet=alphabet or "T")
    if is_omnigenome_path(path):
        return OmniGenomeBackbone(load_model(path, attention_backend), name=Path(path).name, alphabet=alphabet or "T")
    return HFBackbone.from_pretrained(path, trust_remote_code=trust_remote_code, alphabet=alphabet, lowercase=lowercase)


def backbone_from_spec(spec: dict, attention_backend: str = "auto") -> Backbone:
    """A backbone of the architecture in `spec` (from `Backbone.spec`), with fresh weights to be loaded."""
    if spec.get("type") == "omnigenome":
        model = OmniGenomeModel(OmniGenomeConfig(**spec["config"]), attention_backend=attention_backend)
        return OmniGenomeBackbone(model, spec.get("name", "omnigenome"), spec.get("alphabet", "T"))
    if spec.get("type") == "hf":
        return HFBackbone.from_spec(spec)
    raise ValueError(f"unknown backbone type {spec.get('type')!r} in the checkpoint")
