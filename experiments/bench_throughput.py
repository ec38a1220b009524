"""Training and inference throughput of this project's model against transformers' EsmForMaskedLM, in fp32 and bf16.

Both models get the same batches of real RNA lengths (sequences of the bpRNA and ArchiveII training
splits in ../shared/data/rgb) and the same masked-LM task: ours packed (no padding), transformers'
padded to the longest sequence of each batch with an attention mask. A training step is forward +
MLM loss + backward + AdamW step; inference is the forward pass alone. bf16 is autocast (parameters and
optimizer state fp32, as Lightning's bf16-mixed). Throughput counts real (unpadded) tokens per second. Each
measurement runs in its own process so peak memory is its own. The attention kernel alone (this project's packed
SDPA path) is timed in both dtypes too, and the CPU's bf16 matrix support is printed first.

    python experiments/bench_throughput.py                      # tiny and 52m, fp32 and bf16, on CPU, 2 threads
    python experiments/bench_throughput.py --models 52m --dtypes fp32 --compile both
    python experiments/bench_throughput.py --device cuda --dtypes bf16 --compile both   # on a GPU
"""
from __future__ import annotations

import argparse
import json
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
from omnigenome.model.attention import PackedLayout, attention  # noqa: E402
from omnigenome.model.hub import config_to_hf  # noqa: E402
from omnigenome.tokenizer import MASK_ID, PAD_ID, OmniGenomeTokenizer  # noqa: E402
from omnigenome.utils import cpu_bf16_units, markdown_table  # noqa: E402

CONFIGS = {
    "tiny": OmniGenomeConfig(hidden_size=128, num_layers=4, num_heads=8, ffn_size=512),
    "52m": OmniGenomeConfig(hidden_size=480, num_layers=16, num_heads=24, ffn_size=2400),
    "186m": OmniGenomeConfig(hidden_size=720, num_layers=32, num_heads=30, ffn_size=2560),
}
PEAK_BF16_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "4090": 165e12}


def real_lengths(data_dir: Path) -> list[str]:
    seqs = []
    for name in ("RNA-SSP-bpRNA", "RNA-SSP-Archive2"):
        with open(data_dir / "rgb" / name / "train.json") as f:
            seqs += [json.loads(line)["seq"] for line in f if line.strip()]
    return seqs


def make_batches(seqs: list[str], n_batches: int, batch_size: int, max_len: int, seed: int = 0):
    """Token id arrays per batch (`<cls> seq <eos>`, at most max_len tokens) and their MLM masks."""
    rng = np.random.default_rng(seed)
    tok = OmniGenomeTokenizer()
    batches = []
    for _ in range(n_batches):
        picks = rng.choice(len(seqs), size=batch_size, replace=False)
        ids = [tok.encode_array(seqs[i][: max_len - 2]) for i in picks]
        masked = []
        for x in ids:
            sel = rng.random(len(x)) < 0.15
            sel[[0, -1]] = False
            sel[rng.integers(1, len(x) - 1)] = True
            masked.append(sel)
        batches.append((ids, masked))
    return batches


def packed_inputs(ids, masked, device):
    lengths = [len(x) for x in ids]
    flat = torch.from_numpy(np.concatenate(ids)).to(device)
    sel = torch.from_numpy(np.concatenate(masked)).to(device)
    target = flat[sel].clone()
    inp = flat.masked_fill(sel, MASK_ID)
    cu = torch.tensor([0, *np.cumsum(lengths)], dtype=torch.int32, device=device)
    pos = torch.cat([torch.arange(n, device=device) for n in lengths])
    return inp, cu, pos, sel.nonzero().squeeze(1), target


def padded_inputs(ids, masked, device):
    width = max(len(x) for x in ids)
    inp = torch.full((len(ids), width), PAD_ID, dtype=torch.long)
    att = torch.zeros((len(ids), width), dtype=torch.long)
    labels = torch.full((len(ids), width), -100, dtype=torch.long)
    for b, (x, m) in enumerate(zip(ids, masked)):
        t = torch.from_numpy(x)
        inp[b, : len(x)] = t.masked_fill(torch.from_numpy(m), MASK_ID)
        att[b, : len(x)] = 1
        labels[b, : len(x)] = torch.where(torch.from_numpy(m), t, torch.tensor(-100))
    return inp.to(device), att.to(device), labels.to(device)


def build(impl: str, cfg: OmniGenomeConfig, device: str):
    torch.manual_seed(0)
    if impl == "omnigenome":
        return OmniGenomeModel(cfg).to(device)
    from transformers import EsmConfig, EsmForMaskedLM
    hf = EsmConfig(**{k: v for k, v in config_to_hf(cfg).items() if k not in ("architectures", "model_type")})
    return EsmForMaskedLM(hf).to(device)


def step_fn(impl, model, batch, device, train: bool):
    ids, masked = batch
    if impl == "omnigenome":
        inp, cu, pos, index, target = packed_inputs(ids, masked, device)

        def run():
            from omnigenome.model.attention import PackedLayout
            h = model.encode(inp, PackedLayout.from_cu_seqlens(cu), pos)
            return torch.nn.functional.cross_entropy(model.mlm_head(h[index]).float(), target)
    else:
        inp, att, labels = padded_inputs(ids, masked, device)

        def run():
            logits = model(input_ids=inp, attention_mask=att).logits
            return torch.nn.functional.cross_entropy(logits.float().view(-1, logits.shape[-1]), labels.view(-1))
    return run


def measure(impl, model_name, mode, batches, device, dtype, compile_model, warmup, threads, out_q):
    torch.set_num_threads(threads)
    cfg = CONFIGS[model_name]
    model = build(impl, cfg, device)
    if compile_model:
        model = torch.compile(model) if impl != "omnigenome" else model
        if impl == "omnigenome":
            model.encode = torch.compile(model.encode, dynamic=True)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4) if mode == "train" else None
    model.train(mode == "train")
    autocast = torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16, enabled=dtype == "bf16")
    tokens, elapsed = 0, 0.0
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    for i, batch in enumerate(batches):
        run = step_fn(impl, model, batch, device, mode == "train")
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with autocast, torch.set_grad_enabled(mode == "train"):
            loss = run()
        if mode == "train":
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        if i >= warmup:
            elapsed += time.perf_counter() - t0
            tokens += sum(len(x) for x in batch[0])
    peak = (torch.cuda.max_memory_allocated() if device.startswith("cuda")
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    n_params = sum(p.numel() for p in model.parameters())
    out_q.put({"tokens_per_s": tokens / elapsed, "peak_bytes": peak, "params": n_params})


def time_attention(cfg: OmniGenomeConfig, lengths: list[int], dtype: torch.dtype, repeats: int = 5) -> float:
    """Seconds per call of the packed attention path (backend "auto": on CPU one fused SDPA call per sequence)
    on sequences of these lengths, forward only."""
    torch.manual_seed(0)
    total = sum(lengths)
    q, k, v = (torch.randn(total, cfg.num_heads, cfg.head_dim, dtype=dtype) for _ in range(3))
    layout = PackedLayout.from_cu_seqlens(torch.tensor([0, *np.cumsum(lengths)], dtype=torch.int32))
    attention(q, k, v, layout)  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        attention(q, k, v, layout)
    return (time.perf_counter() - start) / repeats


def run_isolated(*args):
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=measure, args=(*args, q))
    p.start()
    result = q.get()
    p.join()
    return result


def mfu(tokens_per_s: float, cfg: OmniGenomeConfig, batches, peak: float, train: bool) -> float:
    """Model FLOPs utilisation from `OmniGenomeConfig.training_flops` (inference: a third of it)."""
    lengths = [len(x) for ids, _ in batches for x in ids]
    per_token = cfg.training_flops(lengths) / sum(lengths) / (1 if train else 3)
    return tokens_per_s * per_token / peak


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["tiny", "52m"], choices=list(CONFIGS))
    ap.add_argument("--modes", nargs="+", default=["train", "infer"], choices=["train", "infer"])
    ap.add_argument("--dtypes", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    ap.add_argument("--steps", type=int, default=6, help="timed steps per measurement (after warm-up)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-len", type=int, default=512, help="longest sequence in tokens")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--compile", default="off", choices=["off", "on", "both"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--peak-tflops", type=float, default=None, help="device bf16 peak for MFU (GPU)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    seqs = real_lengths(args.data)
    batches = make_batches(seqs, args.warmup + args.steps, args.batch_size, args.max_len)
    mean_len = float(np.mean([len(x) for ids, _ in batches for x in ids]))
    pad_frac = 1 - np.mean([sum(len(x) for x in ids) / (len(ids) * max(len(x) for x in ids)) for ids, _ in batches])
    units = cpu_bf16_units()
    print(f"{len(batches)} batches of {args.batch_size} real sequences (mean {mean_len:.0f} tokens, "
          f"{pad_frac:.0%} of a padded batch is padding); device {args.device}, {args.threads} CPU threads; "
          f"CPU bf16 matrix units: {units or 'none'} (torch's CPU capability: {torch.backends.cpu.get_cpu_capability()})\n")
    peak = args.peak_tflops * 1e12 if args.peak_tflops else None
    if peak is None and args.device.startswith("cuda"):
        name = torch.cuda.get_device_name()
        peak = next((v for k, v in PEAK_BF16_FLOPS.items() if k in name), None)

    compiles = {"off": [False], "on": [True], "both": [False, True]}[args.compile]
    header = ["model", "mode", "dtype", "compile", "omnigenome tok/s", "transformers tok/s", "ratio",
              "omnigenome peak MB", "transformers peak MB"] + (["MFU"] if peak else [])
    rows, speed = [], {}
    for name in args.models:
        for mode in args.modes:
            for dtype in args.dtypes:
                for comp in compiles:
                    ours = run_isolated("omnigenome", name, mode, batches, args.device, dtype, comp, args.warmup,
                                        args.threads)
                    theirs = run_isolated("transformers", name, mode, batches, args.device, dtype, comp,
                                          args.warmup, args.threads)
                    speed[name, mode, dtype, comp] = ours["tokens_per_s"]
                    row = [name, mode, dtype, "on" if comp else "off", f"{ours['tokens_per_s']:,.0f}",
                           f"{theirs['tokens_per_s']:,.0f}", f"{ours['tokens_per_s'] / theirs['tokens_per_s']:.2f}x",
                           f"{ours['peak_bytes'] / 2**20:,.0f}", f"{theirs['peak_bytes'] / 2**20:,.0f}"]
                    if peak:
                        row.append(f"{mfu(ours['tokens_per_s'], CONFIGS[name], batches, peak, mode == 'train'):.1%}")
                    rows.append(row)
                    print("  ".join(row), flush=True)
    print("\n" + markdown_table(header, rows))
    print("\nBaseline: transformers.EsmForMaskedLM with the same configuration, on the same sequences padded.")
    if "fp32" in args.dtypes and "bf16" in args.dtypes:
        ratios = [[n, m, "on" if c else "off", f"{speed[n, m, 'bf16', c] / speed[n, m, 'fp32', c]:.2f}x"]
                  for n in args.models for m in args.modes for c in compiles]
        print("\n" + markdown_table(["model", "mode", "compile", "omnigenome bf16 / fp32"], ratios))
    if args.device == "cpu":
        lengths = [len(x) for ids, _ in batches for x in ids]
        attn = [[n, f"{CONFIGS[n].head_dim}", *(f"{1e3 * time_attention(CONFIGS[n], lengths, t):.1f}"
                                                for t in (torch.float32, torch.bfloat16))] for n in args.models]
        for row in attn:
            row.append(f"{float(row[3]) / float(row[2]):.2f}x")
        print("\nThe packed attention path alone (SDPA per sequence), forward, all the batches' sequences:")
        print(markdown_table(["model", "head dim", "fp32 ms", "bf16 ms", "bf16 / fp32 time"], attn))


if __name__ == "__main__":
    main()
