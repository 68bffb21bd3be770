"""What a new user meets first (issue 17): help without torch, which weights were used, evaluations that
accumulate instead of overwriting, progress on stderr with stdout still parseable, threads for the work."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from thermodiff import cli

SRC = Path(__file__).resolve().parents[1] / "src"


def _python(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)


def test_help_and_argument_errors_do_not_import_torch() -> None:
    """`thermodiff --help`, `reproduce -h` (which lists the experiments) and a bad argument answer from
    the parser alone: torch is never imported, so they cost the interpreter's start-up only."""
    code = """
import sys
from thermodiff.cli import main
for argv in (["--help"], ["reproduce", "-h"], ["evaluate", "--bogus"], ["sample"]):
    try:
        main(argv)
    except SystemExit as e:
        print("exit", e.code)
print("torch" in sys.modules)
"""
    proc = _python(code)
    assert proc.stdout.splitlines()[-1] == "False", proc.stdout + proc.stderr
    assert proc.stdout.count("exit 0") == 2 and proc.stdout.count("exit 2") == 2
    assert "swiss_roll" in proc.stdout and "heartbeat" in proc.stdout  # reproduce -h names them
    assert proc.stderr.count("thermodiff: error:") == 2


def test_the_package_loads_its_names_on_first_use() -> None:
    """`import thermodiff` is light; each public name loads its module when first used (PEP 562), and
    __all__ and dir() list every public name."""
    code = """
import sys, thermodiff
light = "torch" not in sys.modules
from thermodiff import Config, sample
assert all(hasattr(thermodiff, name) for name in thermodiff.__all__)
assert set(thermodiff.__all__) <= set(dir(thermodiff))
print(light, "torch" in sys.modules, Config.__module__, sample.__module__)
"""
    proc = _python(code)
    assert proc.stdout.split() == [
        "True",
        "True",
        "thermodiff.config.schema",
        "thermodiff.sampling.ancestral",
    ]
    with pytest.raises(AttributeError):
        import thermodiff

        thermodiff.no_such_name  # noqa: B018


def test_every_option_has_help_and_shows_its_default() -> None:
    """Each command's every argument carries a help text, and those with a default show it."""
    from thermodiff.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, command in sub.choices.items():
        text = command.format_help()
        for action in command._actions:
            assert action.help, f"{name} {action.option_strings or action.dest} has no help"
        if name in ("evaluate", "sample"):
            assert "(default: ema)" in text and "--weights" in text
        if name == "sample":
            assert "same output (default: 0)" in " ".join(text.split())  # a zero default is shown too


@pytest.fixture
def run(tiny_run: Path, tmp_path: Path) -> Path:
    shutil.copytree(tiny_run, tmp_path / "run")
    return tmp_path / "run"


def test_evaluations_accumulate_and_are_never_overwritten(run: Path, capsys) -> None:
    """Each evaluation goes to evals/ under a name saying what it was; a second one of the same kind
    gets its own file; a quick check leaves eval.json (the config's own evaluation) alone; --out names
    a file that is written (and may be overwritten); the index lists every one."""
    step = 30  # the tiny run's train.steps
    own = ["evaluate", str(run), "--json"]
    assert cli.main(own) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["weights"] == "ema" and first["step"] == step
    kept = (run / "eval.json").read_text()
    assert json.loads(kept) == first
    for _ in range(2):
        assert cli.main(["evaluate", str(run), "--json", "--n", "50", "--stochastic"]) == 0
    assert cli.main(["evaluate", str(run), "--json", "--n", "50", "--weights", "raw"]) == 0
    raw = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert raw["weights"] == "raw" and raw["K_bits"] != first["K_bits"]
    assert (run / "eval.json").read_text() == kept  # the quick checks did not replace it
    names = sorted(p.name for p in (run / "evals").glob("*.json"))
    assert names == sorted(
        [
            f"test_exact_n300_ema_step{step}.json",
            f"test_stochastic1_n50_ema_step{step}.json",
            f"test_stochastic1_n50_ema_step{step}_2.json",
            f"test_exact_n50_raw_step{step}.json",
            "index.json",
        ]
    )
    index = json.loads((run / "evals" / "index.json").read_text())
    assert [r["weights"] for r in index] == ["ema", "ema", "ema", "raw"] and index[-1]["K_bits"] == raw[
        "K_bits"
    ]
    out = run.parent / "mine.json"
    for _ in range(2):
        assert cli.main(["evaluate", str(run), "--json", "--n", "20", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["n_examples"] == 20
    assert len(json.loads((run / "evals" / "index.json").read_text())) == 6


def test_progress_goes_to_stderr_and_json_stays_parseable(run: Path, capsys, monkeypatch) -> None:
    """With a terminal on stderr the evaluation and the sampling chain draw bars there; stdout holds the
    one JSON object; --quiet draws none."""
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert cli.main(["evaluate", str(run), "--json", "--n", "40"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["n_examples"] == 40 and len(captured.out.strip().splitlines()) == 1
    assert "evaluate 40" in captured.err and "%|" in captured.err
    out = run.parent / "s.npy"
    assert cli.main(["sample", str(run), "--n", "8", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "sample 8" in captured.err and "ema weights" in captured.out
    assert cli.main(["evaluate", str(run), "--json", "--n", "40", "--quiet"]) == 0
    assert "%|" not in capsys.readouterr().err


def test_threads_follow_the_work_and_the_user(run: Path, capsys, monkeypatch) -> None:
    """Vector data on a CPU: one intra-op thread, unless --threads says otherwise; OMP_NUM_THREADS,
    when set, is left to rule."""
    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        torch.set_num_threads(2)
        assert (
            cli.main(["sample", str(run), "--n", "2", "--out", str(run.parent / "a.npy"), "--device", "cpu"])
            == 0
        )
        assert torch.get_num_threads() == 1
        args = ["sample", str(run), "--n", "2", "--out", str(run.parent / "b.npy"), "--threads", "3"]
        assert cli.main([*args, "--device", "cpu"]) == 0
        assert torch.get_num_threads() == 3
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
        torch.set_num_threads(2)
        assert (
            cli.main(["sample", str(run), "--n", "2", "--out", str(run.parent / "c.npy"), "--device", "cpu"])
            == 0
        )
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_configs_that_cannot_work_as_given(tmp_path: Path, capsys) -> None:
    """A warm-up longer than the run is said on one stderr line (the run still trains); attention at a
    resolution the U-Net never reaches is refused by name before anything is written."""
    from thermodiff.config import load_toml
    from thermodiff.errors import ConfigError
    from thermodiff.nets.registry import build_net

    args = ["train", "swiss_roll", "--quiet", "--out", str(tmp_path / "w")]
    for s in ("train.steps=5", "train.warmup=10", "data.n_train=200", "data.n_test=50", "model.hidden=16"):
        args += ["--set", s]
    assert cli.main(args) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "train.warmup = 10 is not shorter than train.steps = 5" in err
    cfg = load_toml("mnist_unet", ["model.base=8", "model.attn_resolutions=14"])
    build_net(cfg.model, (1, 28, 28), 10, 2)  # 28 -> 14 -> 7: attention at 14 exists
    with pytest.raises(ConfigError, match="attn_resolutions 14 never occur.*16x16.*16,8,4"):
        build_net(cfg.model, (1, 16, 16), 10, 2)


def test_a_run_says_what_it_is_and_plots_itself(run: Path, tmp_path: Path, capsys) -> None:
    """Training writes README.md (a model card: data, chain, network, steps, K on training batches, how
    to use it); `plot` draws the training curve with the held-out evaluations on it, and for an image
    run the progressive-denoising strip, from x_T to x_0; heartbeat-like sequences sample to line plots."""
    from PIL import Image

    card = (run / "README.md").read_text()
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert "`swiss_roll`" in card and "T = 10" in card and "30 of 30 steps" in card
    assert f"{last['K_bits']:.4f}" in card and "thermodiff sample RUN" in card
    assert cli.main(["evaluate", str(run), "--n", "50", "--json"]) == 0
    assert cli.main(["plot", str(run)]) == 0
    assert Image.open(run / "plots" / "curve.png").size[0] > 400
    assert not (run / "plots" / "denoising.png").exists()  # vector data: no strip

    image = tmp_path / "img"
    sets = [
        "data.image_size=8",
        "data.n_train=64",
        "data.n_test=16",
        "diffusion.T=12",
        "model.conv_channels=4",
    ]
    sets += [
        "model.conv_layers=1",
        "model.pixel_hidden=4",
        "model.n_scales=2",
        "train.steps=2",
        "train.batch=8",
    ]
    sets += ["train.warmup=1", "train.log_every=1"]
    args = ["train", "dead_leaves", "--out", str(image), "--device", "cpu", "--quiet"]
    assert cli.main([*args, *(a for kv in sets for a in ("--set", kv))]) == 0
    assert cli.main(["plot", str(image), "--out", str(tmp_path / "figs"), "--device", "cpu"]) == 0
    strip = Image.open(tmp_path / "figs" / "denoising.png")
    assert strip.size[0] > strip.size[1] > 0  # 8 columns (t = 12 .. 0) of 6 rows
    out = capsys.readouterr().out
    assert "curve.png" in out and "denoising.png" in out


def test_sequences_sample_to_line_plots(tmp_path: Path, capsys) -> None:
    """1-D sequences (the heartbeat) sample to a figure of line plots, not a row of pixels."""
    from conftest import make_tiny_cfg
    from PIL import Image

    from thermodiff.training.train import train

    cfg = make_tiny_cfg("data.name=heartbeat", "train.steps=2", "train.warmup=1", "train.log_every=1")
    train(cfg, tmp_path / "hb")
    assert cli.main(["sample", str(tmp_path / "hb"), "--n", "8", "--out", str(tmp_path / "s.png")]) == 0
    assert min(Image.open(tmp_path / "s.png").size) > 100
