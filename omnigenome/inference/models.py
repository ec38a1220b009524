"""What inference runs: a model opened from anything `init_from=` accepts, on a device, in a dtype.

- a fine-tuned checkpoint of `train.py experiment=finetune`: its `TaskModel` (backbone, LoRA, head, task
  config and structure_input, rebuilt by `omnigenome.model.task.load_task_model`, as evaluate.py does);
  embeddings and scores use its (fine-tuned) backbone;
- a pretraining checkpoint of `train.py`, or a Hugging Face folder of an OmniGenome / ESM model: the
  OmniGenome backbone, with its masked-LM, structure and contact heads;
- any other Hugging Face masked-LM folder: `HFBackbone` (embeddings, attention maps), and for scores the
  same folder as `AutoModelForMaskedLM`.

Plain torch: neither Lightning nor Hydra is imported here or below.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from omnigenome.model.precision import use_bf16

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def resolve_device(device: str | None) -> torch.device:
    """"auto" / None: CUDA when available, else CPU; else the named device (cpu, cuda, cuda:1, mps)."""
    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    d = torch.device(device)
    if d.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: CUDA is not available on this machine (use --device cpu)")
    return d


def resolve_dtype(dtype: str | torch.dtype, device: torch.device) -> torch.dtype:
    """"auto": bf16 where `device` computes it natively (a CPU with AMX / AVX512-BF16 / Arm BF16, a bf16 GPU;
    `omnigenome.model.precision.use_bf16`), else fp32; "fp32" and "bf16" force one."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in ("auto", *DTYPES):
        raise ValueError(f"unknown dtype {dtype!r} (choose from auto, {', '.join(DTYPES)})")
    return torch.bfloat16 if use_bf16(device, dtype) else torch.float32


def is_task_checkpoint(path: str | os.PathLike) -> bool:
    """A checkpoint file of `train.py experiment=finetune` (it stores a backbone spec and a task)."""
    p = Path(path)
    if not p.is_file():
        return False
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True, mmap=True)
    except Exception:
        return False
    return isinstance(ckpt, dict) and "backbone" in ckpt and "task" in (ckpt.get("hyper_parameters") or {})


class OpenedModel:
    """A model ready for inference (eval mode, no gradients, on `device` in `dtype`).

    kind: "task" (fine-tuned checkpoint), "omnigenome" or "hf". backbone: the `Backbone` (of the task model
    for "task"). task_model: the `TaskModel` or None. path: where it came from.
    """

    def __init__(self, path, kind: str, backbone, task_model=None, device="cpu", dtype="auto",
                 trust_remote_code: bool = False):
        self.path, self.kind = str(path), kind
        self.backbone, self.task_model = backbone, task_model
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.trust_remote_code = trust_remote_code
        module = task_model if task_model is not None else backbone
        module.eval().requires_grad_(False)
        module.to(device=self.device, dtype=self.dtype)
        og = self.omnigenome
        if og is not None and self.dtype != torch.float32:  # rotary frequencies in bf16 would skew long positions
            og.rotary.inv_freq = og.rotary.inv_freq.float()
        self._masked_lm = None

    @property
    def tokenizer(self):
        return self.backbone.tokenizer

    @property
    def hidden_size(self) -> int:
        return self.backbone.hidden_size

    @property
    def task(self) -> dict | None:
        return self.task_model.task if self.task_model is not None else None

    @property
    def omnigenome(self):
        """The OmniGenomeModel behind the backbone, or None for a Hugging Face backbone."""
        return getattr(self.backbone, "model", None) if self.backbone.tokenizer.packed else None

    def max_tokens(self, task_limit: bool = False) -> int:
        """Longest input in tokens; with task_limit, also the fine-tuned task's max_length (as in training)."""
        limit = int(self.tokenizer.max_tokens)
        if task_limit and self.task and self.task.get("max_length"):
            limit = min(limit, int(self.task["max_length"]))
        return limit

    def to_device(self, batch: dict) -> dict:
        return {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in batch.items()}

    def masked_lm(self):
        """The masked-LM view of this model (see `omnigenome.inference.score.MaskedLM`), loaded once."""
        if self._masked_lm is None:
            from omnigenome.inference.score import MaskedLM
            self._masked_lm = MaskedLM.of(self)
        return self._masked_lm


def open_model(path: str | os.PathLike, device: str | None = "cpu", dtype: str = "auto",
               attention_backend: str = "auto", trust_remote_code: bool = False) -> OpenedModel:
    """Open a fine-tuned checkpoint, a pretraining checkpoint or a Hugging Face folder (see the module
    docstring). Raises FileNotFoundError / ValueError in one line naming the path."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{path}: no such checkpoint file or model folder")
    if is_task_checkpoint(p):
        from omnigenome.model.task import load_task_model
        task_model = load_task_model(p, attention_backend)
        return OpenedModel(p, "task", task_model.backbone, task_model, device, dtype)
    from omnigenome.model.loading import is_omnigenome_path, load_backbone
    try:
        backbone = load_backbone(p, attention_backend=attention_backend, trust_remote_code=trust_remote_code)
    except (OSError, KeyError, RuntimeError) as e:  # torch.load / transformers on a file that is not a model
        raise ValueError(f"{path}: not a checkpoint of train.py or a Hugging Face model folder "
                         f"({' '.join(str(e).split())[:200]})") from None
    kind = "omnigenome" if is_omnigenome_path(p) else "hf"
    return OpenedModel(p, kind, backbone, None, device, dtype, trust_remote_code)


def require_task(model: OpenedModel) -> None:
    """`predict` needs a task head: a pretrained model stops here, in one line."""
    if model.task_model is None:
        raise ValueError(f"{model.path}: a pretrained model without a task head; predictions need a checkpoint "
                         f"of `train.py experiment=finetune` (checkpoints/best.ckpt of a fine-tuning run). "
                         f"This model gives embeddings (omnigenome embed) and zero-shot scores (omnigenome score)")
