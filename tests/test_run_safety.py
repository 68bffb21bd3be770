"""One writer per run directory (an fcntl lock), resume that rewrites metrics.jsonl byte for byte
when killed between two records, and the temporaries a killed checkpoint write left behind."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TINY_OVERRIDES, make_tiny_cfg

from thermodiff.cli.main import main
from thermodiff.run.checkpoint import latest_checkpoint
from thermodiff.training.train import train


class Interrupt(Exception):
    pass


def _without_seconds(path: Path) -> str:
    """metrics.jsonl as written, wall-clock seconds (the one field that may differ) blanked."""
    return re.sub(r'"seconds": [0-9.e+-]+', '"seconds": _', path.read_text())


def test_resume_between_records_rewrites_the_same_metrics(tmp_path: Path) -> None:
    """Records every 4 steps, checkpoints every 6: killed after logging step 8 (last checkpoint 6,
    inside the window 5..8) and resumed, metrics.jsonl equals the straight run's byte for byte but
    for seconds. Without the carried window the step-8 record would average steps 7..8 only."""
    cfg = make_tiny_cfg("train.steps=12", "train.log_every=4", "train.ckpt_every=6", "train.warmup=3")
    train(cfg, tmp_path / "a")

    def stop_at_8(record: dict) -> None:
        if record["step"] == 8:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(cfg, tmp_path / "b", on_log=stop_at_8)
    assert latest_checkpoint(tmp_path / "b").name == "step_00000006"
    train(cfg, tmp_path / "b", resume=True)
    a, b = _without_seconds(tmp_path / "a/metrics.jsonl"), _without_seconds(tmp_path / "b/metrics.jsonl")
    steps = [json.loads(line)["step"] for line in (tmp_path / "a/metrics.jsonl").read_text().splitlines()]
    assert steps == [4, 8, 12]
    assert a == b


def test_resume_removes_the_litter_of_a_killed_write(tmp_run: Path) -> None:
    """A half-written checkpoint folder and torn .tmp files (what kill -9 mid-write leaves) are gone
    after --resume; the checkpoints themselves stay."""
    ck = tmp_run / "checkpoints"
    litter = [ck / ".step_00000040.abc123", ck / ".LATEST.x1y2.tmp", tmp_run / ".metrics.jsonl.q9.tmp"]
    litter[0].mkdir()
    (litter[0] / "weights.safetensors").write_bytes(b"\0" * 1000)
    for p in litter[1:]:
        p.write_text("torn")
    keep = sorted(p.name for p in ck.iterdir() if not p.name.startswith("."))
    train(make_tiny_cfg("train.steps=40"), tmp_run, resume=True)
    assert not any(p.exists() for p in litter)
    assert latest_checkpoint(tmp_run).name == "step_00000040"
    assert set(keep) - {"LATEST"} <= {p.name for p in ck.iterdir()} | {"step_00000020"}


@pytest.fixture
def tmp_run(tiny_run: Path, tmp_path: Path) -> Path:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    return run


def _holder(run: Path) -> subprocess.Popen:
    """Another process holding run's lock (as a running `train --out run` does) until killed."""
    code = (
        "import sys, time\nfrom thermodiff.run.lock import run_lock\n"
        f"with run_lock({str(run)!r}):\n    print('held', flush=True)\n    time.sleep(120)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


@pytest.mark.parametrize("resume", [False, True])
def test_a_second_writer_is_refused_naming_the_first(
    tmp_run: Path, tmp_path: Path, capsys, resume: bool
) -> None:
    """Two processes on one run directory: while one holds it, `train --out` (fresh or --resume) is
    refused at once with one line naming the holder's pid, exit 2, nothing written; once the holder
    is killed (-9: the kernel releases the lock) the resume goes through."""
    run = tmp_run if resume else tmp_path / "fresh"
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*")} if resume else {}
    proc = _holder(run)
    try:
        argv = ["train", "swiss_roll", "--out", str(run), "--quiet", "--device", "cpu"]
        argv += [a for o in TINY_OVERRIDES for a in ("--set", o)] + (["--resume"] if resume else [])
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"pid {proc.pid}" in err, err
        after = {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.name != ".lock"}
        assert after == {p: t for p, t in before.items() if p.name != ".lock"}
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert main([*argv[:-1], "--resume"] if resume else argv) == 0
