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
    parser = cli.main.__globals__["build_parser"]()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, command in sub.choices.items():
        text = command.format_help()
        for action in command._actions:
            assert action.help, f"{name} {action.option_strings or action.dest} has no help"
        if name in ("evaluate", "sample"):
            assert "(default: ema)" in text and "--weights" in text


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
