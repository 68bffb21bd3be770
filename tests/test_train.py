"""Training runs (DESIGN.md 3, 4): resuming equals an uninterrupted run bit for bit, a run directory
is self-describing for `evaluate` and `sample`, and evaluation's numbers agree with the data's
known density."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_tiny_cfg
from safetensors.torch import load_file

from thermodiff import cli
from thermodiff.data import toy
from thermodiff.run.checkpoint import latest_checkpoint
from thermodiff.training.train import train


def final_weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(latest_checkpoint(run) / "weights.safetensors")


def metrics(run: Path, upto: int) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line]
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows if r["step"] <= upto]


def assert_same_run(a: Path, b: Path, steps: int) -> None:
    wa, wb = final_weights(a), final_weights(b)
    assert sorted(wa) == sorted(wb)
    assert any(k.startswith("ema.net.") for k in wa) and "schedule.betas" in wa and "ema.schedule.betas" in wa
    different = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert not different, f"tensors differ after resume: {different}"
    assert json.loads((latest_checkpoint(a) / "meta.json").read_text())["step"] == steps
    assert json.loads((latest_checkpoint(b) / "meta.json").read_text())["step"] == steps
    ma, mb = metrics(a, steps), metrics(b, steps)
    assert [r["step"] for r in ma] == list(range(10, steps + 1, 10))
    assert ma == mb


SCHEDULES = ["paper", "learned"]


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_resume_equals_uninterrupted(tmp_path: Path, schedule: str) -> None:
    """30 steps in one go == 20 steps (train.steps=20), then resume=True with train.steps=30: every
    tensor (net, EMA, schedule) equal and the metrics for steps <= 30 equal except wall-clock
    seconds. (tiny_cfg warms up over 200 steps, so the learning rate does not depend on
    train.steps here.)"""
    cfg = make_tiny_cfg(f"diffusion.schedule={schedule}")
    train(cfg, tmp_path / "a")
    train(make_tiny_cfg(f"diffusion.schedule={schedule}", "train.steps=20"), tmp_path / "b")
    train(cfg, tmp_path / "b", resume=True)
    assert_same_run(tmp_path / "a", tmp_path / "b", 30)


class Interrupt(Exception):
    pass


def kill_at_20_then_resume(cfg, run: Path) -> None:
    """Train `run` until it has logged step 20 (its last checkpoint is step 10), kill it, resume it."""

    def stop_at_20(record: dict) -> None:
        if record["step"] == 20:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(cfg, run, on_log=stop_at_20)
    assert latest_checkpoint(run).name == "step_00000010"
    train(cfg, run, resume=True)


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_interrupted_run_resumes_exactly(tmp_path: Path, schedule: str) -> None:
    """A run killed after logging step 20 (its last checkpoint is step 10; the step-20 metric line is
    a tail that resume must drop) and resumed equals the uninterrupted run. Short warm-up so that
    the cosine learning-rate decay is active."""
    cfg = make_tiny_cfg(f"diffusion.schedule={schedule}", "train.warmup=5")
    train(cfg, tmp_path / "a")
    kill_at_20_then_resume(cfg, tmp_path / "b")
    assert_same_run(tmp_path / "a", tmp_path / "b", 30)


def test_resume_before_the_first_checkpoint_starts_over(tmp_path: Path) -> None:
    """A run stopped before its first checkpoint holds config.json and maybe metrics: --resume starts
    it from step 0 under that config, which is the uninterrupted run."""
    cfg = make_tiny_cfg()
    train(cfg, tmp_path / "a")
    (tmp_path / "b").mkdir()
    shutil.copy(tmp_path / "a" / "config.json", tmp_path / "b" / "config.json")
    (tmp_path / "b" / "metrics.jsonl").write_text('{"step": 10, "K_bits": 0.0}\n')
    train(cfg, tmp_path / "b", resume=True)
    assert_same_run(tmp_path / "a", tmp_path / "b", 30)


DROPOUT_UNET = (
    "data.image_size=8 data.n_train=64 data.n_test=16 model.net=unet model.base=8 model.mults=1 "
    "model.num_res_blocks=1 model.attn_resolutions= model.dropout=0.5 diffusion.T=10 "
    "diffusion.parameterization=eps diffusion.variance=small train.batch=8 train.warmup=5 "
    "train.log_every=10 train.ckpt_every=10 train.sample_every=0"
).split()


def test_resume_with_dropout_equals_uninterrupted(tmp_path: Path) -> None:
    """A U-Net with dropout 0.5 on dead leaves, killed after logging step 20 and resumed from step 10,
    equals the uninterrupted run: the masks come from the global stream reseeded per step, so nothing
    about them needs saving (on a GPU, whose stream a saved CPU state would miss, too)."""
    from thermodiff.config import load_toml

    cfg = load_toml("dead_leaves", [*DROPOUT_UNET, "train.steps=30"])
    train(cfg, tmp_path / "a")
    kill_at_20_then_resume(cfg, tmp_path / "b")
    assert_same_run(tmp_path / "a", tmp_path / "b", 30)


def test_step_seed_distinct_per_step_and_rank() -> None:
    """Dropout's per-step seeds: a different stream at every step and on every rank (independent masks
    per shard), for any torch seed including negative ones, and a valid torch seed (< 2**63)."""
    from thermodiff.training.loop import step_seed

    seeds = [step_seed(s, step, rank) for s in (0, 1, -1) for step in range(200) for rank in range(4)]
    assert len(set(seeds)) == len(seeds) and all(0 <= v < 2**63 for v in seeds)
    assert step_seed(7, 3, 1) == step_seed(7, 3, 1)


def test_same_seed_same_numbers(tmp_path: Path) -> None:
    """Same config + same seed -> identical weights (DESIGN.md 4)."""
    cfg = make_tiny_cfg("train.steps=10")
    train(cfg, tmp_path / "a")
    train(cfg, tmp_path / "b")
    wa, wb = final_weights(tmp_path / "a"), final_weights(tmp_path / "b")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.fixture
def run_copy(tiny_run: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny run, at another path than the one it was trained at."""
    dst = tmp_path / "moved" / "run"
    shutil.copytree(tiny_run, dst)
    return dst


def test_evaluate_json_needs_no_flags(run_copy: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    """`evaluate RUN --json --n 100` from another directory: one JSON object with the documented keys;
    the truth it prints is the swiss roll's density on the test split (recomputed here from the
    generator and the scaling), L_null is log2 N(y; 0, I) on the same examples, K <= truth + 3 SE."""
    monkeypatch.chdir(tmp_path)
    assert cli.main(["evaluate", str(run_copy), "--json", "--n", "100"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    r = json.loads(out[0])
    for key in (
        "K_bits",
        "K_minus_Lnull_bits",
        "L_null_bits",
        "unit",
        "stderr_bits",
        "n_examples",
        "T",
        "kernel",
        "true_loglik_bits",
    ):
        assert key in r, key
    assert r["n_examples"] == 100 and r["T"] == 10 and r["kernel"] == "gaussian"
    assert r["unit"] == "bits/example"
    assert math.isfinite(r["K_bits"]) and r["stderr_bits"] > 0
    assert r["K_bits"] <= r["true_loglik_bits"] + 3 * r["gap_stderr_bits"]
    assert r["K_minus_Lnull_bits"] == pytest.approx(r["K_bits"] - r["L_null_bits"], abs=1e-9)

    # independent truth: the test split is toy.swiss_roll(n_test, sigma, seed + 1), first 100
    meta = json.loads((latest_checkpoint(run_copy) / "meta.json").read_text())
    shift, scale = torch.tensor(meta["scaling"]["shift"], dtype=torch.float64), meta["scaling"]["scale"]
    raw = toy.swiss_roll(300, 0.05, seed=1)[:100]
    truth = (toy.swiss_roll_log_prob(raw, 0.05) - 2 * math.log(scale)) / math.log(2)
    assert r["true_loglik_bits"] == pytest.approx(truth.mean().item(), abs=1e-9)
    y = (raw - shift) * scale
    l_null = (-math.log(2 * math.pi) - 0.5 * (y**2).sum(1)) / math.log(2)
    assert r["L_null_bits"] == pytest.approx(l_null.mean().item(), abs=1e-9)
    assert json.loads((run_copy / "eval.json").read_text())["K_bits"] == r["K_bits"]


def test_evaluate_draws_average_t_per_example(run_copy: Path, capsys) -> None:
    """`--stochastic --draws 8`: an unbiased estimate like one draw (agrees with --exact within 4
    combined SE on 300 examples) with a clearly smaller stderr; --draws with --exact is a one-line error."""

    def evaluate(*flags: str) -> dict:
        assert cli.main(["evaluate", str(run_copy), "--json", "--n", "300", *flags]) == 0
        return json.loads(capsys.readouterr().out)

    exact, one, eight = (
        evaluate("--exact"),
        evaluate("--stochastic"),
        evaluate("--stochastic", "--draws", "8"),
    )
    assert eight["t_draws"] == "8 uniform t per example, averaged"
    assert one["t_draws"] == "one uniform t per example"
    assert abs(eight["K_bits"] - exact["K_bits"]) < 4 * math.hypot(eight["stderr_bits"], exact["stderr_bits"])
    assert eight["stderr_bits"] < 0.6 * one["stderr_bits"], (eight["stderr_bits"], one["stderr_bits"])
    assert cli.main(["evaluate", str(run_copy), "--exact", "--draws", "2"]) == 2
    assert "--draws 2" in capsys.readouterr().err


def test_sample_writes_npy_and_png(run_copy: Path, tmp_path: Path, capsys) -> None:
    """`sample` writes an (n, 2) .npy in data units (finite), the same file again for the same seed,
    and a PNG by default under RUN/samples/."""
    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    assert cli.main(["sample", str(run_copy), "--n", "16", "--seed", "3", "--out", str(a)]) == 0
    assert cli.main(["sample", str(run_copy), "--n", "16", "--seed", "3", "--out", str(b)]) == 0
    x = np.load(a)
    assert x.shape == (16, 2) and np.isfinite(x).all()
    assert np.array_equal(x, np.load(b))
    assert cli.main(["sample", str(run_copy), "--n", "16"]) == 0
    png = run_copy / "samples" / "samples_seed0.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    capsys.readouterr()


def test_schedule_load_state_dict_keeps_its_device() -> None:
    """Resume loads CPU tensors from safetensors into a schedule already moved to the training device;
    the tables must stay there (on a GPU, a CPU table indexed by CUDA t fails). The meta device
    stands in for a GPU."""
    from thermodiff.diffusion.schedules import make_schedule

    saved = make_schedule("learned", 10, 1e-3).state_dict()
    for name in ("paper", "learned"):
        schedule = make_schedule(name, 10, 1e-3).to("meta")
        schedule.load_state_dict(saved)
        assert schedule.betas().device.type == "meta"
        assert all(p.device.type == "meta" for p in schedule.parameters())
