"""embed and score split across ranks (torchrun / srun) and job arrays (submitit): parts written atomically
with a manifest, a rerun redoes only the missing parts, and the merged output equals a one-process run."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import SHARED_DATA, save_random_model
from omnigenome.cli import main as cli_main
from omnigenome.inference.writers import read_embeddings, read_metadata


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_random_model(tmp_path_factory, max_positions=130)


@pytest.fixture(scope="module")
def fasta(tmp_path_factory):
    """41 tRNAs (under 126 nt) and two records the model cannot take, one of them in each half."""
    lines = (SHARED_DATA / "rna_fasta" / "RF00005.fasta").read_text().split(">")[1:42]
    records = [(chunk.split("\n", 1)[0].split()[0], "".join(chunk.split("\n", 1)[1].split())) for chunk in lines]
    records.insert(5, ("bad_char", "ACGU-ACGU"))
    records.insert(30, ("too_long", "ACGU" * 40))
    path = tmp_path_factory.mktemp("input") / "trna.fa"
    path.write_text("".join(f">{rid}\n{seq}\n" for rid, seq in records))
    return path


def embeddings(path):
    chunks = list(read_embeddings(path))
    return [i for c in chunks for i in c.ids], np.concatenate([c.pooled for c in chunks]), \
        [a for c in chunks for a in c.per_nucleotide]


def same_embeddings(a, b):
    ids_a, pooled_a, nt_a = embeddings(a)
    ids_b, pooled_b, nt_b = embeddings(b)
    assert ids_a == ids_b
    np.testing.assert_allclose(pooled_a, pooled_b, atol=1e-5)
    assert all(np.allclose(x, y, atol=1e-5) for x, y in zip(nt_a, nt_b))
    assert read_metadata(a) == read_metadata(b)


def test_ranks_meet_on_the_file_system(model_dir, fasta, tmp_path, monkeypatch, capsys):
    """What torchrun's ranks do, run in this process one after the other: rank 1 writes its part (a rerun finds
    it done and leaves it), rank 0 writes its own and merges into what one process writes."""
    single = tmp_path / "single.safetensors"
    assert cli_main(["embed", str(model_dir), str(fasta), "--out", str(single), "--per-nucleotide", "--no-progress"]) == 0
    out = tmp_path / "ranks.safetensors"
    args = ["embed", str(model_dir), str(fasta), "--out", str(out), "--per-nucleotide", "--no-progress"]
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert cli_main(args) == 0
    parts = out.with_name(out.name + ".parts")
    manifest = json.loads((parts / "manifest.json").read_text())
    assert manifest["num_parts"] == 2 and manifest["records"] == 43
    assert [(p["start"], p["stop"], p["file"]) for p in manifest["parts"]] == [
        (0, 21, "part-00000-of-00002.safetensors"), (21, 43, "part-00001-of-00002.safetensors")]
    assert json.loads((parts / "part-00001.json").read_text())["records"] == 22 and not out.exists()
    written = (parts / "part-00001-of-00002.safetensors").stat().st_mtime_ns
    assert cli_main(args) == 0  # rank 1 again (a rerun): its part is done, nothing is redone
    assert (parts / "part-00001-of-00002.safetensors").stat().st_mtime_ns == written
    # another number of ranks on the unfinished job is refused
    monkeypatch.setenv("WORLD_SIZE", "3")
    assert cli_main(args) == 2
    assert "holds an unfinished job with another num_parts" in capsys.readouterr().err
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    assert cli_main(args) == 0
    assert "embedded 41 of 43 records" in capsys.readouterr().err
    same_embeddings(out, single)
    assert not parts.exists()  # merged, then removed


def test_rank_from_torchrun_or_srun(monkeypatch):
    from omnigenome.inference.parallel import rank_and_world
    for key in ("RANK", "WORLD_SIZE", "SLURM_PROCID", "SLURM_NTASKS"):
        monkeypatch.delenv(key, raising=False)
    assert rank_and_world() == (0, 1)
    monkeypatch.setenv("SLURM_PROCID", "3")
    monkeypatch.setenv("SLURM_NTASKS", "4")
    assert rank_and_world() == (3, 4)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")  # torchrun inside an allocation: its ranks count
    assert rank_and_world() == (1, 2)


@pytest.mark.slow
def test_torchrun_two_ranks_equal_one_process(model_dir, fasta, tmp_path):
    single = tmp_path / "single.csv"
    assert cli_main(["score", str(model_dir), str(fasta), "--out", str(single), "--no-progress"]) == 0
    out = tmp_path / "ranks.csv"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=0",
                           "-m", "omnigenome.cli", "score", str(model_dir), str(fasta), "--out", str(out), "--no-progress"],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "scored 41 of 43 records" in done.stderr
    assert out.read_text() == single.read_text()
    assert read_metadata(out) == read_metadata(single)


@pytest.mark.slow
def test_submitit_job_array_equals_one_process_and_reruns_only_missing_parts(model_dir, fasta, tmp_path, capsys):
    from omnigenome.inference import parallel
    from omnigenome.inference.jobs import JobSpec, make_job
    from omnigenome.inference.records import InputFile
    single = tmp_path / "single.parquet"
    base = ["embed", str(model_dir), str(fasta), "--per-nucleotide", "--no-progress"]
    assert cli_main([*base, "--out", str(single)]) == 0
    out = tmp_path / "array.parquet"
    # parts 0 and 2 of 3 were done by an earlier, interrupted run
    job = make_job(JobSpec("embed", str(model_dir.resolve()), "auto", "auto",
                           {"pool": "mean", "per_nucleotide": True, "attentions": None, "contacts": False,
                            "max_tokens": 8192, "strict": False}))
    with InputFile(str(fasta)) as source:
        manifest = parallel.plan(job, source, out, 3)
        for k in (0, 2):
            parallel.run_part(job, source, out, manifest, k)
    capsys.readouterr()
    assert cli_main([*base, "--out", str(out), "--executor", "local", "--parts", "3"]) == 0
    captured = capsys.readouterr()
    assert "submitted 1 of 3 part(s)" in captured.out and "embedded 41 of 43 records" in captured.err
    same_embeddings(out, single)
