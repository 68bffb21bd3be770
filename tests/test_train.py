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
from torch import nn

from thermodiff import cli
from thermodiff.data import Dataset, DataSpec, Scaling, toy
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
    seconds. (A warm-up over 200 steps, so the learning rate does not depend on train.steps here.)"""
    cfg = make_tiny_cfg(f"diffusion.schedule={schedule}", "train.warmup=200")
    train(cfg, tmp_path / "a")
    train(
        make_tiny_cfg(f"diffusion.schedule={schedule}", "train.warmup=200", "train.steps=20"), tmp_path / "b"
    )
    train(cfg, tmp_path / "b", resume=True)
    assert_same_run(tmp_path / "a", tmp_path / "b", 30)


class Interrupt(Exception):
    pass


def kill_at_20_then_resume(cfg, run: Path, **seams) -> None:
    """Train `run` until it has logged step 20 (its last checkpoint is step 10), kill it, resume it.
    seams: train()'s dataset and net, passed to both calls."""

    def stop_at_20(record: dict) -> None:
        if record["step"] == 20:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(cfg, run, on_log=stop_at_20, **seams)
    assert latest_checkpoint(run).name == "step_00000010"
    train(cfg, run, resume=True, **seams)


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
    # written under a name saying what it was (issue 17); 100 examples is not the config's own
    # evaluation (eval.n = 300), so eval.json is not written
    assert json.loads((run_copy / "evals" / "test_exact_n100_ema_step30.json").read_text()) == r
    assert not (run_copy / "eval.json").exists()


def test_evaluate_draws_average_t_per_example(run_copy: Path, capsys) -> None:
    """`--stochastic --draws 8`: an unbiased estimate like one draw (agrees with --exact within 4
    combined SE on 300 examples) with a clearly smaller stderr. `--exact --draws 4` (issue 16: it used to
    be refused) averages 4 x_t per step: the same expectation as one, a smaller stderr (the exact
    estimate's spread is mostly x_t noise at small t)."""

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
    four = evaluate("--exact", "--draws", "4")
    assert four["t_draws"] == "all t (exact), 4 x_t per step, averaged"
    assert abs(four["K_bits"] - exact["K_bits"]) < 4 * math.hypot(four["stderr_bits"], exact["stderr_bits"])
    assert four["stderr_bits"] < exact["stderr_bits"], (four["stderr_bits"], exact["stderr_bits"])


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


def blobs(n: int = 500) -> Dataset:
    """An in-memory data set: two Gaussian blobs in 2-D, unit scale (no loader, no config name)."""
    g = torch.Generator().manual_seed(5)
    x = torch.randn(n, 2, generator=g, dtype=torch.float64) * 0.3
    x[: n // 2, 0] += 1.0
    x[n // 2 :, 0] -= 1.0
    spec = DataSpec((2,), "continuous", "bits/example")
    return Dataset(x[: n - 100], x[n - 100 :], spec, Scaling.identity(2))


class OwnNet(nn.Module):
    """A user's network: (x_t, t) -> raw, nothing from thermodiff.nets."""

    def __init__(self, d: int, T: int, out: int):
        super().__init__()
        self.time = nn.Embedding(T + 1, 16)
        self.body = nn.Sequential(nn.Linear(d + 16, 32), nn.Tanh(), nn.Linear(32, out))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([x, self.time(t)], 1))


def test_train_takes_its_dataset_and_network(tmp_path: Path) -> None:
    """train(..., dataset=, net=): the run trains the given module on the given data (no loader, no
    thermodiff network), writes config.json, metrics and a checkpoint holding that module's weights,
    with a finite K in the data set's unit and its scaling in meta.json; the EMA weights load back into
    the user's own module (load_run rebuilds networks from the config, so it cannot)."""
    from thermodiff.diffusion.reverse import make_reverse
    from thermodiff.run.checkpoint import state_dict_under

    cfg = make_tiny_cfg("train.steps=20")
    ds = blobs()
    out = make_reverse("gaussian", cfg.diffusion.parameterization, cfg.diffusion.variance).out_channels((2,))
    net = OwnNet(2, cfg.diffusion.T, out)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    run = train(cfg, tmp_path / "own", dataset=ds, net=net)
    assert (run / "config.json").is_file()
    rows = metrics(run, 20)
    assert [r["step"] for r in rows] == [10, 20]
    assert all(math.isfinite(r["K_bits"]) and r["unit"] == "bits/example" for r in rows)
    weights = final_weights(run)
    own = state_dict_under(weights, "net.")
    assert sorted(own) == sorted(net.state_dict())
    assert all(torch.equal(own[k], v) for k, v in net.state_dict().items())  # the module itself trained
    assert any(not torch.equal(before[k], v) for k, v in net.state_dict().items())
    meta = json.loads((latest_checkpoint(run) / "meta.json").read_text())
    assert meta["step"] == 20 and meta["scaling"]["scale"] == 1.0 and meta["spec"]["shape"] == [2]
    again = OwnNet(2, cfg.diffusion.T, out)
    again.load_state_dict(state_dict_under(weights, "ema.net."))


def labelled_images(n: int = 96) -> Dataset:
    """In-memory 8x8 images, class 1 bright on the left half, class 0 on the right."""
    g = torch.Generator().manual_seed(3)
    labels = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 1, 8, 8, generator=g, dtype=torch.float64) * 0.5
    x[labels == 1, :, :, :4] += 1.0
    x[labels == 0, :, :, 4:] += 1.0
    spec = DataSpec((1, 8, 8), "continuous", "bits/example")
    return Dataset(x, x[:16], spec, Scaling.identity(64), labels_train=labels, labels_test=labels[:16])


CLASSIFIER = (
    "diffusion.from_run= diffusion.T=10 model.base=8 model.mults=1 model.num_res_blocks=1 train.steps=30 "
    "train.batch=16 train.warmup=5 train.log_every=10 train.ckpt_every=10 train.lr=1e-2"
).split()


@pytest.mark.parametrize("task", ["diffusion", "classifier"])
def test_both_objectives_go_through_one_fit_and_resume_exactly(
    tmp_path: Path, task: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The diffusion model and the noisy classifier are trained by the same loop.fit (one spy sees
    both objectives), and both resume exactly: killed after logging step 20 (checkpoint 10) and
    resumed, every saved tensor and metric record equals the uninterrupted run's."""
    import thermodiff.training.train as train_module
    from thermodiff.config import load_toml
    from thermodiff.training.loop import fit

    seen: list[str] = []

    def spy(objective, *args, **kwargs):
        seen.append(type(objective).__name__)
        return fit(objective, *args, **kwargs)

    monkeypatch.setattr(train_module, "fit", spy)
    if task == "diffusion":
        cfg, seams, name = make_tiny_cfg("train.warmup=5"), {}, "NegativeBound"
    else:
        cfg, seams, name = (
            load_toml("mnist_classifier", CLASSIFIER),
            {"dataset": labelled_images()},
            "CrossEntropy",
        )
    train(cfg, tmp_path / "a", **seams)
    kill_at_20_then_resume(cfg, tmp_path / "b", **seams)
    assert seen == [name] * 3
    wa, wb = final_weights(tmp_path / "a"), final_weights(tmp_path / "b")
    assert sorted(wa) == sorted(wb) and any(k.startswith("ema.net.") for k in wa)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    ma, mb = metrics(tmp_path / "a", 30), metrics(tmp_path / "b", 30)
    assert [r["step"] for r in ma] == [10, 20, 30] and ma == mb
