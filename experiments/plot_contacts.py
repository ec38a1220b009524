"""A model's contact map beside ViennaRNA's base-pair probability matrix for one sequence (PNG).

    python experiments/plot_contacts.py --model MODEL [--sequence SEQ] [--out results/contacts.png]

Left: the contact head's probabilities (`omnigenome.load(MODEL).contacts(seq)`, the ESM-2 contact head over the
model's attention maps). Right: ViennaRNA's equilibrium base-pair probabilities (RNA.fold_compound(seq).pf(),
.bpp()), mirrored to a symmetric matrix, with the MFE pairs marked. matplotlib is the `plots` extra.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TRNA = "GCGGAUUUAGCUCAGUUGGGAGAGCGCCAGACUGAAGAUCUGGAGGUCCUGUGUUCGAUCCACAGAAUUCGCACCA"  # yeast tRNA-Phe


def vienna_bpp(sequence: str) -> tuple[np.ndarray, str]:
    """(L, L) symmetric base-pair probabilities and the MFE structure."""
    import RNA
    fc = RNA.fold_compound(sequence.upper().replace("T", "U"))
    structure, energy = fc.mfe()
    fc.exp_params_rescale(energy)
    fc.pf()
    bpp = np.asarray(fc.bpp())[1:, 1:]  # 1-based, upper triangle
    return bpp + bpp.T, structure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--sequence", default=TRNA)
    parser.add_argument("--out", default=str(ROOT / "results" / "contacts.png"))
    args = parser.parse_args()
    from omnigenome.extras import require
    matplotlib = require("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import omnigenome
    from omnigenome.structure import pair_table
    seq = args.sequence
    contacts = omnigenome.load(args.model).contacts(seq)
    bpp, mfe = vienna_bpp(seq)
    pairs = [(i, j) for i, j in enumerate(pair_table(mfe)) if j > i]
    fig, axes = plt.subplots(1, 2, figsize=(11, 5), constrained_layout=True)
    for ax, matrix, title in ((axes[0], contacts, f"contact head ({Path(args.model).name})"),
                              (axes[1], bpp, "ViennaRNA base-pair probabilities")):
        low, high = float(matrix.min()), float(matrix.max())  # an untrained contact head sits near 0.5 everywhere
        im = ax.imshow(matrix, cmap="Greys", vmin=low, vmax=max(high, low + 1e-6))
        if pairs:
            i, j = zip(*pairs)
            ax.scatter(j, i, s=6, c="tab:red", marker="s", label="MFE pairs")
        ax.set_title(title)
        ax.set_xlabel("position")
        ax.set_ylabel("position")
        fig.colorbar(im, ax=ax, shrink=0.8)
    axes[1].legend(loc="lower left")
    fig.suptitle(f"{len(seq)} nt: {seq[:40]}{'...' if len(seq) > 40 else ''}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=120)
    top = np.dstack(np.unravel_index(np.argsort(-np.triu(contacts, 4), axis=None)[:len(pairs) or 10], contacts.shape))[0]
    hits = sum((int(i), int(j)) in set(pairs) for i, j in top)
    print(f"wrote {args.out}; of the model's top {len(top)} contacts (|i-j| >= 4), {hits} are MFE pairs")


if __name__ == "__main__":
    main()
