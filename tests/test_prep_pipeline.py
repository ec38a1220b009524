"""`omnigenome prep` at scale: config, long-sequence windows, JSON-lines transcripts, cd-hit-est near-duplicates."""
import itertools
import re
import json
import shutil

import pytest

from omnigenome.cli import main
from omnigenome.data.dedup import CdHitMissing, cdhit_word_size, parse_clstr, sequence_digest
from omnigenome.data.fasta import FastaError, read_fasta, read_regions_jsonl, read_sequences
from omnigenome.data.prep import load_config, prepare_corpus
from omnigenome.data.prep_stages import COUNT_KEYS, WINDOW_KEYS, window_id, windows
from omnigenome.data.prep_executor import group_units
from omnigenome.data.shards import ShardedCorpus
from omnigenome.tokenizer import OmniGenomeTokenizer

normalize = OmniGenomeTokenizer(alphabet="U").normalize
has_cdhit = shutil.which("cd-hit-est") is not None


def kept(out):
    return [r for split in ("train", "valid") for r in ShardedCorpus(out / split)]


def test_config_and_its_checks():
    cfg = load_config()
    assert (cfg.min_length, cfg.max_length, cfg.long_policy, cfg.fold.workers) == (50, 1022, "drop", None)
    cfg = load_config("default", ["long_policy=window", "near_dup.identity=0.95", "fold.workers=3"])
    assert (cfg.long_policy, cfg.near_dup.identity, cfg.fold.workers) == ("window", 0.95, 3)
    assert load_config("slurm").executor.name == "slurm"
    with pytest.raises(ValueError, match=r"unknown setting 'no_such_key' in prep/default \(valid keys there: inputs, "):
        load_config("default", ["no_such_key=1"])
    with pytest.raises(ValueError, match=r"unknown setting 'near_dup.identiti' .*valid keys there: enabled, identity"):
        load_config("default", ["near_dup.identiti=0.9"])
    for bad, message in [("min_length=abc", "min_length='abc': must be an integer >= 1"),
                         ("long_policy=cut", "long_policy='cut': must be drop or window"),
                         ("valid_fraction=1.5", "valid_fraction=1.5: must be a number in [0, 1)")]:
        with pytest.raises(ValueError, match=re.escape(message)):
            load_config("default", [bad])


@pytest.mark.parametrize("length, size, overlap", [(10, 10, 2), (11, 10, 2), (25, 10, 2), (26, 10, 0), (1000, 300, 50)])
def test_windows_cover_with_overlap(length, size, overlap):
    spans = windows(length, size, overlap)
    covered = set()
    for (a, b), nxt in zip(spans, spans[1:] + [None]):
        assert b - a == min(size, length)
        covered |= set(range(a, b))
        if nxt is not None:
            assert a < nxt[0] and b - nxt[0] >= overlap  # consecutive windows share at least `overlap`
    assert covered == set(range(length)) and spans[-1][1] == length
    assert window_id("x", 0, 10) == "x/w1-10"


def test_plant_transcripts_jsonl(shared_data):
    path = shared_data / "plant_transcripts" / "arabidopsis_regions.json"
    first = list(itertools.islice(read_sequences(path), 3))
    line = json.loads(path.open().readline())
    assert first[0].sequence == line["5utr"] + line["cds"] + line["3utr"]
    assert [r.id for r in first] == ["arabidopsis_regions:1", "arabidopsis_regions:2", "arabidopsis_regions:3"]


@pytest.mark.parametrize("content, line", [('{"cds": "ACGU"}\n[1, 2]\n', 2), ('{"cds": "ACGU"}\n\x00\x01garbage\n', 2),
                                            ('{"5utr": "", "cds": ""}\n', 1)])
def test_malformed_jsonl_names_file_and_line(tmp_path, content, line):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(FastaError, match=f"bad.jsonl, line {line}:"):
        list(read_regions_jsonl(path))


def test_long_windows_and_counts(shared_data, tmp_path):
    """RNase P RNAs (~350 nt) cut into 120-nt windows, plus prefixes of some in a second file."""
    src = shared_data / "rna_fasta" / "RF00010.fasta"
    records = list(itertools.islice(read_fasta(src), 12))
    copies = [r._replace(id=f"copy{i}", sequence=r.sequence[:200]) for i, r in enumerate(records[:3])]
    a, b = tmp_path / "a.fa", tmp_path / "b.fa"
    a.write_text("".join(f">{r.id}\n{r.sequence}\n" for r in records))
    b.write_text("".join(f">{r.id}\n{r.sequence}\n" for r in copies))  # their first window repeats
    out = tmp_path / "out"
    manifest = prepare_corpus([a, b], out, max_length=120, long_policy="window", window={"overlap": 40},
                              workers=2, progress=False, valid_fraction=0.5)
    counts, wins = manifest["counts"], manifest["windows"]
    assert set(counts) == set(COUNT_KEYS) and set(wins) == set(WINDOW_KEYS)
    assert counts["input"] == 15 == counts["windowed"] and counts["too_long"] == 0
    expected, made = {}, 0
    for r in records + copies:
        s = normalize(r.sequence)
        for start, end in windows(len(s), 120, 40):
            made += 1
            expected.setdefault(s[start:end], window_id(r.id, start, end))  # first occurrence wins
    assert {r.sequence: r.id for r in kept(out)} == expected
    assert wins["made"] == made and wins["duplicate"] == made - len(expected) >= 3
    assert wins["made"] == wins["kept_train"] + wins["kept_valid"] + wins["duplicate"] + wins["near_duplicate"]
    # All windows of a record are in one split (overlapping windows on both sides would leak).
    parents = [{r.id.rsplit("/w", 1)[0] for r in ShardedCorpus(out / split)} for split in ("train", "valid")]
    assert parents[0] and parents[1] and not parents[0] & parents[1]


def test_cli_settings_as_overrides(shared_data, tmp_path, capsys):
    src = shared_data / "rna_fasta" / "RF00005.fasta"
    out = tmp_path / "out"
    code = main(["prep", str(src), "--out", str(out), "progress=false", "max_length=60", "min_length=40",
                 "long_policy=window", "window.overlap=20", "fold.workers=2", "records_per_shard=300"])
    assert code == 0, capsys.readouterr().err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["settings"]["long_policy"] == "window" and manifest["settings"]["window_overlap"] == 20
    assert manifest["counts"]["windowed"] > 0 and manifest["windows"]["made"] > manifest["counts"]["windowed"]
    ids = [r.id for r in kept(out)]
    assert any("/w" in i for i in ids)
    assert max(len(r.sequence) for r in kept(out)) == 60
    assert main(["prep", str(src), "--out", str(tmp_path / "o2"), "bogus_key=1"]) == 2
    assert "bogus_key" in capsys.readouterr().err


def test_exact_dedup_is_exact_across_files(shared_data, tmp_path):
    """Every distinct normalised sequence of three real files is kept exactly once, by digest and by value."""
    files = [shared_data / "rna_fasta" / n for n in ("format_rnacentral_active.100.sample-Max50.fasta", "RF00005.fasta")]
    first = list(itertools.islice(read_fasta(files[0]), 50))
    third = tmp_path / "again.fa.gz"
    import gzip
    third.write_bytes(gzip.compress("".join(f">again{i}\n{r.sequence.lower()}\n" for i, r in enumerate(first)).encode()))
    out = tmp_path / "out"
    manifest = prepare_corpus(files + [third], out, workers=2, progress=False, max_length=90)
    distinct = {}
    total = 0
    for path in files + [third]:
        for r in read_sequences(path):
            total += 1
            s = normalize(r.sequence)
            if 50 <= len(s) <= 90:
                distinct.setdefault(s, r.id)
    records = kept(out)
    assert {r.sequence: r.id for r in records} == distinct
    assert len({sequence_digest(r.sequence) for r in records}) == len(records)
    c = manifest["counts"]
    assert c["input"] == total and c["duplicate"] == sum(
        1 for p in files + [third] for r in read_sequences(p) if 50 <= len(r.sequence) <= 90) - len(distinct)
    assert c["input"] == sum(v for k, v in c.items() if k != "input")


# --- cd-hit-est ---------------------------------------------------------------------------------
def test_word_size_table():
    assert [cdhit_word_size(c) for c in (1.0, 0.95, 0.9, 0.89, 0.86, 0.8, 0.75)] == [10, 10, 8, 7, 6, 5, 4]
    with pytest.raises(ValueError):
        cdhit_word_size(0.7)


def test_parse_clstr(tmp_path):
    path = tmp_path / "x.clstr"
    path.write_text(">Cluster 0\n0\t120nt, >3... *\n1\t118nt, >7... at +/97.46%\n>Cluster 1\n0\t80nt, >1... *\n")
    assert parse_clstr(path) == (["3", "1"], ["7"])


def test_missing_cdhit_fails_early_with_package_name(shared_data, tmp_path, capsys):
    src = shared_data / "rna_fasta" / "RF00005.fasta"
    with pytest.raises(CdHitMissing, match="cd-hit"):
        cfg = load_config("default", ["near_dup.enabled=true", "near_dup.program=no-such-cd-hit-est"])
        prepare_corpus([src], tmp_path / "o", cfg, progress=False)
    code = main(["prep", str(src), "--out", str(tmp_path / "o"), "near_dup.enabled=true", "near_dup.identity=0.9",
                 "near_dup.program=no-such"])
    assert code == 2 and "apt-get install cd-hit" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.skipif(not has_cdhit, reason="cd-hit-est not installed (Debian package cd-hit; .ci/run installs it)")
def test_near_duplicates_removed_with_cdhit(shared_data, tmp_path):
    """tRNAs at 90 % identity: planted one-substitution copies go, their originals stay, counts add up."""
    records = list(itertools.islice(read_fasta(shared_data / "rna_fasta" / "RF00005.fasta"), 200))
    src = tmp_path / "trna.fa"
    planted = []
    text = "".join(f">{r.id}\n{r.sequence}\n" for r in records)
    for i, r in enumerate(records[:5]):
        s = normalize(r.sequence)
        mutant = s[:30] + ("A" if s[30] != "A" else "C") + s[31:]
        planted.append(mutant)
        text += f">mutant{i}\n{mutant}\n"
    src.write_text(text)
    out = tmp_path / "out"
    cfg = load_config("default", ["near_dup.enabled=true", "near_dup.identity=0.9", "fold.workers=2", "progress=false"])
    manifest = prepare_corpus([src], out, cfg)
    c = manifest["counts"]
    assert c["input"] == 205 and c["near_duplicate"] >= 5
    assert c["input"] == sum(v for k, v in c.items() if k != "input")
    sequences = {r.sequence for r in kept(out)}
    assert len(sequences) == c["kept_train"] + c["kept_valid"]
    assert not sequences & set(planted)  # every planted copy is a near-duplicate ...
    # ... of a kept cluster representative: removing them did not remove the whole cluster.
    assert manifest["settings"]["near_dup_identity"] == 0.9


def test_group_units_balances_cost():
    units = [{"name": f"u{i}", "cost": c} for i, c in enumerate([100, 1, 1, 50, 50, 1, 1])]
    groups = group_units(units, 2)
    assert sorted(n for g in groups for n in g) == sorted(u["name"] for u in units)
    costs = [sum(u["cost"] for u in units if u["name"] in g) for g in groups]
    assert max(costs) <= 104
    assert group_units(units[:1], 4) == [["u0"]]


def test_slurm_executor_settings(tmp_path, monkeypatch):
    """executor.name=slurm builds a submitit SLURM executor from conf/prep (a stub srun stands in for SLURM)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")
    from omnigenome.data.prep_executor import make_executor

    cfg = load_config("slurm", ["executor.slurm.partition=cpu", "+executor.slurm.additional_parameters.account=proj"])
    script = make_executor(cfg, tmp_path)._executor._make_submission_file_text("python -m x", "0")
    for line in ("--partition=cpu", "--cpus-per-task=32", "--account=proj", "--mem=16GB", "--time=240"):
        assert f"#SBATCH {line}" in script
