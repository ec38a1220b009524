"""omnigenome: pretrain, evaluate and use OmniGenome-style RNA foundation models."""
from omnigenome.model.modeling import OmniGenomeConfig, OmniGenomeModel, OmniGenomeOutput
from omnigenome.tokenizer import OmniGenomeTokenizer

__all__ = ["OmniGenomeConfig", "OmniGenomeModel", "OmniGenomeOutput", "OmniGenomeTokenizer"]
__version__ = "0.1.0"
