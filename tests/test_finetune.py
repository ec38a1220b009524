"""Fine-tuning: every head learns a few steps, losses count scored items only, LoRA / frozen encoder /
structure input behave, and train.py experiment=finetune -> evaluate.py reproduce the same test metrics."""
import copy
import json
import re
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_module
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

from conftest import ROOT
from omnigenome import OmniGenomeModel
from omnigenome.constants import IGNORE_INDEX
from omnigenome.data.benchmarks import load_split, task_config
from omnigenome.data.readers import Example
from omnigenome.finetune.baselines import constant_baseline, constant_prediction, vienna_baseline
from omnigenome.finetune.datamodule import FinetuneDataModule, collate, encode_examples
from omnigenome.finetune.module import FinetuneModule
from omnigenome.folding import fold
from omnigenome.metrics import task_metrics
from omnigenome.model.attention import PackedLayout
from omnigenome.model.backbones import OmniGenomeBackbone
from omnigenome.model.heads import head_inputs, scored_items, task_loss
from omnigenome.model.lora import LoRALinear, merge_lora
from omnigenome.model.task import load_task_model
from omnigenome.tokenizer import CLS_ID, EOS_ID, OmniGenomeTokenizer

sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "experiments"))
import compare_models  # noqa: E402
import evaluate as evaluate_script  # noqa: E402
import train as train_script  # noqa: E402


def tiny_model(seed=0):
    torch.manual_seed(seed)
    return OmniGenomeModel(hidden_size=32, num_layers=2, num_heads=2, ffn_size=64)


def tiny_backbone(seed=0):
    return OmniGenomeBackbone(tiny_model(seed))


TOKENIZER = tiny_backbone().tokenizer


def synthetic_task(head, num_labels, metrics, monitor, mode="max"):
    return {"name": f"synthetic/{head}", "suite": "synthetic", "format": "gue_csv", "data_dir": "/nonexistent",
            "splits": {"train": "train", "valid": "valid", "test": "test"}, "head": head,
            "num_labels": num_labels, "class_weights": None, "metrics": metrics, "monitor": monitor,
            "monitor_mode": mode, "max_length": 64}


def synthetic_examples(head, n=8, seed=0):
    """Random RNA; multilabel: (has GGG, has AAA, GC > 50%); regression: (GC fraction, length / 30)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        seq = "".join(rng.choice(list("ACGU"), size=int(rng.integers(12, 30))))
        gc = (seq.count("G") + seq.count("C")) / len(seq)
        if head == "multilabel":
            label = np.asarray(["GGG" in seq, "AAA" in seq, gc > 0.5], dtype=np.float32)
        else:
            label = np.asarray([gc, len(seq) / 30], dtype=np.float32)
        out.append(Example(f"s{i}", seq, label))
    return out


def real(name, split, n):
    task = task_config(name)
    return task, load_split(task, split)[:n]


def head_case(head, shared_data):
    if head == "token_classification":
        return real("rgb/ssp_archive2", "train", 8)
    if head == "token_regression":
        return real("rgb/mrna", "test", 8)
    if head == "sequence_classification":
        task, examples = real("gue/prom_300_tata", "test", 400)
        # 12 + 4 examples, cropped to 62 nt: within a few steps the head learns at least the class prior
        by_class = [[e for e in examples if int(e.label) == c] for c in (0, 1)]
        return {**task, "max_length": 64}, by_class[0][:12] + by_class[1][:4]
    if head == "multilabel":
        return synthetic_task(head, 3, ["macro_f1", "roc_auc"], "roc_auc"), synthetic_examples(head)
    return synthetic_task(head, 2, ["rmse", "r2"], "rmse", "min"), synthetic_examples(head)


def batch_of(task, examples, structures=None):
    items, _ = encode_examples(examples, task, TOKENIZER, structures)
    return collate(items, task["head"], TOKENIZER)


def module_for(task, backbone=None, **kw):
    return FinetuneModule(backbone or tiny_backbone(), task, head_dropout=0.0, **kw)


def train_steps(module, batch, steps=8, lr=3e-3):
    opt = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=lr)
    losses = []
    for step in range(steps):
        loss = module.loss(module(batch), batch["labels"])
        opt.zero_grad()
        loss.backward()
        if step == 0:
            assert module.model.head.out.weight.grad.abs().sum() > 0
            grads = [p.grad for p in module.backbone.parameters() if p.requires_grad]
            assert all(g is not None for g in grads) and sum(g.abs().sum() for g in grads) > 0
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("head", ["sequence_classification", "multilabel", "sequence_regression",
                                  "token_classification", "token_regression"])
def test_each_head_learns_a_few_steps(head, shared_data):
    task, examples = head_case(head, shared_data)
    assert task["head"] == head
    batch = batch_of(task, examples)
    module = module_for(task)
    losses = train_steps(module, batch)
    assert all(np.isfinite(losses)), losses
    assert losses[-1] < losses[0], losses
    module.eval()
    with torch.no_grad():
        preds, targets = scored_items(head, module(batch), batch["labels"])
    scores = task_metrics(task["metrics"], preds, targets, head, int(task["num_labels"]), probabilities=False)
    assert set(scores) == set(task["metrics"])


def test_class_weights_weight_the_loss(shared_data):
    task, examples = real("rgb/ssp_archive2", "train", 4)
    batch = batch_of(task, examples)
    logits = torch.randn(batch["labels"].shape[0], 3)
    plain = task_loss("token_classification", logits, batch["labels"])
    assert torch.allclose(plain, task_loss("token_classification", logits, batch["labels"], torch.ones(3)))
    w = torch.tensor([1.0, 1.0, 5.0])
    weighted = task_loss("token_classification", logits, batch["labels"], w)
    y = batch["labels"]
    manual = (w[y] * F.cross_entropy(logits, y, reduction="none")).sum() / w[y].sum()
    assert not torch.allclose(weighted, plain) and torch.allclose(weighted, manual)
    # the task's class_weights reach the module's loss (SNMD's balanced weights)
    snmd = task_config("rgb/snmd")
    module = module_for(snmd)
    assert torch.allclose(module.class_weights, torch.tensor(snmd["class_weights"]))


def test_only_scored_positions_count(shared_data):
    # OpenVaccine scores the first 68 bases: predictions beyond change neither loss nor metrics
    task, examples = real("rgb/mrna", "test", 4)
    batch = batch_of(task, examples)
    labels = batch["labels"]
    unscored = ~torch.isfinite(labels).all(-1)
    assert unscored.sum() == sum(len(e.sequence) - 68 for e in examples)
    logits = torch.randn(labels.shape)
    moved = logits.clone()
    moved[unscored] += 100.0
    assert torch.equal(task_loss("token_regression", logits, labels), task_loss("token_regression", moved, labels))
    p1, t1 = scored_items("token_regression", logits, labels)
    p2, _ = scored_items("token_regression", moved, labels)
    assert p1.shape[0] == 68 * len(examples) and torch.equal(p1, p2)
    assert task_metrics(task["metrics"], p1, t1, "token_regression", 3) == task_metrics(task["metrics"], p2, t1,
                                                                                         "token_regression", 3)
    # token classification: positions labelled -100 (SNMR: unmutated bases) are ignored alike
    snmr, ex = real("rgb/snmr", "test", 4)
    b = batch_of(snmr, ex)
    logits = torch.randn(b["labels"].shape[0], 4)
    moved = logits.clone()
    moved[b["labels"] == IGNORE_INDEX] *= -50
    assert torch.equal(task_loss("token_classification", logits, b["labels"]),
                       task_loss("token_classification", moved, b["labels"]))


def test_lora_trains_only_adapters_and_head_and_starts_at_the_base_model(shared_data):
    task, examples = real("rgb/ssp_archive2", "train", 4)
    batch = batch_of(task, examples)
    backbone = tiny_backbone()
    model = backbone.model
    layout = PackedLayout.from_cu_seqlens(batch["cu_seqlens"])
    with torch.no_grad():
        before = model.encode(batch["input_ids"], layout, batch["position_ids"])
    base_qkv = model.layers[0].qkv.weight.detach().clone()
    module = module_for(task, backbone, lora={"rank": 4, "alpha": 8})
    assert all(isinstance(b.qkv, LoRALinear) and b.qkv.parts == [(0, 32), (64, 96)] for b in model.layers)
    with torch.no_grad():
        assert torch.allclose(model.encode(batch["input_ids"], layout, batch["position_ids"]), before, atol=1e-6)
    trainable = [n for n, p in module.named_parameters() if p.requires_grad]
    assert trainable and all(n.startswith("model.head.") or ".qkv.down." in n or ".qkv.up." in n for n in trainable)
    losses = train_steps(module, batch, steps=6)
    assert losses[-1] < losses[0]
    assert torch.equal(model.layers[0].qkv.base.weight, base_qkv)
    assert all(up.weight.abs().sum() > 0 for up in model.layers[0].qkv.up)
    # the key third is untouched; merging the adapters into plain linear layers computes the same function
    with torch.no_grad():
        merged_qkv = model.layers[0].qkv.merged()
        assert torch.equal(merged_qkv.weight[32:64], base_qkv[32:64]) and not torch.equal(merged_qkv.weight, base_qkv)
        adapted = model.encode(batch["input_ids"], layout, batch["position_ids"])
        merged = merge_lora(copy.deepcopy(model))
        assert torch.allclose(merged.encode(batch["input_ids"], layout, batch["position_ids"]), adapted, atol=1e-5)


def test_frozen_encoder_keeps_its_weights(shared_data):
    task, examples = real("gue/prom_300_tata", "test", 8)
    batch = batch_of(task, examples)
    module = module_for(task, freeze_encoder=True)
    encoder = {k: v.clone() for k, v in module.backbone.state_dict().items()}
    head = module.model.head.out.weight.detach().clone()
    opt = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(3):
        loss = module.loss(module(batch), batch["labels"])
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert all(torch.equal(v, module.backbone.state_dict()[k]) for k, v in encoder.items())
    assert not torch.equal(head, module.model.head.out.weight)


def test_structure_input_layout_and_fold_cache(shared_data, tmp_path):
    task = task_config("rgb/ssp_archive2")
    dm = FinetuneDataModule(task, TOKENIZER, structure_input=True, cache_dir=str(tmp_path), eval_limit=3)
    items = dm.encode("test")
    examples = dm.load_examples("test")
    assert list(tmp_path.glob("vienna-mfe-*.json"))  # folded once, cached
    batch = collate(items, "token_classification", TOKENIZER)
    tok = OmniGenomeTokenizer()  # the model's alphabet: the RGB files' U is read as T
    cu = batch["cu_seqlens"].tolist()
    for k, ex in enumerate(examples):
        struct = fold(ex.sequence)[0]
        expected = [CLS_ID, *tok.encode_array(ex.sequence)[1:-1], EOS_ID, *tok._ids(struct), EOS_ID]
        assert batch["input_ids"][cu[k]:cu[k + 1]].tolist() == expected
        # the head reads the nucleotides of the sequence half only
        assert batch["nucleotide_index"][batch["nucleotide_seq"] == k].tolist() == list(range(cu[k] + 1, cu[k] + 1 + len(ex.sequence)))
        assert batch["position_ids"][cu[k]:cu[k + 1]].tolist() == list(range(2 * len(ex.sequence) + 3))
    assert batch["labels"].shape[0] == sum(len(e.sequence) for e in examples)


def test_mean_pooling_reads_the_nucleotides_only():
    task = synthetic_task("sequence_regression", 2, ["rmse"], "rmse", "min")
    examples = synthetic_examples("sequence_regression", n=3)
    batch = batch_of(task, examples, structures=["." * len(e.sequence) for e in examples])
    hidden = torch.randn(int(batch["cu_seqlens"][-1]), 5)
    assert batch["first_token_index"].tolist() == batch["cu_seqlens"][:-1].tolist()
    pooled = head_inputs(hidden, batch, "sequence_regression", "mean")
    cls = head_inputs(hidden, batch, "sequence_regression", "cls")
    cu = batch["cu_seqlens"].tolist()
    for k, ex in enumerate(examples):
        assert torch.allclose(pooled[k], hidden[cu[k] + 1: cu[k] + 1 + len(ex.sequence)].mean(0), atol=1e-6)
        assert torch.equal(cls[k], hidden[cu[k]])


def test_long_sequences_are_cropped_with_their_labels(shared_data):
    task, examples = real("rgb/ssp_archive2", "train", 6)
    short = {**task, "max_length": 20}
    items, cropped = encode_examples(examples, short, TOKENIZER)
    assert cropped == sum(len(e.sequence) > 18 for e in examples) > 0
    assert all(it.tokens.num_nucleotides == min(18, len(e.sequence)) == len(it.label) for it, e in zip(items, examples))
    items, _ = encode_examples(examples, short, TOKENIZER, ["." * len(e.sequence) for e in examples])
    assert all(len(it.tokens.ids) <= 20 and it.tokens.num_nucleotides == min(8, len(e.sequence))
               for it, e in zip(items, examples))


def test_baselines(shared_data, tmp_path):
    task, train = real("gue/prom_300_tata", "train", 50)
    items, _ = encode_examples(train, task, TOKENIZER)
    majority = int(np.bincount([int(e.label) for e in train]).argmax())
    assert int(constant_prediction(task, items).argmax()) == majority
    scores = constant_baseline(task, items, items)
    assert scores["accuracy"] == pytest.approx(np.mean([int(e.label) == majority for e in train]))
    reg = synthetic_task("sequence_regression", 2, ["rmse"], "rmse", "min")
    reg_items, _ = encode_examples(synthetic_examples("sequence_regression"), reg, TOKENIZER)
    mean = torch.stack([torch.as_tensor(it.label) for it in reg_items]).mean(0)
    assert torch.allclose(constant_prediction(reg, reg_items), mean)
    # ViennaRNA on a structure task, scored on the same items as the model: equals the zero-shot metric
    ssp, test = real("rgb/ssp_archive2", "test", 5)
    ssp_items, _ = encode_examples(test, ssp, TOKENIZER)
    from omnigenome.metrics import structure_scores
    vienna = vienna_baseline(ssp, test, ssp_items, cache_dir=str(tmp_path))
    reference = structure_scores([fold(e.sequence)[0] for e in test], [r["label"] for r in
                                  map(json.loads, open(shared_data / "rgb/RNA-SSP-Archive2/test.json").readlines()[:5])])
    assert vienna["macro_f1"] == pytest.approx(reference["macro_f1"], abs=1e-6)


# --- train.py / evaluate.py end to end ---------------------------------------------------------------

def compose_finetune(tmp_path, overrides=(), config_name="train"):
    base = [f"paths.log_dir={tmp_path}/logs", f"paths.data_dir={tmp_path}/data"]
    if config_name == "train":
        base.append(f"paths.output_dir={tmp_path}/run")
    with initialize_config_module("omnigenome.conf", version_base="1.3"):
        cfg = compose(config_name, overrides=base + list(overrides), return_hydra_config=True)
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


SMALL = ["model.hidden_size=32", "model.num_layers=2", "model.num_heads=2", "model.ffn_size=64"]


def test_train_py_finetune_then_evaluate_py_reproduces_test_metrics(shared_data, tmp_path, capsys):
    cfg = compose_finetune(tmp_path, ["experiment=finetune", "task=rgb/ssp_archive2", "seed=1", *SMALL,
                                      "trainer.max_steps=4", "trainer.max_epochs=-1", "trainer.val_check_interval=2",
                                      "trainer.check_val_every_n_epoch=null", "data.max_tokens=1024",
                                      "data.train_limit=24", "data.eval_limit=12", "module.optimizer.lr=1e-3",
                                      "logger=csv", "callbacks.progress_bar.refresh_rate=0"])
    metrics = train_script.train(cfg)
    out = capsys.readouterr().out
    assert "majority test" in out and "ViennaRNA test" in out and "model test" in out
    record = json.loads((tmp_path / "run" / "test_metrics.json").read_text())
    best = tmp_path / "run" / "checkpoints" / "best.ckpt"
    assert record["checkpoint"] == str(best) and best.is_file()
    assert record["num_test"] == 12 and record["steps"] == 4
    assert set(record["metrics"]) == {"macro_f1", "mcc", "loss", "items"} and record["metrics"]["items"] > 12 * 50
    assert set(record["baselines"]) == {"majority", "ViennaRNA"}
    assert metrics["test/macro_f1"] == pytest.approx(record["metrics"]["macro_f1"])

    eval_cfg = compose_finetune(tmp_path, ["evaluation=finetune", "task=rgb/ssp_archive2", f"ckpt={best}",
                                           "eval_limit=12"], "eval")
    again = evaluate_script.evaluate(eval_cfg)
    for name, value in record["metrics"].items():
        assert again[f"test/{name}"] == pytest.approx(value, abs=1e-6), name
    out = capsys.readouterr().out
    assert "12 test examples scored" in out and "the run scored a different set" not in out
    # the whole test split: evaluate.py says how many items, and that the run scored others
    eval_cfg = compose_finetune(tmp_path, ["evaluation=finetune", "task=rgb/ssp_archive2", f"ckpt={best}"], "eval")
    evaluate_script.evaluate(eval_cfg)
    out = capsys.readouterr().out
    assert "285 test examples scored" in out and "data.eval_limit=12" in out
    model = load_task_model(str(best))
    assert model.task["name"] == "rgb/ssp_archive2" and not model.structure_input


def test_finetune_needs_a_task(tmp_path):
    cfg = compose_finetune(tmp_path, ["experiment=finetune"])
    with pytest.raises(ValueError, match="task="):
        train_script.train(cfg)


def test_data_dir_override_reaches_the_task(tmp_path):
    cfg = compose_finetune(tmp_path, ["experiment=finetune", "task=gue/tf_0", f"data_dir={tmp_path}"])
    assert cfg.task.data_dir == str(tmp_path)
    cfg = compose_finetune(tmp_path, ["experiment=finetune", "task=gue/tf_0"])
    assert cfg.task.data_dir.endswith("gue/tf/0")


# --- compare_models ----------------------------------------------------------------------------------

SSP_RECORDS = 30


def fake_cell(accuracy, ran):
    """A cell runner that writes what `train.py experiment=finetune` writes (test_metrics.json and
    test_predictions.npz) for a fake rgb/ssp_archive2 run: 30 test records of 4-9 nucleotides; a model predicts a
    record right with probability accuracy[model] (per record, seeded by the seed), else predicts class 2."""
    def run(cell, results_dir, train_overrides, settings):
        ran.append((cell.model, cell.task, cell.seed))
        rng = np.random.default_rng(0)  # the test split: the same records for every model and seed
        lengths = rng.integers(4, 10, SSP_RECORDS)
        targets = rng.integers(0, 2, lengths.sum())  # classes 0 and 1; 2 is the wrong guess
        records = np.repeat(np.arange(SSP_RECORDS), lengths)
        right = np.random.default_rng(cell.seed).random(SSP_RECORDS) < accuracy[cell.model]
        classes = np.where(right[records], targets, 2)
        preds = np.eye(3, dtype=np.float32)[classes] * 5
        run_dir = compare_models.run_dir_of(results_dir, cell)
        run_dir.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(run_dir / "test_predictions.npz", preds=preds, targets=targets, record_index=records,
                            record_ids=np.asarray([f"r{i}" for i in range(SSP_RECORDS)]))
        scores = task_metrics(["macro_f1", "mcc"], torch.from_numpy(preds), torch.from_numpy(targets),
                              "token_classification", 3, probabilities=False)
        return {"task": cell.task, "backbone": cell.model, "metrics": {**scores, "loss": 1.0, "items": float(len(targets))},
                "baselines": {"majority": {"macro_f1": 0.2, "mcc": 0.0}, "ViennaRNA": {"macro_f1": 0.6, "mcc": 0.4}},
                "monitor": "macro_f1", "monitor_mode": "max", "num_train": 100, "num_test": SSP_RECORDS,
                "truncated": {"train": [3, 100], "valid": [0, 20], "test": [1, SSP_RECORDS]}, "steps": 5}
    return run


def reference_interval(results_dir, models, seeds, resamples, confidence=0.95, seed=0):
    """The paired bootstrap of models[1] against models[0] written out by hand (scikit-learn's macro-F1): the same
    resamples of whole records, the seed-mean metric of each model on each resample, percentiles of the difference."""
    from sklearn.metrics import f1_score
    runs = {m: [np.load(results_dir / "runs" / m / "rgb/ssp_archive2" / f"seed{s}" / "test_predictions.npz")
                for s in seeds] for m in models}
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(resamples):
        counts = np.bincount(rng.integers(0, SSP_RECORDS, SSP_RECORDS), minlength=SSP_RECORDS)
        means = []
        for m in models:
            scores = []
            for z in runs[m]:
                take = np.repeat(np.arange(len(z["record_index"])), counts[z["record_index"]])
                scores.append(f1_score(z["targets"][take], z["preds"][take].argmax(1), average="macro"))
            means.append(np.mean(scores))
        diffs.append(means[1] - means[0])
    tail = 100 * (1 - confidence) / 2
    return np.percentile(diffs, [tail, 100 - tail])


def test_compare_models_plans_skips_resumes_and_reports(shared_data, tmp_path, capsys):
    results = tmp_path / "cmp"
    argv = ["models={good: null, poor: null}", "tasks=[rgb/ssp_archive2,rgb/ssp_rnastralign,rgb/snmd]", "seeds=[1,2]",
            f"results_dir={results}", "bootstrap.resamples=100", "trainer.max_steps=5", "data.eval_limit=30"]
    settings, passed = compare_models.load_settings(argv)
    assert settings["models"] == {"good": None, "poor": None} and settings["seeds"] == [1, 2]
    assert passed == ["trainer.max_steps=5", "data.eval_limit=30"]
    assert compare_models.task_plan("rgb/ssp_archive2", "skip") == ([], None)
    assert "no test split" in compare_models.task_plan("rgb/ssp_rnastralign", "skip")[1]  # not in ../shared/data
    assert "no training split" in compare_models.task_plan("rgb/snmd", "skip")[1]
    assert compare_models.task_plan("rgb/snmd", "valid")[0] == compare_models.VALID_AS_TRAIN

    ran = []
    accuracy = {"good": 0.9, "poor": 0.4}
    assert compare_models.compare(argv, runner=fake_cell(accuracy, ran)) == 0
    assert ran == [("good", "rgb/ssp_archive2", 1), ("good", "rgb/ssp_archive2", 2),
                   ("poor", "rgb/ssp_archive2", 1), ("poor", "rgb/ssp_archive2", 2)]
    cell = json.loads((results / "cells" / "poor" / "rgb__ssp_archive2__seed2.json").read_text())
    assert cell["overrides"] == ["trainer.max_steps=5", "data.eval_limit=30"] and cell["init_from"] is None
    ran.clear()
    assert compare_models.compare(argv, runner=fake_cell(accuracy, ran)) == 0  # finished cells are not rerun
    assert ran == []
    assert "0 cells run, 4 reused" in capsys.readouterr().out
    with pytest.raises(compare_models.SettingsError, match="was run with other settings.*trainer.max_steps=6"):
        compare_models.compare([*argv[:-2], "trainer.max_steps=6", "data.eval_limit=30"], runner=fake_cell(accuracy, ran))

    md = re.sub(" +", " ", (results / "results.md").read_text())  # the tables' cells are padded
    rows = list(__import__("csv").DictReader(open(results / "results.csv")))
    by = {(r["model"], r["metric"]): r for r in rows}
    good, poor = (float(by[(m, "macro_f1")]["mean"]) for m in ("good", "poor"))
    assert good > poor
    # the table: mean ± std over the two seeds, and the baselines of the same items beside them
    std = float(by[("good", "macro_f1")]["std"])
    assert f"| rgb/ssp_archive2 | macro_f1 ↑ | {good:.3f} ± {std:.3f} |" in md and "| 0.200 | 0.600 |" in md
    assert "rgb/snmd: no training split" in md and "rgb/ssp_rnastralign: no test split" in md
    assert "train 3/100, valid 0/20, test 1/30" in md  # truncated records per split
    assert (results / "results.png").is_file()
    # the paired difference: the seed-mean difference, and the bootstrap interval over records (exactly the
    # hand-written bootstrap's), which here lies below zero
    delta, low, high = (float(by[("poor", "macro_f1")][k]) for k in ("delta", "ci_low", "ci_high"))
    assert delta == pytest.approx(poor - good)
    ref_low, ref_high = reference_interval(results, ["good", "poor"], [1, 2], 100)
    assert (low, high) == (pytest.approx(ref_low, abs=1e-6), pytest.approx(ref_high, abs=1e-6))
    assert low < delta < high < 0
    assert f"| rgb/ssp_archive2 | macro_f1 | poor | {delta:+.3f} | [{low:+.3f}, {high:+.3f}] | 30" in md
    assert by[("good", "macro_f1")]["delta"] == ""  # the reference

    # no_train=valid adds SNMD's cells; a failed cell is reported and the others still count
    def failing(cell, results_dir, overrides, settings):
        if cell.model == "poor":
            raise RuntimeError("exit status 1; log x")
        return fake_cell(accuracy, ran)(cell, results_dir, overrides, settings)
    status = compare_models.compare([*argv[:2], "seeds=[1]", *argv[3:], "no_train=valid"], runner=failing)
    assert status == 1 and ("good", "rgb/snmd", 1) in ran
    assert "poor rgb/snmd seed 1: exit status 1" in (results / "results.md").read_text()


def test_compare_models_checks_settings_before_running(tmp_path):
    base = ["models={a: null}", "tasks=[gue/prom_300_tata]", f"results_dir={tmp_path}"]
    with pytest.raises(compare_models.SettingsError, match="unknown setting 'trainer.max_stpes'"):
        compare_models.compare([*base, "trainer.max_stpes=3"], runner=None)
    with pytest.raises(compare_models.SettingsError, match="unknown setting 'bootstrap.resampels'"):
        compare_models.compare([*base, "bootstrap.resampels=3"], runner=None)
    with pytest.raises(compare_models.SettingsError, match="init_from is set by each cell"):
        compare_models.compare([*base, "init_from=x"], runner=None)
    with pytest.raises(compare_models.SettingsError, match="models= is required"):
        compare_models.compare(base[1:], runner=None)
    with pytest.raises(compare_models.SettingsError, match="model b: init_from=multimolecule/rnafm: .*download it once .*--local-dir models/rnafm"):
        compare_models.compare(["models={a: null, b: multimolecule/rnafm}", *base[1:]], runner=None)
    assert not list(tmp_path.iterdir())  # nothing ran, nothing written
    assert compare_models.main([*base, "trainer.max_stpes=3"]) == 2


@pytest.mark.slow
def test_compare_models_command_line_end_to_end(shared_data, tmp_path):
    """Two tiny backbones (a random OmniGenome and an RNA-FM built with multimolecule) x one GUE task x two seeds
    through train.py subprocesses; tables and chart written; a rerun reuses the cells."""
    import subprocess
    import tiny_backbones
    rnafm = tiny_backbones.rnafm(tmp_path / "rnafm", hidden=32)
    argv = [sys.executable, "experiments/compare_models.py", f"models={{omnigenome: null, rnafm: {rnafm}}}",
            "tasks=[gue/prom_300_tata]", "seeds=[1,2]", f"results_dir={tmp_path}/cmp", "bootstrap.resamples=50",
            "threads=1", "parallel=2", *SMALL, "trainer.max_steps=3", "trainer.max_epochs=-1", "trainer.val_check_interval=3",
            "trainer.check_val_every_n_epoch=null", "data.train_limit=32", "data.eval_limit=16",
            "data.max_tokens=2048", "logger=csv", f"paths.data_dir={tmp_path}/data"]
    out = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    results = tmp_path / "cmp"
    for model in ("omnigenome", "rnafm"):
        assert len(list((results / "cells" / model).glob("*.json"))) == 2
        z = np.load(results / "runs" / model / "gue/prom_300_tata/seed1/test_predictions.npz")
        assert z["preds"].shape == (16, 2) and sorted(z["record_index"].tolist()) == list(range(16))
    md = (results / "results.md").read_text()
    assert "gue/prom_300_tata" in md and "±" in md and "majority / mean" in md and "| rnafm " in md
    assert "Paired difference from omnigenome" in md
    assert (results / "results.csv").is_file() and (results / "results.png").is_file()
    again = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert "0 cells run, 4 reused" in again.stdout
