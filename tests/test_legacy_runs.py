"""Run directories written before the refactor (tests/legacy_runs/f70ba0a) still load, evaluate to the
same eval.json and draw the same samples: a user's old runs keep their numbers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from thermodiff import cli

LEGACY = Path(__file__).parent / "legacy_runs" / "f70ba0a"


@pytest.fixture
def one_thread():
    """The runs were written with one thread; intra-op threads may reorder float sums."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("name", ["swiss", "heartbeat"])
def test_an_old_run_evaluates_and_samples_as_before(name: str, tmp_path: Path, one_thread, capsys) -> None:
    run = tmp_path / name
    shutil.copytree(LEGACY / name, run)
    old_eval = json.loads((LEGACY / name / "eval.json").read_text())
    assert cli.main(["evaluate", str(run), "--json", "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    # the same numbers; the JSON now also says which weights it evaluated (issue 17)
    assert json.loads(captured.out) == {**old_eval, "weights": "ema"}
    # trained before the average's warm-up, the average still holds ema**steps of the untrained weights
    # (0.995**20 = 90%, 0.9995**40 = 98%): evaluate says so on one line of stderr
    ema = json.loads((run / "config.json").read_text())["train"]["ema"]
    held = f"{ema ** old_eval['step']:.0%} of the untrained initial weights"
    assert captured.err.count("\n") == 1 and held in captured.err, captured.err
    out = tmp_path / "s.npy"
    assert (
        cli.main(["sample", str(run), "--n", "4", "--seed", "3", "--out", str(out), "--device", "cpu"]) == 0
    )
    assert np.array_equal(np.load(out), np.load(LEGACY / name / "samples_seed3.npy"))
