"""bf16 on the CPU: where it is used (detection and the configs that follow it) and what it costs in accuracy.

Tolerances, for a model pretrained a little (40 steps) on real-like data and scored on real RNA sequences (RGB ArchiveII):
masked-LM and structure logits under bf16 autocast differ from fp32 by at most 0.25 in absolute value (the
logits span a few units), the argmax label of at least 97% of the positions is the same, and the structure
probabilities differ by at most 0.05."""
import pytest
import torch

from omnigenome.data.benchmarks import load_split, task_config
from omnigenome.model.precision import autocast, use_bf16
from omnigenome.settings import compose, cpu_precision
from omnigenome.utils import cpu_bf16_units
from test_training import compose_cfg, fast, shared_sample_data, train_script


def test_detection_decides_the_cpu_default():
    units = cpu_bf16_units()
    assert cpu_precision() == ("bf16-mixed" if units else "32-true")
    assert compose("train").trainer.precision == cpu_precision()
    assert compose("train", ["trainer.precision=32-true"]).trainer.precision == "32-true"  # forced fp32
    assert use_bf16("cpu", "auto") == (units is not None)
    assert use_bf16("cpu", "bf16") and not use_bf16("cpu", "fp32")
    from omnigenome.inference.models import resolve_dtype  # inference follows the same detection
    assert resolve_dtype("auto", torch.device("cpu")) == (torch.bfloat16 if units else torch.float32)
    assert resolve_dtype("fp32", torch.device("cpu")) == torch.float32
    with pytest.raises(ValueError, match="dtype must be one of auto, fp32, bf16"):
        use_bf16("cpu", "fp16")


def test_bf16_logits_against_fp32_on_real_sequences(shared_data, tmp_path_factory):
    data_dir = shared_sample_data(tmp_path_factory)
    out = tmp_path_factory.mktemp("run")
    # lr 3e-3, three times the quick start's: 40 steps then give logits of a few units to compare
    train_script.train(compose_cfg(out, data_dir, fast(40, "logger=none", "trainer.precision=32-true",
                                                       "module.optimizer.lr=3e-3", "callbacks=default",
                                                       "~callbacks.throughput")))
    from omnigenome.model.loading import load_model
    model = load_model(out / "run" / "checkpoints" / "last.ckpt").eval()
    from omnigenome import OmniGenomeTokenizer
    records = load_split(task_config("rgb/ssp_archive2", benchmark_dir=shared_data), "test", limit=16)
    batch = OmniGenomeTokenizer()([r.sequence for r in records])
    with torch.no_grad():
        fp32 = model(**batch)
        with autocast("cpu", "bf16"):
            bf16 = model(**batch)
    keep = batch["attention_mask"].bool()
    for name in ("mlm_logits", "structure_logits"):
        a, b = getattr(fp32, name)[keep].float(), getattr(bf16, name)[keep].float()
        assert a.abs().max() > 0.5  # logits that say something
        error = (a - b).abs().max().item()
        agreement = (a.argmax(-1) == b.argmax(-1)).float().mean().item()
        print(f"{name}: max abs error {error:.4f}, argmax agreement {agreement:.4f}")
        assert error <= 0.25 and agreement >= 0.97, (name, error, agreement)
    p32, p16 = fp32.structure_logits.softmax(-1)[keep], bf16.structure_logits.float().softmax(-1)[keep]
    assert (p32 - p16).abs().max() <= 0.05
