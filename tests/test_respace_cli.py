"""--steps, --sampler and --eta end to end (sample, sample --guide, denoise, inpaint, interpolate,
evaluate) on the tiny image model of test_condition_cli (T = 8) and the tiny swiss-roll run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from test_condition_cli import S, cli, one_line_error, runs, toy_images  # noqa: F401 (runs: a fixture)

from thermodiff.cli import main


def test_sampling_commands_on_respaced_chains_and_ddim(runs, tmp_path: Path, capsys) -> None:  # noqa: F811
    model = str(runs["model"])
    x = np.random.default_rng(0).uniform(0, 255, (2, 1, S, S))
    mask = np.ones((1, S, S))
    mask[:, :, : S // 2] = 0
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "m.npy", mask)
    known = np.broadcast_to(mask == 1, x.shape)
    for extra in (
        ("--steps", "4"),
        ("--steps", "ddim4", "--sampler", "ddim"),
        ("--sampler", "ddim", "--eta", "1"),
    ):
        rc, err = cli("inpaint", model, "--input", str(tmp_path / "x.npy"), "--mask", str(tmp_path / "m.npy"),
                      "--out", str(tmp_path / "o.npy"), *extra, capsys=capsys)  # fmt: skip
        assert rc == 0, err
        assert np.array_equal(np.load(tmp_path / "o.npy")[known], x[known])  # bit-exact on any chain
    for i, seed in enumerate(("0", "0", "1")):  # DDIM at eta = 0: the seed only picks x_T
        rc, err = cli("sample", model, "--n", "4", "--seed", seed, "--steps", "3", "--sampler", "ddim",
                      "--out", str(tmp_path / f"s{i}.npy"), capsys=capsys)  # fmt: skip
        assert rc == 0, err
    s0, s1, s2 = (np.load(tmp_path / f"s{i}.npy") for i in range(3))
    assert np.array_equal(s0, s1) and not np.allclose(s0, s2) and np.isfinite(s0).all()
    guided = ("sample", model, "--n", "4", "--guide", "1", "--classifier", str(runs["clf"]), "--steps", "4")
    rc, err = cli(*guided, "--out", str(tmp_path / "g.npy"), capsys=capsys)
    assert rc == 0, err
    assert "--eta > 0" in one_line_error(*cli(*guided, "--sampler", "ddim", capsys=capsys))
    np.save(tmp_path / "y.npy", x)
    rc, err = cli("denoise", model, "--input", str(tmp_path / "y.npy"), "--steps", "4", "--sampler", "ddim",
                  "--eta", "0.5", "--out", str(tmp_path / "d.npy"), capsys=capsys)  # fmt: skip
    assert rc == 0, err
    rc, err = cli("denoise", model, "--input", str(tmp_path / "y.npy"), "--sampler", "ddim", capsys=capsys)
    assert "--eta > 0" in one_line_error(rc, err)
    assert not (runs["model"] / "samples" / "denoised_seed0.npy").exists()


def test_interpolate_keeps_steps_for_mixes_and_encodes_by_ddim(runs, tmp_path: Path, capsys) -> None:  # noqa: F811
    a, b = (toy_images(1, s)[0][0].astype(np.float64) for s in (6, 7))
    np.save(tmp_path / "a.npy", a[None])
    np.save(tmp_path / "b.npy", b[None])
    base = ("interpolate", str(runs["model"]), "--a", str(tmp_path / "a.npy"), "--b", str(tmp_path / "b.npy"))
    # "4" of T = 8 keeps steps 1, 3, 6, 8 (sections of iDDPM, rounded): t = 5 moves to 6, the nearest
    rc = main([*base, "--steps", "3", "--chain-steps", "4", "--sampler", "ddim", "--t", "5",
               "--out", str(tmp_path / "i.npy"), "--device", "cpu"])  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0
    assert "encoder: DDIM (eta = 0)" in out and "4 of 8 steps" in out and "mixed at step 6 of 8;" in out
    mixes = np.load(tmp_path / "i.npy")
    assert mixes.shape == (3, 1, S, S) and np.isfinite(mixes).all()


def test_evaluate_reports_the_respaced_chain_beside_the_full_one(
    tiny_run: Path, tmp_path: Path, capsys
) -> None:
    shutil.copytree(tiny_run, tmp_path / "run")  # evaluate records into the run: not the shared one
    tiny_run = tmp_path / "run"
    for steps, same in (("10", True), ("4", False)):  # the tiny run has T = 10
        assert (
            main(["evaluate", str(tiny_run), "--steps", steps, "--n", "100", "--json", "--device", "cpu"])
            == 0
        )
        r = json.loads(capsys.readouterr().out)
        s = r["respaced"]
        assert s["n_steps"] == int(steps) and len(s["kl_bits_by_step"]) == int(steps) + 1
        assert np.isfinite(s["K_bits"]) and s["stderr_bits"] > 0 and "prior" in s["terms_bits"]
        if same:  # every step kept: the full chain itself, the same draws
            assert s["K_bits"] == r["K_bits"] and s["minus_full_K_bits"] == 0
            assert s["minus_full_K_stderr_bits"] == 0 and s["kept_steps"] == list(range(1, 11))
        else:
            assert abs(s["K_bits"] - r["K_bits"] - s["minus_full_K_bits"]) < 1e-9
    assert main(["evaluate", str(tiny_run), "--steps", "4", "--n", "50", "--device", "cpu"]) == 0
    assert "respaced chain, 4 steps" in capsys.readouterr().out
