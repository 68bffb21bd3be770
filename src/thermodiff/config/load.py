"""Loading a config: TOML files and bundled names, `--set` overrides, JSON of stored runs; every value
typed by its field and the whole validated (rules.py)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import tomllib

from thermodiff.config.rules import validate
from thermodiff.config.schema import Config
from thermodiff.errors import ConfigError

CONFIG_DIR = Path(__file__).parents[1] / "configs"


# Fields whose absence from a stored run's config means the behaviour from before they existed.
_BEFORE_THEY_EXISTED = {("train", "ema_warmup"): False}


def from_dict(d: dict[str, Any], stored: bool = False) -> Config:
    """Build a Config from nested dicts, rejecting unknown sections and fields by name. stored: d is a
    run's own config (config.json, a checkpoint's meta), and a field it predates keeps its old meaning."""
    sections = {f.name: f.type for f in fields(Config)}
    kwargs = {}
    if stored:
        d = {name: dict(values) if isinstance(values, dict) else values for name, values in d.items()}
        for (section, name), old in _BEFORE_THEY_EXISTED.items():
            if isinstance(d.get(section, {}), dict):
                d.setdefault(section, {}).setdefault(name, old)
    for name, values in d.items():
        if name not in sections:
            raise ConfigError(f"unknown config section [{name}] (known: {', '.join(sections)})")
        if not isinstance(values, dict):
            raise ConfigError(f"config: [{name}] must be a table")
        cls = type(getattr(Config(), name))
        known = {f.name: f for f in fields(cls)}
        for key in values:
            if key not in known:
                raise ConfigError(f"unknown config field {name}.{key}")
        kwargs[name] = cls(**{k: _coerce(v, known[k], f"{name}.{k}") for k, v in values.items()})
    cfg = Config(**kwargs)
    validate(cfg)
    return cfg


def _coerce(value: Any, f: dataclasses.Field, where: str) -> Any:
    """A TOML, JSON or --set (string) value -> the field's type; a bool is not a number, nor 1 a bool."""
    if f.default_factory is dict:
        return _table(value, where)
    default = f.default
    try:
        if isinstance(value, bool) != isinstance(default, bool) and not isinstance(value, str):
            raise TypeError  # TOML `steps = true` (1) or `exact = 1`
        if isinstance(default, bool):
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0"):
                    raise ValueError
                return value.lower() in ("true", "1")
            return value
        if isinstance(default, int):
            number = _number(value) if isinstance(value, str) else value
            if isinstance(number, float) and not number.is_integer():
                raise ValueError
            return int(number)
        if isinstance(default, float):
            return float(value)
        if not isinstance(value, str):
            raise TypeError
        return value
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{where} = {value!r} is not a valid {type(default).__name__}") from None


def _table(value: Any, where: str) -> dict:
    """A TOML table, a JSON object or a --set JSON text ('{"width": 64}') of JSON values -> a dict."""
    try:
        table = json.loads(value) if isinstance(value, str) else value
        if not isinstance(table, dict) or not all(isinstance(k, str) for k in table):
            raise TypeError
        return json.loads(json.dumps(table, allow_nan=False))  # a copy; no dates, NaN or objects
    except (TypeError, ValueError):
        raise ConfigError(
            f"{where} = {value!r} is not a table of numbers, strings, booleans and lists"
        ) from None


def _number(text: str) -> int | float:
    """'7' -> 7 (exact, however large), '1e3' -> 1000.0."""
    try:
        return int(text)
    except ValueError:
        return float(text)


def _parse_override(text: str) -> tuple[str, str, str]:
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise ConfigError(f"--set expects section.field=value, got {text!r}")
    key, value = text.split("=", 1)
    section, name = key.strip().split(".", 1)
    return section, name, value.strip()


def resolve_config_path(name_or_path: str) -> Path:
    """A path to a TOML file, or the name of a bundled config (`swiss_roll`)."""
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists():
        if not p.is_file():
            raise ConfigError(f"config file not found: {name_or_path}")
        return p
    bundled = CONFIG_DIR / f"{name_or_path}.toml"
    if not bundled.is_file():
        names = ", ".join(sorted(q.stem for q in CONFIG_DIR.glob("*.toml")))
        raise ConfigError(f"no config file or bundled config named {name_or_path!r} (bundled: {names})")
    return bundled


def load_toml(name_or_path: str, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Load a TOML config (path or bundled name) and apply `section.field=value` overrides."""
    _check_overrides(overrides)
    path = resolve_config_path(name_or_path)
    try:
        raw = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid TOML (nested too deeply)") from None
    for text in overrides:
        section, name, value = _parse_override(text)
        if not isinstance(raw.setdefault(section, {}), dict):
            raise ConfigError(f"config: [{section}] must be a table")
        raw[section][name] = value
    return from_dict(raw)


def with_overrides(cfg: Config, overrides: list[str] | tuple[str, ...]) -> Config:
    """Apply `section.field=value` overrides to an existing Config."""
    _check_overrides(overrides)
    d = cfg.to_dict()
    for text in overrides:
        section, name, value = _parse_override(text)
        if section not in d:
            raise ConfigError(f"unknown config section [{section}]")
        d[section][name] = value
    return from_dict(d)


def _check_overrides(overrides) -> None:
    """A list of texts, not one text (whose characters would be taken one by one)."""
    if isinstance(overrides, str) or not all(isinstance(o, str) for o in overrides):
        raise ConfigError(f"overrides must be a list of 'section.field=value' texts, not {overrides!r}")


def replace_section(cfg: Config, section: str, **changes: Any) -> Config:
    """Return a copy of cfg with fields of one section changed (validated)."""
    new = replace(cfg, **{section: replace(getattr(cfg, section), **changes)})
    validate(new)
    return new
