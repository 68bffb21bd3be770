"""8-bit image data: IDX and CIFAR readers, restricted unpickling, image folders, dead leaves, textures."""

from __future__ import annotations

import dataclasses
import gzip
import math
import os
import pickle
import struct
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from thermodiff.config import DataConfig
from thermodiff.data.cifar import CIFAR10_CLASSES, cifar10, cifar10_arrays, safe_unpickle
from thermodiff.data.images import (
    image_dataset,
    image_folder,
    image_folder_dataset,
    mnist,
    mnist_arrays,
    read_idx,
    write_idx,
)
from thermodiff.data.textures import (
    _fill_dead_leaves,
    bark,
    dead_leaves,
    dead_leaves_dataset,
    sample_radii,
    texture_patches,
    window_radii,
    window_radius_weights,
)
from thermodiff.errors import DataError

DATA = Path(
    os.environ.get("THERMODIFF_DATA") or Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
)


def needs(sub: str):
    return pytest.mark.skipif(
        not (DATA / sub).exists(), reason=f"{DATA / sub} not found (set THERMODIFF_DATA)"
    )


def data_cfg(**changes) -> SimpleNamespace:
    """DataConfig's fields plus the proposed image fields (works before and after they are added)."""
    base = {"image_size": 16, "resize": 0, "grayscale": False, "r_min": 1.0, "r_max": 16.0, "holdout": 0.25}
    return SimpleNamespace(**{**base, **dataclasses.asdict(DataConfig()), **changes})


# --- IDX ---


def test_idx_round_trip_and_header_layout(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (5, 3, 4), dtype=np.uint8)
    y = np.arange(5, dtype=np.uint8)
    for name in ("images.idx", "images.idx.gz"):
        write_idx(tmp_path / name, x)
        np.testing.assert_array_equal(read_idx(tmp_path / name), x)
    write_idx(tmp_path / "labels.idx", y)
    np.testing.assert_array_equal(read_idx(tmp_path / "labels.idx"), y)
    # a file written by hand to the published layout: >IIII header, then the pixels
    (tmp_path / "hand.idx").write_bytes(struct.pack(">IIII", 0x803, 5, 3, 4) + x.tobytes())
    np.testing.assert_array_equal(read_idx(tmp_path / "hand.idx"), x)


def test_idx_errors_are_one_line_data_errors(tmp_path):
    x = np.zeros((2, 3, 3), np.uint8)
    (tmp_path / "magic.idx").write_bytes(struct.pack(">IIII", 0x804, 2, 3, 3) + x.tobytes())
    (tmp_path / "short.idx").write_bytes(struct.pack(">IIII", 0x803, 2, 3, 3) + x.tobytes()[:-1])
    (tmp_path / "short.idx.gz").write_bytes(gzip.compress(struct.pack(">IIII", 0x803, 9, 3, 3)))
    (tmp_path / "badgz.gz").write_bytes(gzip.compress(b"x" * 100)[:-10])
    cases = {"magic.idx": "magic", "short.idx": "truncated", "short.idx.gz": "truncated", "badgz.gz": "gzip"}
    cases["missing.idx"] = "not found"
    for name, words in cases.items():
        with pytest.raises(DataError, match=words) as e:
            read_idx(tmp_path / name)
        assert name in str(e.value) and "\n" not in str(e.value)


def test_mnist_arrays_finds_files_in_subfolders_with_labels(tmp_path):
    rng = np.random.default_rng(1)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    xtr, xte = (rng.integers(0, 256, (n, 28, 28), dtype=np.uint8) for n in (6, 4))
    write_idx(tmp_path / "a" / "train-images-first6-idx3-ubyte.gz", xtr)
    write_idx(tmp_path / "a" / "train-labels-first6-idx1-ubyte.gz", np.arange(6, dtype=np.uint8))
    write_idx(tmp_path / "b" / "t10k-images-idx3-ubyte", xte)
    write_idx(tmp_path / "b" / "train-labels-idx1-ubyte.gz", np.arange(60, dtype=np.uint8))  # ignored
    x_train, y_train, x_test, y_test = mnist_arrays(tmp_path)
    assert x_train.shape == (6, 1, 28, 28) and x_test.shape == (4, 1, 28, 28)
    assert torch.equal(x_train[:, 0], torch.from_numpy(xtr)) and y_train.tolist() == list(range(6))
    assert y_test is None  # no t10k-labels file beside the test images
    ds = mnist(data_cfg(path=str(tmp_path), n_train=5, n_test=3))
    assert ds.train.shape == (5, 1, 28, 28) and ds.test.shape == (3, 1, 28, 28)
    write_idx(tmp_path / "b" / "train-images-idx3-ubyte", xtr)  # now two train files in subfolders
    with pytest.raises(DataError, match="several files"):
        mnist_arrays(tmp_path)
    with pytest.raises(DataError, match="not found"):
        mnist_arrays(tmp_path / "nowhere")


# --- restricted unpickling and CIFAR batches ---


class _Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_restricted_unpickler_refuses_code_and_accepts_arrays(tmp_path):
    marker = tmp_path / "ran"
    with pytest.raises(DataError, match="refused global") as e:
        safe_unpickle(pickle.dumps({b"data": _Evil(marker)}), "evil.pkl")
    assert not marker.exists() and "evil.pkl" in str(e.value)
    with pytest.raises(DataError, match="refused global"):
        safe_unpickle(pickle.dumps(dataclasses.asdict), "function.pkl")
    a = np.arange(12, dtype=np.uint8).reshape(3, 4)
    for protocol in (4, 5):
        d = safe_unpickle(pickle.dumps({b"data": a, b"labels": [1, 2, 3], "name": b"x"}, protocol=protocol))
        np.testing.assert_array_equal(d[b"data"], a)
        assert d[b"labels"] == [1, 2, 3] and d["name"] == b"x"


def test_cifar_python_batches(tmp_path):
    rng = np.random.default_rng(2)
    batches = {}
    for name, n in (("data_batch_1", 3), ("data_batch_2", 2), ("test_batch", 4)):
        batches[name] = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        d = {b"data": batches[name], b"labels": list(range(n)), b"batch_label": b"x"}
        (tmp_path / name).write_bytes(pickle.dumps(d, protocol=4))
    x_train, y_train, x_test, y_test = cifar10_arrays(tmp_path)
    assert x_train.shape == (5, 3, 32, 32) and x_test.shape == (4, 3, 32, 32)
    assert y_train.tolist() == [0, 1, 2, 0, 1] and y_test.tolist() == [0, 1, 2, 3]
    row = batches["test_batch"][1]  # 1024 red values, then green, then blue, each row-major 32x32
    assert torch.equal(x_test[1, 2], torch.from_numpy(row[2048:].reshape(32, 32)))
    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": _Evil(tmp_path / "ran")}))
    with pytest.raises(DataError, match="test_batch"):
        cifar10_arrays(tmp_path)


def _png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_cifar_image_zip_labels_and_split(tmp_path):
    rng = np.random.default_rng(3)
    for cls in ("airplane", "truck", "cat"):
        for j in range(2):
            _png(
                tmp_path / "src" / "test" / cls / f"{j}.png",
                rng.integers(0, 256, (32, 32, 3), dtype=np.uint8),
            )
    with zipfile.ZipFile(tmp_path / "c.zip", "w") as z:
        for p in sorted((tmp_path / "src").rglob("*.png")):
            z.write(p, p.relative_to(tmp_path / "src").as_posix())
    x_train, _, x_test, y_test = cifar10_arrays(tmp_path / "c.zip")
    assert x_train is None and x_test.shape == (6, 3, 32, 32)
    assert y_test.tolist() == [
        CIFAR10_CLASSES.index(c) for c in ("airplane",) * 2 + ("cat",) * 2 + ("truck",) * 2
    ]
    ds = cifar10(data_cfg(path=str(tmp_path / "c.zip"), n_test=2))
    assert ds.train.shape == (4, 3, 32, 32) and ds.test.shape == (2, 3, 32, 32)
    with pytest.raises(DataError, match="n_test"):
        cifar10(data_cfg(path=str(tmp_path / "c.zip"), n_test=6))


# --- image folders and the standardization ---


def test_image_folder_dataset_splits(tmp_path):
    rng = np.random.default_rng(8)
    for split, n in (("train", 5), ("test", 3)):
        for j in range(n):
            _png(tmp_path / "tt" / split / f"{j}.png", rng.integers(0, 256, (6, 6), dtype=np.uint8))
    ds = image_folder_dataset(data_cfg(path=str(tmp_path / "tt"), grayscale=True))
    assert ds.train.shape == (5, 1, 6, 6) and ds.test.shape == (3, 1, 6, 6)
    for j in range(7):
        _png(tmp_path / "one" / f"{j}.png", rng.integers(0, 256, (9, 9), dtype=np.uint8))
    ds = image_folder_dataset(data_cfg(path=str(tmp_path / "one"), n_test=2, resize=4))
    assert ds.train.shape == (5, 3, 4, 4) and ds.test.shape == (2, 3, 4, 4)
    with pytest.raises(DataError, match="data.path"):
        image_folder_dataset(data_cfg(path=""))


def test_image_folder_shapes_resize_and_errors(tmp_path):
    rng = np.random.default_rng(4)
    _png(tmp_path / "a.png", rng.integers(0, 256, (8, 8), dtype=np.uint8))
    _png(tmp_path / "sub" / "b.png", rng.integers(0, 256, (8, 8), dtype=np.uint8))
    assert image_folder(tmp_path, grayscale=True).shape == (2, 1, 8, 8)
    assert image_folder(tmp_path).shape == (2, 3, 8, 8)  # gray replicated into RGB
    _png(tmp_path / "c.png", rng.integers(0, 256, (8, 10), dtype=np.uint8))
    with pytest.raises(DataError, match="c.png") as e:
        image_folder(tmp_path)
    assert "\n" not in str(e.value)
    assert image_folder(tmp_path, size=4).shape == (3, 3, 4, 4)
    _png(tmp_path / "d.png", rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    with pytest.raises(DataError, match="d.png: a colour image where grayscale"):
        image_folder(tmp_path, size=8, grayscale=True)
    (tmp_path / "e.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="e.jpg: not a readable image"):
        image_folder(tmp_path, size=8)
    with pytest.raises(DataError, match="not found"):
        image_folder(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no PNG, JPEG or GIF"):
        image_folder(tmp_path / "empty")


def test_image_dataset_standardizes_by_one_global_pair():
    """Channel 0 darker than channel 1: one shift and one scale for all values, as the paper's code
    does, so K's units do not depend on how the means vary across pixels (numpy as the reference)."""
    rng = np.random.default_rng(5)
    raw = rng.integers(0, 128, (200, 2, 3, 3)) + np.array([0, 127]).reshape(1, 2, 1, 1)
    x = torch.from_numpy(raw.astype(np.uint8))
    ds = image_dataset(x[:150], x[150:])
    assert ds.spec.kind == "image8" and ds.spec.unit == "bits/pixel" and ds.spec.shape == (2, 3, 3)
    assert ds.spec.units_per_example == 9  # pixels, colour channels summed
    assert ds.train.dtype == torch.float64 and ds.true_log_prob is None
    assert ds.scaling.scale == pytest.approx(1 / raw[:150].std(), rel=1e-12)
    assert ds.scaling.shift == pytest.approx((raw[:150].mean(),) * 18, rel=1e-12)
    assert abs(ds.train.var(unbiased=False).item() - 1.0) < 1e-9
    raw = ds.scaling.invert(ds.test)
    assert torch.allclose(raw, x[150:].double(), atol=1e-9)  # integer grid 0..255 kept
    with pytest.raises(DataError, match="uint8"):
        image_dataset(x[:150].double(), x[150:])
    with pytest.raises(DataError, match="same value"):
        image_dataset(torch.zeros(3, 1, 2, 2, dtype=torch.uint8), x[150:, :1, :2, :2])
    with pytest.raises(DataError, match="train images are"):
        image_dataset(x[:150], x[150:, :1])


# --- dead leaves ---


def _power_law_cdf(r: np.ndarray, r_min: float, r_max: float, a: float) -> np.ndarray:
    if a == 1.0:
        return np.log(r / r_min) / math.log(r_max / r_min)
    return (r ** (1 - a) - r_min ** (1 - a)) / (r_max ** (1 - a) - r_min ** (1 - a))


def _ks(sample: np.ndarray, cdf) -> float:
    s = np.sort(sample)
    f = cdf(s)
    n = s.size
    return max((np.arange(1, n + 1) / n - f).max(), (f - np.arange(n) / n).max())


def test_radius_samplers_follow_their_power_laws():
    # Kolmogorov-Smirnov: D < 1.63 / sqrt(n) is the 1% critical value; seeded, so this is a fixed check
    rng, n = np.random.default_rng(6), 20_000
    r = sample_radii(n, 1.0, 64.0, rng)
    assert r.min() >= 1.0 and r.max() <= 64.0
    assert _ks(r, lambda s: _power_law_cdf(s, 1.0, 64.0, 3.0)) < 1.63 / math.sqrt(n)
    # disks that can reach a 32-pixel window: density r^-3 (32 + 2r)^2, a mixture of three power laws
    w = window_radius_weights(32, 1.0, 64.0)
    rw = window_radii((n,), 32, 1.0, 64.0, rng)

    def mixture_cdf(s):
        return (
            sum(wi * _power_law_cdf(s, 1.0, 64.0, a) for wi, a in zip(w, (3.0, 2.0, 1.0), strict=True))
            / w.sum()
        )

    assert _ks(rw, mixture_cdf) < 1.63 / math.sqrt(n)


def test_dead_leaves_covers_every_pixel_and_is_seeded():
    img = np.full((20, 12 * 12), np.nan)
    _fill_dead_leaves(img, 12, 1.0, 8.0, 5, np.random.default_rng(0))
    assert np.isfinite(img).all() and (img >= 0).all() and (img < 1).all()
    a, b, c = (dead_leaves(30, 16, 1.0, 16.0, s) for s in (7, 7, 8))
    assert a.shape == (30, 1, 16, 16) and a.dtype == torch.uint8
    assert torch.equal(a, b) and not torch.equal(a, c)
    ds = dead_leaves_dataset(data_cfg(n_train=20, n_test=10, image_size=16, seed=3, r_min=1.0, r_max=16.0))
    assert ds.train.shape == (20, 1, 16, 16) and not torch.equal(ds.train[:10], ds.test)
    assert torch.equal(ds.scaling.invert(ds.train).round().to(torch.uint8), dead_leaves(20, 16, 1.0, 16.0, 3))
    for r_min, r_max in ((0.0, 4.0), (4.0, 4.0), (1e-4, 4.0)):
        with pytest.raises(DataError, match="r_min"):
            dead_leaves(2, 16, r_min, r_max, 0)


def _p_same_leaf(h: float, r_min: float, r_max: float) -> float:
    """Chance that two points h apart show the same leaf: E|D n D_h| / E|D u D_h| for disks, r ~ r^-3."""
    r = np.geomspace(r_min, r_max, 100_001)
    f = r**-3.0
    lens = 2 * r**2 * np.arccos(np.minimum(h / (2 * r), 1)) - h / 2 * np.sqrt(np.maximum(4 * r**2 - h**2, 0))
    area, both = np.trapezoid(math.pi * r**2 * f, r), np.trapezoid(lens * f, r)
    return both / (2 * area - both)


def test_dead_leaves_pair_statistics_match_the_model_everywhere():
    # Neighbours at distance h show the same leaf with the closed-form chance above; different leaves
    # still agree after 8-bit quantization with chance 1/256. 300 images: the spread over seeds of the
    # fraction is about 0.004 (0.006 on the border columns), so 0.02 / 0.03 are 4-5 standard errors.
    x = dead_leaves(300, 32, 1.0, 16.0, 11).numpy()[:, 0]
    for h in (1, 2):
        p = _p_same_leaf(h, 1.0, 16.0)
        expected = p + (1 - p) / 256
        same_rows, same_cols = x[:, :, h:] == x[:, :, :-h], x[:, h:, :] == x[:, :-h, :]
        assert abs(same_rows.mean() - expected) < 0.02
        assert abs(same_cols.mean() - expected) < 0.02
        assert abs(same_cols[:, :, [0, -1]].mean() - expected) < 0.03  # image edges: stationary too


# --- texture patches ---


def test_texture_patches_keep_out_of_the_test_columns(tmp_path):
    cols = np.tile(np.arange(200, dtype=np.uint8), (40, 1))  # pixel value = column index
    _png(tmp_path / "t.png", cols)
    train = texture_patches(tmp_path / "t.png", 500, 16, 0, "train", holdout=0.25)
    test = texture_patches(tmp_path / "t.png", 500, 16, 1, "test", holdout=0.25)
    assert train.shape == (500, 1, 16, 16) and train.max() < 150 and test.min() >= 150
    assert train.min() == 0 and train.max() == 149 and test.max() == 199  # the whole region is used
    assert torch.equal(train[:, 0, 0, 1:] - train[:, 0, 0, :-1], torch.ones(500, 15, dtype=torch.uint8))
    with pytest.raises(DataError, match="too small"):
        texture_patches(tmp_path / "t.png", 5, 64, 0, "test")
    _png(tmp_path / "rgb.png", np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8))
    with pytest.raises(DataError, match="grayscale"):
        texture_patches(tmp_path / "rgb.png", 5, 8, 0)
    ds = bark(data_cfg(path=str(tmp_path / "t.png"), n_train=30, n_test=20, image_size=8))
    assert ds.train.shape == (30, 1, 8, 8) and ds.test.shape == (20, 1, 8, 8)


# --- the real data sets in shared/data (skipped where absent) ---


@needs("mnist")
@needs("mnist-train-first10k")
def test_real_mnist():
    x_train, y_train, x_test, y_test = mnist_arrays(DATA)
    assert x_train.shape == (10000, 1, 28, 28) and x_test.shape == (10000, 1, 28, 28)
    assert x_train.dtype == torch.uint8 and x_train.max() == 255 and x_train.min() == 0
    assert y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]  # canonical order (README)
    assert y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert abs(x_test.double().mean().item() - 33.79) < 0.01
    ds = mnist(data_cfg(path=str(DATA), n_train=1000, n_test=500))
    assert ds.train.shape == (1000, 1, 28, 28) and ds.spec.kind == "image8"


@needs("cifar10-test-jpg")
def test_real_cifar_jpeg_zip():
    x_train, _, x_test, y_test = cifar10_arrays(DATA / "cifar10-test-jpg")
    assert x_train is None and x_test.shape == (10000, 3, 32, 32) and x_test.dtype == torch.uint8
    assert y_test.bincount().tolist() == [1000] * 10


@needs("brodatz-bark")
def test_real_bark():
    ds = bark(data_cfg(path=str(DATA / "brodatz-bark"), n_train=200, n_test=100, image_size=64))
    assert ds.train.shape == (200, 1, 64, 64) and ds.test.shape == (100, 1, 64, 64)
