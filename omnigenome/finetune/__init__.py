"""Fine-tuning on downstream benchmarks (RGB, PGB, GB, GUE) with Lightning: the module, the data module,
the baselines, the report, and the statistics that compare fine-tuned backbones (comparison.py). The task model
itself (backbone, LoRA, head) is plain torch in `omnigenome.model.task`; the tasks' data readers are in
`omnigenome.data`."""
