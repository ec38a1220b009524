import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("OMNIGENOME_SHARED_DATA", ROOT.parent / "shared" / "data"))

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The public benchmark data beside the repository (../shared/data); CI always has it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"public benchmark data not found at {SHARED_DATA}")
    return SHARED_DATA


def save_random_model(tmp_path_factory, name: str = "model", **config) -> Path:
    """A small OmniGenome with random weights (seed 0) saved in the Hugging Face layout, as a user's model folder
    is; `config` overrides its size (hidden 32, 2 layers, 2 heads, FFN 64)."""
    import torch

    from omnigenome import OmniGenomeModel
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp(name)
    OmniGenomeModel(**{"hidden_size": 32, "num_layers": 2, "num_heads": 2, "ffn_size": 64, **config}).save_pretrained(folder)
    return folder
