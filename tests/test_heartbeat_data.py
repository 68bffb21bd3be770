"""Binary data (P 3.1.2, App. D.1.2): the heartbeat generator and its true log-likelihood, the
binarized-MNIST loader and its errors, and a tiny heartbeat train + evaluate through the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from thermodiff import cli
from thermodiff.config import DataConfig, load_toml
from thermodiff.data import Scaling, load_dataset
from thermodiff.data.binary import MNIST_FILE
from thermodiff.data.root import data_root
from thermodiff.errors import DataError
from thermodiff.run.load import p_bar_of


def valid_heartbeats() -> torch.Tensor:
    """Written out here, not taken from the module: 20 bins, a 1 every 5th, first pulse in 0..4."""
    rows = []
    for first in range(5):
        rows.append([1.0 if i % 5 == first else 0.0 for i in range(20)])
    return torch.tensor(rows, dtype=torch.float64)


def heartbeat(n_train: int = 20_000, n_test: int = 1_000, seed: int = 0):
    return load_dataset(DataConfig(name="heartbeat", n_train=n_train, n_test=n_test, seed=seed))


def test_heartbeat_yields_the_five_sequences_equally_often() -> None:
    """Only the 5 valid rows occur, each with frequency 1/5 within 5 binomial sigmas (0.014)."""
    ds = heartbeat()
    assert ds.train.shape == (20_000, 20) and ds.test.shape == (1_000, 20)
    assert ds.train.dtype == torch.float64
    assert ds.spec.shape == (20,) and ds.spec.kind == "binary" and ds.spec.unit == "bits/sequence"
    assert ds.scaling == Scaling.identity(20)
    match = (ds.train[:, None, :] == valid_heartbeats()[None]).all(-1)  # (n, 5)
    assert match.any(1).all(), "a row that is not one of the 5 heartbeats"
    freq = match.double().mean(0)
    tol = 5 * math.sqrt(0.2 * 0.8 / ds.train.shape[0])
    assert torch.allclose(freq, torch.full((5,), 0.2, dtype=torch.float64), atol=tol), freq


def test_heartbeat_seeds() -> None:
    """Train uses data.seed, test data.seed + 1: reproducible, and the splits differ."""
    a, b = heartbeat(n_train=500, n_test=500), heartbeat(n_train=500, n_test=500)
    assert torch.equal(a.train, b.train) and torch.equal(a.test, b.test)
    assert not torch.equal(a.train, a.test)
    shifted = heartbeat(n_train=500, n_test=500, seed=1)
    assert torch.equal(shifted.train, a.test)


def test_heartbeat_true_log_prob() -> None:
    """log(1/5) nats on each valid sequence, -inf on anything else (model space = raw space)."""
    ds = heartbeat(n_train=10, n_test=10)
    valid = valid_heartbeats()
    assert torch.equal(ds.true_log_prob(valid), torch.full((5,), math.log(1 / 5), dtype=torch.float64))
    flipped = valid.clone()
    flipped[:, 7] = 1 - flipped[:, 7]
    others = torch.cat([torch.zeros(1, 20), torch.ones(1, 20), flipped]).to(torch.float64)
    assert torch.isneginf(ds.true_log_prob(others)).all()
    assert ds.true_log_prob(ds.test).mean().item() / math.log(2) == pytest.approx(math.log2(1 / 5))


def test_heartbeat_data_mean_is_p_bar() -> None:
    """Every sequence has 4 ones in 20 bins, so the data mean is 0.2 exactly (the paper's p_bar)."""
    ds = heartbeat(n_train=1234, n_test=10)
    assert (ds.train.sum(1) == 4).all()
    assert ds.train.mean().item() == pytest.approx(0.2, abs=1e-15)
    cfg = load_toml("heartbeat", ["data.p_bar=-1"])
    assert p_bar_of(cfg, ds) == pytest.approx(0.2, abs=1e-15)
    assert load_toml("heartbeat").data.p_bar == 0.2


MNIST = data_root() / MNIST_FILE


@pytest.mark.skipif(not MNIST.exists(), reason=f"binarized MNIST not found at {MNIST} (set THERMODIFF_DATA)")
def test_binarized_mnist_loads() -> None:
    ds = load_dataset(DataConfig(name="binarized_mnist", n_train=300, n_test=200))
    assert ds.train.shape == (300, 1, 28, 28) and ds.test.shape == (200, 1, 28, 28)
    assert ds.train.dtype == torch.float64 and ds.test.dtype == torch.float64
    for x in (ds.train, ds.test):
        assert ((x == 0) | (x == 1)).all()
        assert 0.05 < x.mean().item() < 0.25  # about 0.13 of the pixels are on
    assert ds.spec.shape == (1, 28, 28) and ds.spec.kind == "binary" and ds.spec.unit == "bits/image"
    assert ds.true_log_prob is None
    # rows are the file's own; the test split (stored ordered by class) in a shuffled order
    with np.load(MNIST) as raw:
        train_rows, test_rows = raw["train"][:300], raw["test"]
    assert np.array_equal(ds.train.reshape(300, 784).numpy().astype(np.uint8), train_rows)
    known = {row.tobytes() for row in test_rows}
    ours = ds.test.reshape(200, 784).numpy().astype(np.uint8)
    assert all(row.tobytes() in known for row in ours)
    assert not np.array_equal(ours, test_rows[:200])


def test_binarized_mnist_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "binarized_mnist.npz"
    with pytest.raises(DataError) as err:
        load_dataset(DataConfig(name="binarized_mnist", path=str(missing)))
    msg = str(err.value)
    assert "\n" not in msg and str(missing) in msg and "data.path" in msg


def test_binarized_mnist_missing_file_exits_with_one_line(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "absent.npz"
    code = cli.main(
        ["train", "binarized_mnist", "--out", str(tmp_path / "run"), "--quiet"]
        + ["--set", f"data.path={missing}"]
    )
    err = capsys.readouterr().err
    assert code != 0 and err.count("\n") == 1 and str(missing) in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "train",
    [
        np.zeros((4, 27 * 27), dtype=np.uint8),  # wrong shape
        np.full((4, 784), 2, dtype=np.uint8),  # not binary
    ],
)
def test_binarized_mnist_rejects_bad_arrays(tmp_path: Path, train: np.ndarray) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, train=train, valid=np.zeros((2, 784), np.uint8), test=np.zeros((2, 784), np.uint8))
    with pytest.raises(DataError) as err:
        load_dataset(DataConfig(name="binarized_mnist", path=str(path)))
    assert str(path) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("first_step", ["fixed", "learned"])
def test_tiny_heartbeat_train_and_evaluate(tmp_path: Path, capsys, first_step: str) -> None:
    """T = 20, a few steps: the CLI trains and evaluates; K stays below the truth (Gibbs)."""
    run = tmp_path / "hb"
    sets = ["diffusion.T=20", "train.steps=30", "train.batch=64", "train.warmup=5", "train.log_every=10"]
    sets += ["data.n_train=500", "data.n_test=100", f"diffusion.first_step={first_step}"]
    args = ["train", "heartbeat", "--out", str(run), "--quiet", "--device", "cpu"]
    assert cli.main(args + [a for s in sets for a in ("--set", s)]) == 0
    capsys.readouterr()
    assert cli.main(["evaluate", str(run), "--json", "--n", "50", "--device", "cpu"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["n_examples"] == 50 and r["T"] == 20 and r["kernel"] == "binomial" and r["exact"]
    assert r["unit"] == "bits/sequence"
    assert r["true_loglik_bits"] == pytest.approx(math.log2(1 / 5))
    assert r["L_null_bits"] == pytest.approx(20 * (0.2 * math.log2(0.2) + 0.8 * math.log2(0.8)))
    assert math.isfinite(r["K_bits"]) and r["stderr_bits"] > 0
    assert r["K_bits"] <= r["true_loglik_bits"] + 3 * r["stderr_bits"]
    assert len(r["kl_bits_by_t"]) == 21
    assert r["nll_nats"] == pytest.approx(-r["K_bits"] * math.log(2))
    assert r["nll_bits_per_dim"] == pytest.approx(-r["K_bits"] / 20)
    # a learned first step moves the edge term into the t = 1 KL (bound.py)
    learned = first_step == "learned"
    assert (r["terms_bits"]["edge"] == 0.0) == learned
    assert (r["kl_bits_by_t"][1] > 0) == learned and r["kl_bits_by_t"][0] == 0.0
    assert ("kl_sum_t1_to_T" if learned else "kl_sum_t2_to_T") in r["terms_bits"]
