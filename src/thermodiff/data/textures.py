"""Grayscale texture data (P 3.2): dead-leaves images (Lee et al. 2001) and patches of one large texture.

Both return uint8 tensors (N, 1, size, size) and become Datasets through images.image_dataset.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from thermodiff.data import Dataset
from thermodiff.data.images import IMAGE_SUFFIXES, decode_image, image_dataset
from thermodiff.data.root import data_root
from thermodiff.errors import DataError

if TYPE_CHECKING:
    from thermodiff.config.schema import DataConfig

BARK_FILE = Path("brodatz-bark") / "D12.gif"
_BUDGET = 1 << 22  # (uncovered pixel, disk) pairs tested together
_MAX_PAIRS = 1e10  # per image: a guard against r_min so small that coverage would take hours


# --- dead leaves ---


def power_law_quantile(u: np.ndarray, r_min: float, r_max: float, exponent: float) -> np.ndarray:
    """Inverse CDF of the density proportional to r^-exponent on [r_min, r_max], at uniforms u."""
    if exponent == 1.0:
        return r_min * (r_max / r_min) ** u
    a = 1.0 - exponent
    return (r_min**a + u * (r_max**a - r_min**a)) ** (1.0 / a)


def sample_radii(n: int, r_min: float, r_max: float, rng: np.random.Generator) -> np.ndarray:
    """n disk radii, density proportional to r^-3 on [r_min, r_max] (scale invariant; Lee et al. 2001)."""
    return power_law_quantile(rng.random(n), r_min, r_max, 3.0)


def window_radius_weights(size: int, r_min: float, r_max: float) -> np.ndarray:
    """Mixture weights of r^-3 (S + 2r)^2 = S^2 r^-3 + 4S r^-2 + 4 r^-1 on [r_min, r_max] (unnormalized)."""
    return np.array(
        [
            size**2 * (r_min**-2 - r_max**-2) / 2,
            4 * size * (1 / r_min - 1 / r_max),
            4 * math.log(r_max / r_min),
        ]
    )


def window_radii(shape: tuple[int, ...], size: int, r_min: float, r_max: float, rng) -> np.ndarray:
    """Radii of the disks whose centre falls in the window grown by r, [-r, S + r]^2: density
    proportional to r^-3 (S + 2r)^2, so that with centres uniform there, coverage is stationary."""
    w = window_radius_weights(size, r_min, r_max)
    component = np.searchsorted(np.cumsum(w) / w.sum(), rng.random(shape), side="right")
    u = rng.random(shape)
    out = power_law_quantile(u, r_min, r_max, 3.0)
    for c, exponent in ((1, 2.0), (2, 1.0)):
        out = np.where(component == c, power_law_quantile(u, r_min, r_max, exponent), out)
    return out


def _coverage_chance(size: int, r_min: float, r_max: float) -> float:
    """Chance that one disk of window_radii (centre uniform in [-r, S + r]^2) covers a given pixel."""
    return math.pi * math.log(r_max / r_min) / window_radius_weights(size, r_min, r_max).sum()


def _fill_dead_leaves(img: np.ndarray, size: int, r_min: float, r_max: float, k: int, rng) -> None:
    """Fill img (B, size*size) front to back: each new disk paints only the still uncovered pixels.

    A round draws k disks (fewer while many pixels are uncovered) per unfinished image, behind all
    earlier ones; each uncovered pixel takes the value of the first of them that covers it, found from
    |p - c|^2 - r^2 = |p|^2 + p.(-2c) + (|c|^2 - r^2) as one batched matrix product."""
    area = size * size
    xy = np.stack([np.arange(area) % size + 0.5, np.arange(area) // size + 0.5, np.ones(area)], 1)
    xy_sq = xy[:, 0] ** 2 + xy[:, 1] ** 2  # pixel centres (x, y, 1) and |p|^2
    flat = img.reshape(-1)
    pix = np.arange(flat.size)  # uncovered pixels, flat index into img (sorted, so grouped by image)
    while pix.size:
        image, p = np.divmod(pix, area)
        _, inv, counts = np.unique(image, return_inverse=True, return_counts=True)
        pos = np.arange(pix.size) - (np.cumsum(counts) - counts)[inv]  # rank within its image
        pts = np.zeros((counts.size, counts.max(), 3))  # (image, uncovered pixel, [x, y, 1])
        sq = np.full((counts.size, counts.max(), 1), np.inf)  # |p|^2; padding: inf, inside no disk
        pts[inv, pos], sq[inv, pos, 0] = xy[p], xy_sq[p]
        k_round = max(1, min(k, _BUDGET // (counts.size * counts.max())))
        r = window_radii((counts.size, k_round), size, r_min, r_max, rng)
        cx, cy = (rng.random(r.shape) * (size + 2 * r) - r for _ in range(2))
        value = rng.random(r.shape)
        disks = torch.from_numpy(np.stack([-2 * cx, -2 * cy, cx * cx + cy * cy - r * r], 1))  # (image, 3, k)
        inside = torch.baddbmm(torch.from_numpy(sq), torch.from_numpy(pts), disks) <= 0
        first = inside.view(torch.uint8).argmax(2)  # the front-most covering disk, (image, pixel)
        hit = inside.gather(2, first[..., None])[..., 0].numpy()[inv, pos]
        first = first.numpy()[inv, pos]
        flat[pix[hit]] = value[inv[hit], first[hit]]
        pix = pix[~hit]


def dead_leaves(n: int, size: int, r_min: float, r_max: float, seed: int) -> Tensor:
    """n dead-leaves images (Jeulin 1997; Lee et al. 2001) -> uint8 (n, 1, size, size).

    Occluding disks with radius density proportional to r^-3 on [r_min, r_max] (pixels), centres uniform
    (including outside the image, as far as a disk can reach into it), i.i.d. uniform intensities in
    [0, 1] quantized to 0..255, stacked front to back until every pixel is covered. Seeded."""
    if n < 0 or size < 1:
        raise DataError(f"dead leaves: need n >= 0 and size >= 1, got n={n}, size={size}")
    if not 0.0 < r_min < r_max < math.inf:
        raise DataError(f"dead leaves: need 0 < data.r_min < data.r_max, got {r_min}, {r_max}")
    q = _coverage_chance(size, r_min, r_max)
    if size * size / q > _MAX_PAIRS:
        raise DataError(f"dead leaves: data.r_min = {r_min} is too small for {size}x{size} images (too slow)")
    rng = np.random.default_rng(seed)
    k = math.ceil(0.5 / q)  # disks per image and round: ~40% of the remaining gaps filled
    chunk = max(1, _BUDGET // (k * size * size))  # images per batch: (image, pixel, disk) <= _BUDGET
    out = np.empty((n, size * size))
    for start in range(0, n, chunk):
        _fill_dead_leaves(out[start : start + chunk], size, r_min, r_max, k, rng)
    u8 = np.minimum(np.floor(out * 256), 255).astype(np.uint8)
    return torch.from_numpy(u8.reshape(n, 1, size, size))


def dead_leaves_dataset(cfg: DataConfig) -> Dataset:
    """Dead leaves, data.image_size pixels square: train with seed, test with seed + 1."""
    args = (cfg.image_size, cfg.r_min, cfg.r_max)
    return image_dataset(
        dead_leaves(cfg.n_train, *args, cfg.seed), dead_leaves(cfg.n_test, *args, cfg.seed + 1)
    )


# --- patches of one large texture ---


def load_grayscale(path: str | Path) -> np.ndarray:
    """One 8-bit grayscale image file -> uint8 (H, W); a colour image is a DataError."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"texture image not found: {path}")
    with open(path, "rb") as f:
        return decode_image(f, str(path), grayscale=True)[..., 0]


def texture_patches(
    image_path: str | Path, n: int, size: int, seed: int, region: str = "train", holdout: float = 0.25
) -> Tensor:
    """n random size x size patches -> uint8 (n, 1, size, size). The right `holdout` fraction of the
    columns is the test region: "train" patches lie wholly left of it, "test" patches wholly inside it."""
    if region not in ("train", "test"):
        raise DataError(f"texture region must be 'train' or 'test', got {region!r}")
    if not 0.0 < holdout < 1.0:
        raise DataError(f"data.holdout must lie in (0, 1), got {holdout}")
    img = load_grayscale(image_path)
    height, width = img.shape
    boundary = holdout_boundary(width, holdout)
    lo, hi = (0, boundary) if region == "train" else (boundary, width)
    if size < 1 or hi - lo < size or height < size:
        raise DataError(
            f"{image_path}: the {region} region is {hi - lo}x{height} pixels (W x H), "
            f"too small for {size}x{size} patches"
        )
    rng = np.random.default_rng(seed)
    y0 = rng.integers(0, height - size + 1, n)
    x0 = rng.integers(lo, hi - size + 1, n)
    offset = np.arange(size)
    patches = img[y0[:, None, None] + offset[None, :, None], x0[:, None, None] + offset[None, None, :]]
    return torch.from_numpy(patches[:, None].copy())


def holdout_boundary(width: int, holdout: float) -> int:
    """First column of the test region: columns [boundary, width) are held out for test patches."""
    return width - round(holdout * width)


def _texture_file(path: Path) -> Path:
    """A file as given; in a folder, D12.gif or else its only image."""
    if not path.is_dir():
        return path
    if (path / BARK_FILE.name).is_file():
        return path / BARK_FILE.name
    images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if len(images) != 1:
        raise DataError(f"{path}: expected one texture image in this folder, found {len(images)}")
    return images[0]


def bark(cfg: DataConfig) -> Dataset:
    """Bark (P 3.2; Brodatz D12 stands in for UIUC T01-T04): image_size patches, test region held out."""
    path = _texture_file(Path(cfg.path) if cfg.path else data_root("bark") / BARK_FILE)
    train = texture_patches(path, cfg.n_train, cfg.image_size, cfg.seed, "train", cfg.holdout)
    test = texture_patches(path, cfg.n_test, cfg.image_size, cfg.seed + 1, "test", cfg.holdout)
    return image_dataset(train, test)
