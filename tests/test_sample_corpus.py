"""The embedded sample corpus: deterministic, cached, folded with ViennaRNA, race-safe."""
import re
import time

import numpy as np
import pytest

from omnigenome.data import sample_corpus
from omnigenome.data.sample_corpus import ensure_sample_corpus, generate_sequence
from omnigenome.data.shards import ShardedCorpus
from omnigenome.folding import fold
from omnigenome.tokenizer import OmniGenomeTokenizer

SMALL = dict(num_records=40, valid_fraction=0.1, seed=7, workers=1, progress=False)


def files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return ensure_sample_corpus(tmp_path_factory.mktemp("cache"), **SMALL)


def test_deterministic_and_independent_of_workers(small, tmp_path):
    other = ensure_sample_corpus(tmp_path, **{**SMALL, "workers": 2})
    assert other.name == small.name
    assert files(other) == files(small)
    assert set(files(small)) >= {"info.json", "train/index.json", "valid/index.json", "train/shard-00000/ids.txt"}


def test_cached(small):
    before = {k: p.stat().st_mtime_ns for k, p in ((p.name, p) for p in small.rglob("*.npy"))}
    start = time.perf_counter()
    assert ensure_sample_corpus(small.parent, **SMALL) == small
    assert time.perf_counter() - start < 0.5
    assert {k: p.stat().st_mtime_ns for k, p in ((p.name, p) for p in small.rglob("*.npy"))} == before
    # Only the finished corpus is left in the cache, no temp directories.
    assert [p.name for p in small.parent.iterdir()] == [small.name]


def test_records_are_folded_rna(small):
    tokenizer = OmniGenomeTokenizer(alphabet="U")
    train, val = ShardedCorpus(small / "train"), ShardedCorpus(small / "valid")
    assert len(train) + len(val) == 40 and len(val) == 4
    ids = [r.id for r in list(train) + list(val)]
    assert sorted(ids) == [f"sample-{i:06d}" for i in range(1, 41)]
    for record in list(train) + list(val):
        assert re.fullmatch("[ACGU]+", record.sequence)
        assert 40 <= len(record.sequence) <= 400
        tokenizer.check_structure(record.structure, len(record.sequence), record.id)
        assert record.structure == fold(record.sequence)[0]


def test_generated_sequences_look_like_rna():
    rng = np.random.default_rng(0)
    seqs = [generate_sequence(rng, n) for n in (40, 120, 400) * 30]
    assert [len(s) for s in seqs] == [40, 120, 400] * 30
    joined = "".join(seqs)
    gc = (joined.count("G") + joined.count("C")) / len(joined)
    assert 0.38 < gc < 0.55
    paired = np.mean([1 - fold(s)[0].count(".") / len(s) for s in seqs[:30]])
    assert paired > 0.3  # hairpins make structure labels informative


def test_concurrent_builder_keeps_the_first(tmp_path, monkeypatch):
    """Another process finishes first while this one builds: use theirs, drop ours."""
    real_build = sample_corpus.build_sample_corpus
    settings = {**SMALL, "num_records": 12}

    def build_while_another_process_wins(out_dir, *args):
        monkeypatch.setattr(sample_corpus, "build_sample_corpus", real_build)
        winner = ensure_sample_corpus(tmp_path, **settings)  # the "other rank"
        (winner / "marker").write_text("first")
        return real_build(out_dir, *args)

    monkeypatch.setattr(sample_corpus, "build_sample_corpus", build_while_another_process_wins)
    root = ensure_sample_corpus(tmp_path, **settings)
    assert (root / "marker").read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == [root.name]
