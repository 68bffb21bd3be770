"""`thermodiff init FILE_OR_FOLDER`: a commented TOML starter for the user's own data, the kernel, a
network sized to the data's shape and T chosen from what the file or folder holds."""

from __future__ import annotations

import json
import math
from pathlib import Path

from thermodiff.errors import ThermodiffError


def describe(source: Path) -> dict:
    """What a file or folder holds: kind (continuous | binary | image8), shape, rows, classes."""
    from thermodiff.data.arrays import SUFFIXES, kind_of, read_arrays
    from thermodiff.data.images import read_images

    if source.suffix.lower() in SUFFIXES:
        train, test = read_arrays(source)
        kind = kind_of(train, source, "train" if test is not None else "")
        shape = train.shape[1:] if kind != "image8" else (*(train.shape[3:] or (1,)), *train.shape[1:3])
        rows = train.shape[0] + (0 if test is None else test.shape[0])
        return {"name": "array", "kind": kind, "shape": tuple(shape), "rows": rows, "classes": 0}
    if not source.exists():
        raise ThermodiffError(f"{source}: no such file or folder")
    names, x = read_images(source)
    tops = {n.split("/")[0] for n in names}
    inner = [n.split("/", 1)[1] for n in names] if tops <= {"train", "test"} else names
    classes = {n.split("/")[0] for n in inner} if all(n.count("/") == 1 for n in inner) else set()
    return {"name": "image_folder", "kind": "image8", "shape": tuple(x.shape[1:]), "rows": len(names),
            "classes": len(classes)}  # fmt: skip


def _diffusion(kind: str, d: int) -> str:
    if kind == "binary":
        return (
            "# binary values (all 0 or 1): the binomial kernel (P 2.2), the network's logit offset by the\n"
            "# step's equilibrium reversal (an untrained network gives K = L_null), p(x_0|x_1) learned\n"
            'kernel = "binomial"\nT = 1000\nfirst_step = "learned"\nparameterization = "offset"\n'
        )
    if kind == "image8":
        return (
            "# 8-bit images: the Gaussian kernel, DDPM's eps prediction with iDDPM's learned variance range\n"
            'kernel = "gaussian"\nT = 1000\nschedule = "log_snr"\nbeta_1 = 1e-5\n'
            'parameterization = "eps"\nvariance = "learned_range"\n'
        )
    variance = "full" if d <= 4 else "learned_range"
    return (
        "# continuous vectors, standardized to mean 0 and variance 1: the Gaussian kernel (P 2.1),\n"
        "# T = 40 as the paper's swiss roll, the schedule learned on K; beta_1: the finest scale resolved\n"
        f'kernel = "gaussian"\nT = 40\nschedule = "learned"\nlearned_init = "log_snr"\nbeta_1 = 1e-4\n'
        f'parameterization = "eps"\nvariance = "{variance}"  # "full": a full covariance per step (D <= 4)\n'
    )


def _model(kind: str, shape: tuple[int, ...]) -> str:
    if kind != "image8":
        d = math.prod(shape)
        hidden = min(1024, max(128, 32 * d))
        fourier = "fourier = 64\nfourier_scale = 3.0\n" if d <= 4 else ""
        return f'# a residual MLP with a time embedding, {hidden} units for D = {d}\nnet = "mlp"\n' + (
            f"hidden = {hidden}\nlayers = 4\n{fourier}"
        )
    side = min(shape[1:])
    levels = max(1, min(4, int(math.log2(max(side, 4))) - 2))  # down to a 4x4 or 8x8 map
    mults = ",".join(["1"] + ["2"] * (levels - 1))
    base = 32 if side <= 32 else 64
    attn = str(side // 2) if side >= 16 else ""
    return (
        f"# DDPM's U-Net sized to {shape[1]}x{shape[2]}: {levels} resolution(s), "
        f"attention at {attn or 'the middle'}\n"
        f'net = "unet"\nbase = {base}\nmults = "{mults}"\nnum_res_blocks = 2\nattn_resolutions = "{attn}"\n'
        "dropout = 0.1\n"
    )


def _split(name: str, rows: int) -> str:
    if name == "array":
        return (
            f"n_train = {rows}  # caps on each split's rows\nn_test = {rows}\n"
            "holdout = 0.2  # a file with one array: this fraction of rows held out (seed data.seed)\n"
        )
    return f"n_train = {rows}\nn_test = {max(1, rows // 5)}  # without train/ and test/: images held out\n"


def starter(source: Path) -> str:
    """The commented TOML text for `source` (checked by loading it before it is written)."""
    info = describe(source)
    kind, shape, rows = info["kind"], info["shape"], info["rows"]
    images = kind == "image8"
    batch = min(128 if images else 512, max(2, rows // 2))
    classes = (
        f"# {info['classes']} class sub-folders: a noisy classifier for guidance trains on them with\n"
        "#   thermodiff train THIS.toml --set train.task=classifier --set diffusion.from_run=RUN \\\n"
        "#     --out RUN_clf\n"
        if info["classes"] > 1
        else ""
    )
    return (
        f"# thermodiff starter for {source} ({rows} examples of shape {shape}, {kind}), by thermodiff init.\n"
        "# thermodiff train THIS.toml --out RUN; then thermodiff evaluate RUN; thermodiff sample RUN.\n"
        f"{classes}"
        f'[data]\nname = "{info["name"]}"\npath = {json.dumps(str(source.resolve()))}\n'
        + _split(info["name"], rows)
        + f"\n[diffusion]\n{_diffusion(kind, math.prod(shape))}\n[model]\n{_model(kind, shape)}\n"
        f"[train]\nsteps = {20000 if images else 10000}\nbatch = {batch}\n"
        f"lr = {3e-4 if images else 1e-3}\nlr_final = 1e-5\nema = 0.999\nckpt_every = 2000\n"
        + ("sample_every = 2000\n" if images else "")
        + f"\n[eval]\nn = {min(rows, 2000)}\nexact = {'false' if images else 'true'}\n"
    )


def cmd_init(args) -> int:
    import tomllib

    from thermodiff.config import from_dict
    from thermodiff.run.checkpoint import atomic_write_text, check_writable

    source = Path(args.source)
    out = Path(args.out) if args.out else Path(f"{source.stem}.toml")
    if out.exists():
        raise ThermodiffError(f"{out} exists: give another --out (nothing was written)")
    check_writable(out)
    text = starter(source)
    from_dict(tomllib.loads(text))  # the starter loads as a valid config before it is written
    atomic_write_text(out, text)
    print(f"wrote {out}  (next: thermodiff train {out} --out runs/{source.stem})")
    return 0
