"""Attention maps and contact maps of single sequences, over the nucleotides.

Attention maps are the softmax(q k^T / sqrt(d)) of the chosen layers and heads, restricted to the rows and
columns of the nucleotides (the special tokens and, with the structure in context, the structure half are
left out; with a k-mer or BPE tokenizer a nucleotide takes its token's row and column), shape
(layers, heads, L, L). Contacts are the contact head's probabilities (L, L) (OmniGenome models: ESM-2's
logistic regression over all symmetrised, APC-corrected maps, `OmniGenomeModel.predict_contacts`;
Hugging Face models only when they have a `predict_contacts`, as transformers' ESM does).

A selection is "LAYERS:HEADS" with comma lists, ranges and negative indices from the end, or "all":
"-1" (the last layer, all heads), "0,3:all", "10-15:0-3", "all:2".
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch


def _indices(text: str, n: int, what: str) -> list[int]:
    text = text.strip()
    if text in ("", "all", "*"):
        return list(range(n))
    out = []
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part[1:]:  # a range a-b (a may be negative: "-3--1")
                split = part.index("-", 1)
                a, b = int(part[:split]), int(part[split + 1:])
                a, b = a % n if a < 0 else a, b % n if b < 0 else b
                picked = list(range(a, b + 1))
            else:
                k = int(part)
                picked = [k % n if k < 0 else k]
        except ValueError:
            raise ValueError(f"attention selection: {what} {part!r} is not an index, a range a-b or 'all'") from None
        for k in picked:
            if not 0 <= k < n:
                raise ValueError(f"attention selection: {what} {k} out of range (the model has {n} {what}s: 0..{n - 1})")
        out += picked
    return sorted(set(out))


def parse_selection(spec: str | None, num_layers: int, num_heads: int) -> tuple[list[int], list[int]]:
    """(layers, heads) of "LAYERS[:HEADS]"; None or "all": every layer and head."""
    spec = (spec or "all").strip()
    layers, _, heads = spec.partition(":")
    return _indices(layers, num_layers, "layer"), _indices(heads, num_heads, "head")


def model_shape(model) -> tuple[int, int]:
    """(layers, heads) of the opened model's encoder."""
    og = model.omnigenome
    if og is not None:
        return og.config.num_layers, og.config.num_heads
    cfg = model.backbone.model.config
    return int(cfg.num_hidden_layers), int(cfg.num_attention_heads)


@torch.no_grad()
def _attentions_omnigenome(model, item) -> list[torch.Tensor]:
    """Per layer (heads, T, T) over all tokens of one sequence."""
    from omnigenome.model.attention import PackedLayout
    og = model.omnigenome
    ids = torch.as_tensor(item.ids, device=model.device)
    layout = PackedLayout.from_cu_seqlens(torch.tensor([0, len(ids)], dtype=torch.int32, device=model.device))
    _, per_layer = og.encode(ids, layout, return_attentions=True)
    return [probs[0] for probs in per_layer]


@torch.no_grad()
def _attentions_hf(model, item) -> list[torch.Tensor]:
    """Per layer (heads, T, T). Fused attention kernels (sdpa, flash) return no maps: the model is switched to
    transformers' eager attention for the call, and back."""
    hf = model.backbone.model
    ids = torch.as_tensor(item.ids, device=model.device)[None]
    config = getattr(hf, "config", None)
    before = getattr(config, "_attn_implementation", None)
    switch = before not in (None, "eager") and hasattr(hf, "set_attn_implementation")
    try:
        if switch:
            hf.set_attn_implementation("eager")
        out = hf(input_ids=ids, attention_mask=torch.ones_like(ids), output_attentions=True)
    except Exception as e:  # some attention implementations cannot return their maps
        raise ValueError(f"{model.path}: the model does not return attention maps ({' '.join(str(e).split())[:160]})") from None
    finally:
        if switch:
            hf.set_attn_implementation(before)
    maps = getattr(out, "attentions", None)
    if not maps or maps[0] is None:
        raise ValueError(f"{model.path}: the model does not return attention maps (output_attentions gave none)")
    return [m[0] for m in maps]


def attention_maps(model, item, layers: Sequence[int], heads: Sequence[int]) -> np.ndarray:
    """(len(layers), len(heads), L, L) float32 attention maps of one encoded sequence over its nucleotides."""
    per_layer = (_attentions_omnigenome if model.omnigenome is not None else _attentions_hf)(model, item)
    nt = torch.as_tensor(item.nucleotide_token, device=model.device)
    picked = torch.stack([per_layer[li][heads] for li in layers])  # (layers, heads, T, T)
    return picked[:, :, nt][:, :, :, nt].float().cpu().numpy()


@torch.no_grad()
def contact_map(model, item) -> np.ndarray:
    """(L, L) float32 contact probabilities of one encoded sequence (`<cls> seq <eos>` input)."""
    og = model.omnigenome
    ids = torch.as_tensor(item.ids, device=model.device)[None]
    if og is not None:
        contacts = og.predict_contacts(ids)[0]
        return contacts.float().cpu().numpy()[:item.num_nucleotides, :item.num_nucleotides]
    hf = model.backbone.model
    if not hasattr(hf, "predict_contacts"):
        raise ValueError(f"{model.path}: this model has no contact head (contacts need an OmniGenome model or a "
                         f"transformers model with predict_contacts, such as ESM)")
    contacts = hf.predict_contacts(ids, torch.ones_like(ids))[0]  # over the tokens between the special ones
    nt = torch.as_tensor(item.nucleotide_token, device=contacts.device) - 1
    if int(nt.min()) < 0 or int(nt.max()) >= contacts.shape[-1]:
        raise ValueError(f"{model.path}: cannot place the nucleotides on the contact map of this tokenizer")
    return contacts[nt][:, nt].float().cpu().numpy()


def record_maps(model, items: Sequence, attentions: tuple | None, contacts: bool) -> list[dict]:
    """Per item {"attentions": ..., "contacts": ...} as asked. attentions: (layers, heads) or None."""
    out = []
    for item in items:
        maps = {}
        if attentions is not None:
            maps["attentions"] = attention_maps(model, item, *attentions)
        if contacts:
            maps["contacts"] = contact_map(model, item)
        out.append(maps)
    return out

