"""Secondary structure prediction: the decoders, the metrics, the benchmark loaders, the ViennaRNA baseline."""
import json
import time

import numpy as np
import pytest
import RNA

from omnigenome.data.benchmarks import load_split, task_config
from omnigenome.metrics import base_pair_scores, structure_scores, token_classification_scores
from omnigenome.ssp.decode import decode, decode_argmax, decode_valid
from omnigenome.ssp.zero_shot import format_table, score_split
from omnigenome.structure import is_canonical_pair, pair_table, to_labels


# --- decoders -----------------------------------------------------------------------------------
def all_structures(n, min_loop, allowed=lambda i, j: True):
    """Every nested structure on n positions (brute force), as dot-brackets."""
    def rec(i, j):  # structures of [i, j)
        if i >= j:
            yield ""
            return
        for rest in rec(i + 1, j):  # i unpaired
            yield "." + rest
        for k in range(i + min_loop + 1, j):  # i paired with k
            if allowed(i, k):
                for inside in rec(i + 1, k):
                    for rest in rec(k + 1, j):
                        yield "(" + inside + ")" + rest
    return list(rec(0, n))


def log_score(probs, structure):
    labels = to_labels(structure)
    return float(np.sum(np.log(probs[np.arange(len(structure)), labels])))


def hairpins_ok(structure, min_loop):
    return all(j - i - 1 >= min_loop for i, j in enumerate(pair_table(structure)) if i < j)


@pytest.mark.parametrize("n,min_loop", [(1, 3), (5, 3), (8, 3), (10, 3), (7, 0), (8, 1)])
def test_valid_decoder_is_the_brute_force_optimum(n, min_loop):
    rng = np.random.default_rng(n * 10 + min_loop)
    candidates = all_structures(n, min_loop)
    for trial in range(20):
        probs = rng.dirichlet([0.5, 0.5, 0.5], size=n)
        s = decode_valid(probs, min_loop=min_loop)
        assert len(s) == n and hairpins_ok(s, min_loop)
        best = max(log_score(probs, c) for c in candidates)
        assert log_score(probs, s) == pytest.approx(best, abs=1e-9)


def test_valid_decoder_canonical_pairs_brute_force():
    rng = np.random.default_rng(1)
    for trial in range(15):
        seq = "".join(rng.choice(list("ACGUT"), size=10))
        probs = rng.dirichlet([0.5, 0.5, 0.5], size=10)
        s = decode_valid(probs, seq, canonical_only=True)
        assert all(is_canonical_pair(seq[i], seq[j]) for i, j in enumerate(pair_table(s)) if i < j)
        candidates = all_structures(10, 3, lambda i, j: is_canonical_pair(seq[i], seq[j]))
        assert log_score(probs, s) == pytest.approx(max(log_score(probs, c) for c in candidates), abs=1e-9)


def test_valid_decoder_output_is_accepted_by_viennarna():
    rng = np.random.default_rng(2)
    for n in (1, 2, 4, 5, 17, 60, 150):
        seq = "".join(rng.choice(list("ACGU"), size=n))
        for concentration in (0.2, 1.0):
            probs = rng.dirichlet([concentration] * 3, size=n)
            for canonical in (False, True):
                s = decode_valid(probs, seq, canonical_only=canonical)
                assert len(s) == n and hairpins_ok(s, 3)
                assert RNA.fold_compound(seq).eval_structure(s) < 1000  # 100000 marks an impossible structure


def test_decoders_on_clear_cases():
    target = "((((....))))..((...))"
    probs = np.full((len(target), 3), 0.05)
    probs[np.arange(len(target)), to_labels(target)] = 0.9
    assert decode_valid(probs) == target
    assert decode_argmax(probs) == target
    # Every nucleotide most likely '(' but ')' nearly impossible: argmax opens 8 brackets that
    # close nothing; valid pairs nothing, since p('(') p(')') = 0.006 < p('.')^2 = 0.152.
    probs = np.tile([0.6, 0.01, 0.39], (8, 1))
    assert decode_argmax(probs) == "((((((((" and decode_valid(probs) == "........"
    assert decode(probs, "argmax") == "(((((((("


def test_valid_decoder_long_sequence_is_fast():
    probs = np.random.default_rng(3).dirichlet([1, 1, 1], size=500)
    start = time.perf_counter()
    s = decode_valid(probs)
    assert time.perf_counter() - start < 2.0
    assert hairpins_ok(s, 3)


@pytest.mark.parametrize("probs,message", [
    (np.zeros((0, 3)), "empty sequence"),
    (np.ones((4, 2)), "shape"),
    (np.array([[np.nan, 0.5, 0.5]]), "finite"),
])
def test_decoders_reject_bad_input(probs, message):
    for method in ("valid", "argmax"):
        with pytest.raises(ValueError, match=message):
            decode(probs, method)


def test_decoder_errors():
    with pytest.raises(ValueError, match="unknown decoder"):
        decode(np.ones((3, 3)), "greedy")
    with pytest.raises(ValueError, match="needs the sequence"):
        decode_valid(np.ones((3, 3)), canonical_only=True)
    # Zero probabilities stay finite: nothing may pair where '(' is impossible.
    probs = np.tile([0.0, 0.5, 0.5], (9, 1))
    assert decode_valid(probs) == "." * 9


# --- metrics --------------------------------------------------------------------------------------
def test_token_scores_by_hand():
    # true ((..)) -> 0 0 2 2 1 1; predicted (...). -> 0 2 2 2 1 2
    # per class F1: ( 2/3, ) 2/3, . 2/3; MCC = (c*s - sum p_k t_k) / sqrt((s^2 - sum p_k^2)(s^2 - sum t_k^2))
    #   = (4*6 - (1*2 + 1*2 + 4*2)) / sqrt((36 - 18) * (36 - 12)) = 12 / sqrt(432) = 1/sqrt(3)
    scores = structure_scores(["(...)."], ["((..))"])
    assert scores["macro_f1"] == pytest.approx(2 / 3)
    assert scores["mcc"] == pytest.approx(1 / np.sqrt(3))
    flat = token_classification_scores([0, 2, 2, 2, 1, 2], [0, 0, 2, 2, 1, 1], num_classes=3)
    assert flat == pytest.approx({"macro_f1": 2 / 3, "mcc": 1 / np.sqrt(3)})


def test_base_pair_scores_by_hand():
    assert base_pair_scores("(.....)", "((...))") == pytest.approx(
        {"bp_precision": 1.0, "bp_recall": 0.5, "bp_f1": 2 / 3})
    # pseudoknot brackets in the true label count as pairs: 4 true pairs, 2 predicted, both right
    assert base_pair_scores("((......))....", "((..[[..))..]]") == pytest.approx(
        {"bp_precision": 1.0, "bp_recall": 0.5, "bp_f1": 2 / 3})
    assert base_pair_scores("((...)).", "(.(...))") == pytest.approx(
        {"bp_precision": 0.0, "bp_recall": 0.0, "bp_f1": 0.0})
    # empty sets: both empty -> 1; one empty -> F1 0
    assert base_pair_scores("....", "....") == {"bp_precision": 1.0, "bp_recall": 1.0, "bp_f1": 1.0}
    assert base_pair_scores("(..)", "....") == {"bp_precision": 0.0, "bp_recall": 1.0, "bp_f1": 0.0}
    assert base_pair_scores("....", "(..)") == {"bp_precision": 1.0, "bp_recall": 0.0, "bp_f1": 0.0}
    # an unbalanced (argmax) prediction is scored on the pairs it forms: here (1, 6) only
    assert base_pair_scores(")((...))(", ".((...)).") == pytest.approx(
        {"bp_precision": 1.0, "bp_recall": 1.0, "bp_f1": 1.0})
    with pytest.raises(ValueError, match="length"):
        base_pair_scores("..", "...")


def test_structure_scores_average_base_pairs_per_sequence():
    s = structure_scores(["((...))", "......."], ["((...))", "((...))"])
    assert s["bp_f1"] == pytest.approx(0.5) and s["bp_precision"] == pytest.approx(1.0)
    assert s["bp_recall"] == pytest.approx(0.5) and s["num_sequences"] == 2
    # pseudoknot labels become ( and ) by side for the token metric
    assert structure_scores(["((..))"], ["([..])"])["macro_f1"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="no structures"):
        structure_scores([], [])


# --- loaders --------------------------------------------------------------------------------------
def ssp_split(name, split, benchmark_dir, limit=None):
    return load_split(task_config(f"rgb/ssp_{name}", benchmark_dir=benchmark_dir), split, limit=limit)


@pytest.mark.parametrize("dataset", ["archive2", "bprna"])
def test_rgb_loaders_read_the_public_files(shared_data, dataset):
    records = ssp_split(dataset, "test", shared_data, limit=20)
    assert len(records) == 20
    for r in records:
        assert len(r.sequence) == len(r.structure) == len(r.label) > 0
        assert to_labels(r.structure) == r.label.tolist()
        pair_table(r.structure)
    assert records[0].id == "test.json:1"
    assert len(ssp_split(dataset, "valid", shared_data)) in (285, 1300)


def write_jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))


def test_rnastralign_loader_reads_the_same_format(tmp_path):
    folder = tmp_path / "rgb" / "RNA-SSP-rnastralign"  # as RGB publishes it
    folder.mkdir(parents=True)
    write_jsonl(folder / "test.json", [{"seq": "GGGAAACCC", "label": "(((...)))"}, "",
                                       {"seq": "acgun", "label": "....."}])
    records = ssp_split("rnastralign", "test", tmp_path)
    assert [(r.id, r.sequence, r.structure) for r in records] == [
        ("test.json:1", "GGGAAACCC", "(((...)))"), ("test.json:3", "acgun", ".....")]


def test_missing_data_says_what_to_download(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"RNA-SSP-rnastralign.*OMNIGENOME_BENCHMARK_DATA"):
        ssp_split("rnastralign", "test", tmp_path)
    with pytest.raises(ValueError, match="unknown task 'rgb/ssp_rfam'"):
        ssp_split("rfam", "test", tmp_path)


@pytest.mark.parametrize("bad,message", [
    ({"seq": "", "label": ""}, "empty sequence"),
    ({"seq": "ACGXU", "label": "....."}, "invalid nucleotide 'X' at position 4"),
    ({"seq": "ACGU", "label": "..."}, "label length 3 differs from sequence length 4"),
    ({"seq": "GGGAAACC", "label": "(((...))"}, "unbalanced"),
    ({"sequence": "ACGU"}, "missing field 'seq'"),
    ("{not json", "not valid JSON"),
])
def test_bad_records_name_file_and_line(tmp_path, bad, message):
    folder = tmp_path / "rgb" / "RNA-SSP-Archive2"
    folder.mkdir(parents=True)
    write_jsonl(folder / "test.json", [{"seq": "ACGU", "label": "...."}, bad])
    with pytest.raises(ValueError, match=f"test.json, line 2: .*{message}"):
        ssp_split("archive2", "test", tmp_path)


# --- ViennaRNA baseline ---------------------------------------------------------------------------
def test_score_split_vienna_rows_and_cache(shared_data, tmp_path):
    records = ssp_split("archive2", "test", shared_data, limit=20)
    rows = score_split(records, vienna=True, workers=1, cache_dir=tmp_path)
    (name, scores), = rows.items()
    assert name.startswith("ViennaRNA") and scores["num_sequences"] == 20
    assert 0.5 < scores["macro_f1"] <= 1 and 0.3 < scores["bp_f1"] <= 1
    assert len(list(tmp_path.glob("vienna-mfe-*.json"))) == 1
    assert score_split(records, vienna=True, cache_dir=tmp_path)[name]["bp_f1"] == scores["bp_f1"]
    table = format_table(rows)
    assert "token macro-F1" in table and "bp F1" in table


@pytest.mark.slow
@pytest.mark.parametrize("dataset,macro_f1,bp_f1", [("archive2", 0.759, 0.648), ("bprna", 0.651, 0.492)])
def test_vienna_reproduces_the_reference_numbers(shared_data, dataset, macro_f1, bp_f1):
    """The published reference points (docs): ViennaRNA 2.8.0 MFE on the full test splits."""
    records = ssp_split(dataset, "test", shared_data)
    (scores,) = score_split(records, vienna=True, workers=2).values()
    # the reference gives 3 decimals (bpRNA base-pair F1 measures 0.49149 here)
    assert scores["macro_f1"] == pytest.approx(macro_f1, abs=6e-4)
    assert scores["bp_f1"] == pytest.approx(bp_f1, abs=6e-4)
