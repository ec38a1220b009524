"""omnigenome predict: rows equal the task model run on each sequence alone (every head, from checkpoints
made here), and, after `train.py experiment=finetune`, equal the module's test-epoch predictions that
evaluate.py scores (SSP and a sequence task with LoRA and the structure in context)."""
import json
import sys

import numpy as np
import pytest
import torch

from conftest import ROOT
from omnigenome import OmniGenomeModel
from omnigenome.cli import main as cli_main
from omnigenome.data.benchmarks import task_config
from omnigenome.model.backbones import OmniGenomeBackbone
from omnigenome.model.task import TaskModel
from omnigenome.structure import pair_table

SEQS = {"a": "GGGGAAACCCCAUAUGGGAAACCCAU", "b": "ACGUACGUAAAACGUACGU", "c": "GCGGAUUUAGCUCAGUUGGGAGAGCGC"}

HEADS = {"sequence_classification": (3, ["x", "y", "z"]), "multilabel": (2, ["p", "q"]),
         "sequence_regression": (2, None), "token_classification": (3, ["(", ")", "."]),
         "token_regression": (1, None)}


def task_checkpoint(path, head, lora=0, structure_input=False, pooling="mean"):
    """A checkpoint in the layout train.py experiment=finetune writes (what load_task_model reads)."""
    torch.manual_seed(1)
    num, names = HEADS[head]
    task = {"name": f"test/{head}", "suite": "test", "head": head, "num_labels": num, "label_names": names,
            "metrics": [], "max_length": 64, "label_kind": "structure" if names == ["(", ")", "."] else None}
    backbone = OmniGenomeBackbone(OmniGenomeModel(hidden_size=32, num_layers=2, num_heads=2, ffn_size=64))
    hp = {"task": task, "head_dropout": 0.1, "pooling": pooling, "freeze_encoder": False,
          "lora": {"rank": lora, "alpha": 8, "dropout": 0.0}, "structure_input": structure_input}
    model = TaskModel(backbone, task, **{k: v for k, v in hp.items() if k != "task"})
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)  # LoRA's up-projections start at 0: make them count
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}, "hyper_parameters": hp,
                "backbone": backbone.spec()}, path)
    return model.eval()


def alone(model, seq, structure=None):
    """The task model's output for one sequence batched alone."""
    tok = model.backbone.tokenizer
    with torch.no_grad():
        return model(tok.collate([tok.encode(seq, structure)])).double()


@pytest.mark.parametrize("head", list(HEADS))
def test_predict_rows_equal_the_task_model_on_each_sequence(head, tmp_path):
    ckpt = tmp_path / "best.ckpt"
    model = task_checkpoint(ckpt, head, lora=2 if head == "sequence_classification" else 0,
                            structure_input=head == "multilabel", pooling="cls" if head == "sequence_regression" else "mean")
    fasta = tmp_path / "in.fa"
    fasta.write_text("".join(f">{k}\n{v}\n" for k, v in SEQS.items()) + ">long\n" + "ACGU" * 20 + "\n")
    out = tmp_path / "pred.jsonl"
    assert cli_main(["predict", str(ckpt), str(fasta), "--out", str(out), "--probabilities", "--no-progress"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == list(SEQS)  # "long" (80 nt > max_length 64 tokens) is skipped
    meta = json.loads((tmp_path / "pred.meta.json").read_text())
    assert meta["skipped"]["too_long"] == 1 and meta["written"] == 3
    from omnigenome.folding import fold
    for row, seq in zip(rows, SEQS.values()):
        out_ = alone(model, seq, fold(seq)[0] if head == "multilabel" else None)
        if head == "sequence_classification":
            p = torch.softmax(out_[0], -1).numpy()
            assert row["label"] == "xyz"[p.argmax()]
            np.testing.assert_allclose([row[f"prob_{n}"] for n in "xyz"], p, atol=1e-5)
        elif head == "multilabel":
            p = torch.sigmoid(out_[0]).numpy()
            np.testing.assert_allclose([row["prob_p"], row["prob_q"]], p, atol=1e-5)
            assert row["labels"] == ";".join(n for n, v in zip("pq", p) if v >= 0.5)
        elif head == "sequence_regression":
            np.testing.assert_allclose([row["target_0"], row["target_1"]], out_[0].numpy(), atol=1e-5)
        elif head == "token_classification":
            p = torch.softmax(out_, -1).numpy()
            np.testing.assert_allclose(row["probabilities"], p, atol=1e-5)
            pair_table(row["structure"])  # valid decoding: balanced
            assert len(row["structure"]) == len(seq)
        else:
            np.testing.assert_allclose(row["values"], out_[:, 0].numpy(), atol=1e-5)
    if head == "token_classification":  # argmax decoding is the per-nucleotide most probable label
        assert cli_main(["predict", str(ckpt), str(fasta), "--out", str(tmp_path / "p.csv"), "--decode", "argmax",
                         "--no-progress"]) == 0
        import csv
        first = next(csv.DictReader(open(tmp_path / "p.csv")))
        p = torch.softmax(alone(model, SEQS["a"]), -1).numpy()
        assert first["structure"] == "".join("()."[k] for k in p.argmax(1))


# --- after train.py experiment=finetune: the same predictions as the test epoch evaluate.py scores -------------

def finetune(tmp_path, task, extra=()):
    from hydra import compose, initialize_config_module
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict
    sys.path.insert(0, str(ROOT))
    import train as train_script
    run = tmp_path / task.replace("/", "_")
    overrides = [f"paths.log_dir={tmp_path}/logs", f"paths.data_dir={tmp_path}/data", f"paths.output_dir={run}",
                 "experiment=finetune", f"task={task}", "seed=1", "model.hidden_size=32", "model.num_layers=2",
                 "model.num_heads=2", "model.ffn_size=64", "trainer.max_steps=2", "trainer.max_epochs=-1",
                 "trainer.val_check_interval=2", "trainer.check_val_every_n_epoch=null", "data.max_tokens=2048",
                 "data.train_limit=12", "data.eval_limit=8", "module.optimizer.lr=1e-3", "finetune.baselines=false",
                 "logger=none", "callbacks.progress_bar.refresh_rate=0", *extra]
    with initialize_config_module("omnigenome.conf", version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    train_script.train(cfg)
    return run / "checkpoints" / "best.ckpt"


def evaluated_test_epoch(ckpt, task, cache_dir):
    """(test metrics, per-item probabilities in the test epoch's order, the examples in that order), computed as
    evaluate.py computes them: the module from the checkpoint on the task's test split (eval_limit 8), with the
    task as trained (what `evaluate.py task=... task.max_length=...` reads with the training overrides)."""
    import lightning as L

    from omnigenome.finetune.datamodule import FinetuneDataModule
    from omnigenome.finetune.module import FinetuneModule
    module = FinetuneModule.from_checkpoint(str(ckpt))
    task = {**task, "max_length": module.task["max_length"]}
    dm = FinetuneDataModule(task, module.backbone.tokenizer, max_tokens=16384, eval_limit=8, cache_dir=str(cache_dir),
                            structure_input=module.hparams.structure_input)
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_checkpointing=False,
                        enable_model_summary=False)
    metrics = trainer.test(module, datamodule=dm, verbose=False)[0]
    preds, _, _ = module.epoch_predictions()
    examples = dm.load_examples("test")
    order = [examples[i] for key in dm.test_dataloader().sampler for i in key.indices]
    return metrics, torch.softmax(preds.double(), -1).numpy(), order


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory, shared_data):
    tmp = tmp_path_factory.mktemp("finetune")
    return {"rgb/ssp_archive2": finetune(tmp, "rgb/ssp_archive2"),
            # 300 nt with the structure in context needs 603 tokens: the task's 512 would crop every input
            "gue/prom_300_tata": finetune(tmp, "gue/prom_300_tata", ["finetune.lora.rank=2",
                                                                      "finetune.structure_input=true",
                                                                      "task.max_length=1024"]),
            "tmp": tmp}


@pytest.mark.slow
@pytest.mark.parametrize("task_name", ["rgb/ssp_archive2", "gue/prom_300_tata"])
def test_predict_equals_the_test_epoch_of_evaluate(finetuned, task_name, tmp_path):
    from omnigenome.metrics import task_metrics
    from omnigenome.model.task import load_task_model
    ckpt = finetuned[task_name]
    task = task_config(task_name)
    model = load_task_model(str(ckpt))
    assert model.structure_input == (task_name == "gue/prom_300_tata") and model.lora_rank == (2 if model.structure_input else 0)
    metrics, probs, examples = evaluated_test_epoch(ckpt, task, finetuned["tmp"] / "cache")
    fasta = tmp_path / "test.fa"
    fasta.write_text("".join(f">{e.id}\n{e.sequence}\n" for e in examples))
    out = tmp_path / "pred.parquet"
    assert cli_main(["predict", str(ckpt), str(fasta), "--out", str(out), "--probabilities", "--no-progress"]) == 0
    import pyarrow.parquet as pq
    rows = pq.read_table(out).to_pylist()
    assert [r["id"] for r in rows] == [e.id for e in examples]
    if task["head"] == "token_classification":
        mine = np.concatenate([np.asarray(r["probabilities"]) for r in rows])
        labels = np.concatenate([e.label for e in examples])
        assert all(len(r["structure"]) == len(e.sequence) for r, e in zip(rows, examples))
    else:
        mine = np.asarray([[r[f"prob_{n}"] for n in task["label_names"]] for r in rows])
        labels = np.asarray([int(e.label) for e in examples])
    assert mine.shape == probs.shape
    np.testing.assert_allclose(mine, probs, atol=1e-5)
    again = task_metrics(list(task["metrics"]), torch.as_tensor(mine), torch.as_tensor(labels), task["head"],
                         int(task["num_labels"]), probabilities=True)
    for name, value in again.items():
        assert value == pytest.approx(metrics[f"test/{name}"], abs=1e-6), name
