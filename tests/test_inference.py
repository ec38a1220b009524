"""Inference on new sequences (omnigenome embed / predict / score, omnigenome.load): outputs checked against
the model run by hand on the same sequences, every input and output format, records skipped and reported,
bad input in one line, Hugging Face masked LMs, attention and contact maps."""
import gzip
import io
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import ROOT, save_random_model
from omnigenome import OmniGenomeModel
from omnigenome.cli import main as cli_main
from omnigenome.inference.writers import read_embeddings, read_metadata
from omnigenome.tokenizer import OmniGenomeTokenizer
from omnigenome.utils import cpu_bf16_units

SEQS = {"five_s": "GCCUACGGCCAUACCACCCUGAAAGCACCGGUUCUCGUCUGAUCACCGAAGCCAAGCAGGGUCGGGCCUGGUUAGUAC",
        "hairpin": "GGGGAAACCCCAUAUGGGAAACCCAU", "trna": "GCGGAUUUAGCUCAGUUGGGAGAGCGCCAGACUGAAGAUCUGGAGG",
        "dna": "acgtacgtTTGACAnnACGT"}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A small random OmniGenome in the Hugging Face layout; at most 126 nt per record (max_positions 130)."""
    return save_random_model(tmp_path_factory, max_positions=130)


@pytest.fixture(scope="module")
def model(model_dir):
    return OmniGenomeModel.from_pretrained(model_dir).eval()


def write_fasta(path, records):
    path.write_text("".join(f">{k} some description\n{v[:30]}\n{v[30:]}\n" for k, v in records.items()))
    return path


def run_cli(*args):
    return cli_main([str(a) for a in args])


def hidden_alone(model, seq):
    """The encoder's states of one sequence run alone, padded input (no packing): (L, H) over its nucleotides."""
    enc = OmniGenomeTokenizer()([seq])
    with torch.no_grad():
        h = model(enc["input_ids"], enc["attention_mask"], heads=()).hidden_states[0]
    return h[1:len(seq) + 1].numpy()


@pytest.mark.parametrize("suffix", [".safetensors", ".npy", ".parquet"])
def test_embed_equals_each_sequence_run_alone(model, model_dir, tmp_path, suffix, capsys):
    fasta = write_fasta(tmp_path / "in.fa", SEQS)
    out = tmp_path / f"emb{suffix}"
    assert run_cli("embed", model_dir, fasta, "--out", out, "--per-nucleotide", "--no-progress",
                   "--max-tokens", "64") == 0
    assert f"embedded 4 of 4 records -> {out}" in capsys.readouterr().err
    chunks = list(read_embeddings(out))
    ids = [i for c in chunks for i in c.ids]
    pooled = np.concatenate([c.pooled for c in chunks])
    per_nt = [a for c in chunks for a in c.per_nucleotide]
    assert ids == list(SEQS)  # input order, though batches are built by length
    for k, seq in enumerate(SEQS.values()):
        alone = hidden_alone(model, seq)
        assert per_nt[k].shape == (len(seq), 32)
        np.testing.assert_allclose(per_nt[k], alone, atol=2e-5)
        np.testing.assert_allclose(pooled[k], alone.mean(0), atol=2e-5)
    meta = read_metadata(out)
    assert meta["records"] == meta["written"] == 4 and sum(meta["skipped"].values()) == 0
    assert meta["settings"]["pool"] == "mean" and meta["hidden_size"] == 32
    # dtype "auto" is kept as given, and what it meant on this machine is recorded beside it
    assert meta["settings"]["dtype"] == "auto" and meta["compute_dtype"] == ("bf16" if cpu_bf16_units() else "fp32")
    if suffix == ".npy":  # ids travel in a sidecar, one per line in row order
        assert (tmp_path / "emb.ids.txt").read_text().split() == list(SEQS)
        assert np.load(out).shape == (4, 32) and np.load(tmp_path / "emb.offsets.npy").tolist()[-1] == sum(map(len, SEQS.values()))


def test_cls_pooling_and_inputs_csv_jsonl_gzip_stdin(model, model_dir, tmp_path, monkeypatch):
    outs = {}
    csv_path = tmp_path / "in.csv"
    csv_path.write_text("name,rna,other\n" + "".join(f"{k},{v},x\n" for k, v in SEQS.items()))
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text("".join(json.dumps({"id": k, "sequence": v}) + "\n" for k, v in SEQS.items()))
    gz = tmp_path / "in.fa.gz"
    gz.write_bytes(gzip.compress(write_fasta(tmp_path / "plain.fa", SEQS).read_bytes()))
    for name, args in {"csv": [csv_path, "--column", "rna", "--id-column", "name"], "jsonl": [jsonl], "gz": [gz]}.items():
        outs[name] = tmp_path / f"{name}.npy"
        assert run_cli("embed", model_dir, *args, "--out", outs[name], "--pool", "cls", "--no-progress") == 0
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO((tmp_path / "plain.fa").read_bytes())))
    outs["stdin"] = tmp_path / "stdin.npy"
    assert run_cli("embed", model_dir, "-", "--out", outs["stdin"], "--pool", "cls", "--no-progress") == 0
    cls = np.stack([hidden_alone_cls(model, s) for s in SEQS.values()])
    for name, out in outs.items():
        np.testing.assert_allclose(np.load(out), cls, atol=2e-5, err_msg=name)
        assert out.with_name(out.stem + ".ids.txt").read_text().split() == list(SEQS), name
    assert read_metadata(outs["stdin"])["input"] == "<stdin>"


def hidden_alone_cls(model, seq):
    enc = OmniGenomeTokenizer()([seq])
    with torch.no_grad():
        return model(enc["input_ids"], enc["attention_mask"], heads=()).hidden_states[0, 0].numpy()


def test_records_the_model_cannot_take_are_skipped_and_reported(model_dir, tmp_path, capsys):
    records = {"ok": SEQS["hairpin"], "bad": "ACGUXACGU", "long": "ACGU" * 40, "ok2": SEQS["trna"]}
    fasta = write_fasta(tmp_path / "in.fa", records)
    out = tmp_path / "emb.safetensors"
    assert run_cli("embed", model_dir, fasta, "--out", out, "--no-progress") == 0
    err = capsys.readouterr().err
    assert "embedded 2 of 4 records" in err and "skipped 2 record(s) (1 invalid, 1 too long)" in err
    assert f"{fasta}, line 4: record 'bad': invalid nucleotide 'X' at position 5" in err
    assert f"{fasta}, line 7, record 'long': 160 nt is longer than the model reads (126 nt)" in err
    meta = read_metadata(out)
    assert [c.ids for c in read_embeddings(out)] == [["ok", "ok2"]]
    assert meta["skipped"] == {"empty": 0, "invalid": 1, "too_long": 1, "mutation": 0}
    assert [(s["id"], s["reason"]) for s in meta["skipped_records"]] == [("bad", "invalid"), ("long", "too_long")]
    # --strict: the first such record stops the run in one line, and no output is left
    out2 = tmp_path / "strict.safetensors"
    assert run_cli("embed", model_dir, fasta, "--out", out2, "--no-progress", "--strict") == 2
    err = capsys.readouterr().err.strip()
    assert err == f"omnigenome embed: error: {fasta}, line 4: record 'bad': invalid nucleotide 'X' at position 5"
    assert not out2.exists() and not list(tmp_path.glob(".strict*"))


@pytest.mark.parametrize("case", ["empty file", "no sequence column", "bad character", "pretrained to predict",
                                  "all records skipped", "bad mutation", "missing model"])
def test_bad_input_is_one_line(case, model_dir, tmp_path, capsys):
    fasta = write_fasta(tmp_path / "in.fa", {"a": SEQS["hairpin"]})
    out = tmp_path / "out.csv"
    if case == "empty file":
        (tmp_path / "empty.fa").write_text("")
        args, expect = ["embed", model_dir, tmp_path / "empty.fa", "--out", tmp_path / "o.npy"], \
            f"{tmp_path / 'empty.fa'}: the input holds no sequence (it is empty)"
    elif case == "no sequence column":
        (tmp_path / "t.csv").write_text("name,value\na,ACGU\n")
        args, expect = ["score", model_dir, tmp_path / "t.csv", "--out", out], \
            f"{tmp_path / 't.csv'}, line 1: no sequence column (looked for 'sequence', 'seq'; columns: name, value)"
    elif case == "bad character":
        (tmp_path / "t.csv").write_text("id,sequence\nx,ACGU\ny,AC-GU\n")
        args, expect = ["score", model_dir, tmp_path / "t.csv", "--out", out, "--strict"], \
            f"{tmp_path / 't.csv'}, line 3: record 'y': invalid nucleotide '-' at position 3"
    elif case == "pretrained to predict":
        args, expect = ["predict", model_dir, fasta, "--out", out], \
            f"{model_dir.resolve()}: a pretrained model without a task head"
    elif case == "all records skipped":
        bad = write_fasta(tmp_path / "bad.fa", {"q": "ACGUQ"})
        args, expect = ["embed", model_dir, bad, "--out", tmp_path / "o.npy"], \
            f"{bad}: no record could be taken (1 read, all skipped); the first: {bad}, line 1: record 'q'"
    elif case == "bad mutation":
        args, expect = ["score", model_dir, fasta, "--out", out, "--mutations", "C3A", "--strict"], \
            f"{fasta}, line 1, record 'a': mutation C3A: position 3 is 'G', not 'C'"
    else:
        args, expect = ["embed", tmp_path / "nothing", fasta, "--out", out], f"{tmp_path / 'nothing'}: no such checkpoint"
    assert run_cli(*args, "--no-progress") == 2
    err = capsys.readouterr().err
    assert err.startswith(f"omnigenome {args[0]}: error: {expect}") and err.count("\n") == 1, err
    assert not out.exists() and not (tmp_path / "o.npy").exists()


def masked_log_probs(model, seq, positions):
    """log p over A C G U (renormalised) at `positions` (0-based) masked together, by hand: one padded forward."""
    tok = OmniGenomeTokenizer()
    ids = tok([seq])["input_ids"]
    ids[0, [p + 1 for p in positions]] = tok.mask_token_id
    with torch.no_grad():
        logits = model(ids).mlm_logits[0, [p + 1 for p in positions]]
    return torch.log_softmax(logits[:, [4, 5, 6, 7]].double(), -1).numpy()  # A C G T(=U)


def test_score_is_the_exact_masked_marginal(model, model_dir, tmp_path):
    import omnigenome
    m = omnigenome.load(model_dir)
    seq = "GGGGAAACCCCAUAUGGNAAACCCAU"  # an N is not scored
    row = m.score({"s": seq})[0]
    by_hand = [masked_log_probs(model, seq, [i])[0] for i in range(len(seq))]
    base = ["ACGU".find(c) for c in seq]
    expect = np.asarray([np.nan if b < 0 else -lp[b] for lp, b in zip(by_hand, base)])
    np.testing.assert_allclose(row["surprisal"], expect, atol=1e-5)
    assert row["scored"] == len(seq) - 1 and row["pll"] == pytest.approx(-np.nansum(expect), abs=1e-4)
    rows = m.score({"s": seq}, mutations="G1A,A5C:C9U")
    lp = masked_log_probs(model, seq, [0])[0]
    assert rows[0]["mutation"] == "G1A" and rows[0]["effect"] == pytest.approx(lp[0] - lp[2], abs=1e-5)
    lp = masked_log_probs(model, seq, [4, 8])
    assert rows[1]["effect"] == pytest.approx(lp[0, 1] - lp[0, 0] + lp[1, 3] - lp[1, 1], abs=1e-5)
    # a variant sequence gives the same as its substitutions
    variant = seq[:4] + "C" + seq[5:8] + "U" + seq[9:]
    assert m.score({"s": seq}, variants=[variant])[0]["effect"] == pytest.approx(rows[1]["effect"], abs=1e-9)
    # the command line on a CSV with a variant column
    table = tmp_path / "pairs.csv"
    table.write_text(f"id,seq,mut\ns,{seq},{variant}\n")
    assert run_cli("score", model_dir, table, "--out", tmp_path / "v.jsonl", "--column", "seq",
                   "--variant-column", "mut", "--no-progress") == 0
    written = [json.loads(line) for line in (tmp_path / "v.jsonl").read_text().splitlines()]
    assert written[0]["mutation"] == "A5C:C9U" and written[0]["effect"] == pytest.approx(rows[1]["effect"], abs=1e-9)


def tiny_hf_masked_lm(folder, kmer: int = 1):
    """A tiny BERT masked LM with a single-nucleotide (or k-mer) vocabulary, saved by transformers."""
    import itertools

    from transformers import BertConfig, BertForMaskedLM, BertTokenizer
    words = ["".join(p) for p in itertools.product("ACGU", repeat=kmer)]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words
    folder.mkdir()
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizer(str(folder / "vocab.txt"), do_lower_case=False).save_pretrained(folder)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64)
    BertForMaskedLM(config).eval().save_pretrained(folder)
    return folder


def test_hugging_face_masked_lm_scores_and_embeds(tmp_path):
    import omnigenome
    from transformers import BertForMaskedLM
    folder = tiny_hf_masked_lm(tmp_path / "bert")
    m = omnigenome.load(folder)
    seq = "GGGAAACCCU"
    row = m.score(seq)[0]
    hf = BertForMaskedLM.from_pretrained(folder).eval()
    ids = m.model.tokenizer.encode(seq).ids
    letters = [hf.config.vocab_size - 4 + k for k in range(4)]  # A C G U are the last four ids
    for i in (0, 4, 9):
        x = torch.as_tensor(ids)[None].clone()
        x[0, i + 1] = 4  # [MASK]
        with torch.no_grad():
            lp = torch.log_softmax(hf(x).logits[0, i + 1, letters].double(), -1)
        assert row["surprisal"][i] == pytest.approx(-float(lp["ACGU".index(seq[i])]), abs=1e-5)
    e = m.embed([seq, "ACGUACGU"])
    assert e.shape == (2, 16) and np.isfinite(e).all()
    assert m.attentions(seq, layers=[0]).shape == (1, 2, 10, 10)
    with pytest.raises(ValueError, match="no contact head"):
        m.contacts(seq)
    kmers = omnigenome.load(tiny_hf_masked_lm(tmp_path / "kmer", kmer=3))
    with pytest.raises(ValueError, match="cannot give per-nucleotide marginals"):
        kmers.score(seq)
    assert kmers.embed([seq]).shape == (1, 16)  # embeddings need no marginals


def test_attention_and_contact_maps(model, model_dir, tmp_path):
    from omnigenome.model.attention import PackedLayout
    fasta = write_fasta(tmp_path / "in.fa", {"a": SEQS["hairpin"], "b": SEQS["trna"]})
    out = tmp_path / "maps.safetensors"
    assert run_cli("embed", model_dir, fasta, "--out", out, "--attentions=-1:1", "--contacts", "--no-progress") == 0
    from safetensors.numpy import load_file
    maps = load_file(out)
    for k, seq in enumerate((SEQS["hairpin"], SEQS["trna"])):
        ids = torch.as_tensor(OmniGenomeTokenizer().encode(seq))
        with torch.no_grad():
            _, per_layer = model.encode(ids, PackedLayout.from_cu_seqlens(torch.tensor([0, len(ids)])), return_attentions=True)
            contacts = model.predict_contacts(ids[None])[0].numpy()
        L = len(seq)
        assert maps[f"attentions.{k}"].shape == (1, 1, L, L)
        np.testing.assert_allclose(maps[f"attentions.{k}"][0, 0], per_layer[-1][0][1, 1:L + 1, 1:L + 1].numpy(), atol=1e-6)
        np.testing.assert_allclose(maps[f"contacts.{k}"], contacts, atol=1e-6)
    assert run_cli("embed", model_dir, fasta, "--out", tmp_path / "m.npy", "--contacts", "--no-progress") == 2


def test_bf16_embeddings_are_close_to_fp32(model_dir):
    import omnigenome
    seqs = [SEQS["five_s"], SEQS["trna"]]
    fp32 = omnigenome.load(model_dir).embed(seqs)
    bf16 = omnigenome.load(model_dir, dtype="bf16").embed(seqs)
    assert bf16.dtype == np.float32
    cos = (fp32 * bf16).sum(1) / np.linalg.norm(fp32, axis=1) / np.linalg.norm(bf16, axis=1)
    assert (cos > 0.999).all() and not np.array_equal(fp32, bf16)


def test_load_imports_neither_lightning_nor_hydra(model_dir):
    code = ("import sys, omnigenome; m = omnigenome.load(sys.argv[1]); m.embed(['ACGUAGG']); m.score('ACGUAGG');"
            "m.contacts('ACGUAGG'); bad = sorted(k for k in sys.modules if k.split('.')[0] in "
            "('lightning', 'pytorch_lightning', 'hydra', 'omegaconf')); print(bad); assert not bad")
    done = subprocess.run([sys.executable, "-c", code, str(model_dir)], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr + done.stdout
