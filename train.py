"""Pretrain or fine-tune: `python train.py [group=option ...] [key=value ...]` (the same as `omnigenome-train`).

Defaults: the tiny model on the embedded sample corpus, on CPU (conf/train.yaml lists the config groups).
Fine-tune: `python train.py experiment=finetune task=rgb/ssp_archive2 init_from=<checkpoint or model folder>`.
The run itself is `omnigenome.app.train`.
"""
from omnigenome.app import train, train_main  # noqa: F401 (train: the function tests and sweeps call)

if __name__ == "__main__":
    train_main()
