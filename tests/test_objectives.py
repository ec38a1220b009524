"""The three objectives: views, masking statistics, skipped work, losses."""
from collections import namedtuple

import numpy as np
import pytest
import torch

from omnigenome import OmniGenomeModel
from omnigenome.objectives import PretrainingObjectives
from omnigenome.structure import to_labels
from omnigenome.tokenizer import CLS_ID, EOS_ID, MASK_ID, TOKEN_ID, OmniGenomeTokenizer

Rec = namedtuple("Rec", "id sequence structure")
TINY = dict(hidden_size=32, num_layers=2, num_heads=4, ffn_size=64)


def random_records(n, rng, lo=60, hi=200):
    import RNA
    out = []
    for i in range(n):
        seq = "".join(rng.choice(list("ACGU"), size=int(rng.integers(lo, hi))))
        out.append(Rec(f"r{i}", seq, RNA.fold(seq)[0]))
    return out


@pytest.fixture(scope="module")
def records():
    return random_records(60, np.random.default_rng(0))


def objectives(**weights):
    spec = {n: {"weight": weights.get(n, 0.0)} for n in ("mlm", "str2seq", "seq2str")}
    return PretrainingObjectives(**spec)


def segments(batch):
    cu = batch["cu_seqlens"].tolist()
    return [batch["input_ids"][a:b] for a, b in zip(cu[:-1], cu[1:])]


def test_views_layout(records):
    obj = PretrainingObjectives(mlm={"weight": 1}, str2seq={"weight": 1}, seq2str={"weight": 1})
    batch = obj.build_batch(records[:3], np.random.default_rng(0), record_index=[5, 6, 7])
    segs = segments(batch)
    assert len(segs) == 9  # three views per record
    tok = OmniGenomeTokenizer()
    for r, (mlm, s2s, seq2str) in zip(records[:3], zip(*[iter(segs)] * 3)):
        L = len(r.sequence)
        assert len(mlm) == L + 2 and len(seq2str) == L + 2 and len(s2s) == 2 * L + 3
        assert s2s[0] == CLS_ID and s2s[L + 1] == EOS_ID and s2s[-1] == EOS_ID
        # the structure stays visible in the str2seq view, the unmasked seq2str view is the plain encoding
        assert tok.decode(s2s[L + 2:-1]) == r.structure
        assert seq2str.tolist() == tok.encode(r.sequence)
    # positions restart at every segment
    starts = batch["cu_seqlens"][:-1].long()
    assert (batch["position_ids"][starts] == 0).all()
    assert batch["record_index"].tolist() == [5, 6, 7]
    assert batch["num_tokens"] == batch["input_ids"].numel() == int(obj.tokens_per_record(
        np.array([len(r.sequence) for r in records[:3]])).sum())


def test_seq2str_targets_are_structure_labels(records):
    obj = objectives(seq2str=1.0)
    batch = obj.build_batch(records[:4], np.random.default_rng(1))
    expected = np.concatenate([to_labels(r.structure) for r in records[:4]])
    assert batch["seq2str_target"].tolist() == expected.tolist()
    # scored positions are exactly the nucleotides (not <cls>/<eos>)
    scored = batch["input_ids"][batch["seq2str_index"]]
    assert not torch.isin(scored, torch.tensor([CLS_ID, EOS_ID, MASK_ID])).any()


@pytest.mark.parametrize("name,rate", [("mlm", 0.15), ("str2seq", 0.3)])
def test_masking_statistics(records, name, rate):
    obj = PretrainingObjectives(**{name: {"weight": 1.0, "mask_rate": rate}}, max_length=1024)
    rng = np.random.default_rng(2)
    n_nuc = n_sel = n_mask = n_rand = n_same = 0
    for _ in range(20):
        batch = obj.build_batch(records, rng)
        idx, target = batch[f"{name}_index"], batch[f"{name}_target"]
        shown = batch["input_ids"][idx]
        n_sel += len(idx)
        n_mask += int((shown == MASK_ID).sum())
        n_same += int((shown == target).sum())
        n_rand += int(((shown != MASK_ID) & (shown != target)).sum())
        n_nuc += sum(len(r.sequence) for r in records)
        # the structure half of str2seq is never masked
        assert (batch["input_ids"] == MASK_ID).sum() == (shown == MASK_ID).sum()
    assert n_sel / n_nuc == pytest.approx(rate, abs=0.01)
    assert n_mask / n_sel == pytest.approx(0.8, abs=0.02)
    # a random replacement equals the original a quarter of the time (4 nucleotides)
    assert n_rand / n_sel == pytest.approx(0.1 * 0.75, abs=0.015)
    assert n_same / n_sel == pytest.approx(0.1 + 0.1 * 0.25, abs=0.02)
    # random replacements are nucleotides of the model alphabet
    assert set(batch["input_ids"].unique().tolist()) <= {CLS_ID, EOS_ID, MASK_ID, *(TOKEN_ID[c] for c in "ACGT().")}


def test_zero_weight_builds_no_segment(records):
    full = PretrainingObjectives(mlm={"weight": 1}, str2seq={"weight": 1}, seq2str={"weight": 1})
    mlm_only = PretrainingObjectives(mlm={"weight": 1}, str2seq={"weight": 0}, seq2str={"weight": 0})
    assert mlm_only.active == ("mlm",)
    b_full = full.build_batch(records[:5], np.random.default_rng(0))
    b_mlm = mlm_only.build_batch(records[:5], np.random.default_rng(0))
    assert len(b_mlm["cu_seqlens"]) == 6 and len(b_full["cu_seqlens"]) == 16
    assert "str2seq_index" not in b_mlm and "seq2str_index" not in b_mlm
    assert b_mlm["num_tokens"] < b_full["num_tokens"] / 3
    model = OmniGenomeModel(**TINY)
    out = mlm_only.losses(model, b_mlm)
    assert set(out) == {"loss", "mlm/loss", "mlm/acc"}
    with pytest.raises(ValueError, match="nothing to train"):
        PretrainingObjectives(mlm={"weight": 0})


def test_losses_are_weighted_sum_and_match_full_forward(records):
    obj = PretrainingObjectives(mlm={"weight": 1.0}, str2seq={"weight": 0.5}, seq2str={"weight": 2.0})
    batch = obj.build_batch(records[:4], np.random.default_rng(3))
    torch.manual_seed(0)
    model = OmniGenomeModel(**TINY).eval()
    out = obj.losses(model, batch)
    total = out["mlm/loss"] + 0.5 * out["str2seq/loss"] + 2.0 * out["seq2str/loss"]
    assert torch.allclose(out["loss"], total)
    # the gathered-head shortcut equals scoring the model's full outputs
    full = model(batch["input_ids"], cu_seqlens=batch["cu_seqlens"], position_ids=batch["position_ids"])
    ref = torch.nn.functional.cross_entropy(full.structure_logits[batch["seq2str_index"]], batch["seq2str_target"])
    assert torch.allclose(out["seq2str/loss"], ref, atol=1e-6)
    assert 0.0 <= float(out["mlm/acc"]) <= 1.0


def test_long_records_are_cropped_to_max_length(records):
    rng = np.random.default_rng(4)
    long = random_records(2, rng, lo=300, hi=301)
    obj = PretrainingObjectives(mlm={"weight": 1}, str2seq={"weight": 1}, seq2str={"weight": 1}, max_length=101)
    batch = obj.build_batch(long, rng)
    lengths = (batch["cu_seqlens"][1:] - batch["cu_seqlens"][:-1]).tolist()
    assert max(lengths) <= 101 and lengths == [101, 101, 101] * 2
    assert batch["num_tokens"] == int(obj.tokens_per_record(np.array([300, 300])).sum())


def test_bad_record_names_the_record(records):
    obj = objectives(mlm=1.0, seq2str=1.0)
    with pytest.raises(ValueError, match=r"record 'bad'.*position 3"):
        obj.build_batch([Rec("bad", "ACXGU", ".....")], np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"record 'short'.*length"):
        obj.build_batch([Rec("short", "ACGU", "...")], np.random.default_rng(0))
