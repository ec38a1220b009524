"""Fine-tuning on downstream benchmarks (RGB, PGB, GB, GUE): task data here; heads and training glue
beside it."""
from omnigenome.finetune.tasks import Example, available_splits, load_split, task_config, task_names

__all__ = ["Example", "available_splits", "load_split", "task_config", "task_names"]
