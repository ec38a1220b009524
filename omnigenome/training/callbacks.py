"""Callbacks: throughput in unpadded tokens per second, and a per-rank audit of the records trained on."""
from __future__ import annotations

import time
from pathlib import Path

import lightning as L
import torch


class TokenThroughput(L.Callback):
    """Logs `perf/tokens_per_s` (unpadded tokens per second on this device) and `perf/tokens_per_s_global`
    (times the number of ranks) every `every_n_steps` optimizer steps. Batches are packed, so every
    token counted is a real one."""

    def __init__(self, every_n_steps: int = 10):
        self.every_n_steps = every_n_steps
        self._tokens, self._t0, self._last_step = 0, None, -1

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self._t0 is None:
            self._t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self._tokens += int(batch["num_tokens"])
        step = trainer.global_step
        if step != self._last_step and step % self.every_n_steps == 0 and step > 0:
            self._last_step = step
            if trainer.strategy.root_device.type == "cuda":
                torch.cuda.synchronize()
            rate = self._tokens / max(time.perf_counter() - self._t0, 1e-9)
            pl_module.log_dict({"perf/tokens_per_s": rate, "perf/tokens_per_s_global": rate * trainer.world_size},
                               on_step=True, on_epoch=False, batch_size=1)
            self._tokens, self._t0 = 0, time.perf_counter()


class RecordAudit(L.Callback):
    """Writes the corpus indices of the records each rank trained on to `<dirpath>/rank<k>.txt`,
    one line per batch, to check how the data was sharded across ranks."""

    def __init__(self, dirpath: str):
        self.dirpath = Path(dirpath)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.dirpath.mkdir(parents=True, exist_ok=True)
        with open(self.dirpath / f"rank{trainer.global_rank}.txt", "a") as f:
            f.write(" ".join(map(str, batch["record_index"].tolist())) + "\n")
