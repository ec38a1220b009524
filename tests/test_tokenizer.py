"""Tokenizer (released vocabulary, both input forms, alphabet handling, bad input) and dot-bracket parsing."""
import pytest
import torch

from omnigenome import OmniGenomeTokenizer
from omnigenome.structure import base_pairs, pair_table, to_labels
from omnigenome.tokenizer import VOCAB

RELEASED = ("<cls> <pad> <eos> <unk> A C G T N U a c g t n u ( ) . * 1 2 3 <mask>").split()


def test_vocabulary_ids_are_the_released_ones():
    assert list(VOCAB) == RELEASED and OmniGenomeTokenizer().vocab_size == 24
    t = OmniGenomeTokenizer()
    assert (t.cls_token_id, t.pad_token_id, t.eos_token_id, t.unk_token_id, t.mask_token_id) == (0, 1, 2, 3, 23)


def test_sequence_alone_and_structure_contextualised():
    t = OmniGenomeTokenizer()
    assert t.encode("ACGU") == [0, 4, 5, 6, 7, 2]  # U -> T: the checkpoints' alphabet
    assert t.encode("GGAC", "(..)") == [0, 6, 6, 4, 5, 2, 16, 18, 18, 17, 2]
    assert t.decode(t.encode("acgu")) == "ACGT"


def test_alphabet_and_case_are_configurable():
    assert OmniGenomeTokenizer(alphabet="U").encode("ACGT")[1:-1] == [4, 5, 6, 9]
    assert OmniGenomeTokenizer(alphabet=None).encode("TU")[1:-1] == [7, 9]
    assert OmniGenomeTokenizer(uppercase=False, alphabet=None).encode("acgtun")[1:-1] == [10, 11, 12, 13, 15, 14]
    assert OmniGenomeTokenizer(uppercase=False, alphabet="T").encode("aU")[1:-1] == [10, 7]
    with pytest.raises(ValueError, match="alphabet"):
        OmniGenomeTokenizer(alphabet="X")


def test_iupac_codes_become_n():
    t = OmniGenomeTokenizer()
    assert t.normalize("ARYSWKMBDHVN") == "A" + "N" * 11
    assert OmniGenomeTokenizer(uppercase=False).normalize("ry") == "nn"


@pytest.mark.parametrize("seq,struct,pattern", [
    ("ACGXU", None, r"record 'r1': invalid nucleotide 'X' at position 4"),
    ("AC GU", None, r"record 'r1': invalid nucleotide ' ' at position 3"),
    ("ACGÜ", None, r"record 'r1': invalid nucleotide 'Ü' at position 4"),
    ("Aß", None, r"record 'r1': invalid nucleotide 'ß' at position 2"),
    ("", None, r"record 'r1': empty sequence"),
    ("GGAC", "((.)", r"record 'r1': unbalanced structure: '\(' at position 1 is never closed"),
    ("GGAC", "(.))", r"record 'r1': unbalanced structure: '\)' at position 4 closes nothing"),
    ("GGAC", "(..)).", r"record 'r1': structure length 6 differs from sequence length 4"),
    ("GGAC", "[..]", r"record 'r1': invalid structure character '\[' at position 1"),
])
def test_bad_input_names_record_and_position(seq, struct, pattern):
    with pytest.raises(ValueError, match=pattern):
        OmniGenomeTokenizer().encode(seq, struct, record="r1")


def test_batch_call_pads_right():
    out = OmniGenomeTokenizer()(["ACGU", "GG"], ["(..)", ".."])
    assert out["input_ids"].shape == (2, 11)
    assert out["attention_mask"].sum(1).tolist() == [11, 7]
    assert (out["input_ids"][1, 7:] == 1).all()
    assert out["input_ids"].dtype == torch.long


def test_dot_bracket_parser_handles_pseudoknots():
    s = "((..[[..))..]]"
    pt = pair_table(s)
    assert pt[0] == 9 and pt[4] == 13 and pt[2] == -1
    assert base_pairs(s) == {(0, 9), (1, 8), (4, 13), (5, 12)}
    assert to_labels("(.)") == [0, 2, 1]
    assert to_labels("[.]") == [0, 2, 1]
    with pytest.raises(ValueError, match="position 3"):
        pair_table("(.]")
