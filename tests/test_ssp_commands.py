"""`python evaluate.py evaluation=ssp_zero_shot ...` and `omnigenome fold`, on a small random model."""
import json
import subprocess
import sys

import pytest
import RNA
from hydra import compose, initialize_config_module

from conftest import ROOT, save_random_model
from omnigenome.cli import main as cli_main
from omnigenome.structure import is_canonical_pair, pair_table

sys.path.insert(0, str(ROOT))
import evaluate as evaluate_script  # noqa: E402

RECORDS = [{"seq": "GGGGAAACCCCAUAUGGGAAACCCAU", "label": "((((...))))...(((...)))..."},
           {"seq": "ACGUACGUAAAACGUACGU", "label": "((((((((...))))))))"},
           {"seq": "UUUUUUUU", "label": "........"}]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A small random model in the Hugging Face layout (load_model reads it like a released checkpoint)."""
    return save_random_model(tmp_path_factory, num_layers=1)


@pytest.fixture(scope="module")
def benchmark_root(tmp_path_factory):
    """RNAStralign is not in ../shared/data: a small file in the same JSON-lines format."""
    root = tmp_path_factory.mktemp("bench")
    folder = root / "rgb" / "RNA-SSP-rnastralign"
    folder.mkdir(parents=True)
    (folder / "test.json").write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    return root


def test_evaluate_task_ssp_zero_shot(model_dir, benchmark_root, tmp_path, capsys):
    with initialize_config_module("omnigenome.conf", version_base="1.3"):
        cfg = compose("eval", overrides=["evaluation=ssp_zero_shot", "task=rgb/ssp_rnastralign",
                                         f"benchmark_dir={benchmark_root}", f"ckpt={model_dir}", f"paths.data_dir={tmp_path}",
                                         "evaluation.decode=[valid,argmax]", "evaluation.workers=1",
                                         "evaluation.progress=false"])
    rows = evaluate_script.evaluate(cfg)
    assert list(rows) == ["model (valid, canonical pairs)", "model (argmax)", f"ViennaRNA {RNA.__version__} MFE"]
    for scores in rows.values():
        assert scores["num_sequences"] == 3
        assert set(scores) >= {"macro_f1", "mcc", "bp_precision", "bp_recall", "bp_f1"}
    out = capsys.readouterr().out
    assert "rgb/ssp_rnastralign test (3 sequences)" in out and "token macro-F1" in out and "bp recall" in out
    assert list(tmp_path.glob("cache/vienna-mfe-*.json"))  # the baseline is cached for the next checkpoint


@pytest.mark.slow
def test_evaluate_py_command_line(model_dir, benchmark_root, tmp_path):
    result = subprocess.run(
        [sys.executable, "evaluate.py", "evaluation=ssp_zero_shot", "task=rgb/ssp_rnastralign", f"ckpt={model_dir}",
         f"paths.log_dir={tmp_path}/logs", f"paths.data_dir={tmp_path}/data", "evaluation.progress=false"],
        cwd=ROOT, capture_output=True, text=True, env={"OMNIGENOME_BENCHMARK_DATA": str(benchmark_root),
                                                       "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "2"})
    assert result.returncode == 0, result.stderr
    assert "model (valid, canonical pairs)" in result.stdout and "ViennaRNA" in result.stdout


def run_cli(capsys, *argv):
    status = cli_main(["fold", *argv])
    out = capsys.readouterr()
    return status, out.out, out.err


def blocks(out):
    lines = out.strip().splitlines()
    return [lines[i: i + 3] for i in range(0, len(lines), 3)]


def test_fold_with_vienna_and_plots(tmp_path, capsys):
    fasta = tmp_path / "in.fa"
    fasta.write_text(">tRNA/1 x\nGCGGAUUUAGCUCAGUUGGGAGAGCGCCAGACUGAAGAUCUGGAGGUCCUGUGUUCGAUCCACAGAAUUCGCACCA\n")
    status, out, err = run_cli(capsys, "GGGGAAACCCC", "--input", str(fasta), "--engine", "vienna",
                               "--plot", str(tmp_path / "svg"))
    assert status == 0
    (h1, s1, t1), (h2, s2, t2) = blocks(out)
    assert (h1, s1, t1) == (">seq1", "GGGGAAACCCC", "((((...)))) (-4.50)")
    assert h2 == ">tRNA/1" and t2.split()[0] == RNA.fold(s2)[0]
    svgs = sorted(p.name for p in (tmp_path / "svg").iterdir())
    assert svgs == ["seq1.svg", "tRNA_1.svg"]
    assert "<svg" in (tmp_path / "svg" / "seq1.svg").read_text()


@pytest.mark.parametrize("decoder", ["valid", "argmax"])
def test_fold_with_a_checkpoint(model_dir, tmp_path, capsys, decoder):
    seqs = [r["seq"] for r in RECORDS]
    status, out, err = run_cli(capsys, *seqs, "--ckpt", str(model_dir), "--decode", decoder,
                               "--plot", str(tmp_path / "svg"))
    assert status == 0
    structures = [b[2] for b in blocks(out)]
    assert [len(s) for s in structures] == [len(s) for s in seqs]
    if decoder == "valid":
        for seq, s in zip(seqs, structures):
            pairs = pair_table(s, allowed="().")
            assert all(is_canonical_pair(seq[i], seq[j]) for i, j in enumerate(pairs) if i < j)  # the default
            assert RNA.fold_compound(seq).eval_structure(s) < 1000
        assert len(list((tmp_path / "svg").glob("*.svg"))) == 3
        status, out, _ = run_cli(capsys, *seqs, "--ckpt", str(model_dir), "--no-canonical")
        assert status == 0 and len(blocks(out)) == 3


@pytest.mark.parametrize("argv,message", [
    (["GGGXAACCC", "--engine", "vienna"], "invalid nucleotide 'X' at position 4"),
    (["", "--engine", "vienna"], "empty sequence"),
    (["ACGU"], "needs --ckpt"),
    (["--engine", "vienna"], "no sequences"),
    (["--input", "/nonexistent.fa", "--engine", "vienna"], "nonexistent.fa"),
])
def test_fold_bad_input_is_one_line_and_status_2(capsys, argv, message):
    status, out, err = run_cli(capsys, *argv)
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("omnigenome fold: error:") and message in err


def test_fold_limits_name_the_record_and_offer_vienna(model_dir, tmp_path, capsys):
    """One limit everywhere: the model reads 1022 nt (1024 tokens with <cls> and <eos>), as prep's max_length."""
    fasta = tmp_path / "long.fa"
    fasta.write_text(">fits\n" + "A" * 1022 + "\n>too_long/1\n" + "G" * 1023 + "\n")
    status, out, err = run_cli(capsys, "--input", str(fasta), "--ckpt", str(model_dir))
    assert status == 2 and out == "" and err.count("\n") == 1
    assert "record 'too_long/1': 1023 nt is longer than the 1022 nt the model reads" in err and "--engine vienna" in err
    from omnigenome.data.prep import load_config
    assert load_config().max_length == 1022
    empty = tmp_path / "empty.fa"
    empty.write_text("")
    status, out, err = run_cli(capsys, "--input", str(empty), "--engine", "vienna")
    assert status == 2 and f"{empty}: the file holds no sequence (it is empty)" in err
