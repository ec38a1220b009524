"""Training end to end: configs compose, a short CPU run learns, stop-and-resume is exact, DDP shards data."""
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import hydra
import numpy as np
import lightning as L
import pytest
import torch
from hydra import compose, initialize_config_module
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

from conftest import ROOT
from omnigenome.model.loading import load_model
from omnigenome.training.trainer import set_accumulation

sys.path.insert(0, str(ROOT))
import train as train_script  # noqa: E402



def shared_sample_data(tmp_path_factory):
    """A small sample corpus, generated once per test session (tests/test_cluster.py uses it too)."""
    from omnigenome.data.sample_corpus import ensure_sample_corpus
    d = tmp_path_factory.getbasetemp() / "data"
    ensure_sample_corpus(d / "sample_corpus", num_records=500, seed=0, workers=2)
    return d


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    return shared_sample_data(tmp_path_factory)


def compose_cfg(tmp_path, data_dir, overrides=(), config_name="train"):
    base = [f"paths.log_dir={tmp_path}/logs", f"paths.data_dir={data_dir}", f"paths.output_dir={tmp_path}/run"]
    if not {"data=shards", "experiment=paper", "experiment=finetune"} & set(overrides):
        base.append("data.sample.num_records=500")
    with initialize_config_module("omnigenome.conf", version_base="1.3"):
        cfg = compose(config_name, overrides=base + list(overrides), return_hydra_config=True)
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]  # as @hydra.main hands it to train()
    return cfg


SMALL_MODEL = ["model.hidden_size=64", "model.num_layers=2", "model.num_heads=4", "model.ffn_size=128"]


def fast(steps, *extra):
    return [f"trainer.max_steps={steps}", "trainer.val_check_interval=1000000", "trainer.log_every_n_steps=1",
            "callbacks=none", "data.max_tokens=3000", *extra]


def read_csv_losses(path, key="train/loss"):
    with open(path) as f:
        return {int(r["step"]): float(r[key]) for r in csv.DictReader(f) if r.get(key)}


GROUPS = {
    "model": ["tiny", "52m", "186m"],
    "objective": ["omnigenome", "mlm"],
    "trainer": ["cpu", "default", "gpu", "ddp", "rtx4090x8"],
    "logger": ["csv", "tensorboard", "wandb", "none"],
    "callbacks": ["default", "none"],
    "data": ["sample", "shards"],
    "experiment": ["pretrain", "paper", "finetune"],
}


# Options that only an experiment selects (experiment=finetune, tested above) are not combined with the defaults.
BY_EXPERIMENT = {"callbacks": ["finetune"], "data": ["finetune"]}


def test_every_group_has_its_options_tested():
    from omnigenome.settings import conf_files
    for group, options in GROUPS.items():
        assert sorted(p.name[:-5] for p in conf_files().joinpath(group).iterdir() if p.name.endswith(".yaml")) == \
            sorted(options + BY_EXPERIMENT.get(group, [])), group


@pytest.mark.parametrize("group,option", [(g, o) for g, opts in GROUPS.items() for o in opts])
def test_every_config_option_runs_a_step_with_the_defaults(tmp_path, data_dir, group, option, monkeypatch):
    """Each documented option with the defaults: composed, built and trained for one step (on this CPU: the GPU
    presets run with accelerator=cpu and one device, everything else as configured)."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    extra = [f"{group}={option}", "trainer.max_steps=1", "trainer.val_check_interval=1", "+trainer.limit_val_batches=1"]
    corpus = str(data_dir / "sample_corpus" / "sample-v1-n500-valid0.05-seed0")
    if option in ("shards", "paper"):
        extra.append(f"data.corpus_dir={corpus}")
    if option == "finetune":
        extra += ["task=rgb/ssp_archive2", "data.train_limit=8", "data.eval_limit=4", "trainer.max_epochs=-1",
                  "trainer.check_val_every_n_epoch=null", "finetune.baselines=false"]
    if option in ("52m", "186m"):  # one record per batch: a step of the 186m model then takes seconds on this CPU
        extra += ["objective=mlm", "data.max_tokens=402"]
    if group == "trainer" and option not in ("cpu", "default") or option == "paper":  # no GPU here: the preset, run on the CPU
        extra += ["trainer.accelerator=cpu", "trainer.devices=1"]
    cfg = compose_cfg(tmp_path, data_dir, extra)
    if option in ("52m", "186m"):
        with torch.device("meta"):
            model = hydra.utils.instantiate(cfg.model)
        assert model.num_parameters() == {"52m": 51_961_849, "186m": 185_149_545}[option]
    if group == "trainer" and option not in ("cpu", "default"):
        assert cfg.trainer.precision == "bf16-mixed" or option == "ddp"
    if option == "paper":
        assert cfg.effective_batch_size == 2048 and cfg.trainer.precision == "bf16-mixed"
        with open_dict(cfg):
            cfg.effective_batch_size = 8  # 2048 sequences per step is the whole sample corpus, many times
    metrics = train_script.train(cfg)
    assert np.isfinite(metrics["val/loss"])


def entropy(counts):
    p = np.asarray(counts, dtype=float) / np.sum(counts)
    return float(-(p * np.log(p)).sum())


def test_short_cpu_run_learns(tmp_path, data_dir):
    """L0 sanity: a short run beats the best context-free predictor of every objective."""
    cfg = compose_cfg(tmp_path, data_dir, fast(200, "logger=csv"))
    metrics = train_script.train(cfg)
    from omnigenome.data.sample_corpus import ensure_sample_corpus
    from omnigenome.data.shards import ShardedCorpus
    from omnigenome.structure import to_labels
    val = ShardedCorpus(ensure_sample_corpus(data_dir / "sample_corpus", num_records=500) / "valid")
    seqs = "".join(r.sequence for r in val)
    labels = np.concatenate([to_labels(r.structure) for r in val])
    nucleotide_entropy = entropy([seqs.count(c) for c in "ACGU"])  # about ln 4 = 1.386
    label_entropy = entropy(np.bincount(labels))  # about 1.07
    assert metrics["val/mlm/loss"] < nucleotide_entropy - 0.01
    assert metrics["val/str2seq/loss"] < nucleotide_entropy - 0.01
    assert metrics["val/seq2str/loss"] < label_entropy - 0.03
    assert metrics["val/loss"] < 2 * nucleotide_entropy + label_entropy - 0.1
    assert (tmp_path / "run" / "csv" / "metrics.csv").is_file()


class SimulatedCrash(RuntimeError):
    pass


class CrashAt(L.Callback):
    """Saves a checkpoint after optimizer step `step`, then dies like a killed job."""

    def __init__(self, step, path):
        self.step, self.path = step, path

    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step == self.step:
            trainer.save_checkpoint(self.path)
            raise SimulatedCrash(f"killed after step {self.step}")


@pytest.mark.parametrize("accumulate,crash_at,max_tokens", [(1, 5, 3000), (3, 12, 8000), (3, 13, 8000)])
def test_stop_and_resume_reproduces_losses(tmp_path, data_dir, accumulate, crash_at, max_tokens):
    """Kill a run after a step, resume from the checkpoint: every later loss equals the uninterrupted run's.
    The other cases accumulate gradients (35 micro-batches, 12 optimizer steps per epoch) and die at the end
    of the first epoch and one step into the second."""
    steps = 14
    over = fast(steps, "logger=csv", f"trainer.accumulate_grad_batches={accumulate}", f"module.total_steps={steps}",
                "module.scheduler.warmup_steps=4") + [f"data.max_tokens={max_tokens}"] + SMALL_MODEL
    full = compose_cfg(tmp_path / "full", data_dir, over)
    train_script.train(full)
    expected = read_csv_losses(tmp_path / "full" / "run" / "csv" / "metrics.csv")

    ckpt = tmp_path / "crash.ckpt"
    first = compose_cfg(tmp_path / "a", data_dir, over)
    L.seed_everything(first.seed, workers=True)
    dm = hydra.utils.instantiate(first.data)
    module = hydra.utils.instantiate(first.module)
    trainer = hydra.utils.instantiate(first.trainer, callbacks=[CrashAt(crash_at, ckpt)], logger=False)
    with pytest.raises(SimulatedCrash):
        trainer.fit(module, datamodule=dm)
    assert ckpt.is_file() and trainer.global_step == crash_at
    assert trainer.current_epoch == (1 if crash_at == 13 else 0)

    resumed = compose_cfg(tmp_path / "b", data_dir, over + [f"ckpt_path={ckpt}"])
    train_script.train(resumed)
    got = read_csv_losses(tmp_path / "b" / "run" / "csv" / "metrics.csv")
    assert sorted(got) == [s for s in sorted(expected) if s >= crash_at]
    for step, loss in got.items():
        assert loss == expected[step], f"step {step}: resumed {loss} != uninterrupted {expected[step]}"


def test_train_py_command_line_prints_summary(tmp_path, data_dir):
    env = dict(os.environ, WANDB_MODE="offline")
    common = [f"paths.log_dir={tmp_path}/logs", f"paths.data_dir={data_dir}", "data.sample.num_records=500",
              *SMALL_MODEL, "trainer.val_check_interval=3", "data.max_tokens=3000", "logger=[csv,wandb]",
              "callbacks.throughput.every_n_steps=2", "callbacks.throughput.peak_flops=1e12",
              "trainer.log_every_n_steps=1"]
    out = subprocess.run([sys.executable, "train.py", "trainer.max_steps=6", *common],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    for name in ("mlm", "str2seq", "seq2str", "total"):
        assert name in out.stdout
    assert "last checkpoint:" in out.stdout and "last.ckpt" in out.stdout
    # no noise a user did not ask for: one parameter count, no tips, no environment lines, plain labels
    printed = out.stdout + out.stderr
    assert printed.count("parameters") == 1 and "model: " in printed
    for noise in ("Tip", "GPU available", "TPU available", "LeafSpec", "Logger:", "| Name", "Total params"):
        assert noise not in printed, noise
    assert "metrics:" in out.stdout
    run_dirs = list(Path(tmp_path, "logs", "pretrain", "runs").iterdir())
    assert len(run_dirs) == 1
    run_id = (run_dirs[0] / "wandb_run_id").read_text().strip()
    with open(run_dirs[0] / "csv" / "metrics.csv") as f:
        columns = set(next(csv.reader(f)))
    assert {"train/lr", "perf/tokens_per_s", "perf/mfu", "train/mlm/acc", "train/seq2str/loss", "val/str2seq/loss"} <= columns
    # the resolved config went to the loggers
    assert "model" in (run_dirs[0] / "csv" / "hparams.yaml").read_text()

    # resume with ckpt_path=last: the newest last.ckpt of this task, and the same W&B run
    out2 = subprocess.run([sys.executable, "train.py", "trainer.max_steps=9", "ckpt_path=last", *common],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out2.returncode == 0, out2.stderr[-3000:]
    assert "steps: 9" in out2.stdout
    new_dir = [d for d in Path(tmp_path, "logs", "pretrain", "runs").iterdir() if d != run_dirs[0]][0]
    assert (new_dir / "wandb_run_id").read_text().strip() == run_id

    # evaluate.py scores the checkpoint, and the same weights as a Hugging Face directory, per objective
    ckpt = new_dir / "checkpoints" / "last.ckpt"
    hf_dir = tmp_path / "hf"
    load_model(str(ckpt)).save_pretrained(hf_dir)
    scores = []
    for path in (ckpt, hf_dir):
        ev = subprocess.run([sys.executable, "evaluate.py", f"ckpt={path}", f"paths.log_dir={tmp_path}/logs",
                             f"paths.data_dir={data_dir}", "data.sample.num_records=500", "data.max_tokens=3000"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert ev.returncode == 0, ev.stderr[-3000:]
        assert "seq2str" in ev.stdout and "valid loss" in ev.stdout
        scores.append(ev.stdout.split("\n")[-3:])
    assert scores[0] == scores[1]  # same weights, same fixed validation masks: same numbers


def test_compiled_training_step_matches_eager(tmp_path, data_dir):
    """module.compile=true compiles the encoder once for all packed shapes; its losses follow eager's."""
    losses = {}
    for compiled in (False, True):
        cfg = compose_cfg(tmp_path / str(compiled), data_dir,
                          fast(4, "logger=csv", f"module.compile={compiled}") + SMALL_MODEL)
        train_script.train(cfg)
        losses[compiled] = read_csv_losses(tmp_path / str(compiled) / "run" / "csv" / "metrics.csv")
    assert sorted(losses[True]) == [0, 1, 2, 3]
    assert losses[True][0] == pytest.approx(losses[False][0], abs=1e-5)
    for step in losses[True]:
        assert losses[True][step] == pytest.approx(losses[False][step], abs=1e-3)


def test_effective_batch_size_sets_accumulation(tmp_path, data_dir):
    cfg = compose_cfg(tmp_path, data_dir, ["data.max_tokens=3000", "effective_batch_size=64"])
    dm = hydra.utils.instantiate(cfg.data)
    per_batch = dm.records_per_batch()
    assert 2 < per_batch < 20
    trainer = hydra.utils.instantiate(cfg.trainer, logger=False, callbacks=[])
    set_accumulation(trainer, dm, cfg.effective_batch_size)
    assert trainer.accumulate_grad_batches == round(64 / per_batch)


def test_ddp_two_processes_see_disjoint_data(tmp_path, data_dir):
    """2-process DDP on CPU (gloo) launched by torchrun: ranks train on disjoint records and, with no
    hydra.run.dir given, write one run directory (rank 0 chooses it, the other rank reads it from torchrun's store)."""
    audit = tmp_path / "audit"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29533", "train.py",
           "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.max_steps=4",
           "trainer.val_check_interval=1000000", "callbacks=none", "logger=csv", "data.max_tokens=3000",
           f"paths.log_dir={tmp_path}/logs", f"paths.data_dir={data_dir}",
           "data.sample.num_records=500", "+callbacks.audit._target_=omnigenome.training.callbacks.RecordAudit",
           f"+callbacks.audit.dirpath={audit}", *SMALL_MODEL]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-4000:]
    seen = [set(map(int, (audit / f"rank{r}.txt").read_text().split())) for r in (0, 1)]
    assert seen[0] and seen[1] and not seen[0] & seen[1]
    [run_dir] = Path(tmp_path, "logs", "pretrain", "runs").iterdir()
    assert (run_dir / "csv" / "metrics.csv").is_file() and (run_dir / ".hydra" / "config.yaml").is_file()
    assert (run_dir / "train.log").is_file() and (run_dir / "train.rank1.log").is_file()


@pytest.mark.parametrize("overrides,message", [
    (["foo=1"], "unknown setting 'foo' in train (valid keys there: task_name, seed,"),
    (["model=7b"], "model=7b: no such option (model: 186m, 52m, tiny)"),
    (["trainer.max_steps=-3"], "trainer: `max_steps` must be a non-negative integer or -1"),
    (["data=shards", "data.corpus_dir=/nonexistent"], "data.corpus_dir=/nonexistent: no such folder"),
    (["data.max_tokens=100"], "data.max_tokens=100: a batch must hold the longest record"),
    (["experiment=finetune"], "fine-tuning needs task=<suite>/<name>"),
])
def test_bad_settings_stop_before_anything_starts_in_one_line(tmp_path, data_dir, overrides, message):
    logs = tmp_path / "logs"
    out = subprocess.run([sys.executable, "train.py", *overrides, f"paths.log_dir={logs}", f"paths.data_dir={data_dir}"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2, out.stderr[-2000:]
    assert out.stderr.strip().splitlines() == [f"error: {out.stderr.strip()[len('error: '):]}"]
    assert message in out.stderr
    assert not logs.exists() or not list(logs.iterdir())  # no run directory is left behind


def test_empty_corpus_stops_in_one_line(tmp_path, data_dir):
    empty = tmp_path / "empty.fa"
    empty.write_text("")
    from omnigenome.cli import main as cli_main
    assert cli_main(["prep", str(empty), "--out", str(tmp_path / "E"), "progress=false"]) == 1
    manifest = json.loads((tmp_path / "E" / "manifest.json").read_text())  # written, with its counts
    assert manifest["counts"]["input"] == 0
    out = subprocess.run([sys.executable, "train.py", "data=shards", f"data.corpus_dir={tmp_path / 'E'}",
                          f"paths.log_dir={tmp_path}/logs"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "the train split is empty" in out.stderr
