"""Which checkpoint a run starts from, and the check that a resumed run is the run it resumes."""
from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from omnigenome.settings import SettingsError
from omnigenome.training import cluster

log = logging.getLogger("omnigenome")

# Keys that name how a run is started, not what it computes: they may differ between a run and its resume.
_START_KEYS = ("resume", "resume_allow_changes", "ckpt_path")


def resolve_checkpoint(ckpt_path: str | None, log_dir: str, task_name: str) -> str | None:
    """A checkpoint path, or for "last" the newest `last.ckpt` among this task's runs."""
    if ckpt_path in (None, ""):
        return None
    if ckpt_path == "last":
        return str(cluster.latest_run(Path(log_dir, task_name, "runs")) / cluster.LAST_CHECKPOINT)
    if not Path(ckpt_path).is_file():
        raise FileNotFoundError(f"ckpt_path={ckpt_path}: no such checkpoint file")
    return ckpt_path


def resolve_init_from(init_from: str | None, log_dir: str) -> str | None:
    """The model a fine-tuning run starts from: a path as given, or for "last" the newest pretraining run's
    last.ckpt. Raises FileNotFoundError for a path that does not exist."""
    if init_from in (None, ""):
        return None
    if init_from == "last":
        return resolve_checkpoint("last", log_dir, "pretrain")
    if not Path(init_from).exists():
        raise FileNotFoundError(f"init_from={init_from}: no such checkpoint file or model folder; a hub id cannot be "
                                f"downloaded at run time: download it once (huggingface-cli download {init_from} "
                                f"--local-dir models/{Path(init_from).name}) and pass the folder")
    return str(init_from)


def _flat(node, prefix: str = "") -> dict[str, object]:
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out if out or not prefix else {prefix[:-1]: {}}
    return {prefix[:-1]: node}


def config_changes(original: DictConfig, current: DictConfig) -> dict[str, tuple[object, object]]:
    """{key: (original value, current value)} for every key whose value differs (unresolved: an interpolation
    counts as written), leaving out the keys that only say how a run starts (resume, ckpt_path)."""
    before = _flat(OmegaConf.to_container(original, resolve=False))
    after = _flat(OmegaConf.to_container(current, resolve=False))
    missing = object()
    changes = {}
    for key in sorted(set(before) | set(after)):
        if key.split(".")[0] in _START_KEYS:
            continue
        old, new = before.get(key, missing), after.get(key, missing)
        if old != new:
            changes[key] = (None if old is missing else old, None if new is missing else new)
    return changes


def check_resume(cfg: DictConfig, run_dir: str | Path) -> None:
    """Stop a run that continues `run_dir` with other settings than the run it continues.

    The run's first composed config (`.hydra/config.yaml`, never overwritten) is compared with this one; keys
    listed in `resume_allow_changes` (or below them: `trainer` allows every trainer key) may differ, to extend
    a run on purpose. Raises SettingsError naming every other key that differs, and the command to repeat."""
    original_path = Path(run_dir) / ".hydra" / "config.yaml"
    if not original_path.is_file():
        return
    allowed = [str(k) for k in (cfg.get("resume_allow_changes") or [])]
    changes = {k: v for k, v in config_changes(OmegaConf.load(original_path), cfg).items()
               if not any(k == a or k.startswith(a + ".") for a in allowed)}
    if not changes:
        return
    listed = "; ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in list(changes.items())[:12])
    more = f" (and {len(changes) - 12} more)" if len(changes) > 12 else ""
    overrides_path = Path(run_dir) / ".hydra" / "overrides.yaml"
    overrides = " ".join(OmegaConf.load(overrides_path)) if overrides_path.is_file() else ""
    raise SettingsError(f"resume of {run_dir} with other settings than the run's: {listed}{more}. Repeat the run's "
                        f"overrides ({overrides or 'none'}) or allow a change on purpose with "
                        f"resume_allow_changes=[{','.join(list(changes)[:3])}]")
