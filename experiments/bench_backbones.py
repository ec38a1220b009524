"""Fine-tuning throughput of each backbone on the same batches: OmniGenome's packed path (the baseline, measured
in the same run) against Hugging Face backbones of the same size (RNA-FM, NT-style ESM with 6-mers, DNABERT-2 with
BPE), each reading the same records through its own tokenizer, padded and bucketed by length.

    OMP_NUM_THREADS=1 python experiments/bench_backbones.py [task=rgb/ssp_archive2] [records=96] [steps=6]
        [max_tokens=4096] [hidden=128] [layers=4] [heads=8]

The batches are fixed once: the token-budget sampler packs the task's first `records` training records by their
OmniGenome length (max_tokens per batch), and every backbone gets those record groups. One step is what
fine-tuning does: forward, the task's loss, backward and an AdamW step of backbone and head. Printed per backbone:
nucleotides scored per second (the same nucleotides for every backbone: the comparable number), the model's own
real tokens per second (padding not counted), the share of padding in its batches, and the speed relative to
OmniGenome. The random weights do not matter for speed.
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "experiments"))

import torch  # noqa: E402

DEFAULTS = {"task": "rgb/ssp_archive2", "records": 96, "steps": 6, "max_tokens": 4096, "hidden": 128, "layers": 4,
            "heads": 8}


def backbones(folder: Path, hidden: int, layers: int, heads: int) -> dict:
    """name -> a backbone of about the same size (random weights)."""
    import tiny_backbones

    from omnigenome import OmniGenomeModel
    from omnigenome.model.backbones import OmniGenomeBackbone
    from omnigenome.model.loading import load_backbone
    torch.manual_seed(0)
    out = {"omnigenome (packed)": OmniGenomeBackbone(OmniGenomeModel(hidden_size=hidden, num_layers=layers,
                                                                     num_heads=heads, ffn_size=4 * hidden))}
    sizes = {"hidden": hidden, "layers": layers, "heads": heads}
    out["rnafm (padded)"] = load_backbone(tiny_backbones.rnafm(folder / "rnafm", ffn=4 * hidden, **sizes))
    out["nt_esm 6-mer (padded)"] = load_backbone(tiny_backbones.nt_esm(folder / "nt_esm", max_positions=1026, **sizes))
    out["dnabert2 bpe (padded)"] = load_backbone(tiny_backbones.dnabert2(folder / "dnabert2", max_positions=1024, **sizes))
    return out


def fixed_batches(task: dict, examples: list, max_tokens: int) -> list[tuple[int, ...]]:
    """Record groups the token-budget sampler makes from OmniGenome's lengths (the same groups for everyone)."""
    from omnigenome.data.sampler import TokenBudgetBatchSampler
    from omnigenome.model.backbones import OmniGenomeSequenceTokenizer
    tok = OmniGenomeSequenceTokenizer(1024)
    lengths = [len(tok.encode(ex.sequence, max_tokens=int(task["max_length"])).ids) for ex in examples]
    return TokenBudgetBatchSampler(lengths, max_tokens, shuffle=False).packed


def measure(backbone, task: dict, examples: list, groups, steps: int) -> dict:
    """Seconds per fine-tuning step (median over the batches after one warm-up) and the batches' token counts."""
    from omnigenome.finetune.datamodule import collate, encode_examples
    from omnigenome.model.heads import task_loss
    from omnigenome.model.task import TaskModel
    items, _ = encode_examples(examples, task, backbone.tokenizer)
    batches = [collate([items[i] for i in g], task["head"], backbone.tokenizer, g) for g in groups]
    model = TaskModel(backbone, task)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    times, nucleotides, tokens, padded = [], 0, 0, 0
    for k in range(steps + 1):
        batch = batches[k % len(batches)]
        start = time.perf_counter()
        loss = task_loss(task["head"], model(batch), batch["labels"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if k == 0:
            continue  # warm-up
        times.append(time.perf_counter() - start)
        nucleotides += len(batch["nucleotide_index"])
        tokens += batch["num_tokens"]
        padded += batch["input_ids"].numel()
    seconds = sum(times)
    return {"step": statistics.median(times), "nucleotides/s": nucleotides / seconds, "tokens/s": tokens / seconds,
            "padding": 1 - tokens / padded, "params": sum(p.numel() for p in backbone.parameters())}


def main(argv: list[str]) -> int:
    from omnigenome.data.benchmarks import load_split, task_config
    from omnigenome.utils import markdown_table
    opts = dict(DEFAULTS)
    for arg in argv:
        key, _, value = arg.partition("=")
        if key not in DEFAULTS:
            print(f"error: unknown setting {key!r} (settings: {', '.join(DEFAULTS)})", file=sys.stderr)
            return 2
        opts[key] = value if key == "task" else int(value)
    task = task_config(opts["task"])
    examples = load_split(task, "train")[: opts["records"]]
    groups = fixed_batches(task, examples, opts["max_tokens"])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {opts['task']}: {len(examples)} records in "
          f"{len(groups)} batches of <= {opts['max_tokens']} OmniGenome tokens; {opts['steps']} timed steps each")
    rows, baseline = [], None
    with tempfile.TemporaryDirectory() as folder:
        for name, backbone in backbones(Path(folder), opts["hidden"], opts["layers"], opts["heads"]).items():
            r = measure(backbone, task, examples, groups, opts["steps"])
            baseline = baseline or r
            rows.append([name, f"{r['params']:,}", f"{r['step']:.2f}", f"{r['nucleotides/s']:,.0f}",
                         f"{r['tokens/s']:,.0f}", f"{100 * r['padding']:.0f}%",
                         f"{r['nucleotides/s'] / baseline['nucleotides/s']:.2f}x"])
            print(f"  {name}: {r['step']:.2f} s per step", flush=True)
    print()
    print(markdown_table(["backbone", "backbone parameters", "s per step", "nucleotides/s", "real tokens/s",
                          "padding", "vs omnigenome"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
