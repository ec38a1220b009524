"""Embed the sequences of FASTA files and cluster them with k-means (numpy only); print the cluster sizes and,
per cluster, how many sequences came from each file.

    python examples/embed_and_cluster.py MODEL [FASTA ...] [--k 3] [--limit 60]

MODEL: a train.py checkpoint, a fine-tuned checkpoint or a Hugging Face folder. Without FASTA files, the three
Rfam families in ../shared/data/rna_fasta (5S rRNA, tRNA, RNase P RNA) are used: a model whose embeddings
separate RNA families puts each family in its own cluster.
"""
import argparse
from pathlib import Path

import numpy as np

import omnigenome
from omnigenome.data.fasta import read_fasta

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "rna_fasta"


def kmeans(x: np.ndarray, k: int, seed: int = 0, iterations: int = 100) -> np.ndarray:
    """Cluster of each row: Lloyd's algorithm from a k-means++ start."""
    rng = np.random.default_rng(seed)
    centres = [x[rng.integers(len(x))]]
    for _ in range(1, k):
        d = np.min([((x - c) ** 2).sum(1) for c in centres], axis=0)
        centres.append(x[rng.choice(len(x), p=d / d.sum())])
    centres = np.stack(centres)
    for _ in range(iterations):
        labels = ((x[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)
        new = np.stack([x[labels == j].mean(0) if (labels == j).any() else centres[j] for j in range(k)])
        if np.allclose(new, centres):
            break
        centres = new
    return labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("fasta", nargs="*")
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--limit", type=int, default=60, help="sequences read per file")
    args = parser.parse_args()
    files = args.fasta or [str(SHARED / f"{family}.fasta") for family in ("RF00001", "RF00005", "RF00010")]

    records, origin = {}, []
    for path in files:
        for k, record in enumerate(read_fasta(path)):
            if k == args.limit:
                break
            records[f"{Path(path).stem}/{record.id}"] = record.sequence
            origin.append(Path(path).stem)

    model = omnigenome.load(args.model)
    embeddings = model.embed(records, skip_invalid=True)  # (n, hidden); skipped records are listed
    kept = [o for (rid, _), o in zip(records.items(), origin) if rid not in {s.id for s in model.last_skipped}]
    for s in model.last_skipped:
        print(f"skipped: {s.message}")
    x = (embeddings - embeddings.mean(0)) / (embeddings.std(0) + 1e-6)
    labels = kmeans(x, args.k)

    names = sorted(set(kept))
    print(f"{len(kept)} sequences, {embeddings.shape[1]}-dimensional embeddings, k = {args.k}")
    print("cluster  size  " + "  ".join(names))
    for j in range(args.k):
        members = [o for o, c in zip(kept, labels) if c == j]
        print(f"{j:>7}  {len(members):>4}  " + "  ".join(f"{members.count(n):>{len(n)}}" for n in names))


if __name__ == "__main__":
    main()
