"""The Hydra configs, installed as the package data `omnigenome.conf` (read with importlib.resources)."""
