"""The runnable examples in examples/, end to end from a temporary folder with tiny models (subprocesses:
slow on a busy 2-core machine)."""
import subprocess
import sys

import pytest

from conftest import ROOT, save_random_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return save_random_model(tmp_path_factory, "tiny")


def run_example(name, *args, cwd):
    done = subprocess.run([sys.executable, str(ROOT / "examples" / name), *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_embed_and_cluster(tiny, tmp_path, shared_data):
    out = run_example("embed_and_cluster.py", tiny, "--k", "3", "--limit", "10", cwd=tmp_path)
    lines = out.splitlines()
    assert lines[0] == "30 sequences, 32-dimensional embeddings, k = 3"
    assert lines[1].split() == ["cluster", "size", "RF00001", "RF00005", "RF00010"]
    sizes = [int(line.split()[1]) for line in lines[2:5]]
    assert sum(sizes) == 30 and all(s > 0 for s in sizes)


def test_score_mutations(tiny, tmp_path):
    out = run_example("score_mutations.py", tiny, "--sequence", "GGGGAAACCCCAUAUGGGAAACCCAU", "--positions", "2,9",
                      cwd=tmp_path)
    assert out.startswith("26 nt, pseudo-log-likelihood -")
    effects = [line.split() for line in out.split("mutation  effect (nats)\n")[1].splitlines()]
    assert sorted(m for m, _ in effects) == ["C9A", "C9G", "C9U", "G2A", "G2C", "G2U"]
    values = [float(e) for _, e in effects]
    assert values == sorted(values, reverse=True)


def test_predict_finetuned(tmp_path):
    sys.path.insert(0, str(ROOT / "tests"))
    from test_inference_predict import task_checkpoint
    task_checkpoint(tmp_path / "best.ckpt", "sequence_classification")
    (tmp_path / "in.csv").write_text("name,sequence\nx,ACGUACGU\ny,GGGAAACCC\nz,AC?GU\n")
    out = run_example("predict_finetuned.py", tmp_path / "best.ckpt", "in.csv", cwd=tmp_path)
    lines = out.splitlines()
    assert lines[0] == "task test/sequence_classification (sequence_classification, labels ['x', 'y', 'z'])"
    assert [line.split('"id": ')[1].split(",")[0] for line in lines[1:3]] == ['"x"', '"y"']
    assert "prob_x" in lines[1] and lines[3].startswith("skipped: in.csv, line 4: record 'z': invalid nucleotide '?'")
