"""The OmniGenome encoder: an ESM-2 style bidirectional Transformer with rotary positions.

Reads top to bottom in execution order: embedding (with ESM token dropout), pre-LayerNorm blocks,
final LayerNorm, then the heads (masked LM tied to the embedding, 3-class structure head, and the
ESM contact head over attention maps). Internally every batch is packed: (T, H) hidden states for
the T real tokens, sequences delimited by `cu_seqlens`, so padding costs nothing in the linear layers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from omnigenome.model import hub
from omnigenome.model.attention import PackedLayout, attention, reference_attention
from omnigenome.model.config import OmniGenomeConfig
from omnigenome.tokenizer import EOS_ID, MASK_ID, PAD_ID

# ESM-2 token dropout: masked embeddings are zeroed, the rest rescaled as if 15% x 80% were masked.
MASK_RATIO_TRAIN = 0.15 * 0.8


@dataclass
class OmniGenomeOutput:
    """Model outputs. Padded input: (B, L, ...) with zeros at padding; packed input: (T, ...)."""
    hidden_states: torch.Tensor
    mlm_logits: Optional[torch.Tensor] = None
    structure_logits: Optional[torch.Tensor] = None


class Rotary(nn.Module):
    """Non-interleaved ("rotate half") rotary embedding of ESM-2 / GPT-NeoX."""

    def __init__(self, head_dim: int, base: float):
        super().__init__()
        inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, position_ids: torch.Tensor, dtype: torch.dtype):
        """cos, sin: (T, 1, head_dim) for per-token positions (T,)."""
        freqs = position_ids.float()[:, None] * self.inv_freq[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)[:, None, :]
        return emb.cos().to(dtype), emb.sin().to(dtype)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat((-x2, x1), dim=-1) * sin


class Block(nn.Module):
    """Pre-LayerNorm Transformer block: x + attn(ln(x)), then x + ffn(ln(x)). No dropout."""

    def __init__(self, cfg: OmniGenomeConfig):
        super().__init__()
        self.num_heads, self.head_dim = cfg.num_heads, cfg.head_dim
        self.attn_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.qkv = nn.Linear(cfg.hidden_size, 3 * cfg.hidden_size)  # query, key, value stacked
        self.attn_out = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.ffn_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.ffn_in = nn.Linear(cfg.hidden_size, cfg.ffn_size)
        self.ffn_out = nn.Linear(cfg.ffn_size, cfg.hidden_size)

    def forward(self, x, cos, sin, layout: PackedLayout, backend: str, return_attention: bool = False):
        T = x.shape[0]
        q, k, v = self.qkv(self.attn_norm(x)).view(T, 3, self.num_heads, self.head_dim).unbind(1)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        probs = None
        if return_attention:
            a, probs = reference_attention(q, k, v, layout, self.head_dim ** -0.5, return_probs=True)
        else:
            a = attention(q, k, v, layout, backend)
        x = x + self.attn_out(a.reshape(T, -1))
        x = x + self.ffn_out(F.gelu(self.ffn_in(self.ffn_norm(x))))  # exact (erf) GELU
        return x, probs


class MLMHead(nn.Module):
    """dense -> GELU -> LayerNorm -> decoder (weight tied to the token embedding) + bias."""

    def __init__(self, cfg: OmniGenomeConfig, embedding: nn.Embedding):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(cfg.vocab_size))
        self.embedding = [embedding]  # a list, so the tied weight is not registered twice

    def forward(self, h):
        return F.linear(self.norm(F.gelu(self.dense(h))), self.embedding[0].weight) + self.bias


class StructureHead(nn.Module):
    """Seq2Str head of the released checkpoints: dense(H, H) -> classifier(H, 3) over `(`, `)`, `.`."""

    def __init__(self, cfg: OmniGenomeConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.classifier = nn.Linear(cfg.hidden_size, cfg.num_structure_labels)

    def forward(self, h):
        return self.classifier(self.dense(h))


class ContactHead(nn.Module):
    """ESM-2's contact head: logistic regression over symmetrised, APC-corrected attention maps."""

    def __init__(self, cfg: OmniGenomeConfig):
        super().__init__()
        self.regression = nn.Linear(cfg.num_layers * cfg.num_heads, 1)

    def forward(self, attentions: torch.Tensor) -> torch.Tensor:
        """attentions: (B, layers * heads, L, L) over the nucleotides only; returns (B, L, L) probabilities."""
        a = attentions + attentions.transpose(-1, -2)
        a1, a2, a12 = a.sum(-1, keepdim=True), a.sum(-2, keepdim=True), a.sum((-1, -2), keepdim=True)
        a = a - a1 * a2 / a12.clamp_min(1e-12)  # average product correction
        return torch.sigmoid(self.regression(a.permute(0, 2, 3, 1)).squeeze(-1))


class OmniGenomeModel(nn.Module):
    """OmniGenome encoder with masked-LM, structure (Seq2Str) and contact heads.

    Call with a padded batch, `model(input_ids (B, L), attention_mask (B, L))`, or a packed one,
    `model(input_ids (T,), cu_seqlens=(S+1,), position_ids=(T,))`. Returns `OmniGenomeOutput`.
    """

    def __init__(self, config: OmniGenomeConfig | None = None, attention_backend: str = "auto", **kwargs):
        super().__init__()
        cfg = config if config is not None else OmniGenomeConfig(**kwargs)
        self.config, self.attention_backend = cfg, attention_backend
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size, padding_idx=PAD_ID)
        self.rotary = Rotary(cfg.head_dim, cfg.rope_base)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.num_layers))
        self.final_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.mlm_head = MLMHead(cfg, self.embed_tokens)
        self.structure_head = StructureHead(cfg)
        self.contact_head = ContactHead(cfg)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
            if isinstance(m, nn.Embedding) and m.padding_idx is not None:
                m.weight.data[m.padding_idx].zero_()

    def num_parameters(self, include_structure_head: bool = False) -> int:
        """Parameter count; by default the encoder with the tied MLM head (the released models' count)."""
        skip = set() if include_structure_head else {id(p) for p in self.structure_head.parameters()}
        return sum(p.numel() for p in self.parameters() if id(p) not in skip)

    # --- encoder ---------------------------------------------------------------------------------
    def encode(self, input_ids: torch.Tensor, layout: PackedLayout, position_ids: torch.Tensor | None = None,
               return_attentions: bool = False):
        """Packed tokens (T,) -> final hidden states (T, H) (and per-layer attention maps if asked)."""
        x = self.embed_tokens(input_ids)
        if self.config.token_dropout:
            is_mask = input_ids == MASK_ID
            x = x.masked_fill(is_mask[:, None], 0.0)
            lengths = (layout.cu_seqlens[1:] - layout.cu_seqlens[:-1]).to(x.dtype)
            masked = torch.zeros_like(lengths).index_add_(0, layout.seq_index, is_mask.to(x.dtype))
            scale = (1 - MASK_RATIO_TRAIN) / (1 - masked / lengths)
            x = x * scale[layout.seq_index, None].to(x.dtype)
        positions = layout.pos_index if position_ids is None else position_ids
        cos, sin = self.rotary(positions, x.dtype)
        attentions = []
        for block in self.layers:
            x, probs = block(x, cos, sin, layout, self.attention_backend, return_attentions)
            attentions.append(probs)
        x = self.final_norm(x)
        return (x, attentions) if return_attentions else x

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, *,
                cu_seqlens: torch.Tensor | None = None, position_ids: torch.Tensor | None = None,
                max_seqlen: int | None = None, heads: tuple[str, ...] = ("mlm", "structure")) -> OmniGenomeOutput:
        if cu_seqlens is not None:  # packed
            flat = input_ids.reshape(-1)
            layout = PackedLayout.from_cu_seqlens(cu_seqlens, max_seqlen)
            if flat.numel() != int(layout.cu_seqlens[-1]):
                raise ValueError(f"packed input has {flat.numel()} tokens but cu_seqlens ends at {int(layout.cu_seqlens[-1])}")
            h = self.encode(flat, layout, None if position_ids is None else position_ids.reshape(-1))
            out = self._heads(h, heads)
            if input_ids.dim() == 2:  # (1, T) in, (1, T, ...) out
                out = OmniGenomeOutput(*(None if t is None else t.unsqueeze(0) for t in
                                         (out.hidden_states, out.mlm_logits, out.structure_logits)))
            return out
        if input_ids.dim() != 2:
            raise ValueError(f"padded input_ids must be (batch, length), got shape {tuple(input_ids.shape)}")
        keep = (input_ids != PAD_ID) if attention_mask is None else attention_mask.bool()
        B, L = input_ids.shape
        lengths = keep.sum(1)
        layout = PackedLayout.from_cu_seqlens(F.pad(lengths.cumsum(0), (1, 0)).to(torch.int32), int(lengths.max()))
        # Positions are column indices, as in ESM (padding sits at the right).
        columns = torch.arange(L, device=input_ids.device).expand(B, L)
        h = self.encode(input_ids[keep], layout, columns[keep] if position_ids is None else position_ids[keep])
        out = self._heads(h, heads)

        def repad(t):
            if t is None:
                return None
            full = t.new_zeros(B, L, t.shape[-1])
            full[keep] = t
            return full
        return OmniGenomeOutput(repad(out.hidden_states), repad(out.mlm_logits), repad(out.structure_logits))

    def _heads(self, h: torch.Tensor, heads) -> OmniGenomeOutput:
        return OmniGenomeOutput(h, self.mlm_head(h) if "mlm" in heads else None,
                                self.structure_head(h) if "structure" in heads else None)

    @torch.no_grad()
    def predict_contacts(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Contact probabilities (B, L-2, L-2) between the tokens inside `<cls> ... <eos>` of a padded batch."""
        keep = (input_ids != PAD_ID) if attention_mask is None else attention_mask.bool()
        B, L = input_ids.shape
        lengths = keep.sum(1)
        layout = PackedLayout.from_cu_seqlens(F.pad(lengths.cumsum(0), (1, 0)).to(torch.int32), int(lengths.max()))
        _, per_layer = self.encode(input_ids[keep], layout,
                                   torch.arange(L, device=input_ids.device).expand(B, L)[keep], return_attentions=True)
        maps = input_ids.new_zeros((B, len(per_layer), self.config.num_heads, L, L), dtype=torch.float32)
        for li, seqs in enumerate(per_layer):
            for b, p in enumerate(seqs):
                n = p.shape[-1]
                maps[b, li, :, :n, :n] = p
        not_eos = (input_ids != EOS_ID) & keep
        maps = maps * not_eos[:, None, None, :, None] * not_eos[:, None, None, None, :]
        maps = maps[..., 1:-1, 1:-1].reshape(B, -1, L - 2, L - 2)
        return self.contact_head(maps.to(self.contact_head.regression.weight.dtype))

    # --- Hugging Face interop --------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, directory, **kwargs) -> "OmniGenomeModel":
        """Load a released OmniGenome checkpoint or a transformers EsmForMaskedLM directory."""
        return hub.load_pretrained(cls, directory, **kwargs)

    def save_pretrained(self, directory) -> None:
        """Write config.json + model.safetensors that transformers.EsmForMaskedLM.from_pretrained loads."""
        hub.save_pretrained(self, directory)
