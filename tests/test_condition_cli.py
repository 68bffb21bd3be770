"""The conditioning commands end to end (denoise, inpaint, interpolate, sample --guide; P 2.5)
on a tiny labelled 8x8 image set in MNIST's IDX format, a tiny U-Net and a tiny noisy classifier;
bad inputs give one error line, exit code 2 and no output file; classifier training resumes exactly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from thermodiff.cli import main
from thermodiff.config import DataConfig, from_dict
from thermodiff.data import load_dataset
from thermodiff.data.images import write_idx
from thermodiff.data.root import data_root
from thermodiff.errors import ConfigError, DataError
from thermodiff.run.checkpoint import latest_checkpoint
from thermodiff.sampling.guidance import accuracy, load_classifier
from thermodiff.training.train import train

S = 8  # image side


def toy_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (n, 8, 8): class 0 has a bright left half, class 1 a bright right half, plus noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    x = rng.normal(40, 20, (n, S, S))
    for i, y in enumerate(labels):
        x[i, :, : S // 2] += 160 * (y == 0)
        x[i, :, S // 2 :] += 160 * (y == 1)
    return x.clip(0, 255).astype(np.uint8), labels.astype(np.uint8)


def cfg_dict(data_dir: Path, **sections: dict) -> dict:
    """A tiny image config on the toy IDX folder; `sections` update its fields."""
    d = {
        "data": {"name": "mnist", "path": str(data_dir), "n_train": 400, "n_test": 100},
        "diffusion": {"T": 8, "beta_1": 1e-3},
        "model": {"net": "unet", "base": 8, "mults": "1,2", "num_res_blocks": 1, "attn_resolutions": ""},
        "train": {
            "steps": 20,
            "batch": 16,
            "warmup": 5,
            "log_every": 4,
            "ckpt_every": 4,
            "lr": 1e-3,
            "ema": 0.5,
        },
    }
    d["model"]["dropout"] = 0.0
    for name, values in sections.items():
        d[name] = {**d.get(name, {}), **values}
    return d


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cond")
    data = root / "data"
    data.mkdir()
    for split, n, seed in (("train", 400, 0), ("t10k", 100, 1)):
        x, y = toy_images(n, seed)
        write_idx(data / f"{split}-images-idx3-ubyte", x)
        write_idx(data / f"{split}-labels-idx1-ubyte", y)
    model = train(from_dict(cfg_dict(data)), root / "model")
    clf = {"task": "classifier", "steps": 60, "batch": 32, "lr": 1e-2}
    noisy = train(from_dict(cfg_dict(data, diffusion={"from_run": str(model)}, train=clf)), root / "clf")
    other = cfg_dict(data, diffusion={"T": 6}, train={**clf, "steps": 1})
    return {"data": data, "model": model, "clf": noisy, "other_clf": train(from_dict(other), root / "clf6")}


def cli(*args: str, capsys) -> tuple[int, str]:
    """Run `thermodiff ARGS --device cpu` in process: (exit code, stderr)."""
    rc = main([*args, "--device", "cpu"])
    return rc, capsys.readouterr().err


def one_line_error(rc: int, err: str) -> str:
    assert rc == 2, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("thermodiff: error:"), err
    return err


def test_denoise_png_and_npy(runs, tmp_path: Path, capsys) -> None:
    x, _ = toy_images(3, 5)
    Image.fromarray(x[0]).save(tmp_path / "x.png")
    rc, err = cli("denoise", str(runs["model"]), "--input", str(tmp_path / "x.png"), "--add-noise",
                  "--out", str(tmp_path / "d.png"), capsys=capsys)  # fmt: skip
    assert rc == 0, err
    assert Image.open(tmp_path / "d.png").size == (S, S)
    assert (tmp_path / "d_panel.png").is_file()  # clean | noisy | denoised (P Fig. 5)
    np.save(tmp_path / "y.npy", x[:, None].astype(np.float64))  # 3 noisy observations, data units
    rc, err = cli("denoise", str(runs["model"]), "--input", str(tmp_path / "y.npy"), "--noise-std", "0.5",
                  "--out", str(tmp_path / "d.npy"), capsys=capsys)  # fmt: skip
    assert rc == 0, err
    out = np.load(tmp_path / "d.npy")
    assert out.shape == (3, 1, S, S) and np.isfinite(out).all()


def test_inpaint_keeps_known_pixels_bit_exact(runs, tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (2, 1, S, S))  # non-integer data values: any round trip would show
    mask = np.ones((1, S, S))
    mask[:, :, : S // 2] = 0  # the paper's task: the left half unknown
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "m.npy", mask)
    rc, err = cli("inpaint", str(runs["model"]), "--input", str(tmp_path / "x.npy"), "--mask",
                  str(tmp_path / "m.npy"), "--out", str(tmp_path / "o.npy"), capsys=capsys)  # fmt: skip
    assert rc == 0, err
    out, known = np.load(tmp_path / "o.npy"), np.broadcast_to(mask == 1, x.shape)
    assert out.shape == x.shape and np.isfinite(out).all()
    assert np.array_equal(out[known], x[known])  # bit-exact
    assert not np.allclose(out[~known], x[~known])  # the hole was resampled
    rc, err = cli("inpaint", str(runs["model"]), "--input", str(tmp_path / "x.npy"), "--mask",
                  str(tmp_path / "m.npy"), "--out", str(tmp_path / "c.npy"), "--schedule", "constant",
                  "--no-clip", capsys=capsys)  # fmt: skip
    assert rc == 0, err
    assert np.array_equal(np.load(tmp_path / "c.npy")[known], x[known])  # the paper's delta, also exact
    # PNG in, PNG mask (white = known), PNG out: the known pixels come back as the same bytes
    img = x[0, 0].round().astype(np.uint8)
    Image.fromarray(img).save(tmp_path / "x.png")
    Image.fromarray((mask[0] * 255).astype(np.uint8)).save(tmp_path / "m.png")
    rc, err = cli("inpaint", str(runs["model"]), "--input", str(tmp_path / "x.png"), "--mask",
                  str(tmp_path / "m.png"), "--out", str(tmp_path / "o.png"), capsys=capsys)  # fmt: skip
    assert rc == 0, err
    got = np.asarray(Image.open(tmp_path / "o.png"))
    assert np.array_equal(got[:, S // 2 :], img[:, S // 2 :])
    assert (tmp_path / "o_panel.png").is_file()


def test_interpolate(runs, tmp_path: Path, capsys) -> None:
    a, b = (toy_images(1, s)[0][0].astype(np.float64) for s in (6, 7))
    np.save(tmp_path / "a.npy", a[None])
    np.save(tmp_path / "b.npy", b[None])
    base = ("interpolate", str(runs["model"]), "--a", str(tmp_path / "a.npy"), "--b", str(tmp_path / "b.npy"))
    rc, err = cli(*base, "--steps", "5", "--out", str(tmp_path / "i.npy"), capsys=capsys)
    assert rc == 0, err
    assert np.load(tmp_path / "i.npy").shape == (5, 1, S, S)
    # t = 0: the plain linear mix of the inputs (through the data <-> model round trip only)
    rc, err = cli(*base, "--steps", "5", "--t", "0", "--out", str(tmp_path / "i0.npy"), capsys=capsys)
    assert rc == 0, err
    lam = np.linspace(0, 1, 5)[:, None, None, None]
    np.testing.assert_allclose(np.load(tmp_path / "i0.npy"), (1 - lam) * a + lam * b, rtol=0, atol=1e-9)


def test_sample_guided(runs, tmp_path: Path, capsys) -> None:
    base = ("sample", str(runs["model"]), "--n", "64", "--seed", "3")
    guided = ("--guide", "1", "--classifier", str(runs["clf"]))
    for name, extra in (("plain", ()), ("s0", (*guided, "--scale", "0")), ("s", (*guided, "--scale", "30"))):
        rc, err = cli(*base, *extra, "--out", str(tmp_path / f"{name}.npy"), capsys=capsys)
        assert rc == 0, err
    plain, s0, s = (np.load(tmp_path / f"{n}.npy") for n in ("plain", "s0", "s"))
    assert np.array_equal(plain, s0)  # scale 0 adds exactly 0 * Sigma * grad
    # .npy of 8-bit samples holds grey levels (issue 16); --raw the continuous values the box acts on
    assert np.array_equal(plain, np.clip(np.round(plain), 0, 255))
    for name, extra in (("plain_raw", ()), ("raw", ("--no-clip",))):
        rc, err = cli(*base, *extra, "--raw", "--out", str(tmp_path / f"{name}.npy"), capsys=capsys)
        assert rc == 0, err
    raw = np.load(tmp_path / "raw.npy")

    def outside(a: np.ndarray) -> float:  # how far samples stray outside 0..255 grey levels
        return float(np.abs(np.clip(a, 0, 255) - a).mean())

    assert outside(np.load(tmp_path / "plain_raw.npy")) < outside(raw)  # the DataBox keeps x_0 in range
    # class 1 = bright right half: guidance moves the samples' brightness to the right
    assert (s[..., S // 2 :] - s[..., : S // 2]).mean() > (plain[..., S // 2 :] - plain[..., : S // 2]).mean()


def test_bad_inputs_one_line_error_no_output(runs, tmp_path: Path, capsys) -> None:
    Image.fromarray(np.zeros((S, S), np.uint8)).save(tmp_path / "ok.png")
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(tmp_path / "big.png")
    Image.fromarray(np.full((6, 6), 255, np.uint8)).save(tmp_path / "m6.png")
    np.save(tmp_path / "m3.npy", np.ones((3, S, S)))
    Image.fromarray(np.full((S, S), 65535, np.uint16)).save(tmp_path / "m16.png")
    run, out = str(runs["model"]), str(tmp_path / "out" / "o.png")
    cases = [
        (("inpaint", run, "--input", str(tmp_path / "ok.png"), "--mask", str(tmp_path / "m6.png")), "6x6"),
        (("inpaint", run, "--input", str(tmp_path / "ok.png"), "--mask", str(tmp_path / "m3.npy")), "3x8x8"),
        (("denoise", run, "--input", str(tmp_path / "big.png")), "10x10"),
        (("denoise", run, "--input", str(tmp_path / "nope.png")), "nope.png"),
        (("interpolate", run, "--a", str(tmp_path / "ok.png"), "--b", str(tmp_path / "big.png")), "10x10"),
        (("denoise", run, "--input", str(tmp_path / "ok.png"), "--noise-std", "0"), "noise-std"),
        (("sample", run, "--guide", "1"), "--classifier"),
        (("sample", run, "--guide", "7", "--classifier", str(runs["clf"])), "class 7"),
        (("sample", run, "--guide", "1", "--classifier", str(runs["other_clf"])), "noise schedule"),
        (("sample", run, "--guide", "1", "--classifier", run), "classifier"),
        (
            ("inpaint", run, "--input", str(tmp_path / "ok.png"), "--mask", str(tmp_path / "m16.png")),
            "16-bit",
        ),
        (("sample", str(runs["clf"])), "not a diffusion model"),
        (("sample", run, "--guide", "1", "--scale", "nan", "--classifier", str(runs["clf"])), "--scale"),
        (("denoise", run, "--input", str(tmp_path / "ok.png"), "--noise-std", "inf"), "--noise-std"),
        (("sample", run, "--n", "0"), "--n"),
        (("sample", run, "--scale", "3"), "--guide"),
        (("sample", run, "--seed", str(2**70)), "--seed"),
    ]
    for args, mentions in cases:
        line = one_line_error(*cli(*args, "--out", out, capsys=capsys))
        assert mentions in line, line
        assert not (tmp_path / "out").exists()
    (tmp_path / "out" / "o_panel.png").mkdir(parents=True)  # where the panel would go: refused first
    line = one_line_error(
        *cli("denoise", run, "--input", str(tmp_path / "ok.png"), "--out", out, capsys=capsys)
    )
    assert "o_panel.png" in line and not (tmp_path / "out" / "o.png").exists()
    line = one_line_error(*cli("evaluate", str(runs["clf"]), capsys=capsys))
    assert "not a diffusion model" in line
    assert "--device" in one_line_error(main(["sample", run, "--device", "banana"]), capsys.readouterr().err)


def test_classifier_resume_equals_uninterrupted(runs, tmp_path: Path) -> None:
    """12 steps in one go == a run stopped after logging step 8 (last checkpoint 8) then resumed."""
    cfg = from_dict(cfg_dict(runs["data"], train={"task": "classifier", "steps": 12}))
    train(cfg, tmp_path / "a")

    class Stop(Exception):
        pass

    def stop(record: dict) -> None:
        if record["step"] == 8:
            raise Stop

    with pytest.raises(Stop):
        train(cfg, tmp_path / "b", on_log=stop)
    train(cfg, tmp_path / "b", resume=True)
    from safetensors.torch import load_file

    wa, wb = (load_file(latest_checkpoint(tmp_path / r) / "weights.safetensors") for r in "ab")
    assert sorted(wa) == sorted(wb) and all(torch.equal(wa[k], wb[k]) for k in wa)

    def metrics(r: str) -> list[dict]:
        lines = (tmp_path / r / "metrics.jsonl").read_text().splitlines()
        return [{k: v for k, v in json.loads(ln).items() if k != "seconds"} for ln in lines]

    assert metrics("a") == metrics("b") and [m["step"] for m in metrics("a")] == [4, 8, 12]


def test_clean_classifier_and_config_errors(runs, tmp_path: Path) -> None:
    cfg = from_dict(
        cfg_dict(runs["data"], train={"task": "clean_classifier", "steps": 30, "batch": 32, "lr": 1e-2})
    )
    clf = load_classifier(train(cfg, tmp_path / "clean"))
    assert clf.task == "clean_classifier" and clf.n_classes == 2
    ds = load_dataset(cfg.data)
    assert accuracy(clf, ds.test, ds.labels_test) > 0.9  # an easy task: bright left vs right half
    with pytest.raises(ConfigError, match="from_run"):
        from_dict(cfg_dict(runs["data"], diffusion={"from_run": "x"}))
    with pytest.raises(DataError, match="no labels"):
        no_labels = {"name": "swiss_roll", "n_train": 100, "n_test": 10, "path": ""}
        train(from_dict(cfg_dict(runs["data"], data=no_labels, train={"task": "classifier"})), tmp_path / "x")


@pytest.mark.skipif(not (data_root() / "mnist").is_dir(), reason="shared/data/mnist not found")
def test_mnist_labels() -> None:
    ds = load_dataset(DataConfig(name="mnist", n_train=100, n_test=50))
    assert ds.labels_train.shape == (100,) and ds.labels_test.shape == (50,)
    assert ds.labels_train.dtype == torch.int64 and set(ds.labels_test.tolist()) <= set(range(10))
