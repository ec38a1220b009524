"""Multi-head attention over packed sequences, with one entry point and three backends.

Every backend takes q, k, v packed as (total_tokens, heads, head_dim) plus a `PackedLayout`
describing where each sequence starts (`cu_seqlens`), and returns (total_tokens, heads, head_dim):

- "flash":     flash-attn's varlen kernel (CUDA, fp16/bf16, when the optional package imports);
- "sdpa":      torch's scaled_dot_product_attention: on CUDA one call on a padded (S, H, L, D) view
               with a key mask, the head dim zero-padded to a multiple of 8 so fused kernels accept
               it; on CPU one unmasked call per sequence (the fused CPU kernel takes no mask);
- "reference": explicit softmax(q k^T / sqrt(d)) v per sequence in fp32, the ground truth the
               others are tested against (and the only one that can return attention maps).
"auto" picks flash, else sdpa.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F

BACKENDS = ("auto", "flash", "sdpa", "reference")


@lru_cache(maxsize=1)
def _flash_varlen():
    try:
        from flash_attn import flash_attn_varlen_func
    except Exception:  # not installed, or built for another CUDA / torch
        return None
    return flash_attn_varlen_func


def flash_available() -> bool:
    return torch.cuda.is_available() and _flash_varlen() is not None


@dataclass
class PackedLayout:
    """Where the sequences of a packed batch lie; built once per forward, shared by all layers.

    cu_seqlens: (S + 1,) int32 cumulative lengths. max_seqlen: longest sequence.
    seq_index / pos_index: (T,) sequence and within-sequence position of each packed token.
    """
    cu_seqlens: torch.Tensor
    max_seqlen: int
    seq_index: torch.Tensor
    pos_index: torch.Tensor

    @classmethod
    def from_cu_seqlens(cls, cu_seqlens: torch.Tensor, max_seqlen: int | None = None) -> "PackedLayout":
        cu = cu_seqlens.to(torch.int32)
        lengths = (cu[1:] - cu[:-1]).long()
        if max_seqlen is None:
            max_seqlen = int(lengths.max()) if lengths.numel() else 0
        seq_index = torch.repeat_interleave(torch.arange(lengths.numel(), device=cu.device), lengths)
        pos_index = torch.arange(int(cu[-1]), device=cu.device) - cu[:-1].long()[seq_index]
        return cls(cu, int(max_seqlen), seq_index, pos_index)

    @property
    def num_seqs(self) -> int:
        return self.cu_seqlens.numel() - 1

    @property
    def uniform(self) -> bool:
        """All sequences have the same length (a padded view then needs no mask)."""
        return self.max_seqlen * self.num_seqs == self.seq_index.numel()

    def to_padded(self, x: torch.Tensor, fill: float = 0.0) -> torch.Tensor:
        """(T, ...) -> (S, max_seqlen, ...)."""
        out = x.new_full((self.num_seqs, self.max_seqlen, *x.shape[1:]), fill)
        out[self.seq_index, self.pos_index] = x
        return out

    def from_padded(self, x: torch.Tensor) -> torch.Tensor:
        """(S, max_seqlen, ...) -> (T, ...)."""
        return x[self.seq_index, self.pos_index]

    def key_mask(self) -> torch.Tensor:
        """(S, max_seqlen) bool, True where a real token is."""
        lengths = (self.cu_seqlens[1:] - self.cu_seqlens[:-1]).long()
        return torch.arange(self.max_seqlen, device=lengths.device)[None, :] < lengths[:, None]


def _pad_head_dim(x: torch.Tensor, multiple: int) -> torch.Tensor:
    d = x.shape[-1]
    pad = (-d) % multiple
    return F.pad(x, (0, pad)) if pad else x


def _sdpa(q, k, v, layout: PackedLayout, scale: float) -> torch.Tensor:
    if not q.is_cuda:
        # On CPU the fused (flash) SDPA kernel takes no mask; one unmasked call per sequence is several
        # times faster than a padded batch with a key mask, which falls back to the math kernel.
        # Inputs must be 4-D (1, H, L, D): 3-D inputs silently take the math kernel.
        cu = layout.cu_seqlens.tolist()
        return torch.cat([F.scaled_dot_product_attention(*(t[a:b].transpose(0, 1)[None] for t in (q, k, v)),
                                                         scale=scale)[0].transpose(0, 1)
                          for a, b in zip(cu[:-1], cu[1:])])
    d = q.shape[-1]
    # Fused GPU kernels want head dims in multiples of 8; zero columns leave q.k and the output unchanged.
    q, k, v = (_pad_head_dim(t, 8) for t in (q, k, v))
    qp, kp, vp = (layout.to_padded(t).transpose(1, 2) for t in (q, k, v))  # (S, H, L, D)
    mask = None if layout.uniform else layout.key_mask()[:, None, None, :]
    out = F.scaled_dot_product_attention(qp, kp, vp, attn_mask=mask, scale=scale)
    return layout.from_padded(out.transpose(1, 2))[..., :d]


def _flash(q, k, v, layout: PackedLayout, scale: float) -> torch.Tensor:
    d = q.shape[-1]
    q, k, v = (_pad_head_dim(t, 8) for t in (q, k, v))
    out = _flash_varlen()(q, k, v, layout.cu_seqlens, layout.cu_seqlens, layout.max_seqlen, layout.max_seqlen,
                          softmax_scale=scale)
    return out[..., :d]


def reference_attention(q, k, v, layout: PackedLayout, scale: float, return_probs: bool = False):
    """Plain per-sequence attention in fp32. Returns out (T, H, D) and, if asked, a list of (H, L, L) maps."""
    outs, probs = [], []
    cu = layout.cu_seqlens.tolist()
    for a, b in zip(cu[:-1], cu[1:]):
        qs, ks, vs = (t[a:b].float().transpose(0, 1) for t in (q, k, v))  # (H, L, D)
        p = torch.softmax(qs @ ks.transpose(-1, -2) * scale, dim=-1)
        outs.append((p @ vs).transpose(0, 1))
        if return_probs:
            probs.append(p)
    out = torch.cat(outs).to(q.dtype)
    return (out, probs) if return_probs else out


# Already a fused kernel (or a per-sequence loop of them); torch.compile fuses the code around it, and
# keeping it out of the graph lets packed batches of any length share one compiled graph.
@torch.compiler.disable
def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout: PackedLayout,
              backend: str = "auto", scale: float | None = None) -> torch.Tensor:
    """Attention within each packed sequence. q, k, v: (T, H, D); returns (T, H, D)."""
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    if backend == "auto":
        backend = "flash" if (q.is_cuda and q.dtype in (torch.float16, torch.bfloat16) and flash_available()) else "sdpa"
    if backend == "flash":
        if not (q.is_cuda and _flash_varlen() is not None):
            raise RuntimeError("attention backend 'flash' needs CUDA and the flash-attn package (pip install flash-attn)")
        return _flash(q, k, v, layout, scale)
    if backend == "sdpa":
        return _sdpa(q, k, v, layout, scale)
    if backend == "reference":
        return reference_attention(q, k, v, layout, scale)
    raise ValueError(f"unknown attention backend {backend!r}; choose from {BACKENDS}")
