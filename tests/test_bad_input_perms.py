"""Permissions, tested as a user they apply to: root reads and writes anything, so each command runs
in a subprocess that drops to user nobody (65534) once it has imported what it needs (a non-root
user may not be able to read the interpreter's own files under /root). Skipped where not root."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

NOBODY = 65534
AS_NOBODY = f"""
import importlib, os, sys
for m in ("numpy", "safetensors.torch", "torch", "torch._dynamo", "thermodiff.cli.main",
          "thermodiff.cli.sample", "thermodiff.cli.evaluate", "thermodiff.cli.train",
          "thermodiff.run.load", "thermodiff.training.train", "thermodiff.data.files",
          "thermodiff.plots.draw", "thermodiff.evaluation.heldout", "io", "json"):
    importlib.import_module(m)
os.setgroups([]); os.setgid({NOBODY}); os.setuid({NOBODY})
from thermodiff.cli.main import main
sys.exit(main(sys.argv[1:]))
"""

pytestmark = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="dropping to user nobody needs root"
)


@pytest.fixture
def shared(tiny_run: Path):
    """A folder nobody may enter (pytest's tmp_path is root's alone) holding a copy of the tiny run."""
    top = Path(tempfile.mkdtemp(prefix="thermodiff-perms-"))
    try:
        top.chmod(0o777)
        run = top / "r"
        shutil.copytree(tiny_run, run)
        for p in [run, *run.rglob("*")]:
            p.chmod(0o777 if p.is_dir() else 0o666)
        yield top, run
    finally:
        shutil.rmtree(top, ignore_errors=True)


def as_nobody(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HOME": "/tmp"}
    cmd = [sys.executable, "-c", AS_NOBODY, *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def one_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("thermodiff: error: ") and proc.stderr.count("\n") == 1, proc.stderr
    return proc.stderr


def test_unreadable_weights_say_permission_denied(shared) -> None:
    """A weights file of mode 000: 'not readable (permission denied)', not 'missing or corrupt'
    (safetensors itself says 'No such file or directory')."""
    top, run = shared
    weights = sorted(run.glob("checkpoints/step_*/weights.safetensors"))[-1]
    weights.chmod(0o000)
    for args in (["sample", str(run), "--out", str(top / "s.npy")], ["evaluate", str(run), "--n", "10"]):
        err = one_line(as_nobody(*args))
        assert "permission denied" in err and "weights.safetensors" in err, err
        assert "missing" not in err and "corrupt" not in err, err
    assert not (top / "s.npy").exists()


def test_read_only_output_folder_is_named(shared) -> None:
    """sample --out into a folder of mode 555: the output's folder is named as not writable, before
    any sampling; nothing is written there."""
    top, run = shared
    ro = top / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    err = one_line(as_nobody("sample", str(run), "--out", str(ro / "s.npy")))
    assert f"cannot write {ro / 's.npy'}" in err and "not a writable folder" in err, err
    assert list(ro.iterdir()) == []


def test_read_only_run_cannot_be_resumed(shared) -> None:
    """--resume of a run whose folder is read-only: one line naming the permission, the run as it was."""
    _, run = shared
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    run.chmod(0o555)
    args = ["train", "swiss_roll", "--out", str(run), "--resume", "--set", "train.steps=40", "--quiet"]
    err = one_line(as_nobody(*args))
    assert f"cannot write {run}" in err and "Permission denied" in err, err
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
