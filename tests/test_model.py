"""The encoder itself: parameter counts, attention backends, packed vs padded batches, output shapes."""
import pytest
import torch
import torch.nn.functional as F

from omnigenome import OmniGenomeConfig, OmniGenomeModel
from omnigenome.model.attention import PackedLayout, attention, flash_available
from omnigenome.tokenizer import CLS_ID, EOS_ID, MASK_ID, PAD_ID

TINY = dict(hidden_size=64, num_layers=3, num_heads=4, ffn_size=256)
BACKENDS = ["sdpa"] + (["flash"] if flash_available() else [])
LENGTHS = (9, 17, 3, 12)  # unequal, so padding and per-sequence positions matter


@torch.no_grad()
def tiny_model(seed: int = 0, **kwargs) -> OmniGenomeModel:
    """A small model with non-trivial weights (non-unit LayerNorm gains, non-zero biases)."""
    torch.manual_seed(seed)
    model = OmniGenomeModel(OmniGenomeConfig(**TINY), **kwargs).eval()
    for name, p in model.named_parameters():
        if p.dim() == 1:
            p.copy_((1.0 if "norm" in name and name.endswith("weight") else 0.0) + 0.1 * torch.randn_like(p))
        else:
            p.normal_(0.0, 0.15)
    return model


def token_batch(lengths=LENGTHS, seed: int = 0):
    """Right-padded `<cls> ... <eos>` ids (B, L) with some `<mask>` tokens, and the attention mask."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.full((len(lengths), max(lengths)), PAD_ID)
    for b, n in enumerate(lengths):
        ids[b, :n] = torch.randint(4, 19, (n,), generator=g)
        ids[b, 0], ids[b, n - 1] = CLS_ID, EOS_ID
    ids[1, [2, 5, 6]] = MASK_ID
    ids[3, 4] = MASK_ID
    mask = (torch.arange(ids.shape[1])[None, :] < torch.tensor(lengths)[:, None]).long()
    return ids, mask


def packed(ids, mask):
    """The same batch packed: ids (T,), cu_seqlens (S+1,), position_ids (T,) restarting at each sequence."""
    keep = mask.bool()
    lengths = keep.sum(1)
    cu_seqlens = F.pad(lengths.cumsum(0), (1, 0)).to(torch.int32)
    positions = torch.arange(ids.shape[1]).expand_as(ids)[keep]
    return ids[keep], cu_seqlens, positions


# --- parameter counts ------------------------------------------------------------------------------
@pytest.mark.parametrize("dims, expected", [((480, 16, 24, 2400), 51_961_849), ((720, 32, 30, 2560), 185_149_545)])
def test_parameter_counts(dims, expected):
    hidden, layers, heads, ffn = dims
    with torch.device("meta"):  # shapes only; no memory, no init time
        model = OmniGenomeModel(OmniGenomeConfig(hidden_size=hidden, num_layers=layers, num_heads=heads, ffn_size=ffn))
    assert model.num_parameters() == expected
    structure_head = hidden * hidden + hidden + 3 * hidden + 3
    assert model.num_parameters(include_structure_head=True) == expected + structure_head


# --- attention backends ----------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_attention_backends_match_reference(backend):
    device = "cuda" if backend == "flash" else "cpu"
    dtype = torch.bfloat16 if backend == "flash" else torch.float32  # flash-attn has no fp32 kernel
    tol = 2e-2 if backend == "flash" else 1e-5
    g = torch.Generator().manual_seed(0)
    T, H, D = sum(LENGTHS), 4, 20  # head dim 20 as in the 52M model: not a multiple of 8
    q, k, v = (torch.randn(T, H, D, generator=g).to(device, dtype) for _ in range(3))
    cu = F.pad(torch.tensor(LENGTHS).cumsum(0), (1, 0)).to(device=device, dtype=torch.int32)
    layout = PackedLayout.from_cu_seqlens(cu)
    expected = attention(q, k, v, layout, "reference")
    got = attention(q, k, v, layout, backend)
    assert got.shape == (T, H, D)
    assert (got.float() - expected.float()).abs().max().item() < tol


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "flash"])  # flash needs half precision
def test_model_logits_agree_across_backends(backend):
    model = tiny_model()
    ids, mask = token_batch()
    with torch.no_grad():
        model.attention_backend = "reference"
        expected = model(ids, mask).mlm_logits
        model.attention_backend = backend
        got = model(ids, mask).mlm_logits
    keep = mask.bool()
    assert (got - expected)[keep].abs().max().item() < 1e-5


# --- packed vs padded ------------------------------------------------------------------------------
@torch.no_grad()
def test_packed_equals_padded():
    model = tiny_model()
    ids, mask = token_batch()
    padded = model(ids, mask)
    flat, cu_seqlens, positions = packed(ids, mask)
    out = model(flat, cu_seqlens=cu_seqlens, position_ids=positions)
    keep = mask.bool()
    assert out.mlm_logits.shape == (flat.numel(), 24) and out.structure_logits.shape == (flat.numel(), 3)
    assert (out.mlm_logits - padded.mlm_logits[keep]).abs().max().item() < 1e-5
    assert (out.structure_logits - padded.structure_logits[keep]).abs().max().item() < 1e-5
    # Without explicit position_ids the positions restart at every sequence all the same.
    default = model(flat, cu_seqlens=cu_seqlens)
    assert (default.mlm_logits - out.mlm_logits).abs().max().item() < 1e-5
    # A (1, T) row works too and keeps its leading dimension.
    row = model(flat[None], cu_seqlens=cu_seqlens, position_ids=positions[None])
    assert row.mlm_logits.shape == (1, flat.numel(), 24) and row.structure_logits.shape == (1, flat.numel(), 3)
    assert (row.mlm_logits[0] - out.mlm_logits).abs().max().item() < 1e-5


@torch.no_grad()
def test_padding_does_not_leak():
    """A sequence's outputs do not depend on what else is in the batch or how much padding follows it."""
    model = tiny_model()
    ids, mask = token_batch()
    alone = model(ids[1:2, : LENGTHS[1]]).mlm_logits[0]
    in_batch = model(ids, mask).mlm_logits[1, : LENGTHS[1]]
    assert (alone - in_batch).abs().max().item() < 1e-5


@torch.no_grad()
def test_output_shapes_and_padding_zeros():
    model = tiny_model()
    ids, mask = token_batch()
    out = model(ids, mask)
    B, L = ids.shape
    assert out.hidden_states.shape == (B, L, TINY["hidden_size"])
    assert out.mlm_logits.shape == (B, L, 24)
    assert out.structure_logits.shape == (B, L, 3)
    assert out.mlm_logits[~mask.bool()].abs().max() == 0  # padding positions are zero-filled
    only_mlm = model(ids, mask, heads=("mlm",))
    assert only_mlm.structure_logits is None and only_mlm.mlm_logits is not None


def test_cu_seqlens_must_match_tokens():
    model = tiny_model()
    ids, mask = token_batch()
    flat, cu_seqlens, positions = packed(ids, mask)
    with pytest.raises(ValueError, match="cu_seqlens"):
        model(flat[:-1], cu_seqlens=cu_seqlens)
    with pytest.raises(ValueError, match="cu_seqlens"):
        model(torch.cat([flat, flat[:2]]), cu_seqlens=cu_seqlens)


def test_config_rejects_indivisible_heads():
    with pytest.raises(ValueError, match="divisible"):
        OmniGenomeConfig(hidden_size=100, num_heads=3)
