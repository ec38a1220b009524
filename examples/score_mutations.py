"""Zero-shot mutation scores from a masked language model: the pseudo-log-likelihood of a sequence, the
surprisal of each base, and the effect of every substitution at a few positions.

    python examples/score_mutations.py MODEL [--sequence SEQ] [--positions 10,20,30]

The effect of a substitution is log p(new base) - log p(reference base) at the masked position (nats):
positive when the model prefers the variant.
"""
import argparse

import numpy as np

import omnigenome

TRNA = "GCGGAUUUAGCUCAGUUGGGAGAGCGCCAGACUGAAGAUCUGGAGGUCCUGUGUUCGAUCCACAGAAUUCGCACCA"  # yeast tRNA-Phe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--sequence", default=TRNA)
    parser.add_argument("--positions", default="10,20,34,54", help="1-based positions to mutate")
    args = parser.parse_args()
    model = omnigenome.load(args.model)
    seq = args.sequence.upper().replace("T", "U")

    row = model.score(seq)[0]
    print(f"{len(seq)} nt, pseudo-log-likelihood {row['pll']:.2f} nats ({row['pll_per_nt']:.3f} per nt)")
    worst = np.argsort(-np.nan_to_num(row["surprisal"]))[:5]
    print("most surprising bases: " + ", ".join(f"{seq[i]}{i + 1} ({row['surprisal'][i]:.2f})" for i in sorted(worst)))

    positions = [int(p) for p in args.positions.split(",")]
    mutations = [f"{seq[p - 1]}{p}{b}" for p in positions for b in "ACGU" if b != seq[p - 1]]
    print("\nmutation  effect (nats)")
    for r in sorted(model.score(seq, mutations=mutations), key=lambda r: -r["effect"]):
        print(f"{r['mutation']:<9} {r['effect']:+.3f}")


if __name__ == "__main__":
    main()
