"""Hugging Face interop: our checkpoints against transformers' EsmForMaskedLM, in both directions.

transformers' ESM is the public reference implementation of this architecture, so MLM logits and contact
maps must agree with it to float32 round-off on padded batches that contain `<mask>` (ESM token dropout).
"""
import copy
import json
import warnings

import pytest
import torch
from safetensors.torch import load_file, save_file

transformers = pytest.importorskip("transformers")
from transformers import EsmConfig, EsmForMaskedLM  # noqa: E402

from omnigenome import OmniGenomeConfig, OmniGenomeModel  # noqa: E402
from omnigenome.model.hub import config_from_hf, config_to_hf  # noqa: E402
from omnigenome.tokenizer import CLS_ID, EOS_ID, MASK_ID, PAD_ID  # noqa: E402

TOL = 1e-4
SIZES = {"tiny": (128, 4, 8, 512), "52m": (480, 16, 24, 2400)}  # hidden, layers, heads, FFN


def esm_config(size: str, **extra) -> EsmConfig:
    hidden, layers, heads, ffn = SIZES[size]
    return EsmConfig(**extra, vocab_size=24, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                     intermediate_size=ffn, max_position_embeddings=1026, position_embedding_type="rotary",
                     token_dropout=True, emb_layer_norm_before=False, layer_norm_eps=1e-5, pad_token_id=PAD_ID,
                     mask_token_id=MASK_ID, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


@torch.no_grad()
def randomize_(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Non-trivial weights: LayerNorm gains away from 1, non-zero biases. Matrices get std 0.1, not 0.02:
    with 0.02 the attention is nearly uniform, and a query/key mix-up would hide under the tolerance."""
    g = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        noise = torch.randn(p.shape, generator=g)
        if p.dim() == 1 and ("norm" in name.lower()) and name.endswith("weight"):
            p.copy_(1 + 0.2 * noise)
        elif p.dim() == 1:
            p.copy_(0.05 * noise)
        else:
            p.copy_(0.1 * noise)
    return model


def random_hf(size: str, seed: int = 0, **config) -> EsmForMaskedLM:
    torch.manual_seed(seed)
    return randomize_(EsmForMaskedLM(esm_config(size, **config)), seed).eval()


def padded_batch(lengths=(21, 14, 6), seed: int = 0):
    """`<cls> nucleotides/structure symbols <eos>` right-padded, with a few `<mask>` tokens."""
    g = torch.Generator().manual_seed(seed)
    L = max(lengths)
    ids = torch.full((len(lengths), L), PAD_ID)
    mask = torch.zeros((len(lengths), L), dtype=torch.long)
    for b, n in enumerate(lengths):
        ids[b, 1:n - 1] = torch.randint(4, 19, (n - 2,), generator=g)
        ids[b, 0], ids[b, n - 1] = CLS_ID, EOS_ID
        mask[b, :n] = 1
    ids[0, [3, 7]] = MASK_ID
    ids[1, 2] = MASK_ID  # the last sequence has none: its scale differs from the others
    return ids, mask


@torch.no_grad()
def max_diff_ours_vs_hf(ours: OmniGenomeModel, hf: EsmForMaskedLM, seed: int = 0) -> float:
    ids, mask = padded_batch(seed=seed)
    a = ours.eval()(ids, mask).mlm_logits
    b = hf.eval()(ids, attention_mask=mask).logits
    keep = mask.bool()
    assert a[keep].abs().max() > 0.5  # the comparison is not between near-zero numbers
    return (a - b)[keep].abs().max().item()


@pytest.fixture(scope="module", params=list(SIZES))
def hf_dir(request, tmp_path_factory):
    """(size, EsmForMaskedLM, directory written by transformers' own save_pretrained)."""
    hf = random_hf(request.param)
    directory = tmp_path_factory.mktemp(f"hf_{request.param}")
    hf.save_pretrained(directory)
    return request.param, hf, directory


@pytest.fixture(scope="module")
def loaded(hf_dir):
    """Our model loaded from `hf_dir` (an ESM checkpoint has no structure head: a warning must say so)."""
    size, hf, directory = hf_dir
    with pytest.warns(UserWarning, match="no structure head"):
        ours = OmniGenomeModel.from_pretrained(directory)
    return size, hf, ours


@pytest.fixture(scope="module")
def tiny():
    """(EsmForMaskedLM, its state dict with transformers 4.x names and the tied decoder)."""
    hf = random_hf("tiny", seed=1)
    return hf, {k: v.clone() for k, v in hf.state_dict().items()}


def write_dir(directory, state: dict, config: dict | None = None, fmt: str = "bin"):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config or esm_config("tiny").to_dict()))
    if fmt == "bin":
        torch.save(state, directory / "pytorch_model.bin")
    else:
        save_file({k: v.contiguous() for k, v in state.items()}, str(directory / "model.safetensors"))
    return directory


# --- parity with transformers -----------------------------------------------------------------------
def test_transformers_checkpoint_to_ours(loaded):
    size, hf, ours = loaded
    assert ours.config.hidden_size == SIZES[size][0] and ours.config.num_layers == SIZES[size][1]
    assert max_diff_ours_vs_hf(ours, hf) < TOL


def test_ours_to_transformers_and_back(loaded, tmp_path):
    size, hf, ours = loaded
    ours = copy.deepcopy(ours)
    randomize_(ours.structure_head, seed=5)
    ours.save_pretrained(tmp_path)
    assert {"config.json", "model.safetensors", "vocab.txt"} <= {p.name for p in tmp_path.iterdir()}

    hf2 = EsmForMaskedLM.from_pretrained(tmp_path).eval()
    assert max_diff_ours_vs_hf(ours, hf2, seed=1) < TOL

    if size != "tiny":
        return  # reading our own files back does not depend on the size; spare the time
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # our own directory is complete: no head is missing
        again = OmniGenomeModel.from_pretrained(tmp_path)
    for (name, a), (_, b) in zip(ours.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), name


def test_saved_file_layout(tmp_path):
    """Our file uses transformers 4.x names, carries a separate copy of the tied decoder, and our extras."""
    model = OmniGenomeModel(OmniGenomeConfig(hidden_size=32, num_layers=2, num_heads=4, ffn_size=64))
    model.save_pretrained(tmp_path)
    state = load_file(str(tmp_path / "model.safetensors"))
    assert "esm.encoder.layer.1.attention.LayerNorm.weight" in state
    assert "esm.encoder.layer.0.attention.self.query.bias" in state
    assert not any(k.endswith((".gamma", ".beta")) for k in state)
    assert torch.equal(state["lm_head.decoder.weight"], state["esm.embeddings.word_embeddings.weight"])
    assert state["dense.weight"].shape == (32, 32) and state["classifier.weight"].shape == (3, 32)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "esm" and config["architectures"] == ["EsmForMaskedLM"]
    assert config["num_structure_labels"] == 3
    assert (tmp_path / "vocab.txt").read_text().split("\n")[23] == "<mask>"
    hf_config = transformers.AutoConfig.from_pretrained(tmp_path)
    assert hf_config.num_structure_labels == 3 and hf_config.position_embedding_type == "rotary"


def test_transformers5_checkpoint_format(tmp_path):
    """What transformers 5.x writes (and the loader must accept): gamma/beta block LayerNorms, no tied decoder,
    and the rotary buffer under the literal name `esm.encoder.layer.*.attention.self.rotary_embeddings.inv_freq`."""
    random_hf("tiny").save_pretrained(tmp_path)
    keys = set(load_file(str(tmp_path / "model.safetensors")))
    if "esm.encoder.layer.0.LayerNorm.gamma" not in keys:
        pytest.skip(f"transformers {transformers.__version__} writes 4.x names; covered by the 4.x tests")
    assert "lm_head.decoder.weight" not in keys
    assert "esm.encoder.emb_layer_norm_after.weight" in keys  # only `LayerNorm.*` is renamed


def test_contact_prediction_matches_transformers(tmp_path):
    hf = random_hf("tiny", seed=2, attn_implementation="eager")  # sdpa cannot return attention maps
    if not hasattr(hf.esm, "predict_contacts"):
        pytest.skip("this transformers has no EsmModel.predict_contacts")
    hf.save_pretrained(tmp_path)
    with pytest.warns(UserWarning):
        ours = OmniGenomeModel.from_pretrained(tmp_path)
    ids, mask = padded_batch()
    with torch.no_grad():
        expected = hf.esm.predict_contacts(ids, mask)
    got = ours.predict_contacts(ids, mask)
    assert got.shape == expected.shape == (3, ids.shape[1] - 2, ids.shape[1] - 2)
    assert (got - expected).abs().max().item() < TOL


# --- checkpoint spellings ---------------------------------------------------------------------------
def test_released_omnigenome_layout(tiny, tmp_path):
    """`OmniGenome.` prefix, pytorch_model.bin, 4.x names, top-level structure head, unused buffers."""
    hf, state = tiny
    H = hf.config.hidden_size
    released = {("OmniGenome." + k[len("esm."):] if k.startswith("esm.") else k): v for k, v in state.items()}
    g = torch.Generator().manual_seed(3)
    head = {"dense.weight": torch.randn(H, H, generator=g), "dense.bias": torch.randn(H, generator=g),
            "classifier.weight": torch.randn(3, H, generator=g), "classifier.bias": torch.randn(3, generator=g)}
    released.update(head)
    released["OmniGenome.embeddings.position_embeddings.weight"] = torch.randn(1026, H, generator=g)
    released["OmniGenome.embeddings.position_ids"] = torch.arange(1026)[None]
    for i in range(hf.config.num_hidden_layers):
        released[f"OmniGenome.encoder.layer.{i}.attention.self.rotary_embeddings.inv_freq"] = torch.ones(8)
    config = {**esm_config("tiny").to_dict(), "model_type": "omnigenome", "architectures": ["OmniGenomeModel"]}
    write_dir(tmp_path, released, config)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = OmniGenomeModel.from_pretrained(tmp_path)
    assert torch.equal(ours.structure_head.dense.weight, head["dense.weight"])
    assert torch.equal(ours.structure_head.dense.bias, head["dense.bias"])
    assert torch.equal(ours.structure_head.classifier.weight, head["classifier.weight"])
    assert torch.equal(ours.structure_head.classifier.bias, head["classifier.bias"])
    assert max_diff_ours_vs_hf(ours, hf) < TOL


@pytest.mark.parametrize("fmt", ["bin", "safetensors"])
def test_gamma_beta_names_and_missing_decoder(tiny, tmp_path, fmt):
    hf, state = tiny
    renamed = {}
    for k, v in state.items():
        if k == "lm_head.decoder.weight":
            continue
        if ".LayerNorm." in k or "layer_norm" in k:
            k = k.replace(".weight", ".gamma").replace(".bias", ".beta")
        renamed[k] = v
    write_dir(tmp_path, renamed, fmt=fmt)
    with pytest.warns(UserWarning, match="structure head"):
        ours = OmniGenomeModel.from_pretrained(tmp_path)
    assert max_diff_ours_vs_hf(ours, hf) < TOL


def test_untied_decoder_is_an_error(tiny, tmp_path):
    _, state = tiny
    state = dict(state, **{"lm_head.decoder.weight": state["lm_head.decoder.weight"] + 1})
    with pytest.raises(ValueError, match="lm_head.decoder.weight"):
        OmniGenomeModel.from_pretrained(write_dir(tmp_path, state))


def test_missing_tensors_are_listed(tiny, tmp_path):
    _, state = tiny
    gone = ["esm.encoder.layer.2.intermediate.dense.weight", "esm.encoder.layer.0.attention.self.key.bias"]
    state = {k: v for k, v in state.items() if k not in gone}
    with pytest.raises(ValueError, match="2 missing") as err:
        OmniGenomeModel.from_pretrained(write_dir(tmp_path, state))
    message = str(err.value)
    assert all(name in message for name in gone)
    assert message.index(gone[1]) < message.index(gone[0])  # sorted


def test_many_missing_tensors_are_counted(tiny, tmp_path):
    _, state = tiny
    state = {k: v for k, v in state.items() if ".layer.3." not in k and ".layer.2." not in k}
    with pytest.raises(ValueError, match=r"32 missing .* and 12 more"):
        OmniGenomeModel.from_pretrained(write_dir(tmp_path, state))


def test_unexpected_tensors_are_listed(tiny, tmp_path):
    _, state = tiny
    state = dict(state, **{"esm.encoder.layer.1.bogus.weight": torch.zeros(3), "esm.pooler.dense.bias": torch.zeros(3)})
    with pytest.raises(ValueError, match="2 unexpected") as err:
        OmniGenomeModel.from_pretrained(write_dir(tmp_path, state))
    assert "esm.encoder.layer.1.bogus.weight" in str(err.value) and "esm.pooler.dense.bias" in str(err.value)


def test_non_strict_load_warns(tiny, tmp_path):
    _, state = tiny
    state = {k: v for k, v in state.items() if k != "esm.encoder.layer.1.output.dense.bias"}
    state["bogus"] = torch.zeros(1)
    with pytest.warns(UserWarning) as record:
        OmniGenomeModel.from_pretrained(write_dir(tmp_path, state), strict=False)
    messages = " ".join(str(w.message) for w in record)
    assert "esm.encoder.layer.1.output.dense.bias" in messages and "bogus" in messages


def test_shape_mismatch_names_both_shapes(tiny, tmp_path):
    _, state = tiny
    state = dict(state, **{"lm_head.bias": torch.zeros(25)})
    with pytest.raises(ValueError, match=r"lm_head\.bias: checkpoint \(25,\), model \(24,\)"):
        OmniGenomeModel.from_pretrained(write_dir(tmp_path, state))


def test_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        OmniGenomeModel.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(esm_config("tiny").to_dict()))
    with pytest.raises(FileNotFoundError, match="model.safetensors or pytorch_model.bin"):
        OmniGenomeModel.from_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        OmniGenomeModel.from_pretrained(tmp_path / "nowhere")


# --- config -----------------------------------------------------------------------------------------
def test_config_round_trip():
    cfg = OmniGenomeConfig(hidden_size=720, num_layers=32, num_heads=30, ffn_size=2560, layer_norm_eps=1e-6)
    assert config_from_hf(config_to_hf(cfg)) == cfg
    assert config_from_hf(esm_config("52m").to_dict()) == OmniGenomeConfig()


@pytest.mark.parametrize("change", [{"position_embedding_type": "absolute"}, {"emb_layer_norm_before": True},
                                    {"mask_token_id": 32}, {"hidden_act": "relu"}])
def test_unsupported_config(change):
    with pytest.raises(ValueError, match=next(iter(change))):
        config_from_hf({**config_to_hf(OmniGenomeConfig()), **change})


def test_overrides_and_backend(tiny, tmp_path):
    _, state = tiny
    with pytest.warns(UserWarning, match="structure head"):
        model = OmniGenomeModel.from_pretrained(write_dir(tmp_path, state), token_dropout=False,
                                                attention_backend="reference")
    assert model.config.token_dropout is False and model.attention_backend == "reference"
    with pytest.raises(TypeError, match="hidden_sizes"):
        OmniGenomeModel.from_pretrained(tmp_path, hidden_sizes=3)
