"""Settings: the configs in `conf/` (installed as `omnigenome.conf`) and `key=value` overrides of them.

Every command takes its settings the same way, as Hydra overrides of a config in `conf/`:
`train.py` / `omnigenome-train` and `evaluate.py` through `@hydra.main`; `omnigenome prep`, the suite
runner and the benchmark task configs through `compose`; `omnigenome design` through `load_settings`
(OmegaConf alone: the designer's settings are one flat config, and the design path stays free of Hydra).
A key that does not exist stops with a one-line `SettingsError` that names it and the valid keys.
"""
from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path
from typing import Iterable, Sequence

CONFIG_MODULE = "omnigenome.conf"
BENCHMARK_ENV = "OMNIGENOME_BENCHMARK_DATA"


class SettingsError(ValueError):
    """A setting that does not exist or has a value it cannot take; the message is one line."""


def conf_files():
    """The installed config folder (an importlib.resources Traversable)."""
    return files(CONFIG_MODULE)


def benchmark_dir() -> str:
    """Where the public benchmark folders lie: $OMNIGENOME_BENCHMARK_DATA, else ../shared/data beside
    the working directory (the layout of the development checkout). Configs read it as
    `${omnigenome.benchmark_dir:}`."""
    return os.environ.get(BENCHMARK_ENV) or str(Path(os.environ.get("PROJECT_ROOT", ".")) / ".." / "shared" / "data")


def _valid_keys(cfg, key: str) -> str:
    """The keys that exist where `key` was looked up (for messages)."""
    from omegaconf import DictConfig
    node, parts = cfg, key.lstrip("+~").split(".")
    for part in parts[:-1]:
        child = node.get(part) if isinstance(node, DictConfig) else None
        if not isinstance(child, DictConfig):
            break
        node = child
    return ", ".join(str(k) for k in node.keys()) if isinstance(node, DictConfig) else ""


def _one_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def compose(config_name: str, overrides: Sequence[str] = (), config_dirs: Iterable[str | os.PathLike] = ()):
    """The config `config_name` of conf/ (e.g. "prep/slurm") with Hydra overrides applied.

    config_dirs: a user's own config folders, searched before the installed configs (what `--config-dir`
    does for train.py). Raises SettingsError naming a key that does not exist and the valid ones.
    """
    from hydra import compose as hydra_compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    register_resolvers()
    overrides = list(overrides)
    search = [f"hydra.searchpath=[{','.join('file://' + str(Path(d).resolve()) for d in config_dirs)}]"]
    GlobalHydra.instance().clear()
    try:
        with initialize_config_module(CONFIG_MODULE, version_base="1.3"):
            try:
                return hydra_compose(config_name, overrides=overrides + (search if config_dirs else []))
            except (HydraException, OmegaConfBaseException) as e:
                missing = _missing_option(e)
                if missing:
                    raise SettingsError(missing) from None
                bad = _failed_key(e, overrides)
                if bad is not None:
                    base = hydra_compose(config_name)
                    raise SettingsError(f"unknown setting {bad!r} in {config_name} (valid keys there: "
                                        f"{_valid_keys(base, bad)})") from None
                raise SettingsError(f"{config_name}: {_one_line(e)}") from None
    finally:
        GlobalHydra.instance().clear()


def _missing_option(error: Exception) -> str | None:
    """"model=7b: no such option (model: 186m, 52m, tiny)" for a config group option that does not exist."""
    import re
    text = str(error)
    found = re.search(r"Could not find '([^']+)/([^'/]+)'", text)
    if not found:
        return None
    group, option = found.groups()
    options = re.findall(r"^\t(\S+)$", text.split("Available options", 1)[-1], flags=re.M) if "Available options" in text else []
    return f"{group}={option}: no such option" + (f" ({group}: {', '.join(options)})" if options else "")


def _failed_key(error: Exception, overrides: Sequence[str]) -> str | None:
    """The key of the override Hydra could not apply because it does not exist, if that is what failed."""
    cause = f"{error} {error.__cause__}"
    if "not in struct" not in cause and "Could not override" not in cause:
        return None
    for item in overrides:
        key = item.split("=", 1)[0].lstrip("+~")
        if f"'{key}'" in cause:
            return key
    return None


def load_settings(config_name: str, schema: type, overrides: Sequence[str] = ()):
    """An instance of the dataclass `schema` from conf/<config_name>.yaml with `key=value` overrides
    (OmegaConf; values are parsed as YAML, e.g. `trajectories=1`, `objective=mfe`). Raises SettingsError
    naming an unknown key and the valid keys, or a value of the wrong type."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    base = OmegaConf.structured(schema)
    with conf_files().joinpath(f"{config_name}.yaml").open() as f:
        values = OmegaConf.load(f)
    try:
        cfg = OmegaConf.merge(base, values)
    except OmegaConfBaseException as e:
        raise SettingsError(f"conf/{config_name}.yaml: {_one_line(e)}") from None
    valid = ", ".join(str(k) for k in cfg.keys())
    for item in overrides:
        key, sep, _ = item.partition("=")
        if not sep or not key:
            raise SettingsError(f"expected key=value, got {item!r} (keys: {valid})")
        if key not in cfg:
            raise SettingsError(f"unknown setting {key!r} (valid keys: {valid})")
        try:
            cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist([item]))
        except OmegaConfBaseException as e:
            raise SettingsError(f"{item}: {_one_line(e)}") from None
    try:
        return OmegaConf.to_object(cfg)
    except (OmegaConfBaseException, ValueError) as e:
        raise SettingsError(f"{config_name}: {_one_line(e)}") from None


_said_cpu_precision = False


def cpu_precision() -> str:
    """Lightning's precision for CPU runs: "bf16-mixed" where the CPU has native bf16 matrix units (AMX,
    AVX512-BF16, Arm BF16), else "32-true"; says which once. Configs read it as `${omnigenome.cpu_precision:}`."""
    import logging

    from omnigenome.utils import cpu_bf16_units
    global _said_cpu_precision
    units = cpu_bf16_units()
    if not _said_cpu_precision:
        logging.getLogger("omnigenome").info("CPU bf16: %s", f"yes ({units})" if units else "no: fp32")
        _said_cpu_precision = True
    return "bf16-mixed" if units else "32-true"


def register_resolvers() -> None:
    """The `${omnigenome.*:}` resolvers that configs use (idempotent)."""
    from omegaconf import OmegaConf
    OmegaConf.register_new_resolver("omnigenome.benchmark_dir", benchmark_dir, replace=True)
    OmegaConf.register_new_resolver("omnigenome.cpu_precision", cpu_precision, replace=True, use_cache=True)
