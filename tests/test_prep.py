"""FASTA reading (omnigenome.data.fasta), `prepare_corpus` and the `omnigenome prep` command."""
import gzip
import itertools
import json

import pytest

from omnigenome.cli import main
from omnigenome.data.fasta import FastaError, FastaRecord, read_fasta
from omnigenome.data.prep import prepare_corpus
from omnigenome.data.prep_stages import COUNT_KEYS, is_validation
from omnigenome.data.shards import ShardedCorpus
from omnigenome.folding import fold
from omnigenome.tokenizer import OmniGenomeTokenizer

MULTILINE = """\
>first some description
ACGU ACGU
acgu

>second
GGGG
CCCC
>third\tx
N
"""
EXPECTED = [FastaRecord("first", "ACGUACGUacgu", 1), FastaRecord("second", "GGGGCCCC", 5),
            FastaRecord("third", "N", 8)]


# --- FASTA -------------------------------------------------------------------------------------
def test_multiline_plain_and_gzip(tmp_path):
    plain = tmp_path / "a.fasta"
    plain.write_text(MULTILINE)
    packed = tmp_path / "a.fa.gz"
    packed.write_bytes(gzip.compress(MULTILINE.encode()))
    assert list(read_fasta(plain)) == EXPECTED
    assert list(read_fasta(packed)) == EXPECTED


@pytest.mark.parametrize("content, line, what", [
    ("\nACGU\n>x\nACGU\n", 2, "before the first"),
    (">a\nACGU\n>empty\n\n>c\nACGU\n", 3, "no sequence"),
    (">a\nACGU\n>empty_at_end\n", 3, "no sequence"),
    (">a\nACGU\n>\nACGU\n", 3, "without an id"),
    (">a\nACGU\nAC\x00\x01\x02GU\n", 3, "binary"),
    (b">a\nACGU\n>b\n\xff\xfe\x89PNG\n".decode("latin-1"), 4, "binary"),
])
def test_errors_name_file_and_line(tmp_path, content, line, what):
    path = tmp_path / "bad.fasta"
    path.write_bytes(content.encode("latin-1"))
    with pytest.raises(FastaError, match=what) as info:
        list(read_fasta(path))
    assert str(path) in str(info.value) and f"line {line}:" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_corrupt_gzip(tmp_path):
    path = tmp_path / "bad.fa.gz"
    data = gzip.compress(("".join(f">r{i}\n{'ACGU' * (i % 50 + 1)}\n" for i in range(2000))).encode())
    path.write_bytes(data[: len(data) // 2])  # truncated stream
    with pytest.raises(FastaError, match=str(path)):
        list(read_fasta(path))


# --- prepare_corpus ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def prepared(shared_data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("prep")
    real = shared_data / "rna_fasta" / "RF00005.fasta"
    first = list(itertools.islice(read_fasta(real), 4))
    extra = tmp / "extra.fa.gz"
    text = "".join(f">dup-{r.id}\n{r.sequence.lower().replace('u', 't')}\n" for r in first)  # same after normalising
    text += ">bad-record\nACGUACGUACGUACGUACGUACGUACGUACGUACGUACGUACGUACGUAXGU\n"
    text += ">short\nACGUACGU\n>long\n" + "ACGU" * 40 + "\n"
    extra.write_bytes(gzip.compress(text.encode()))
    out = tmp / "corpus"
    manifest = prepare_corpus([real, extra], out, max_length=150, workers=2, valid_fraction=0.1, progress=False)
    return real, extra, out, manifest


def test_manifest_counts_add_up(prepared):
    real, extra, out, manifest = prepared
    counts = manifest["counts"]
    assert set(counts) == set(COUNT_KEYS)
    assert counts["input"] == sum(v for k, v in counts.items() if k != "input")
    assert counts["input"] == 954 + 7
    assert manifest["inputs"] == [{"path": str(real), "records": 954}, {"path": str(extra), "records": 7}]
    assert (counts["invalid"], counts["too_short"], counts["too_long"]) == (1, 1, 1)
    assert json.loads((out / "manifest.json").read_text()) == manifest


def test_duplicates_removed_exactly(prepared):
    real, _, out, manifest = prepared
    normalize = OmniGenomeTokenizer(alphabet="U").normalize
    distinct = {normalize(r.sequence) for r in read_fasta(real)}
    kept = [r for name in ("train", "valid") for r in ShardedCorpus(out / name)]
    assert len(kept) == len({r.sequence for r in kept}) == len(distinct)
    assert {r.sequence for r in kept} == distinct
    assert manifest["counts"]["duplicate"] == 954 - len(distinct) + 4
    assert not any(r.id.startswith("dup-") for r in kept)  # first occurrence wins


def test_invalid_record_listed(prepared):
    _, extra, _, manifest = prepared
    [item] = manifest["invalid"]
    assert item["id"] == "bad-record" and item["file"] == str(extra) and item["line"] == 9
    assert "'X'" in item["reason"] and "position 50" in item["reason"]


def test_split_and_structures(prepared):
    _, _, out, manifest = prepared
    train, val = ShardedCorpus(out / "train"), ShardedCorpus(out / "valid")
    assert (len(train), len(val)) == (manifest["counts"]["kept_train"], manifest["counts"]["kept_valid"])
    assert 0 < len(val) < 0.2 * (len(train) + len(val))
    assert all(is_validation(r.sequence, 0.1) for r in val)
    assert not any(is_validation(r.sequence, 0.1) for r in train)
    for r in list(train)[:5] + list(val)[:5]:
        assert set(r.sequence) <= set("ACGUN") and r.structure == fold(r.sequence)[0]


# --- CLI ---------------------------------------------------------------------------------------
def test_cli_prep(shared_data, tmp_path, capsys):
    src = shared_data / "rna_fasta" / "format_rnacentral_active.100.sample-Max50.fasta"
    out = tmp_path / "out"
    code = main(["prep", str(src), "--out", str(out), "fold.workers=1", "max_length=80",
                 "valid_fraction=0.2", "records_per_shard=50", "progress=false"])
    assert code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    counts = manifest["counts"]
    assert counts["input"] == 1400 and counts["too_short"] > 0 and counts["too_long"] > 0
    assert counts["kept_train"] + counts["kept_valid"] > 100
    assert counts["input"] == sum(v for k, v in counts.items() if k != "input")
    assert len(ShardedCorpus(out / "train")) == counts["kept_train"]
    assert manifest["train"]["shards"] == -(-counts["kept_train"] // 50)
    assert "kept_train" in capsys.readouterr().out
    assert main(["prep", str(src), "--out", str(out)]) == 2  # refuses to overwrite
    assert "already holds" in capsys.readouterr().err


def test_cli_malformed_fasta_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.fasta"
    bad.write_text(">ok\nACGU\n>empty\n>x\nACGU\n")
    assert main(["prep", str(bad), "--out", str(tmp_path / "out"), "progress=false"]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "line 3" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_prep_that_keeps_no_record_says_why_and_fails(tmp_path, capsys):
    short = tmp_path / "short.fa"
    short.write_text(">a\nACGUACGU\n>b\nGGGGCCCC\n")
    assert main(["prep", str(short), "--out", str(tmp_path / "out"), "progress=false"]) == 1
    err = capsys.readouterr().err
    assert "error: no record kept (2 too short)" in err and err.count("\n") == 1
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["counts"]["too_short"] == 2 and manifest["counts"]["kept_train"] == 0


def test_ctrl_c_during_prep_is_one_line_and_the_same_command_continues(tmp_path, shared_data):
    import signal
    import subprocess
    import sys
    import time
    records = (shared_data / "rna_fasta" / "RF00010.fasta").read_text().split(">")[1:81]
    src = tmp_path / "rnasep.fa"  # 80 RNase P RNAs of 300-500 nt: several seconds of folding on one core
    src.write_text("".join(">" + r for r in records))
    cmd = [sys.executable, "-m", "omnigenome.cli", "prep", str(src), "--out", str(tmp_path / "out"),
           "records_per_shard=20", "fold.workers=1", "progress=false"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    plan = tmp_path / "out" / ".work" / "plan.json"
    deadline = time.time() + 120
    while not plan.exists() and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)  # folding
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "interrupted (" in lines[0] and "work units folded); run the same command again" in lines[0]
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert (tmp_path / "out" / "manifest.json").is_file()
