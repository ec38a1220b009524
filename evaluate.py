"""Evaluate: `python evaluate.py [evaluation=...] ckpt=... [key=value ...]` (the same as `omnigenome-evaluate`).

    python evaluate.py ckpt=<pretraining checkpoint or model folder>                 # objectives, validation split
    python evaluate.py evaluation=ssp_zero_shot task=rgb/ssp_bprna ckpt=...          # zero-shot structure
    python evaluate.py evaluation=finetune task=rgb/ssp_archive2 ckpt=<run>/checkpoints/best.ckpt
The run itself is `omnigenome.app.evaluate`.
"""
from omnigenome.app import evaluate, evaluate_main  # noqa: F401

if __name__ == "__main__":
    evaluate_main()
