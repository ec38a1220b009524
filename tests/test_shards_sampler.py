"""On-disk shards (omnigenome.data.shards) and the token-budget batch sampler."""
import json
import pickle

import numpy as np
import pytest

from omnigenome.data.sampler import BatchKey, TokenBudgetBatchSampler
from omnigenome.data.shards import Record, ShardedCorpus, write_shards


def make_records(n, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        length = int(rng.integers(1, 60))
        seq = "".join(rng.choice(list("ACGU"), size=length))
        struct = "".join(rng.choice(list("()."), size=length))  # shards do not parse structures
        out.append((f"rec-{i}", seq, struct))
    return out


# --- shards ------------------------------------------------------------------------------------
def test_round_trip_and_lengths(tmp_path):
    records = make_records(23)
    index = write_shards(iter(records), tmp_path / "c", records_per_shard=5)
    assert [s["num_records"] for s in index["shards"]] == [5, 5, 5, 5, 3]
    assert index["num_nucleotides"] == sum(len(s) for _, s, _ in records)
    assert json.loads((tmp_path / "c" / "index.json").read_text()) == index

    corpus = ShardedCorpus(tmp_path / "c")
    assert len(corpus) == 23
    assert corpus.lengths.dtype == np.int64
    assert corpus.lengths.tolist() == [len(s) for _, s, _ in records]
    assert [tuple(corpus[i]) for i in range(23)] == records
    assert corpus[-1] == Record(*records[-1])
    assert isinstance(corpus[7].sequence, str)
    with pytest.raises(IndexError):
        corpus[23]


def test_layout_is_complete_without_temp_dirs(tmp_path):
    write_shards(make_records(12), tmp_path, records_per_shard=5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.json", "shard-00000", "shard-00001", "shard-00002"]
    shard = tmp_path / "shard-00001"
    assert sorted(p.name for p in shard.iterdir()) == ["ids.txt", "offsets.npy", "sequence.npy", "structure.npy"]
    seq, struct, offsets = (np.load(shard / f) for f in ("sequence.npy", "structure.npy", "offsets.npy"))
    assert seq.dtype == struct.dtype == np.uint8 and offsets.dtype == np.int64
    assert seq.shape == struct.shape == (offsets[-1],) and offsets.shape == (6,)
    assert (shard / "ids.txt").read_text().splitlines() == [f"rec-{i}" for i in range(5, 10)]


def test_corpus_pickles_cheaply_after_use(tmp_path):
    write_shards(make_records(300), tmp_path)
    corpus = ShardedCorpus(tmp_path)
    _ = corpus.lengths, corpus[5]  # open the memory maps
    blob = pickle.dumps(corpus)
    assert len(blob) < 2000
    clone = pickle.loads(blob)
    assert clone[5] == corpus[5] and clone.lengths.tolist() == corpus.lengths.tolist()


def test_unusual_ids_round_trip(tmp_path):
    records = [("réc\u2028one", "ACGU", "(..)"), ("a|b c", "GG", "..")]
    write_shards(records, tmp_path)
    assert [tuple(r) for r in ShardedCorpus(tmp_path)] == records
    with pytest.raises(ValueError, match="single line"):
        write_shards([("two\nlines", "A", ".")], tmp_path / "x")


def test_mismatched_lengths_name_the_record(tmp_path):
    with pytest.raises(ValueError, match="'bad'"):
        write_shards([("ok", "ACGU", "(..)"), ("bad", "ACGU", "(...)")], tmp_path / "c")
    assert not (tmp_path / "c" / "index.json").exists()


def test_refuses_to_overwrite_a_corpus(tmp_path):
    write_shards(make_records(3), tmp_path)
    with pytest.raises(FileExistsError):
        write_shards(make_records(3), tmp_path)


def test_missing_index_points_to_prep(tmp_path):
    with pytest.raises(FileNotFoundError, match="omnigenome prep"):
        ShardedCorpus(tmp_path)


def test_empty_corpus(tmp_path):
    write_shards([], tmp_path)
    corpus = ShardedCorpus(tmp_path)
    assert len(corpus) == 0 and corpus.lengths.shape == (0,)


# --- sampler -----------------------------------------------------------------------------------
COSTS = np.random.default_rng(1).integers(10, 200, size=500)
BUDGET = 600


def flatten(batches):
    return [i for b in batches for i in b]


def test_batches_within_budget_and_each_record_once():
    sampler = TokenBudgetBatchSampler(COSTS, BUDGET, seed=3)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        keys = list(sampler)
        assert all(isinstance(k, BatchKey) and k.epoch == epoch for k in keys)
        assert [k.index for k in keys] == list(range(len(sampler)))
        assert all(COSTS[list(k.indices)].sum() <= BUDGET for k in keys)
        assert sorted(flatten(k.indices for k in keys)) == list(range(len(COSTS)))


def test_packing_is_fixed_and_order_is_seeded():
    a = TokenBudgetBatchSampler(COSTS, BUDGET, seed=3)
    b = TokenBudgetBatchSampler(COSTS, BUDGET, seed=3)
    assert a.batches(0) == b.batches(0) and a.batches(5) == b.batches(5)
    assert a.batches(0) != a.batches(1)
    assert sorted(a.batches(0)) == sorted(a.batches(1))  # same batches, new order
    assert len(a) == len(a.batches(0)) == len(a.batches(7))
    fixed = TokenBudgetBatchSampler(COSTS, BUDGET, shuffle=False)
    assert fixed.batches(0) == fixed.batches(1) == fixed.packed


@pytest.mark.parametrize("n_records", [500, 37])
def test_two_ranks_disjoint_and_covering(n_records):
    costs = COSTS[:n_records]
    ranks = [TokenBudgetBatchSampler(costs, BUDGET, seed=5, rank=r, world_size=2) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1])
    for epoch in range(2):
        keys = [list(s._keys(epoch)) for s in ranks]
        assert [k.indices for k in keys[0]] == ranks[0].batches(epoch)
        global_order = sorted(keys[0] + keys[1], key=lambda k: k.index)
        assert [k.index for k in global_order] == list(range(2 * len(ranks[0])))
        real = ranks[0].num_batches
        # Batches at positions >= num_batches are the wrapped repeats of the first ones.
        unique = [k.indices for k in global_order[:real]]
        assert sorted(flatten(unique)) == list(range(n_records))
        for k in global_order[real:]:
            assert k.indices == global_order[k.index - real].indices
        rank_records = [set(flatten(k.indices for k in ks if k.index < real)) for ks in keys]
        assert not rank_records[0] & rank_records[1]


def test_more_ranks_than_batches_wraps():
    samplers = [TokenBudgetBatchSampler([5, 5, 5], 10, rank=r, world_size=4) for r in range(4)]
    assert samplers[0].num_batches == 2
    assert [len(s) for s in samplers] == [1, 1, 1, 1]
    assert sorted(flatten(flatten(s.batches(0) for s in samplers[:2]))) == [0, 1, 2]


def test_position_fn_resumes_mid_epoch():
    sampler = TokenBudgetBatchSampler(COSTS, BUDGET, seed=2, rank=1, world_size=2)
    sampler.set_epoch(0)
    sampler.position_fn = lambda: (3, 4)
    keys = list(sampler)
    full = list(sampler._keys(3))
    assert keys == full[4:]
    assert [k.indices for k in keys] == sampler.batches(3)[4:]
    sampler.position_fn = lambda: (3, len(sampler))
    assert list(sampler) == []


def test_oversize_record_is_reported():
    costs = np.array([10, 700, 20, 900])
    with pytest.raises(ValueError, match=r"2 of 4 records.*largest: 900"):
        TokenBudgetBatchSampler(costs, BUDGET)


def test_empty_costs():
    sampler = TokenBudgetBatchSampler(np.zeros(0, dtype=np.int64), BUDGET, world_size=2, rank=1)
    assert len(sampler) == 0 and list(sampler) == []
