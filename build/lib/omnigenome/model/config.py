"""The architecture numbers of an OmniGenome model (what config.json of a checkpoint holds)."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from omnigenome.tokenizer import VOCAB


@dataclass
class OmniGenomeConfig:
    """Architecture numbers (defaults: the 52M model)."""
    hidden_size: int = 480
    num_layers: int = 16
    num_heads: int = 24
    ffn_size: int = 2400
    vocab_size: int = len(VOCAB)
    max_positions: int = 1026
    layer_norm_eps: float = 1e-5
    token_dropout: bool = True
    num_structure_labels: int = 3
    rope_base: float = 10000.0

    def __post_init__(self):
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def max_tokens(self) -> int:
        """Longest input in tokens, `<cls>` and `<eos>` included (ESM's convention: max_positions - 2;
        1024 for the released models, the paper's maximum length)."""
        return self.max_positions - 2

    @property
    def max_nucleotides(self) -> int:
        """Longest sequence the model reads whole: `max_tokens` minus `<cls>` and `<eos>` (1022)."""
        return self.max_tokens - 2

    def to_dict(self) -> dict:
        return asdict(self)

    def training_flops(self, segment_lengths) -> float:
        """FLOPs of one training step (forward + backward) over packed segments of these lengths:
        6 x (block matmul parameters) per token, plus attention, 12 x layers x hidden x L per token
        of a segment of length L (q.k and attn.v, forward and backward). Inference is one third."""
        lengths = [int(n) for n in segment_lengths]
        matmul_params = self.num_layers * (4 * self.hidden_size ** 2 + 2 * self.hidden_size * self.ffn_size)
        attention = 12 * self.num_layers * self.hidden_size * sum(n * n for n in lengths)
        return 6.0 * matmul_params * sum(lengths) + attention
