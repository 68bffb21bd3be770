"""Configuration: frozen dataclasses, TOML loading, `--set` overrides (schema.py) and the rules of a
valid config (rules.py). Imports errors only, and the registries' names for the allowed choices."""

from thermodiff.config.schema import (
    CONFIG_DIR,
    Config,
    DataConfig,
    DiffusionConfig,
    EvalConfig,
    ModelConfig,
    TrainConfig,
    from_dict,
    load_toml,
    replace_section,
    resolve_config_path,
    with_overrides,
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
