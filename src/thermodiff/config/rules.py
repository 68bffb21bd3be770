"""What a valid config is (config.py's dataclasses hold the values): the choices of each named field,
the interval of each number, and the rules between fields. Every error names the field."""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

from thermodiff.data.sources import DATASETS
from thermodiff.diffusion.reverse import LEGACY_NAMES, PARAMETERIZATIONS
from thermodiff.diffusion.schedules import LEARNED_INITS, SCHEDULES
from thermodiff.errors import ConfigError
from thermodiff.lists import int_list
from thermodiff.nets.registry import NETS

if TYPE_CHECKING:
    from thermodiff.config.schema import Config

_CHOICES = {  # a registry's live keys where there is one (a name registered later is a valid choice)
    ("data", "name"): DATASETS,
    ("model", "net"): NETS,
    ("diffusion", "kernel"): tuple(dict.fromkeys(kernel for kernel, _ in PARAMETERIZATIONS)),
    ("diffusion", "first_step"): ("fixed", "learned"),
    ("diffusion", "schedule"): SCHEDULES,
    ("diffusion", "learned_init"): LEARNED_INITS,
    ("diffusion", "parameterization"): tuple(dict.fromkeys(name for _, name in PARAMETERIZATIONS)),
    ("diffusion", "variance"): ("learned", "small", "large", "learned_range", "full"),
    ("train", "precision"): ("fp32", "bf16"),
    ("train", "task"): ("diffusion", "classifier", "clean_classifier"),
}

_WIDTH = 65_536  # most units, channels or features in one layer (wider fails to allocate)
_COUNT = 1_000  # most layers, blocks, scales or bumps
# Allowed interval -> the fields it bounds; "[" and "]" closed, "(" and ")" open, and NaN and inf are
# never inside. diffusion.T: torch.multinomial (each example's t) takes at most 2**24 categories.
_RANGES = {
    "(0, inf)": "data.sigma data.r_min data.r_max model.fourier_scale",
    "(0, 100]": "train.lr",  # beyond, AdamW's update overflows float32 at once
    "[0, inf)": "train.steps train.lr_final train.warmup train.weight_decay "
    "train.grad_clip train.sample_every",  # grad_clip 0: no clipping; sample_every 0: never
    "[1, inf)": "train.log_every train.ckpt_every",
    "[1, 1e8]": "data.n_train data.n_test eval.n",  # examples held in memory at once
    "[1, 1e6]": "train.batch eval.batch",
    "(0, 1)": "data.holdout diffusion.beta_1 diffusion.beta_max",
    "[0, 1)": "model.dropout train.ema",
    "[-2**63, 2**63)": "data.seed train.seed",  # torch seeds may be negative (train.step_seed)
    "[2, 100000]": "diffusion.T",
    f"[1, {_WIDTH}]": "data.image_size model.hidden model.rbf_units model.conv_channels model.dense_hidden "
    "model.dense_out model.pixel_hidden model.heads",
    f"[0, {_WIDTH}]": "data.resize model.fourier",
    f"[2, {_WIDTH}]": "model.time_embed model.base",  # sinusoidal t embeddings: 1 feature carries no t
    f"[1, {_COUNT}]": "model.layers model.n_scales model.n_bumps",
    f"[0, {_COUNT}]": "model.conv_layers model.dense_layers model.pixel_layers model.num_res_blocks",
}


def _bound(text: str) -> float:
    """'0.5', 'inf' or '2**63' -> a number."""
    base, _, exponent = text.partition("**")
    return float(base) ** int(exponent) if exponent else float(base)


def within(value: float, interval: str) -> bool:
    """Whether value lies in an interval written '[0, 1)' or '(0, inf)'; NaN and inf never do."""
    lo, hi = (_bound(s.strip()) for s in interval[1:-1].split(","))
    above = value > lo if interval[0] == "(" else value >= lo
    below = value < hi if interval[-1] == ")" else value <= hi
    return (isinstance(value, int) or math.isfinite(value)) and above and below


def parameterizations(kernel: str) -> tuple[str, ...]:
    """The parameterization names a kernel takes (diffusion.reverse.PARAMETERIZATIONS)."""
    return tuple(name for k, name in PARAMETERIZATIONS if k == kernel)


def is_import_path(net: str) -> bool:
    """model.net = "package.module:Class": a network of one's own, imported by that path."""
    return re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.<>]*", net) is not None  # <locals>: refused at import


def validate(cfg: Config) -> None:
    """Range checks with a message naming the field."""
    for (section, name), choices in _CHOICES.items():
        value = getattr(getattr(cfg, section), name)
        if (section, name) == ("model", "net") and is_import_path(value):
            continue
        if value not in choices:
            raise ConfigError(f"{section}.{name} = {value!r} is not one of {', '.join(choices)}")
    for interval, keys in _RANGES.items():
        for key in keys.split():
            section, name = key.split(".")
            value = getattr(getattr(cfg, section), name)
            if not within(value, interval):
                raise ConfigError(f"{key} = {value!r} must lie in {interval}")
    d, t, m = cfg.diffusion, cfg.train, cfg.model
    source, own_net = DATASETS[cfg.data.name], is_import_path(m.net)
    mults, data_kind = int_list(m.mults), source.kind
    net_kind = data_kind if own_net or data_kind == "any" else NETS[m.net].kind  # known when built
    nets = [n for n, entry in NETS.items() if entry.kind == data_kind] or list(NETS)
    offered = "; ".join(
        f"{k}: {', '.join(p for p in parameterizations(k) if p not in LEGACY_NAMES)}"
        for k in _CHOICES["diffusion", "kernel"]
    )
    checks = [
        (
            d.first_step == "fixed" or d.kernel == "binomial",
            "diffusion.first_step = 'learned' needs diffusion.kernel = 'binomial' (discrete x_0)",
        ),
        (
            d.parameterization in parameterizations(d.kernel),
            f"diffusion.parameterization = '{d.parameterization}' does not apply to the {d.kernel} kernel "
            f"({offered})",
        ),
        (
            cfg.data.p_bar == -1.0 or 0.0 < cfg.data.p_bar < 1.0,
            "data.p_bar must lie in (0, 1), or be -1 (the training-data mean)",
        ),
        (cfg.data.r_min < cfg.data.r_max, "data.r_min and data.r_max need 0 < r_min < r_max"),
        (
            source.reads_path or not cfg.data.path,
            f"data.path = {cfg.data.path!r} is given, but data.name = {cfg.data.name!r} is generated and "
            "reads no file: remove data.path, or use data.name = 'array' for a .npy, .npz or .csv file",
        ),
        (
            own_net or not m.kwargs,
            f"model.kwargs is for a network of one's own (model.net = 'module:Class'), not {m.net!r}",
        ),
        (
            not d.from_run or t.task != "diffusion",
            "diffusion.from_run is only for train.task = classifier or clean_classifier",
        ),
        (t.lr_final <= t.lr, f"train.lr_final = {t.lr_final!r} must be <= train.lr = {t.lr!r}"),
        (
            bool(mults) and all(1 <= v <= _WIDTH // m.base for v in mults),
            f"model.mults = {m.mults!r} must be comma-separated integers >= 1, "
            f"with model.base * each <= {_WIDTH}",
        ),
        (
            int_list(m.attn_resolutions) is not None,
            f"model.attn_resolutions = {m.attn_resolutions!r} must be comma-separated integers, or ''",
        ),
        (
            m.net != "paper_image" or m.conv_layers > 0 or m.dense_layers > 0,
            "model.conv_layers and model.dense_layers are both 0: paper_image needs one pathway",
        ),
        (  # classifier tasks build their own network (model.base, mults, num_res_blocks)
            t.task != "diffusion" or net_kind == data_kind,
            f"model.net = {m.net!r} takes {net_kind}; data.name = {cfg.data.name!r} gives {data_kind}: "
            f"use {' or '.join([', '.join(nets[:-1]), nets[-1]])}",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)


def warnings_for(cfg: Config) -> list[str]:
    """What is valid but will not do what it seems to (one line each; the CLI prints them)."""
    t = cfg.train
    out = []
    if 0 < t.steps <= t.warmup:
        out.append(
            f"train.warmup = {t.warmup} is not shorter than train.steps = {t.steps}: the learning rate "
            f"never reaches train.lr = {t.lr} (lower train.warmup)"
        )
    return out
