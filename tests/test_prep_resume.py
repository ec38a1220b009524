"""`omnigenome prep` is restartable and executor-independent: kill it, rerun it, get the same bytes."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from omnigenome.data.prep import WORK, load_config, prepare_corpus
from omnigenome.data.shards import ShardedCorpus


def tree(root: Path) -> dict[str, bytes]:
    """Every file under root (hidden ones included) by relative path -> bytes."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def inputs(shared_data):
    # 954 real tRNAs (~75 nt): a few seconds of folding, 16 work units of 60 records.
    return [shared_data / "rna_fasta" / "RF00005.fasta"]


@pytest.fixture(scope="module")
def clean_run(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("clean") / "corpus"
    prepare_corpus(inputs, out, records_per_shard=60, workers=2, valid_fraction=0.05, progress=False)
    return out


def prep_command(inputs, out, workers):
    return [sys.executable, "-m", "omnigenome.cli", "prep", *map(str, inputs), "--out", str(out),
            "records_per_shard=60", f"fold.workers={workers}", "valid_fraction=0.05", "progress=false"]


def test_kill_and_rerun_gives_identical_output(inputs, clean_run, tmp_path):
    out = tmp_path / "corpus"
    proc = subprocess.Popen(prep_command(inputs, out, workers=1), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    units = out / WORK / "units"
    deadline = time.monotonic() + 120
    while not (units.is_dir() and len(list(units.glob("*.done.json"))) >= 2):
        assert proc.poll() is None, f"prep ended before it could be killed: {proc.stderr.read().decode()}"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole job: the CLI and its folding processes
    proc.wait()
    assert not (out / "manifest.json").exists()
    done = sorted(p.name for p in units.glob("*.done.json"))
    finished = {d: (out / "train" / f"shard-{int(d.split('-')[1].split('.')[0]):05d}").stat().st_ino
                for d in done if d.startswith("train-")}
    assert finished, done

    rerun = subprocess.run(prep_command(inputs, out, workers=2), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    # Finished shards were not folded or written again ...
    for d, inode in finished.items():
        assert (out / "train" / f"shard-{int(d.split('-')[1].split('.')[0]):05d}").stat().st_ino == inode
    # ... and every file, hidden ones included, equals the uninterrupted run's, byte for byte.
    assert tree(out) == tree(clean_run)
    assert not (out / WORK).exists()
    assert len(ShardedCorpus(out / "train")) > 800


def test_submitit_local_job_array_matches(inputs, clean_run, tmp_path):
    """executor.name=local runs the SLURM code path (a submitit job array + merge) with local processes."""
    out = tmp_path / "corpus"
    cfg = load_config("default", ["executor.name=local", "executor.tasks=2", "fold.workers=1", "progress=false",
                                  "records_per_shard=60", "valid_fraction=0.05"])
    manifest = prepare_corpus(inputs, out, cfg)
    assert tree(out) == tree(clean_run)
    assert manifest["train"]["shards"] > 2


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.5, 2.0, 3.0, 4.0, 5.5])
def test_kill_at_any_moment(inputs, clean_run, tmp_path, delay):
    """SIGKILL after `delay` seconds (start-up, plan, fold or merge stage), then rerun: the same bytes."""
    out = tmp_path / "corpus"
    proc = subprocess.Popen(prep_command(inputs, out, workers=2), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(delay)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    rerun = subprocess.run(prep_command(inputs, out, workers=1), capture_output=True, text=True, timeout=300)
    if rerun.returncode != 0:  # it had finished before the kill: nothing to do, the corpus is complete
        assert "already holds a prepared corpus" in rerun.stderr
    assert tree(out) == tree(clean_run)
