"""Small randomly initialised models of other families, written with save_pretrained as the released ones are:
what the backbone tests, `bench_backbones.py` and the CPU comparison in docs/benchmarks.md fine-tune, since no
hub checkpoint can be downloaded here. Each builder writes a folder that `init_from=<folder>` reads and returns
its path; sizes are arguments (the tests use hidden 32-64 and 2 layers).

- `nt_esm`: Nucleotide Transformer v1 / Agro-NT style, transformers' `EsmForMaskedLM` with an `EsmTokenizer`
  of non-overlapping 6-mers that falls back to single letters (A C G T N) where no whole 6-mer is left.
- `rnafm`: multimolecule's RNA-FM with its single-nucleotide `RnaTokenizer` (U alphabet, T read as U).
- `dnabert2`: multimolecule's DNABERT-2 (ALiBi, gated MLP) with a BPE tokenizer trained here by the
  `tokenizers` package on random DNA, the way DNABERT-2's own was trained on genomes.
- `bert_single`: BERT with one WordPiece token per nucleotide, U alphabet, given spaced (SpliceBERT style).
- `bert_kmer`: BERT with overlapping k-mers written as words (DNABERT-1 style, default k=3).

multimolecule is imported only by the builders that need it (AGPL-3.0; the `zoo` extra).
"""
from __future__ import annotations

import itertools
import os
import random
import sys
from pathlib import Path


def _save(folder, model, tokenizer) -> Path:
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return Path(folder)


def _vocab_file(folder, tokens) -> str:
    Path(folder).mkdir(parents=True, exist_ok=True)
    path = os.path.join(folder, "vocab.txt")
    Path(path).write_text("\n".join(tokens) + "\n")
    return path


def _bert(tokenizer, hidden: int, layers: int, heads: int, max_positions: int):
    from transformers import BertConfig, BertForMaskedLM
    return BertForMaskedLM(BertConfig(vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers,
                                      num_attention_heads=heads, intermediate_size=2 * hidden,
                                      max_position_embeddings=max_positions, pad_token_id=tokenizer.pad_token_id))


def nt_esm(folder, hidden: int = 32, layers: int = 2, heads: int = 4, max_positions: int = 130, seed: int = 0) -> Path:
    """ESM + 6-mer EsmTokenizer: 4096 6-mers, then A C G T N for the tail (and after an N). ESM's positions
    start at padding_idx + 1 = 2, so `max_positions=130` reads at most 128 tokens."""
    import torch
    from transformers import EsmConfig, EsmForMaskedLM, EsmTokenizer
    torch.manual_seed(seed)
    specials = ["<unk>", "<pad>", "<mask>", "<cls>", "<eos>", "<bos>"]
    kmers = ["".join(p) for p in itertools.product("ACGT", repeat=6)]
    tokenizer = EsmTokenizer(_vocab_file(folder, specials + kmers + list("ACGTN")), unk_token="<unk>",
                             cls_token="<cls>", pad_token="<pad>", mask_token="<mask>", eos_token="<eos>")
    config = EsmConfig(vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers,
                       num_attention_heads=heads, intermediate_size=2 * hidden, max_position_embeddings=max_positions,
                       pad_token_id=tokenizer.pad_token_id, mask_token_id=tokenizer.mask_token_id,
                       position_embedding_type="absolute")
    return _save(folder, EsmForMaskedLM(config), tokenizer)


def rnafm(folder, hidden: int = 64, layers: int = 2, heads: int = 4, ffn: int | None = None,
          max_positions: int = 1026, seed: int = 0) -> Path:
    """multimolecule RNA-FM (ESM-1b lineage: learned positions from row 2, so 1026 rows read 1024 tokens)."""
    import torch
    from multimolecule import RnaFmConfig, RnaFmForMaskedLM, RnaTokenizer
    torch.manual_seed(seed)
    config = RnaFmConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                         intermediate_size=ffn or 2 * hidden, max_position_embeddings=max_positions)
    return _save(folder, RnaFmForMaskedLM(config), RnaTokenizer())


def bpe_tokenizer(vocab_size: int = 128, seed: int = 0):
    """A DNABERT-2 style BPE tokenizer (`[CLS] ... [SEP]`), trained on 300 random DNA sequences."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast
    rng = random.Random(seed)
    corpus = ["".join(rng.choice("ACGT") for _ in range(rng.randint(50, 150))) for _ in range(300)]
    bpe = Tokenizer(models.BPE(unk_token="[UNK]"))
    bpe.pre_tokenizer = pre_tokenizers.Whitespace()
    bpe.train_from_iterator(corpus, trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"],
        initial_alphabet=list("ACGTN"), show_progress=False))
    cls_id, sep_id = bpe.token_to_id("[CLS]"), bpe.token_to_id("[SEP]")
    bpe.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])
    return PreTrainedTokenizerFast(tokenizer_object=bpe, unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]",
                                   pad_token="[PAD]", mask_token="[MASK]")


def dnabert2(folder, hidden: int = 32, layers: int = 2, heads: int = 4, max_positions: int = 128,
             vocab_size: int = 128, seed: int = 0) -> Path:
    """multimolecule DNABERT-2 + a BPE tokenizer trained here (ALiBi: `max_positions` is nominal)."""
    import torch
    from multimolecule import DnaBert2Config, DnaBert2ForMaskedLM
    torch.manual_seed(seed)
    tokenizer = bpe_tokenizer(vocab_size, seed)
    config = DnaBert2Config(vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers,
                            num_attention_heads=heads, intermediate_size=2 * hidden,
                            max_position_embeddings=max_positions, pad_token_id=tokenizer.pad_token_id)
    return _save(folder, DnaBert2ForMaskedLM(config), tokenizer)


def bert_single(folder, hidden: int = 32, layers: int = 2, heads: int = 4, max_positions: int = 256,
                seed: int = 0) -> Path:
    """BERT, one WordPiece token per nucleotide (A C G U N), read as spaced letters (SpliceBERT style)."""
    import torch
    from transformers import BertTokenizer
    torch.manual_seed(seed)
    vocab = _vocab_file(folder, ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "A", "C", "G", "U", "N"])
    tokenizer = BertTokenizer(vocab, do_lower_case=False)
    return _save(folder, _bert(tokenizer, hidden, layers, heads, max_positions), tokenizer)


def bert_kmer(folder, k: int = 3, hidden: int = 32, layers: int = 2, heads: int = 4, max_positions: int = 256,
              seed: int = 0) -> Path:
    """BERT over overlapping k-mers written as words, `ACG CGT GTA ...` (DNABERT-1 style)."""
    import torch
    from transformers import BertTokenizer
    torch.manual_seed(seed)
    kmers = ["".join(p) for p in itertools.product("ACGT", repeat=k)]
    tokenizer = BertTokenizer(_vocab_file(folder, ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + kmers),
                              do_lower_case=False)
    return _save(folder, _bert(tokenizer, hidden, layers, heads, max_positions), tokenizer)


BUILDERS = {"nt_esm": nt_esm, "rnafm": rnafm, "dnabert2": dnabert2, "bert_single": bert_single,
            "bert_kmer": bert_kmer}


def main(argv: list[str]) -> int:
    """python experiments/tiny_backbones.py <kind> <folder> [hidden=.. layers=.. heads=.. ...]: write one model."""
    if len(argv) < 2 or argv[0] not in BUILDERS:
        print(f"usage: python experiments/tiny_backbones.py {{{','.join(BUILDERS)}}} <folder> [key=int ...]",
              file=sys.stderr)
        return 2
    sizes = {k: int(v) for k, v in (a.split("=", 1) for a in argv[2:])}
    folder = BUILDERS[argv[0]](argv[1], **sizes)
    from omnigenome.model.loading import load_backbone
    backbone = load_backbone(folder)
    print(f"{folder}: {sum(p.numel() for p in backbone.parameters()):,} encoder parameters, "
          f"{backbone.tokenizer.kind} tokens, at most {backbone.tokenizer.max_tokens} per input")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
