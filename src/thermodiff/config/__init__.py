"""Configuration: frozen dataclasses (schema.py, a leaf), TOML loading and `--set` overrides (load.py),
and the rules of a valid config (rules.py), whose choices come from the registries."""

from thermodiff.config.load import (
    CONFIG_DIR,
    from_dict,
    load_toml,
    replace_section,
    resolve_config_path,
    with_overrides,
)
from thermodiff.config.schema import (
    Config,
    DataConfig,
    DiffusionConfig,
    EvalConfig,
    ModelConfig,
    TrainConfig,
)

__all__ = [
    "CONFIG_DIR",
    "Config",
    "DataConfig",
    "DiffusionConfig",
    "EvalConfig",
    "ModelConfig",
    "TrainConfig",
    "from_dict",
    "load_toml",
    "replace_section",
    "resolve_config_path",
    "with_overrides",
]
