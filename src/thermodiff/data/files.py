"""Files in and out of model space for the conditioning commands (denoise, inpaint, interpolate; P 3.2).

Units (units.py). A PNG pixel p in 0..255 is the data value p of an 8-bit image run ("image8"); a binary
run ("binary") reads p >= 128 as 1. A .npy file holds data units: 0..255 floats for 8-bit images, 0/1
for binary, the raw units for vector data. Masks: 1 (PNG: white, >= 128) = known pixel, kept; 0 (black)
= unknown pixel, inpainted.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from thermodiff.data.units import Units
from thermodiff.errors import DataError, ThermodiffError
from thermodiff.run.checkpoint import atomic_write_bytes, check_writable

SUFFIXES = (".png", ".npy")


def _fmt(shape) -> str:
    return "x".join(str(s) for s in shape)


def check_out(path: Path | str, panel: bool = True) -> Path:
    """An output path (and its panel's, if one is written) must end in .png or .npy and be writable;
    checked before any work is done."""
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise ThermodiffError(f"--out must end in .png or .npy, got {path.name}")
    check_writable(path)  # first: an unwritable folder is named by the output itself
    if panel:
        check_writable(panel_path(path))
    return path


def panel_path(out: Path) -> Path:
    """Where a command's side-by-side figure goes: beside its output, `<stem>_panel.png`."""
    return out.with_name(out.stem + "_panel.png")


def _read_png(path: Path, units: Units) -> Tensor:
    """A PNG -> float64 (1, C, H, W) in data units; its size and channels must be the run's."""
    from thermodiff.data.images import decode_image

    if not units.is_image:
        raise ThermodiffError(
            f"{path.name}: PNG input needs an image run; this run models shape {units.spec.shape}"
        )
    C, H, W = units.spec.shape
    with open(path, "rb") as f:
        a = decode_image(f, str(path), None, grayscale=C == 1)  # (h, w, c) uint8
    if a.shape[:2] != (H, W):
        raise ThermodiffError(
            f"{path.name} is {_fmt(a.shape[:2])} pixels (H x W); the run's images are {H}x{W}"
        )
    return units.from_png(torch.from_numpy(a.transpose(2, 0, 1).copy()).to(torch.float64)[None])


def _read_npy(path: Path) -> Tensor:
    try:
        a = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise DataError(f"{path.name}: not a readable .npy file ({str(e).splitlines()[0]})") from None
    if a.dtype.kind not in "biuf":
        raise DataError(f"{path.name}: a {a.dtype} array, expected numbers")
    return torch.from_numpy(a.astype(np.float64))


def _batched(x: Tensor, shape: tuple[int, ...], name: str) -> Tensor:
    """x of shape S or (N, *S) -> (N, *S); anything else is a one-line error."""
    S = tuple(shape)
    if tuple(x.shape) == S:
        return x[None]
    if x.dim() == len(S) + 1 and tuple(x.shape[1:]) == S and x.shape[0] >= 1:
        return x
    raise ThermodiffError(f"{name} has shape {_fmt(x.shape)}; the run models {_fmt(S)} or N x {_fmt(S)}")


def read_data(path: Path | str, units: Units) -> Tensor:
    """An input file (PNG or .npy) -> float64 (N, *shape) in data units."""
    path = Path(path)
    if not path.is_file():
        raise ThermodiffError(f"input file not found: {path}")
    if path.suffix.lower() == ".png":
        return _read_png(path, units)
    if path.suffix.lower() != ".npy":
        raise ThermodiffError(f"{path.name}: inputs must be .png or .npy files")
    x = _batched(_read_npy(path), units.spec.shape, path.name)
    if not torch.isfinite(x).all():
        raise DataError(f"{path.name} contains NaN or infinite values")
    return x


def read_mask(path: Path | str, units: Units, n: int) -> Tensor:
    """A mask file -> bool (n or 1, *shape), True = known. PNG: one H x W mask for every channel
    (white >= 128 = known); .npy: 0/1 of the data's shape, (N, *shape), or H x W for images."""
    path = Path(path)
    if not path.is_file():
        raise ThermodiffError(f"mask file not found: {path}")
    suffix, S = path.suffix.lower(), tuple(units.spec.shape)
    if suffix == ".png":
        if not units.is_image:
            raise ThermodiffError(f"{path.name}: a PNG mask needs an image run; this run models shape {S}")
        from thermodiff.data.images import decode_image  # 8 bits per channel, as inputs are

        m = torch.from_numpy(decode_image(path, path.name).mean(axis=2) >= 128)
    elif suffix == ".npy":
        m = _read_npy(path)
        if not bool(((m == 0) | (m == 1)).all()):
            raise ThermodiffError(f"mask {path.name} must hold only 0 and 1 (1 = known)")
        m = m == 1
    else:
        raise ThermodiffError(f"{path.name}: masks must be .png or .npy files")
    if len(S) == 3 and tuple(m.shape) == S[1:]:
        m = m[None].expand(S)
    if len(S) == 3 and tuple(m.shape) != S and m.dim() == 2:
        raise ThermodiffError(
            f"mask {path.name} is {_fmt(m.shape)} pixels; the run's images are {_fmt(S[1:])}"
        )
    m = _batched(m, units.spec.shape, f"mask {path.name}")
    if m.shape[0] not in (1, n):
        raise ThermodiffError(f"mask {path.name} holds {m.shape[0]} masks for {n} inputs")
    return m


def write_data(path: Path, x: Tensor, units: Units) -> Path:
    """(N, *shape) data units -> .npy (float64, as is) or PNG (one image, or a row of N), atomically."""
    path = Path(path)
    if not torch.isfinite(x).all():  # e.g. an input far outside the data's range
        raise ThermodiffError(f"the result holds NaN or infinite values; nothing written to {path}")
    if path.suffix.lower() == ".npy":
        buf = io.BytesIO()
        np.save(buf, x.detach().cpu().numpy())
        atomic_write_bytes(path, buf.getvalue())
        return path
    if not units.is_image:
        raise ThermodiffError(f"PNG output needs an image run; write {path.with_suffix('.npy').name}")
    p = units.to_pixels(x.detach().cpu())  # (N, C, H, W)
    row = torch.cat(list(p), dim=2)  # N images side by side, no border: one image reads back as input
    a = (row * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    buf = io.BytesIO()
    Image.fromarray(a[..., 0] if a.shape[2] == 1 else a).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
    return path
