"""Loading an OmniGenome encoder for use: from a checkpoint of `train.py` or a Hugging Face directory.

Plain torch (no Lightning, no Hydra): a Lightning checkpoint is a dict that `torch.load` reads; this
project's modules store the architecture beside the weights (`omnigenome_config`), so a checkpoint
loads without its run's config.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from omnigenome.model.config import OmniGenomeConfig
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
