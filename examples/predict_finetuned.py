"""Predictions of a fine-tuned checkpoint (train.py experiment=finetune) on new sequences.

    python examples/predict_finetuned.py CKPT [INPUT] [--limit 5]

INPUT: FASTA, CSV or JSON lines with a sequence column; without it a few built-in sequences are used. The
checkpoint rebuilds its backbone, LoRA, head, label names and structure input by itself.
"""
import argparse
import json

import omnigenome
from omnigenome.inference.records import InputFile

SEQUENCES = {"hairpin": "GGGGAAACCCCAUAUGGGAAACCCAU", "trna": "GCGGAUUUAGCUCAGUUGGGAGAGCGCCAGACUGAAGAUCUGGAGGUCC",
             "random": "AUGCUAGCUAGCUAGGAUCGAUCGAUGCAUGCAUCG"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ckpt")
    parser.add_argument("input", nargs="?")
    parser.add_argument("--limit", type=int, default=5)
    args = parser.parse_args()
    model = omnigenome.load(args.ckpt)
    print(f"task {model.task['name']} ({model.task['head']}, labels {model.task.get('label_names')})")
    if args.input:
        with InputFile(args.input) as source:
            sequences = list(source.records(0, args.limit))  # records name their file and line in messages
    else:
        sequences = SEQUENCES
    for row in model.predict(sequences, skip_invalid=True):
        print(json.dumps(row))
    for s in model.last_skipped:
        print(f"skipped: {s.message}")


if __name__ == "__main__":
    main()
