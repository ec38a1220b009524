"""omnigenome.folding: the ViennaRNA fold helper."""
import itertools

import pytest
import RNA

from omnigenome.data.fasta import read_fasta
from omnigenome.folding import _chunks_by_cost, fold, fold_many


@pytest.fixture(scope="module")
def trnas(shared_data):
    records = itertools.islice(read_fasta(shared_data / "rna_fasta" / "RF00005.fasta"), 40)
    return [r.sequence for r in records]


def test_fold_matches_viennarna(trnas):
    for seq in trnas[:8]:
        structure, energy = fold(seq)
        expected_structure, expected_energy = RNA.fold(seq)
        assert structure == expected_structure
        assert energy == pytest.approx(expected_energy)
        assert len(structure) == len(seq) and set(structure) <= set("().")


def test_fold_treats_t_and_lower_case_as_rna():
    # The UUCG tetraloop bonus only applies to the U spelling in ViennaRNA; fold converts first.
    rna = "GGGCUUCGGCCC"
    assert RNA.fold(rna.replace("U", "T"))[1] != pytest.approx(RNA.fold(rna)[1])
    assert fold(rna.replace("U", "T")) == fold(rna) == fold(rna.lower())


def test_fold_empty_raises():
    with pytest.raises(ValueError):
        fold("")
    with pytest.raises(ValueError, match="position 1"):
        fold_many(["ACGU", ""], workers=2)


def test_fold_many_workers_agree_in_order(trnas):
    # Mixed lengths so that cost ordering actually reorders the work.
    sequences = trnas + [s[: 20 + 3 * i] for i, s in enumerate(trnas[:10])]
    serial = fold_many(sequences, workers=1)
    parallel = fold_many(sequences, workers=2)
    assert parallel == serial
    assert serial == [fold(s) for s in sequences]
    assert fold_many([], workers=2) == []


def test_chunks_cover_every_sequence_longest_first():
    sequences = ["A" * n for n in (5, 50, 20, 400, 7, 90, 90, 3)]
    chunks = _chunks_by_cost(sequences, workers=2)
    flat = [i for chunk in chunks for i, _ in chunk]
    assert sorted(flat) == list(range(len(sequences)))
    lengths = [len(sequences[i]) for i in flat]
    assert lengths == sorted(lengths, reverse=True)
    assert chunks[0] == [(3, sequences[3])]  # the dominant sequence is a chunk of its own
