"""Callbacks: throughput in unpadded tokens per second, preemption (checkpoint, stop, requeue), and a per-rank
audit of the records trained on."""
from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path

import lightning as L
import torch

from omnigenome.training import cluster

log = logging.getLogger("omnigenome")


class TokenThroughput(L.Callback):
    """Logs every `every_n_steps` optimizer steps: `perf/tokens_per_s` (unpadded tokens per second on this
    device; batches are packed, so every token counted is a real one), `perf/tokens_per_s_global` (times
    the number of ranks) and, where the device's peak is known, `perf/mfu` (model FLOPs utilisation:
    `OmniGenomeConfig.training_flops` per second over the peak).

    peak_flops: the device's peak in FLOP/s for the training precision; None asks Lightning's table of
    GPUs (`get_available_flops`), which knows no CPU, so on CPU no MFU is logged unless it is given.
    """

    def __init__(self, every_n_steps: int = 10, peak_flops: float | None = None):
        self.every_n_steps, self.peak_flops = every_n_steps, peak_flops
        self._tokens, self._flops, self._t0, self._last_step = 0, 0.0, None, -1

    def setup(self, trainer, pl_module, stage):
        if self.peak_flops is None:
            from lightning.fabric.utilities.throughput import get_available_flops
            precision = str(trainer.precision)
            dtype = torch.bfloat16 if "bf16" in precision else torch.float16 if "16" in precision else torch.float32
            self.peak_flops = get_available_flops(trainer.strategy.root_device, dtype)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self._t0 is None:
            self._t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self._tokens += int(batch["num_tokens"])
        if self.peak_flops:
            cu = batch["cu_seqlens"].tolist()
            self._flops += pl_module.model.config.training_flops(b - a for a, b in zip(cu[:-1], cu[1:]))
        step = trainer.global_step
        if step != self._last_step and step % self.every_n_steps == 0 and step > 0:
            self._last_step = step
            if trainer.strategy.root_device.type == "cuda":
                torch.cuda.synchronize()
            elapsed = max(time.perf_counter() - self._t0, 1e-9)
            rate = self._tokens / elapsed
            values = {"perf/tokens_per_s": rate, "perf/tokens_per_s_global": rate * trainer.world_size}
            if self.peak_flops:
                values["perf/mfu"] = self._flops / elapsed / self.peak_flops
            pl_module.log_dict(values, on_step=True, on_epoch=False, batch_size=1)
            self._tokens, self._flops, self._t0 = 0, 0.0, time.perf_counter()


class RecordAudit(L.Callback):
    """Writes the corpus indices of the records each rank trained on to `<dirpath>/rank<k>.txt`,
    one line per batch, to check how the data was sharded across ranks."""

    def __init__(self, dirpath: str):
        self.dirpath = Path(dirpath)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.dirpath.mkdir(parents=True, exist_ok=True)
        with open(self.dirpath / f"rank{trainer.global_rank}.txt", "a") as f:
            f.write(" ".join(map(str, batch["record_index"].tolist())) + "\n")


class Preempted(Exception):
    """Raised by `Preemption` right after it saved last.ckpt: the run stops at once (no validation, no final
    evaluation), and the process exits with 128 + the signal's number, as if the signal had ended it."""

    def __init__(self, signum: int, step: int, path: Path):
        super().__init__(f"{signal.Signals(signum).name}: saved {path} at step {step}")
        self.signum, self.step, self.path = signum, step, path

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


class Preemption(L.Callback):
    """Stops a run cleanly when the cluster says so, ready to resume in the same run directory.

    On one of `signals` (SLURM's warning before the time limit: `#SBATCH --signal=USR1@120`, USR2 from
    submitit; SIGTERM on preemption or `kill`), the handler only sets a flag. At the next optimizer-step
    boundary the run saves `<dirpath>/last.ckpt` (saving inside the handler could catch the weights half
    updated, and the data position on resume is derived from the step count), lets Lightning log that step's
    row, and raises `Preempted` before anything else runs (a validation, the next batch). All ranks stop at the
    same step (a signal on any rank counts). train.py then calls `requeue_job`: under SLURM and unless
    the signal was SIGTERM (scancel sends it too), rank 0 requeues the job, which finds its run directory
    again and continues from last.ckpt.
    """

    def __init__(self, dirpath: str, signals: tuple[str, ...] = ("SIGUSR1", "SIGUSR2", "SIGTERM"),
                 requeue: bool = True):
        self.dirpath = Path(dirpath)
        self.signals = [signal.Signals[s] if isinstance(s, str) else signal.Signals(s) for s in signals]
        self.requeue = requeue
        self.received: signal.Signals | None = None
        self.stopped_at_step: int | None = None
        self._checkpoint: Path | None = None
        self._previous_handlers: dict = {}
        self._step = -1

    def _on_signal(self, signum, frame):
        if self.received is None or self.received == signal.SIGTERM:
            self.received = signal.Signals(signum)

    def on_train_start(self, trainer, pl_module):
        # After Lightning's own handlers (its SLURM requeue saves inside the handler, its SIGTERM exits unsaved).
        self._step = trainer.global_step
        if threading.current_thread() is threading.main_thread():
            for sig in self.signals:
                self._previous_handlers[sig] = signal.signal(sig, self._on_signal)

    def _stop_if_saved(self, trainer) -> None:
        """Raise Preempted once last.ckpt is saved: called at the first hook after the step's row was logged."""
        if self._checkpoint is None:
            return
        for logger in trainer.loggers:
            logger.save()
        signum = self.received or signal.SIGTERM  # a signal on another rank: stop as if terminated
        if trainer.is_global_zero:
            name = self.received.name if self.received else "a signal on another rank"
            log.warning("%s: saved %s at step %d, stopping", name, self._checkpoint, self.stopped_at_step)
        raise Preempted(int(signum), self.stopped_at_step, self._checkpoint)

    def on_validation_start(self, trainer, pl_module):
        if trainer.training or trainer.state.fn == "fit":
            self._stop_if_saved(trainer)

    def on_train_epoch_end(self, trainer, pl_module):
        self._stop_if_saved(trainer)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._stop_if_saved(trainer)
        # Loggers record Lightning's count of optimizer-stepped batches. A checkpoint saved in on_train_batch_end
        # (as last.ckpt here) holds it one short, since it is counted afterwards, and Lightning's restart adds
        # the one back only in some loop states: resumed after a stop at step 5 of the signal test in
        # tests/test_cluster.py (not at 4, right after a validation), every row was logged one step early.
        # With one optimizer the count equals global_step in every state.
        trainer.fit_loop.epoch_loop._batches_that_stepped = trainer.global_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self._step or self.stopped_at_step is not None:  # mid accumulation window, or done
            return
        self._step = trainer.global_step
        if not trainer.strategy.reduce_boolean_decision(self.received is not None, all=False):
            return
        self._checkpoint = self.dirpath / "last.ckpt"
        trainer.save_checkpoint(self._checkpoint)
        self.stopped_at_step = trainer.global_step

    def on_train_end(self, trainer, pl_module):
        self._restore_handlers()

    def teardown(self, trainer, pl_module, stage):
        self._restore_handlers()

    def _restore_handlers(self):
        for sig, handler in self._previous_handlers.items():
            signal.signal(sig, handler)
        self._previous_handlers = {}

    def requeue_job(self, trainer) -> bool:
        """After a stop on a signal: requeue the SLURM job from rank 0 (not after SIGTERM). Call it last,
        once the loggers are flushed: SLURM ends the job at once."""
        if (self.stopped_at_step is None or not self.requeue or not trainer.is_global_zero
                or self.received == signal.SIGTERM):
            return False
        return cluster.requeue_slurm_job()
