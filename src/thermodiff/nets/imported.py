"""A network of one's own: model.net = "package.module:Class", built as Class(**model.kwargs) with the
data's shape, T and the raw width the reverse parameterization asks for, then checked on one batch."""

from __future__ import annotations

import importlib
import inspect
from typing import TYPE_CHECKING

import torch
from torch import nn

from thermodiff.errors import ConfigError, first_line

if TYPE_CHECKING:
    from thermodiff.config.schema import ModelConfig


def import_class(path: str) -> type:
    """'package.module:Class' -> the class; a one-line ConfigError if it does not import or is no module."""
    module_name, _, qualname = path.partition(":")
    if module_name == "__main__" or "<locals>" in qualname:
        raise ConfigError(
            f"model.net = {path!r}: a class defined in a script or a function does not import in "
            "another process; define it at the top level of a module on PYTHONPATH"
        )
    try:
        obj = importlib.import_module(module_name)
    except Exception as e:  # any error of the user's module while importing is one line
        raise ConfigError(
            f"model.net = {path!r}: cannot import {module_name} ({first_line(e)}); "
            "put its folder on PYTHONPATH"
        ) from None
    for name in qualname.split("."):
        if not hasattr(obj, name):
            raise ConfigError(f"model.net = {path!r}: {module_name} has no {qualname}")
        obj = getattr(obj, name)
    if not (isinstance(obj, type) and issubclass(obj, nn.Module)):
        raise ConfigError(f"model.net = {path!r} is not a torch.nn.Module class")
    return obj


def build_imported(cfg: ModelConfig, shape: tuple[int, ...], T: int, out_channels: int) -> nn.Module:
    """Class(**model.kwargs), given also whichever of shape, T and out_channels its __init__ names."""
    cls = import_class(cfg.net)
    given = {"shape": tuple(shape), "T": T, "out_channels": out_channels}
    params = inspect.signature(cls.__init__).parameters
    open_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs = {k: v for k, v in given.items() if open_kw or k in params}
    kwargs.update(cfg.kwargs)
    try:
        return cls(**kwargs)
    except Exception as e:  # a wrong keyword, a bad value: the user's constructor, one line
        raise ConfigError(
            f"model.net = {cfg.net!r}: {cls.__name__}(**{kwargs}) failed ({first_line(e)})"
        ) from None


def check_raw_width(net: nn.Module, shape: tuple[int, ...], T: int, out_channels: int, name: str) -> None:
    """One forward pass on two zero examples at t = T: the output must be (2, out_channels, *shape[1:])."""
    expected = (2, out_channels, *shape[1:])
    params = list(net.parameters())
    device = params[0].device if params else torch.device("cpu")
    dtype = params[0].dtype if params else torch.float32
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            out = net(torch.zeros(2, *shape, dtype=dtype, device=device), torch.full((2,), T, device=device))
    except Exception as e:
        raise ConfigError(
            f"network {name}: forward(x_t of shape {(2, *shape)}, t of shape (2,)) failed ({first_line(e)})"
        ) from None
    finally:
        net.train(was_training)
    got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
    if got != expected:
        per = f"{out_channels} = {out_channels // max(shape[0], 1)} per channel" if len(shape) == 3 else ""
        raise ConfigError(
            f"network {name}: output {got}, the reverse parameterization needs {expected} "
            f"(raw width {out_channels}{f', {per}' if per else ''}; thermodiff.raw_width(cfg, shape) says it)"
        )
