"""Benchmark task configs (conf/task/) and the readers of each suite's public format (data/benchmarks.py,
data/readers.py), checked against the layouts the suites publish."""
import csv
import json
import math
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from hydra import compose, initialize_config_module

from omnigenome.constants import HEADS, IGNORE_INDEX, TOKEN_HEADS
from omnigenome.data.benchmarks import available_splits, load_split, task_config, task_names
from omnigenome.data.readers import FORMATS, Example
from omnigenome.metrics import HEAD_METRICS, HIGHER_IS_BETTER
from omnigenome.settings import register_resolvers

register_resolvers()

ROOT = Path(__file__).resolve().parents[1]
INTERFACE_KEYS = {"name", "suite", "format", "data_dir", "splits", "head", "num_labels", "label_names",
                  "class_weights", "scored_length", "metrics", "monitor", "monitor_mode", "max_length", "paper"}

GUE_TASKS = ([f"emp_{m}" for m in ("h3", "h3k14ac", "h3k36me3", "h3k4me1", "h3k4me2", "h3k4me3", "h3k79me3",
                                   "h3k9ac", "h4", "h4ac")]
             + [f"prom_{k}_{v}" for k in ("core", "300") for v in ("all", "notata", "tata")]
             + ["splice_reconstructed", "virus_covid"] + [f"tf_{i}" for i in range(5)] + [f"mouse_{i}" for i in range(5)])
GB_TASKS = ["demo_coding_vs_intergenomic_seqs", "demo_human_or_worm", "drosophila_enhancers_stark",
            "dummy_mouse_enhancers_ensembl", "human_enhancers_cohn", "human_enhancers_ensembl",
            "human_ensembl_regulatory", "human_nontata_promoters", "human_ocr_ensembl"]
PGB_FAMILIES = {"poly_a": 6, "splicing": 2, "lncrna": 6, "promoter_strength": 2, "terminator_strength": 2,
                "gene_exp": 5, "chromatin_access": 7, "pro_seq": 1}


# --- configs ---------------------------------------------------------------------------------------
def test_all_suites_have_all_tasks():
    assert [n.split("/")[1] for n in task_names("rgb")] == sorted(
        ["ssp_archive2", "ssp_bprna", "ssp_rnastralign", "snmd", "snmr", "mrna"])
    assert task_names("gue") == sorted(f"gue/{n}" for n in GUE_TASKS) and len(GUE_TASKS) == 28
    assert task_names("gb") == sorted(f"gb/{n}" for n in GB_TASKS)
    pgb = task_names("pgb")
    for family, variants in PGB_FAMILIES.items():
        assert sum(n.startswith(f"pgb/{family}_") for n in pgb) == variants, family
    assert len(pgb) == sum(PGB_FAMILIES.values())
    assert len(task_names()) == 6 + 28 + 9 + 31
    with pytest.raises(ValueError, match="unknown suite"):
        task_names("nt")


@pytest.mark.parametrize("name", task_names())
def test_config_is_valid(name, tmp_path):
    path = ROOT / "conf" / "task" / f"{name}.yaml"
    text = path.read_text()
    assert f"python train.py experiment=finetune task={name} " in text
    assert f"python evaluate.py evaluation=finetune task={name} " in text
    raw = yaml.safe_load(text)
    assert "_target_" not in raw and not text.startswith("# @package")
    task = task_config(name, benchmark_dir=tmp_path)
    assert INTERFACE_KEYS <= set(task), INTERFACE_KEYS - set(task)
    suite = name.split("/")[0]
    assert task["name"] == name and task["suite"] == suite and task["format"] in FORMATS
    assert task["data_dir"].startswith(str(tmp_path / suite))
    assert set(task["splits"]) == {"train", "valid", "test"} and task["splits"]["test"]
    assert task["splits"]["valid"] or task.get("valid_from_train")
    assert task["head"] in HEADS
    assert task["metrics"] and set(task["metrics"]) <= set(HEAD_METRICS[task["head"]])
    assert task["monitor"] in task["metrics"]
    assert task["monitor_mode"] == ("max" if HIGHER_IS_BETTER[task["monitor"]] else "min")
    assert isinstance(task["num_labels"], int) and task["num_labels"] >= (2 if "classification" in task["head"] else 1)
    if task["label_names"] is not None:
        assert len(task["label_names"]) == task["num_labels"]
    if task["class_weights"] is not None:
        assert len(task["class_weights"]) == task["num_labels"] and min(task["class_weights"]) > 0
    assert task["scored_length"] is None or task["head"] in TOKEN_HEADS
    assert 8 <= task["max_length"] <= 1024 and task["paper"]
    # the data dir follows the command line's data_dir=
    assert task_config(name, benchmark_dir=tmp_path, data_dir=tmp_path / "x")["data_dir"] == str(tmp_path / "x")


@pytest.mark.parametrize("name", ["rgb/ssp_archive2", "rgb/mrna", "gue/tf_0", "gb/human_ocr_ensembl",
                                  "pgb/chromatin_access_zea_mays", "pgb/chromatin_access_arabidopsis_thaliana"])
def test_config_composes_with_hydra(name):
    with initialize_config_module("omnigenome.conf", version_base="1.3"):
        cfg = compose("eval", overrides=[f"task={name}", "benchmark_dir=/bench"])
        moved = compose("eval", overrides=[f"task={name}", "++data_dir=/elsewhere"])
    assert cfg.task.name == name and cfg.task.data_dir.startswith(f"/bench/{name.split('/')[0]}/")
    assert moved.task.data_dir == "/elsewhere"
    assert task_config(name, benchmark_dir="/bench") == {k: v for k, v in _container(cfg.task).items()}


def _container(node):
    from omegaconf import OmegaConf
    return OmegaConf.to_container(node, resolve=True)


# --- the public data in ../shared/data -------------------------------------------------------------
def _json_lines(path: Path) -> int:
    return sum(1 for line in path.open() if line.strip())


def _csv_rows(path: Path) -> int:
    with path.open(newline="") as f:
        return sum(1 for _ in csv.reader(f)) - 1


# task -> {split: count} known from the data README; every present split is also counted independently.
KNOWN = {"rgb/ssp_archive2": {"train": 2278, "valid": 285, "test": 285},
         "rgb/ssp_bprna": {"train": 10814, "valid": 1300, "test": 1305}}
PRESENT = ["rgb/ssp_archive2", "rgb/ssp_bprna", "rgb/snmd", "rgb/snmr", "rgb/mrna",
           "gue/prom_300_tata", "gue/prom_core_all", "gue/tf_0", "gue/mouse_0"]


@pytest.fixture(scope="module")
def loaded(shared_data):
    """{task: (config, {split: examples})} for every task with data in ../shared/data."""
    out = {}
    for name in PRESENT:
        task = task_config(name, benchmark_dir=shared_data)
        out[name] = (task, {s: load_split(task, s) for s in available_splits(task)})
    return out


def test_present_tasks_and_counts(loaded, shared_data):
    assert {n for n in task_names() if available_splits(task_config(n, benchmark_dir=shared_data))} == set(PRESENT)
    for name, (task, splits) in loaded.items():
        for split, examples in splits.items():
            if name in KNOWN:
                assert len(examples) == KNOWN[name][split], (name, split)
            if task["format"] == "rgb_jsonl":
                assert len(examples) == _json_lines(Path(task["data_dir"]) / f"{task['splits'][split]}.json")
            elif task["format"] == "gue_csv":
                assert len(examples) == _csv_rows(Path(task["data_dir"]) / f"{task['splits'][split]}.csv")
    # SNMD / SNMR: the shared copy has no train.json
    assert set(loaded["rgb/snmd"][1]) == {"valid", "test"} == set(loaded["rgb/snmr"][1])


def test_openvaccine_mapping(loaded, shared_data):
    task, splits = loaded["rgb/mrna"]
    with zipfile.ZipFile(shared_data / "openvaccine" / "kaggle_train_plus_k_deg.json.zip") as z:
        kaggle = json.loads(z.read(z.namelist()[0]))
    kaggle_ids = set(kaggle["id"].values())
    assert len(kaggle_ids) == 1589
    test_ids = {json.loads(line)["id"] for line in (shared_data / "rgb" / "RNA-mRNA" / "test.json").open() if line.strip()}
    assert len(splits["test"]) == len(test_ids) == _json_lines(shared_data / "rgb" / "RNA-mRNA" / "test.json")
    train, valid = {e.id for e in splits["train"]}, {e.id for e in splits["valid"]}
    assert not train & valid and train | valid == kaggle_ids - test_ids
    assert len(valid) == round(0.1 * len(kaggle_ids - test_ids))
    for e in splits["train"][:50] + splits["test"][:50]:
        assert e.label.dtype == np.float32 and e.label.shape == (len(e.sequence), 3)
        assert np.isfinite(e.label[:68]).all() and np.isnan(e.label[68:]).all()
        assert e.structure is not None and len(e.structure) == len(e.sequence)
    first = splits["train"][0]
    row = next(k for k, v in kaggle["id"].items() if v == first.id)
    assert np.allclose(first.label[:68, 1], kaggle["deg_Mg_pH10"][row])


def test_label_shapes(loaded):
    for name, (task, splits) in loaded.items():
        for examples in splits.values():
            for e in examples:
                assert isinstance(e, Example)
                if task["head"] == "token_classification":
                    assert e.label.dtype == np.int64 and e.label.shape == (len(e.sequence),)
                    scored = e.label[e.label != IGNORE_INDEX]
                    assert ((scored >= 0) & (scored < task["num_labels"])).all()
                elif task["head"] == "sequence_classification":
                    assert e.label.dtype == np.int64 and e.label.shape == () and 0 <= e.label < task["num_labels"]


def test_mutation_labels(loaded, shared_data):
    record = json.loads((shared_data / "rgb" / "RNA-SNMD" / "test.json").open().readline())
    snmd, snmr = loaded["rgb/snmd"][1]["test"][0], loaded["rgb/snmr"][1]["test"][0]
    mutated = [i for i, (a, b) in enumerate(zip(record["seq"], record["mut"])) if a != b]
    assert snmd.sequence == snmr.sequence == record["mut"]
    assert np.flatnonzero(snmd.label).tolist() == mutated
    assert np.flatnonzero(snmr.label != IGNORE_INDEX).tolist() == mutated
    names = loaded["rgb/snmr"][0]["label_names"]
    assert [names[snmr.label[i]] for i in mutated] == [record["seq"][i].replace("T", "U") for i in mutated]
    # the documented way to fine-tune on the shared copy: train on valid.json, carve 10% for validation
    task = dict(loaded["rgb/snmd"][0], splits={"train": "valid", "valid": None, "test": "test"}, valid_from_train=0.1)
    train, valid = load_split(task, "train"), load_split(task, "valid")
    assert (len(train), len(valid)) == (900, 100) and not {e.id for e in train} & {e.id for e in valid}


def test_structure_labels_follow_the_dot_bracket(loaded, shared_data):
    record = json.loads((shared_data / "rgb" / "RNA-SSP-Archive2" / "test.json").open().readline())
    example = loaded["rgb/ssp_archive2"][1]["test"][0]
    names = loaded["rgb/ssp_archive2"][0]["label_names"]
    assert example.sequence == record["seq"] and "".join(names[i] for i in example.label) == record["label"]


def test_limit(shared_data):
    task = task_config("gue/tf_0", benchmark_dir=shared_data)
    assert len(load_split(task, "test", limit=7)) == 7


# --- small files in each original layout -----------------------------------------------------------
def _write_jsonl(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))


def _write_csv(path: Path, header, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def test_scored_length_masks_tokens(tmp_path):
    _write_jsonl(tmp_path / "rgb" / "RNA-SSP-Archive2" / "test.json", [{"seq": "GGGAAACCC", "label": "(((...)))"}])
    task = dict(task_config("rgb/ssp_archive2", benchmark_dir=tmp_path), scored_length=4)
    (example,) = load_split(task, "test")
    assert example.label.tolist() == [0, 0, 0, 2] + [IGNORE_INDEX] * 5


def test_openvaccine_json_lines_and_columns(tmp_path):
    rec = {"id": "id_a", "sequence": "GGAAACC", "structure": "((...))", "seq_scored": 3,
           "reactivity": [0.1, 0.2, 0.3], "deg_Mg_pH10": [1, 2, 3], "deg_Mg_50C": [4, 5, 6]}
    other = dict(rec, id="id_b")
    _write_jsonl(tmp_path / "rgb" / "RNA-mRNA" / "test.json", [rec])
    columns = {k: {"0": rec[k], "1": other[k]} for k in rec}
    (tmp_path / "openvaccine").mkdir()
    with zipfile.ZipFile(tmp_path / "openvaccine" / "kaggle_train_plus_k_deg.json.zip", "w") as z:
        z.writestr("kaggle.json", json.dumps(columns))
    task = task_config("rgb/mrna", benchmark_dir=tmp_path)
    (test,) = load_split(task, "test")
    assert test.label.shape == (7, 3) and test.label[:3, 2].tolist() == [4, 5, 6] and np.isnan(test.label[3:]).all()
    assert test.structure == "((...))"
    carved = load_split(task, "train") + load_split(task, "valid")
    assert [e.id for e in carved] == ["id_b"]  # id_a is a test record: dropped from train/valid
    _write_jsonl(tmp_path / "rgb" / "RNA-mRNA" / "test.json", [dict(rec, reactivity=[0.1] * 9)])
    with pytest.raises(ValueError, match=r"test.json, line 1: label length 9 .*exceeds sequence length 7"):
        load_split(task, "test")


def test_gb_folder_layout(tmp_path):
    root = tmp_path / "gb" / "human_nontata_promoters"
    sequences = {}
    for split, n in (("train", 20), ("test", 6)):
        for cls in ("negative", "positive"):
            for i in range(n // 2):
                seq = "ACGT"[i % 4] * 5 + ("GG" if cls == "positive" else "TT")
                path = root / split / cls / f"{i}.txt"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(seq + "\n")
                sequences[(split, cls, f"{i}.txt")] = seq
    task = task_config("gb/human_nontata_promoters", benchmark_dir=tmp_path)
    assert available_splits(task) == ["train", "valid", "test"]
    test = load_split(task, "test")
    assert len(test) == 6 and {e.id.split("/")[0]: int(e.label) for e in test} == {"negative": 0, "positive": 1}
    assert all(e.sequence == sequences[("test", *e.id.split("/"))] for e in test)
    train, valid = load_split(task, "train"), load_split(task, "valid")
    assert len(train) == 18 and len(valid) == 2 and not {e.id for e in train} & {e.id for e in valid}
    assert [e.id for e in load_split(task, "valid")] == [e.id for e in valid]
    (root / "test" / "positive" / "0.txt").write_text("")
    with pytest.raises(ValueError, match=r"positive/0.txt, line 1: empty sequence"):
        load_split(task, "test")
    (root / "test" / "positive" / "0.txt").write_text("ACGT")
    (root / "test" / "maybe").mkdir()
    with pytest.raises(ValueError, match=r"test/maybe: unknown class 'maybe'"):
        load_split(task, "test")


def test_pgb_csv_layout(tmp_path):
    root = tmp_path / "pgb"
    _write_csv(root / "poly_a" / "arabidopsis_thaliana" / "train.csv", ["sequence", "name", "label"],
               [[("ACGT" * 3)[: 8 + i % 3], f"chr1:{i}", i % 2] for i in range(10)])
    _write_csv(root / "poly_a" / "arabidopsis_thaliana" / "test.csv", ["sequence", "name", "label"],
               [["ACGTAC", "t1", 1], ["GGCCTT", "t2", 0]])
    task = task_config("pgb/poly_a_arabidopsis_thaliana", benchmark_dir=tmp_path)
    assert available_splits(task) == ["train", "valid", "test"]
    test = load_split(task, "test")
    assert [(e.id, e.sequence, int(e.label)) for e in test] == [("t1", "ACGTAC", 1), ("t2", "GGCCTT", 0)]
    train, valid = load_split(task, "train"), load_split(task, "valid")  # no valid.csv: 10% of train
    assert (len(train), len(valid)) == (9, 1)
    _write_csv(root / "poly_a" / "arabidopsis_thaliana" / "valid.csv", ["sequence", "name", "label"], [["ACGT", "v1", 0]])
    assert [e.id for e in load_split(task, "valid")] == ["v1"] and len(load_split(task, "train")) == 10

    # multi-output regression: list labels, written as JSON-like lists
    n = task_config("pgb/gene_exp_oryza_sativa", benchmark_dir=tmp_path)["num_labels"]
    _write_csv(root / "gene_exp" / "oryza_sativa" / "test.csv", ["sequence", "name", "labels"],
               [["ACGTTGCA", "g1", json.dumps([0.5 * k for k in range(n)])]])
    task = task_config("pgb/gene_exp_oryza_sativa", benchmark_dir=tmp_path)
    (g,) = load_split(task, "test")
    assert g.label.dtype == np.float32 and g.label.shape == (n,) and g.label[-1] == pytest.approx(0.5 * (n - 1))

    # multilabel 0/1 lists, numpy style without commas
    n = task_config("pgb/chromatin_access_setaria_italica", benchmark_dir=tmp_path)["num_labels"]
    bits = [k % 2 for k in range(n)]
    _write_csv(root / "chromatin_access" / "setaria_italica" / "test.csv", ["sequence", "name", "labels"],
               [["ACGTNNAC", "c1", "[" + " ".join(map(str, bits)) + "]"]])
    (c,) = load_split(task_config("pgb/chromatin_access_setaria_italica", benchmark_dir=tmp_path), "test")
    assert c.label.dtype == np.float32 and c.label.tolist() == bits

    # single-target regression
    _write_csv(root / "promoter_strength" / "leaf" / "test.csv", ["sequence", "name", "label"], [["ACGT", "p1", "-0.25"]])
    (p,) = load_split(task_config("pgb/promoter_strength_leaf", benchmark_dir=tmp_path), "test")
    assert p.label.dtype == np.float32 and p.label.tolist() == [-0.25]


def test_pgb_parquet_needs_pyarrow_or_reads(tmp_path):
    folder = tmp_path / "pgb" / "splicing" / "arabidopsis_thaliana_donor"
    folder.mkdir(parents=True)
    task = task_config("pgb/splicing_arabidopsis_thaliana_donor", benchmark_dir=tmp_path)
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        (folder / "test.parquet").write_bytes(b"PAR1")
        with pytest.raises(ImportError, match="pip install pyarrow"):
            load_split(task, "test")
        return
    pq.write_table(pa.table({"sequence": ["ACGT", "GGTA"], "name": ["a", "b"], "label": [0, 1]}), folder / "test.parquet")
    assert [int(e.label) for e in load_split(task, "test")] == [0, 1]


# --- bad records: ValueError naming the file and line ----------------------------------------------
@pytest.mark.parametrize("task_name,folder,bad,message", [
    ("rgb/ssp_archive2", "RNA-SSP-Archive2", {"seq": "", "label": ""}, "empty sequence"),
    ("rgb/ssp_archive2", "RNA-SSP-Archive2", {"seq": "ACGU", "label": "..."}, "label length 3 differs from sequence length 4"),
    ("rgb/ssp_archive2", "RNA-SSP-Archive2", {"seq": "ACGU", "label": "((.."}, "unbalanced"),
    ("rgb/ssp_archive2", "RNA-SSP-Archive2", {"seq": "ACXU", "label": "...."}, "invalid nucleotide 'X' at position 3"),
    ("rgb/ssp_archive2", "RNA-SSP-Archive2", {"sequence": "ACGU"}, "missing field 'seq'"),
    ("rgb/ssp_archive2", "RNA-SSP-Archive2", "{oops", "not valid JSON"),
    ("rgb/snmd", "RNA-SNMD", {"seq": "ACGTA", "mut": "ACGT"}, "reference length 5 differs from sequence length 4"),
    ("rgb/snmd", "RNA-SNMD", {"seq": "ACGT", "mut": ""}, "empty sequence"),
    ("rgb/snmr", "RNA-SNMR", {"seq": "ACNT", "mut": "ACGT"}, "unknown class 'N' at position 3"),
])
def test_bad_rgb_records(tmp_path, task_name, folder, bad, message):
    good = {"seq": "ACGU", "label": "...."} if "ssp" in task_name else {"seq": "ACGT", "mut": "ACGA"}
    _write_jsonl(tmp_path / "rgb" / folder / "test.json", [good, bad])
    with pytest.raises(ValueError, match=rf"test.json, line 2: .*{message}"):
        load_split(task_config(task_name, benchmark_dir=tmp_path), "test")


@pytest.mark.parametrize("row,message", [
    (["", "1"], "line 3: empty sequence"),
    (["ACGT", "7"], "line 3: class '7' out of range"),
    (["ACGT", "maybe"], "line 3: unknown class 'maybe'"),
    (["ACGT", ""], "line 3: unknown class ''"),
])
def test_bad_gue_rows(tmp_path, row, message):
    _write_csv(tmp_path / "gue" / "tf" / "0" / "test.csv", ["sequence", "label"], [["ACGT", "0"], row])
    with pytest.raises(ValueError, match=rf"test.csv, {message}"):
        load_split(task_config("gue/tf_0", benchmark_dir=tmp_path), "test")


@pytest.mark.parametrize("label,message", [
    ("[1, 2]", "label has 2 values, the task has num_labels="),
    ("[1, x]", "label .* is not a number or a list"),
])
def test_bad_pgb_labels(tmp_path, label, message):
    _write_csv(tmp_path / "pgb" / "gene_exp" / "zea_mays" / "test.csv", ["sequence", "name", "labels"], [["ACGT", "z", label]])
    with pytest.raises(ValueError, match=rf"test.csv, line 2: {message}"):
        load_split(task_config("pgb/gene_exp_zea_mays", benchmark_dir=tmp_path), "test")


def test_bad_multilabel_and_missing_column(tmp_path):
    n = task_config("pgb/chromatin_access_zea_mays", benchmark_dir=tmp_path)["num_labels"]
    _write_csv(tmp_path / "pgb" / "chromatin_access" / "zea_mays" / "test.csv", ["sequence", "name", "labels"],
               [["ACGT", "z", json.dumps([2] * n)]])
    with pytest.raises(ValueError, match=r"test.csv, line 2: multilabel label must hold only 0 and 1"):
        load_split(task_config("pgb/chromatin_access_zea_mays", benchmark_dir=tmp_path), "test")
    _write_csv(tmp_path / "gue" / "mouse" / "1" / "test.csv", ["seq", "label"], [["ACGT", "0"]])
    with pytest.raises(ValueError, match=r"test.csv, line 1: missing column\(s\) sequence"):
        load_split(task_config("gue/mouse_1", benchmark_dir=tmp_path), "test")


# --- missing data: what to download and where ------------------------------------------------------
@pytest.mark.parametrize("name,expect", [
    ("rgb/ssp_rnastralign", "RNA-SSP-rnastralign"), ("rgb/mrna", "kaggle_train_plus_k_deg"),
    ("gue/emp_h3", "GUE"), ("gb/demo_human_or_worm", "Genomic Benchmarks"),
    ("pgb/lncrna_z_mays", "plant-genomic-benchmark"),
])
def test_missing_directory_says_what_to_download(tmp_path, name, expect):
    task = task_config(name, benchmark_dir=tmp_path)
    assert available_splits(task) == []
    with pytest.raises(FileNotFoundError) as info:
        load_split(task, "train")
    message = str(info.value)
    assert "Download" in message and expect in message and task["data_dir"] in message
    assert "OMNIGENOME_BENCHMARK_DATA" in message and "data_dir=" in message


def test_unknown_split_and_task(tmp_path):
    task = task_config("gue/tf_0", benchmark_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        load_split(task, "dev")
    with pytest.raises(ValueError, match="unknown task"):
        task_config("gue/tf_9")
    assert math.isclose(task_config("rgb/mrna")["valid_from_train"], 0.1)


# --- the layouts the suites publish -----------------------------------------------------------------
# Folder names as published: RGB's RGB.zip (yangheng95/OmniGenBench, examples/autobench_gfm_evaluation/RGB/metadata.py),
# GUE.zip (MAGICS-LAB/DNABERT_2, finetune/scripts/run_dnabert2.sh), genomic_benchmarks' download_dataset
# (class folders from each data set's metadata.yaml), plant-genomic-benchmark (InstaDeepAI/plant-genomic-benchmark,
# plant-genomic-benchmark.py, and OmniGenBench's examples/benchmark/pgb copy).
PUBLISHED = {
    "rgb": {"ssp_archive2": "RNA-SSP-Archive2", "ssp_bprna": "RNA-SSP-bpRNA", "ssp_rnastralign": "RNA-SSP-rnastralign",
            "snmd": "RNA-SNMD", "snmr": "RNA-SNMR", "mrna": "RNA-mRNA"},
    "gue": {**{f"emp_{m.lower()}": f"EMP/{m}" for m in ("H3", "H3K14ac", "H3K36me3", "H3K4me1", "H3K4me2", "H3K4me3",
                                                         "H3K79me3", "H3K9ac", "H4", "H4ac")},
            **{f"prom_{k}_{v}": f"prom/prom_{k}_{v}" for k in ("core", "300") for v in ("all", "notata", "tata")},
            "splice_reconstructed": "splice/reconstructed", "virus_covid": "virus/covid",
            **{f"tf_{i}": f"tf/{i}" for i in range(5)}, **{f"mouse_{i}": f"mouse/{i}" for i in range(5)}},
}
GB_CLASSES = {"demo_coding_vs_intergenomic_seqs": ["coding_seqs", "intergenomic_seqs"],
              "demo_human_or_worm": ["human", "worm"], "human_ensembl_regulatory": ["enhancer", "ocr", "promoter"]}
PGB_SUBTASKS = {"chromatin_access": ["arabidopis_thaliana", "brachypodium_distachyon", "oryza_sativa_MH63_RS2",
                                     "oryza_sativa_ZS97_RS2", "setaria_italica", "sorghum_bicolor", "zea_mays"],
                "pro_seq": ["m_esculenta"], "promoter_strength": ["leaf", "protoplast"],
                "splicing": ["arabidopsis_thaliana_acceptor", "arabidopsis_thaliana_donor"]}


def test_configs_read_the_published_folder_names(tmp_path):
    for suite, folders in PUBLISHED.items():
        for name, folder in folders.items():
            task = task_config(f"{suite}/{name}", benchmark_dir=tmp_path)
            assert task["data_dir"] == str(tmp_path / suite / folder), name
    for name, classes in GB_CLASSES.items():
        assert task_config(f"gb/{name}")["label_names"] == classes
    for family, subtasks in PGB_SUBTASKS.items():
        dirs = {Path(task_config(n, benchmark_dir=tmp_path)["data_dir"]).name for n in task_names("pgb")
                if n.startswith(f"pgb/{family}_")}
        assert dirs == set(subtasks), family
    multi = [n for n in task_names("pgb") if "gene_exp" in n or "chromatin_access" in n]
    assert multi and all(task_config(n)["fields"]["label"] == "labels" for n in multi)


def test_suites_match_the_reference_doc():
    """The task lists of ../shared/docs/omnigenome-reference.md (the facts this project is built on)."""
    doc = ROOT.parent / "shared" / "docs" / "omnigenome-reference.md"
    if not doc.is_file():
        pytest.skip(f"{doc} not found")
    text = doc.read_text()
    gb_line = next(line for line in text.splitlines() if line.startswith("- GB (Genomic Benchmarks)"))
    gb_block = text[text.index(gb_line):text.index("- GUE")]
    assert sorted(n.split("/")[1] for n in task_names("gb")) == sorted(
        w.strip(" ,.;\n") for w in gb_block.split(":", 1)[1].replace("macro-F1", "").split(",") if w.strip(" ,.;\n"))
    pgb_block = text[text.index("- PGB"):text.index("- GB (Genomic")]
    families = pgb_block.split("):", 1)[1].split("Fields")[0]
    assert {f.strip(" ,.\n") for f in families.split(",") if f.strip(" ,.\n")} == set(PGB_FAMILIES)
    assert "GUE (DNABERT-2): 28 tasks" in text and len(task_names("gue")) == 28
    for dataset in ("Archive2", "bpRNA", "RNAStralign"):
        assert dataset in text and any(dataset.lower() in n for n in task_names("rgb"))


def test_pgb_as_published_by_omnigenbench_and_by_instadeep(tmp_path):
    # OmniGenBench's copy: <task>/<subtask>/{train,test}.json, JSON lines; multi-output tasks write `labels`
    copy = tmp_path / "pgb" / "gene_exp" / "glycine_max"
    copy.mkdir(parents=True)
    n = task_config("pgb/gene_exp_glycine_max")["num_labels"]
    rows = [{"sequence": "ACGT" * 5, "name": f"g{i}", "labels": [0.1 * i] * n} for i in range(10)]
    (copy / "train.json").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (copy / "test.json").write_text(json.dumps(rows[0]) + "\n")
    task = task_config("pgb/gene_exp_glycine_max", benchmark_dir=tmp_path)
    assert available_splits(task) == ["train", "valid", "test"]  # no valid.json: 10% of train held out
    assert [e.id for e in load_split(task, "test")] == ["g0"] and len(load_split(task, "valid")) == 1
    # InstaDeep's files: <task>/<subtask>_{train,validation,test}.fa, headers name|label[|label...]
    fasta = tmp_path / "pgb" / "promoter_strength"
    fasta.mkdir(parents=True)
    for split, value in (("train", 1.5), ("validation", -0.5), ("test", 0.25)):
        (fasta / f"leaf_{split}.fa").write_text(f">p_{split}|{value}\nACGTNN\nACGT\n")
    task = task_config("pgb/promoter_strength_leaf", benchmark_dir=tmp_path)
    assert available_splits(task) == ["train", "valid", "test"]
    (valid,) = load_split(task, "valid")  # `validation`, not carved from train
    assert (valid.id, valid.sequence, valid.label.tolist()) == ("p_validation", "ACGTNNACGT", [-0.5])
    multi = tmp_path / "pgb" / "chromatin_access"
    multi.mkdir(parents=True)
    n = task_config("pgb/chromatin_access_zea_mays")["num_labels"]
    (multi / "zea_mays_test.fa").write_text(">c1|" + "|".join(["1", "0"] * (n // 2) + ["1"] * (n % 2)) + "\nACGT\n")
    (c1,) = load_split(task_config("pgb/chromatin_access_zea_mays", benchmark_dir=tmp_path), "test")
    assert c1.label.shape == (n,) and c1.label[0] == 1 and c1.label[1] == 0


def test_suite_folders_are_found_in_either_case(tmp_path, shared_data):
    """The archives unpack to RGB/ and GUE/; this project's paths say rgb/ and gue/."""
    import shutil
    (tmp_path / "RGB").mkdir()
    shutil.copytree(shared_data / "rgb" / "RNA-SSP-Archive2", tmp_path / "RGB" / "RNA-SSP-Archive2")
    task = task_config("rgb/ssp_archive2", benchmark_dir=tmp_path)
    assert available_splits(task) == ["train", "valid", "test"] and len(load_split(task, "test")) == 285
