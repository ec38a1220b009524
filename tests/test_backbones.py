"""Other backbones behind the one interface: tiny random models of each tokenizer kind (transformers' ESM with a
6-mer tokenizer, multimolecule's RNA-FM and DNABERT-2 with a BPE tokenizer trained here, BERT single-nucleotide
and overlapping 3-mers), written with save_pretrained (experiments/tiny_backbones.py), read through `init_from`.
The nucleotide -> token mapping on hand-made examples, truncation, LoRA, the refusals (remote code, unknown model
type, a tokenizer that cannot represent a nucleotide), and train.py -> evaluate.py on a per-nucleotide and a
sequence task for each model family. Offline."""
import json
import os
import shutil
import sys
import tempfile

import numpy as np
import pytest
import torch

from conftest import ROOT

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_MODULES_CACHE", tempfile.mkdtemp(prefix="hf_modules_"))  # remote code copies stay out of ~

sys.path.insert(0, str(ROOT / "experiments"))
import tiny_backbones  # noqa: E402
from omnigenome.data.benchmarks import load_split, task_config  # noqa: E402
from omnigenome.finetune.datamodule import FinetuneDataModule, subset  # noqa: E402
from omnigenome.model.loading import load_backbone, load_tokenizer  # noqa: E402
from omnigenome.model.hf_backbone import HFTokenizer  # noqa: E402
from omnigenome.model.lora import LoRALinear, apply_lora, merge_lora  # noqa: E402
from omnigenome.model.task import TaskModel  # noqa: E402
from test_finetune import compose_finetune, evaluate_script, train_script  # noqa: E402


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """One folder per model family. RNA-FM gets 130 position rows (128 tokens), so RGB and GUE inputs are truncated."""
    root = tmp_path_factory.mktemp("backbones")
    return {"nt_esm": tiny_backbones.nt_esm(root / "nt_esm"),
            "rnafm": tiny_backbones.rnafm(root / "rnafm", hidden=32, max_positions=130),
            "dnabert2": tiny_backbones.dnabert2(root / "dnabert2"),
            "bert_single": tiny_backbones.bert_single(root / "bert_single"),
            "bert_kmer": tiny_backbones.bert_kmer(root / "bert_kmer")}


def tokens_of(tokenizer: HFTokenizer, ids) -> list[str]:
    return tokenizer.tokenizer.convert_ids_to_tokens([int(i) for i in ids])


# --- the nucleotide -> token mapping, on hand-made examples --------------------------------------------

def test_six_mer_tokens_map_each_nucleotide_to_the_token_holding_it(folders):
    tok = load_tokenizer(folders["nt_esm"])
    assert (tok.kind, tok.presplit, tok.alphabet, tok.max_tokens) == ("chunked", "none", "T", 128)
    enc = tok.encode("ACGTACGTAC")
    assert tokens_of(tok, enc.ids) == ["<cls>", "ACGTAC", "G", "T", "A", "C", "<eos>"]
    assert enc.nucleotide_token.tolist() == [1, 1, 1, 1, 1, 1, 2, 3, 4, 5] and not enc.cropped
    # U and case follow the model's vocabulary (T, upper case)
    assert tok.encode("acguacguac").ids.tolist() == enc.ids.tolist()
    # 6-mers restart after an N, which only a single-letter token holds
    enc = tok.encode("ACGNACGTACGT")
    assert tokens_of(tok, enc.ids) == ["<cls>", "A", "C", "G", "N", "ACGTAC", "G", "T", "<eos>"]
    assert enc.nucleotide_token.tolist() == [1, 2, 3, 4, 5, 5, 5, 5, 5, 5, 6, 7]
    # truncation: the last tokens go, and with them the nucleotides they hold; <eos> stays
    enc = tok.encode("ACGTACGTAC", max_tokens=4)
    assert tokens_of(tok, enc.ids) == ["<cls>", "ACGTAC", "G", "<eos>"]
    assert enc.nucleotide_token.tolist() == [1] * 6 + [2] and enc.cropped
    # the alphabet can be overridden, but not to one the vocabulary cannot write
    with pytest.raises(ValueError, match=r"nt_esm: its EsmTokenizer reads the nucleotides of 'ACGUACGU.*' as its "
                                         r"unknown token.*finetune.alphabet"):
        HFTokenizer.from_pretrained(folders["nt_esm"], alphabet="U")


def test_bpe_tokens_map_each_nucleotide_to_its_piece(folders):
    tok = load_tokenizer(folders["dnabert2"])
    assert (tok.kind, tok.model_type, tok.alphabet, tok.tokenizer.is_fast) == ("chunked", "dnabert2", "T", True)
    enc = tok.encode("ACGTACGTAC")
    assert tokens_of(tok, enc.ids) == ["[CLS]", "AC", "GTAC", "GTAC", "[SEP]"]  # merges of the seeded corpus
    assert enc.nucleotide_token.tolist() == [1, 1, 2, 2, 2, 2, 3, 3, 3, 3]
    assert tok.encode("acguacguac").nucleotide_token.tolist() == enc.nucleotide_token.tolist()
    # a longer sequence: every nucleotide reads the piece whose characters it is
    seq = "GATTACAGATTACACCGGTTAACG"
    enc = tok.encode(seq)
    pieces = tokens_of(tok, enc.ids)
    assert "".join(pieces[1:-1]) == seq and max(map(len, pieces[1:-1])) > 1
    assert enc.nucleotide_token.tolist() == [j for j, piece in enumerate(pieces[1:-1], 1) for _ in piece]


def test_single_nucleotide_tokens(folders):
    rnafm = load_tokenizer(folders["rnafm"])
    assert (rnafm.kind, rnafm.model_type, rnafm.alphabet, rnafm.max_tokens) == ("single", "rnafm", "U", 128)
    enc = rnafm.encode("ACGTN")
    assert tokens_of(rnafm, enc.ids) == ["<cls>", "A", "C", "G", "U", "N", "<eos>"]  # T read as U
    assert enc.nucleotide_token.tolist() == [1, 2, 3, 4, 5]
    assert rnafm.encode("acgun").ids.tolist() == enc.ids.tolist()
    # SpliceBERT style: a WordPiece vocabulary of single letters, read as spaced letters
    bert = load_tokenizer(folders["bert_single"])
    assert (bert.kind, bert.presplit, bert.alphabet) == ("single", "chars", "U")
    enc = bert.encode("ACGTN")
    assert tokens_of(bert, enc.ids) == ["[CLS]", "A", "C", "G", "U", "N", "[SEP]"]
    assert enc.nucleotide_token.tolist() == [1, 2, 3, 4, 5]


def test_overlapping_kmers_map_each_nucleotide_to_the_kmer_centred_on_it(folders, tmp_path):
    tok = load_tokenizer(folders["bert_kmer"])
    assert (tok.kind, tok.k, tok.presplit, tok.alphabet) == ("kmer", 3, "kmer", "T")
    enc = tok.encode("ACGUACG")
    assert tokens_of(tok, enc.ids) == ["[CLS]", "ACG", "CGT", "GTA", "TAC", "ACG", "[SEP]"]
    assert enc.nucleotide_token.tolist() == [1, 1, 2, 3, 4, 5, 5]  # the ends read the first and last k-mer
    enc = tok.encode("ACGTACG", max_tokens=4)
    assert tokens_of(tok, enc.ids) == ["[CLS]", "ACG", "CGT", "[SEP]"] and enc.nucleotide_token.tolist() == [1, 1, 2]
    with pytest.raises(ValueError, match="shorter than the 3-mers"):
        tok.encode("AC")
    # UTR-BERT style: multimolecule's RnaTokenizer(nmers=3) makes the overlapping k-mers itself from plain text
    from multimolecule import RnaTokenizer, UtrBertConfig, UtrBertForMaskedLM
    rna = RnaTokenizer(nmers=3)
    UtrBertForMaskedLM(UtrBertConfig(vocab_size=len(rna), nmers=3, hidden_size=32, num_hidden_layers=1,
                                     num_attention_heads=4, intermediate_size=64)).save_pretrained(tmp_path)
    rna.save_pretrained(tmp_path)
    utr = load_tokenizer(tmp_path)
    assert (utr.kind, utr.k, utr.presplit, utr.alphabet) == ("kmer", 3, "none", "U")
    assert utr.encode("ACGTACG").nucleotide_token.tolist() == [1, 1, 2, 3, 4, 5, 5]


def test_padded_batches_give_each_sequence_the_states_it_has_alone(folders):
    """Padding, bucketing and flattening change nothing a head reads."""
    seqs = ["ACGTTGCAACGTAGGCTAACGTTTGCA", "GGCATTACGAT", "TTGACCGTAGCATGCAAGT"]
    for name in ("nt_esm", "rnafm", "dnabert2"):
        backbone = load_backbone(folders[name]).eval()
        tok = backbone.tokenizer
        items = [tok.encode(s) for s in seqs]
        batch = tok.collate(items)
        assert batch["attention_mask"].sum(1).unique().numel() == 3  # really padded
        with torch.no_grad():
            together = backbone(batch)[batch["nucleotide_index"]]
            alone = torch.cat([backbone(tok.collate([it]))[it.nucleotide_token] for it in items])
        torch.testing.assert_close(together, alone, atol=1e-5, rtol=0)


def test_weights_are_the_folders_and_no_pooler_is_added(folders):
    from transformers import AutoModelForMaskedLM
    backbone = load_backbone(folders["rnafm"])
    assert backbone.model.pooler is None and not any("pooler" in n for n, _ in backbone.named_parameters())
    reference = AutoModelForMaskedLM.from_pretrained(folders["rnafm"]).base_model.state_dict()
    for name, tensor in backbone.model.state_dict().items():
        assert torch.equal(tensor, reference[name]), name


def test_max_tokens_is_what_the_position_table_holds(folders):
    """The longest input of each lineage runs, one token more does not (RNA-FM and ESM start at row 2)."""
    for name in ("nt_esm", "rnafm", "bert_single"):
        backbone = load_backbone(folders[name])
        n = backbone.tokenizer.max_tokens
        ids = torch.full((1, n), 5)
        with torch.no_grad():
            backbone.model(input_ids=ids, attention_mask=torch.ones_like(ids))
            with pytest.raises((IndexError, RuntimeError)):
                backbone.model(input_ids=torch.full((1, n + 1), 5), attention_mask=torch.ones(1, n + 1, dtype=torch.long))


# --- LoRA ------------------------------------------------------------------------------------------------

def test_lora_on_each_backbone(folders):
    task = {"name": "t", "head": "sequence_classification", "num_labels": 2}
    seqs = ["ACGTTGCAACGTAGGCTAACGTTTGCA", "GGCATTACGAT"]
    for name in ("nt_esm", "rnafm", "dnabert2", "bert_kmer"):
        backbone = load_backbone(folders[name])
        batch = backbone.tokenizer.collate([backbone.tokenizer.encode(s) for s in seqs])
        with torch.no_grad():
            before = backbone.eval()(batch)
        model = TaskModel(backbone, task, head_dropout=0.0, lora={"rank": 2, "alpha": 4})
        assert backbone.model.training  # fine-tuned with its own dropout (loaders return eval mode)
        wrapped = [m for m in backbone.modules() if isinstance(m, LoRALinear)]
        assert len(wrapped) == 4  # query and value of the two layers
        trainable = [n for n, p in model.named_parameters() if p.requires_grad]
        assert trainable and all(n.startswith("head.") or ".down." in n or ".up." in n for n in trainable), name
        with torch.no_grad():
            torch.testing.assert_close(model.eval().backbone(batch), before)  # LoRA starts at the base model
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
        model.train()
        for _ in range(2):
            loss = torch.nn.functional.cross_entropy(model(batch), torch.tensor([0, 1]))
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            adapted = backbone(batch)
            assert not torch.allclose(adapted, before)
            torch.testing.assert_close(merge_lora(backbone)(batch), adapted, atol=1e-5, rtol=1e-4)


def test_a_frozen_encoder_stays_in_eval_mode(folders):
    model = TaskModel(load_backbone(folders["rnafm"]), {"name": "t", "head": "token_classification", "num_labels": 3},
                      freeze_encoder=True)
    model.train()
    assert model.head.training and not model.backbone.model.training
    assert not any(p.requires_grad for p in model.backbone.parameters())


def test_lora_without_attention_projections_is_an_error(folders):
    backbone = load_backbone(folders["bert_single"])
    backbone.model = torch.nn.Sequential(torch.nn.Linear(4, 4))  # an encoder without query/value projections
    with pytest.raises(ValueError, match="LoRA: found no attention query/value projections in bert_single"):
        apply_lora(backbone, rank=2)


# --- what stops, and how ---------------------------------------------------------------------------------

def _with_config(src, dst, **changes):
    shutil.copytree(src, dst)
    config = json.loads((dst / "config.json").read_text())
    config.update(changes)
    (dst / "config.json").write_text(json.dumps(config))
    return dst


def test_remote_code_loads_only_with_trust_remote_code(folders, tmp_path):
    folder = _with_config(folders["bert_single"], tmp_path / "remote", model_type="tinyremote",
                          auto_map={"AutoConfig": "configuration_tiny.TinyConfig", "AutoModel": "modeling_tiny.TinyModel"})
    (folder / "configuration_tiny.py").write_text(
        "from transformers import BertConfig\n\n\nclass TinyConfig(BertConfig):\n    model_type = 'tinyremote'\n")
    (folder / "modeling_tiny.py").write_text(
        "from transformers import BertModel\nfrom .configuration_tiny import TinyConfig\n\n\n"
        "class TinyModel(BertModel):\n    config_class = TinyConfig\n")
    with pytest.raises(ValueError, match=r"remote \(model_type 'tinyremote'\) needs trust_remote_code=true: its "
                                         r"config.json declares auto_map.*pass finetune.trust_remote_code=true"):
        load_backbone(folder)
    with pytest.raises(ValueError, match="needs trust_remote_code=true"):
        load_tokenizer(folder)
    backbone = load_backbone(folder, trust_remote_code=True)
    assert type(backbone.model).__name__ == "TinyModel" and len(backbone.attention_projections()) == 4
    # the checkpoint's spec carries the code and the permission, so evaluation rebuilds the same model
    from omnigenome.model.loading import backbone_from_spec
    spec = backbone.spec()
    assert spec["trust_remote_code"] and "modeling_tiny.py" in spec["files"]
    assert type(backbone_from_spec(spec).model).__name__ == "TinyModel"


def test_remote_code_refusal_through_train_py_is_one_line(folders, tmp_path):
    folder = _with_config(folders["bert_single"], tmp_path / "remote", auto_map={"AutoModel": "modeling_x.X"})
    cfg = compose_finetune(tmp_path, ["experiment=finetune", "task=gue/prom_300_tata", f"init_from={folder}"])
    with pytest.raises(ValueError, match="needs trust_remote_code=true") as err:
        train_script.train(cfg)
    assert "\n" not in str(err.value) and str(folder) in str(err.value)


def test_unknown_model_type(folders, tmp_path):
    folder = _with_config(folders["bert_single"], tmp_path / "unknown", model_type="foobarnet")
    with pytest.raises(ValueError, match=r"unknown/config.json: model_type 'foobarnet' is unknown to transformers.*"
                                         r"auto_map.*finetune.trust_remote_code=true"):
        load_backbone(folder)


def test_hub_id_says_to_download_the_folder_once():
    with pytest.raises(ValueError, match=r"multimolecule/rnafm: no such model folder; a hub id cannot be downloaded.*"
                                         r"--local-dir models/rnafm"):
        load_tokenizer("multimolecule/rnafm")


def test_a_tokenizer_that_cannot_represent_a_nucleotide(folders, tmp_path):
    # a vocabulary without T or U: no way to write every nucleotide, whatever the input form
    from transformers import BertTokenizer
    folder = tmp_path / "acg"
    shutil.copytree(folders["bert_single"], folder)
    for name in ("tokenizer.json", "vocab.txt", "tokenizer_config.json"):
        (folder / name).unlink(missing_ok=True)
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "A", "C", "G"]) + "\n")
    BertTokenizer(str(folder / "vocab.txt"), do_lower_case=False).save_pretrained(folder)
    with pytest.raises(ValueError, match=r"acg: its BertTokenizer reads the nucleotides of 'ACGTACGT.*' as its unknown "
                                         r"token.*a tokenizer that cannot represent a nucleotide"):
        load_tokenizer(folder)
    # a record with a character the vocabulary lacks: named with its position
    with pytest.raises(ValueError, match=r"record 'r7': character 'X' at position 5 is not in the vocabulary of "
                                         r"nt_esm's tokenizer .*remove the record or replace the character"):
        load_tokenizer(folders["nt_esm"]).encode("ACGTX", record="r7")
    # a lower-casing tokenizer over an upper-case vocabulary: the message says how to fix it
    shutil.rmtree(folder)
    shutil.copytree(folders["bert_single"], folder)
    (folder / "tokenizer.json").unlink()
    BertTokenizer(str(folder / "vocab.txt"), do_lower_case=True).save_pretrained(folder)
    with pytest.raises(ValueError, match="do_lower_case"):
        load_tokenizer(folder)


def test_the_core_does_not_import_multimolecule(folders, monkeypatch):
    """Loading and running a transformers model imports no multimolecule (other tests here have imported it: it is
    taken out of sys.modules for this one, so an import would put it back)."""
    for name in [m for m in sys.modules if m == "multimolecule" or m.startswith("multimolecule.")]:
        monkeypatch.delitem(sys.modules, name)
    backbone = load_backbone(folders["nt_esm"])
    backbone(backbone.tokenizer.collate([backbone.tokenizer.encode("ACGT")]))
    load_tokenizer(folders["bert_kmer"])
    assert "multimolecule" not in sys.modules


def test_alphabet_and_case_settings_reach_tokenizer_and_backbone(tmp_path):
    cfg = compose_finetune(tmp_path, ["experiment=finetune", "task=gue/prom_300_tata", "finetune.alphabet=U",
                                      "finetune.lowercase=true"])
    assert (cfg.data.alphabet, cfg.data.lowercase) == ("U", True)
    assert (cfg.module.backbone.alphabet, cfg.module.backbone.lowercase) == ("U", True)


# --- train.py then evaluate.py, on a per-nucleotide and a sequence task ------------------------------------

def finetune_then_evaluate(tmp_path, folder, task, extra=()):
    """train.py experiment=finetune (2 steps on 8 records, tested on 6) then evaluate.py on the best checkpoint;
    returns (test_metrics.json, test_predictions.npz, evaluate.py's metrics)."""
    run = tmp_path / task.replace("/", "_")
    cfg = compose_finetune(run, ["experiment=finetune", f"task={task}", "seed=1", f"init_from={folder}",
                                 "trainer.max_steps=2", "trainer.max_epochs=-1", "trainer.val_check_interval=2",
                                 "trainer.check_val_every_n_epoch=null", "data.max_tokens=2048", "data.train_limit=8",
                                 "data.eval_limit=6", "module.optimizer.lr=1e-3", "module.scheduler.warmup_steps=1",
                                 "logger=none", "callbacks.progress_bar.refresh_rate=0", *extra])
    metrics = train_script.train(cfg)
    record = json.loads((run / "run" / "test_metrics.json").read_text())
    predictions = np.load(run / "run" / "test_predictions.npz")
    assert metrics[f"test/{record['monitor']}"] == pytest.approx(record["metrics"][record["monitor"]])
    best = run / "run" / "checkpoints" / "best.ckpt"
    again = evaluate_script.evaluate(compose_finetune(run, ["evaluation=finetune", f"task={task}", f"ckpt={best}",
                                                            "eval_limit=6"], "eval"))
    for name, value in record["metrics"].items():
        assert again[f"test/{name}"] == pytest.approx(value, abs=1e-5), name
    return record, predictions


@pytest.mark.parametrize("name", ["nt_esm", "rnafm", "dnabert2"])
def test_finetune_and_evaluate_through_init_from(name, folders, shared_data, tmp_path, capsys):
    folder = folders[name]
    tokenizer = load_tokenizer(folder)
    # a per-nucleotide task, fine-tuned whole: every nucleotide read is scored, whatever the tokenizer
    record, z = finetune_then_evaluate(tmp_path, folder, "rgb/ssp_archive2", ["finetune.baselines=false"])
    assert record["backbone"] == name and record["num_test"] == 6
    test = subset(load_split(task_config("rgb/ssp_archive2"), "test"), 6, 0)
    read = [tokenizer.encode(ex.sequence, max_tokens=1024).num_nucleotides for ex in test]
    assert np.bincount(z["record_index"], minlength=6).tolist() == read  # SSP scores every nucleotide read
    assert z["preds"].shape == (sum(read), 3) and record["metrics"]["items"] == sum(read)
    assert z["record_ids"].tolist() == [ex.id for ex in test]
    assert record["truncated"]["test"] == [sum(tokenizer.encode(ex.sequence, max_tokens=1024).cropped for ex in test), 6]
    # a sequence task with LoRA: one item per record
    record, z = finetune_then_evaluate(tmp_path, folder, "gue/prom_300_tata", ["finetune.lora.rank=2"])
    assert z["preds"].shape == (6, 2) and sorted(z["record_index"].tolist()) == list(range(6))
    assert set(record["baselines"]) == {"majority"}
    out = capsys.readouterr().out
    if name == "rnafm":  # 128 tokens: every 300-nt GUE sequence is truncated, and each split says so
        assert record["truncated"] == {"train": [8, 8], "valid": [6, 6], "test": [6, 6]}
        assert "records truncated to 128 tokens (their last nucleotides not read): train 8 of 8, valid 6 of 6, " \
               "test 6 of 6" in out
        assert sum(read) < sum(len(ex.sequence) for ex in test)  # and long SSP records lose their tail
        assert "records truncated to 128 tokens (their last nucleotides not read): train " in out
    else:
        assert record["truncated"]["test"] == [0, 6]


def test_truncation_crops_token_labels_with_the_nucleotides(folders, shared_data):
    dm = FinetuneDataModule(task_config("rgb/ssp_archive2"), folders["rnafm"], eval_limit=20)
    items = dm.encode("test")
    examples = dm.load_examples("test")
    long = [len(ex.sequence) > 126 for ex in examples]
    assert dm.cropped["test"] == sum(long) > 0
    for it, ex in zip(items, examples):
        assert len(it.tokens.ids) <= 128
        assert it.tokens.num_nucleotides == len(it.label) == min(len(ex.sequence), 126)
