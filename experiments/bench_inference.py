"""Embedding throughput: the packed path of `omnigenome embed` against transformers' EsmModel padded.

Both compute the same thing: EsmModel is built from the same config (`omnigenome.model.hub.config_to_hf`) with
our weights copied in, and the mean-pooled embeddings are checked to agree. On the same FASTA records (all
under the model's 1022 nt):

- packed (this project): `omnigenome.inference.embed.embed_chunk`, the function `omnigenome embed` runs:
  chunks sorted by length, batches of up to --max-tokens real tokens packed without padding;
- baseline: EsmModel, padded batches of --batch-size records in input order (tokenizer(..., padding=True)),
  mean over the nucleotides' states;
- EsmModel with our batches: padded, but the same length-sorted batches as the packed path (separates what
  sorting gives from what packing and the attention kernel give).
Sequences/s and real (unpadded) tokens/s, and the peak RSS of each run, measured in its own process.

    python experiments/bench_inference.py                          # tiny and 52m, 2 threads
    python experiments/bench_inference.py --models tiny --records 2000 --threads 1
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from omnigenome import OmniGenomeConfig, OmniGenomeModel  # noqa: E402
from omnigenome.utils import markdown_table  # noqa: E402

CONFIGS = {"tiny": dict(hidden_size=128, num_layers=4, num_heads=8, ffn_size=512),
           "52m": dict(hidden_size=480, num_layers=16, num_heads=24, ffn_size=2400)}
FASTA = [ROOT.parent / "shared" / "data" / "rna_fasta" / f for f in
         ("RF00001.fasta", "RF00005.fasta", "RF00010.fasta", "format_rnacentral_active.100.sample-Max50.fasta")]


def read_records(limit: int) -> list[tuple[str, str]]:
    """Records under 1022 nt from the shared RNA FASTA files, interleaved so every length class is present."""
    from omnigenome.data.fasta import read_fasta
    per_file = [[(r.id, r.sequence) for r in read_fasta(f) if 0 < len(r.sequence) <= 1022] for f in FASTA]
    mixed = []
    for k in range(max(map(len, per_file))):
        mixed += [x[k] for x in per_file if k < len(x)]
    return mixed[:limit]


def build(size: str, seed: int = 0):
    torch.manual_seed(seed)
    return OmniGenomeModel(OmniGenomeConfig(**CONFIGS[size])).eval()


def esm_from(model: OmniGenomeModel):
    from transformers import EsmConfig, EsmModel

    from omnigenome.model.hub import config_to_hf, to_hf_state_dict
    esm = EsmModel(EsmConfig(**config_to_hf(model.config)), add_pooling_layer=False).eval()
    state = {k[len("esm."):]: v for k, v in to_hf_state_dict(model).items() if k.startswith("esm.")}
    missing, _ = esm.load_state_dict(state, strict=False)
    missing = [k for k in missing if "inv_freq" not in k and "position_ids" not in k]
    if missing:
        raise RuntimeError(f"weights not copied: {missing[:4]}")
    return esm


def run_one(kind: str, size: str, records, args, queue) -> None:
    torch.set_num_threads(args.threads)
    model = build(size)
    tok_ids = None
    if kind == "packed":
        import tempfile

        from omnigenome.inference.batching import chunked
        from omnigenome.inference.embed import embed_chunk
        from omnigenome.inference.models import open_model
        from omnigenome.inference.records import Record
        folder = tempfile.mkdtemp()
        model.save_pretrained(folder)
        opened = open_model(folder, "cpu")
        recs = [Record(i, s, str(k)) for k, (i, s) in enumerate(records)]
        embed_chunk(opened, recs[:8], max_tokens=args.max_tokens)  # warm-up
        started, pooled, tokens = time.perf_counter(), [], 0
        for chunk in chunked(recs):
            out, _ = embed_chunk(opened, chunk, max_tokens=args.max_tokens)
            pooled.append(out.pooled)
            tokens += out.tokens
        seconds, padded = time.perf_counter() - started, tokens
        pooled = np.concatenate(pooled)
    else:
        from omnigenome.inference.batching import length_batches
        from omnigenome.tokenizer import OmniGenomeTokenizer
        esm = esm_from(model)
        tok = OmniGenomeTokenizer()
        tok_ids = [tok.encode_array(s) for _, s in records]
        if kind == "esm_padded":
            batches = [list(range(a, min(a + args.batch_size, len(records)))) for a in range(0, len(records), args.batch_size)]
        else:
            batches = length_batches([len(x) for x in tok_ids], args.max_tokens, packed=False)
        pooled = np.zeros((len(records), model.config.hidden_size), np.float32)
        started, tokens, padded = None, 0, 0
        for n, batch in enumerate([batches[0]] + batches):  # the first is a warm-up
            if n == 1:
                started, tokens, padded = time.perf_counter(), 0, 0
            width = max(len(tok_ids[k]) for k in batch)
            ids = torch.full((len(batch), width), tok.pad_token_id)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for r, k in enumerate(batch):
                ids[r, :len(tok_ids[k])] = torch.from_numpy(tok_ids[k])
                mask[r, :len(tok_ids[k])] = 1
            with torch.no_grad():
                h = esm(input_ids=ids, attention_mask=mask).last_hidden_state
            for r, k in enumerate(batch):
                n_nt = len(tok_ids[k]) - 2
                pooled[k] = h[r, 1:n_nt + 1].mean(0).numpy()
            tokens += int(mask.sum())
            padded += ids.numel()
        seconds = time.perf_counter() - started
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put({"seconds": seconds, "tokens": tokens, "padded": padded, "rss_mb": rss, "pooled": pooled})


def measure(kind, size, records, args) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    p = ctx.Process(target=run_one, args=(kind, size, records, args, queue))
    p.start()
    result = queue.get()
    p.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["tiny", "52m"], choices=list(CONFIGS))
    parser.add_argument("--records", type=int, nargs="+", default=[2000, 200],
                        help="records per model (in --models order; default 2000 for tiny, 200 for 52m)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=8192)
    parser.add_argument("--batch-size", type=int, default=32, help="records per batch of the padded baseline")
    args = parser.parse_args()
    rows = []
    names = {"esm_padded": f"transformers EsmModel, padded, batches of {args.batch_size} in input order (baseline)",
             "esm_sorted": "transformers EsmModel, padded, our length-sorted batches",
             "packed": "omnigenome embed, packed"}
    for size, n in zip(args.models, args.records + args.records[-1:] * len(args.models)):
        records = read_records(n)
        results = {kind: measure(kind, size, records, args) for kind in ("esm_padded", "esm_sorted", "packed")}
        diff = float(np.abs(results["packed"]["pooled"] - results["esm_padded"]["pooled"]).max())
        base = results["esm_padded"]
        for kind, r in results.items():
            rows.append([size, names[kind], len(records), r["tokens"], r["padded"], f"{r['seconds']:.2f}",
                         f"{len(records) / r['seconds']:.1f}", f"{r['tokens'] / r['seconds']:,.0f}",
                         f"{base['seconds'] / r['seconds']:.2f}x", f"{r['rss_mb']:.0f}"])
        print(f"{size}: {len(records)} records, mean {np.mean([len(s) for _, s in records]):.0f} nt; pooled embeddings, "
              f"packed vs EsmModel: max |difference| {diff:.2e}", flush=True)
        if diff > 1e-3:
            raise SystemExit(f"the two paths disagree ({diff:.2e}): the comparison is void")
    print(markdown_table(["config", "path", "sequences", "real tokens", "tokens in batches", "seconds", "seq/s",
                          "tokens/s", "speed vs baseline", "peak RSS MB"], rows,
                         title=f"\nEmbedding throughput, CPU, {args.threads} threads, fp32"))


if __name__ == "__main__":
    main()
