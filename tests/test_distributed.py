"""Distributed training (DESIGN.md 5): `torchrun --nproc_per_node=N -m thermodiff train CONFIG` gives
the run of one process with the same global batch, and `--resume` under DDP continues exactly.

Real processes on the CPU (gloo backend), launched the way a user would, via
`python -m torch.distributed.run` (= torchrun). A tiny swiss-roll run of 10 steps; the schedule is
learned, so both the DDP gradient average (network) and the explicit all-reduce (schedule logits)
are exercised.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from subprocess import PIPE

import pytest
import torch
from conftest import TINY_OVERRIDES
from safetensors.torch import load_file

from thermodiff.run.checkpoint import latest_checkpoint

# train.warmup keeps its default (200 steps), so the learning rate of step s does not depend on
# train.steps and a 5-step run resumed to 10 is the 10-step run.
OVERRIDES = [*TINY_OVERRIDES, "train.steps=10", "train.log_every=5", "train.ckpt_every=5"]
OVERRIDES += ["diffusion.schedule=learned"]

# 1 vs 2 processes: the global batch's gradient is one mean over 64 examples in one process and the
# average of two means over 32 (DDP's all-reduce) in two; the float sums are taken in another order,
# so parameters agree to rounding (seen: <= 1e-7 after 10 steps), not bit for bit. A wrong shard,
# a missing gradient average or an unsynchronised schedule moves them by ~lr = 2e-3.
ATOL, RTOL = 2e-6, 1e-5


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = "1"
    return env


def _train(out: Path, nproc: int, *extra: str, resume: bool = False) -> str:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
    cmd = [*(launcher if nproc > 1 else [sys.executable]), "-m", "thermodiff", "train", "swiss_roll"]
    for o in [*OVERRIDES, *extra]:
        cmd += ["--set", o]
    cmd += ["--out", str(out), "--device", "cpu", "--quiet"] + (["--resume"] if resume else [])
    # own process group: on a timeout the workers die with the launcher instead of lingering
    proc = subprocess.Popen(cmd, env=_env(), stdout=PIPE, stderr=PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail(f"timed out: {' '.join(cmd)}\n{stdout}\n{stderr}")
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{stdout}\n{stderr}"
    return stdout


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(latest_checkpoint(run) / "weights.safetensors")


def _metrics(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line]
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


@pytest.fixture(scope="module")
def two_proc(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("ddp") / "two"
    return out, _train(out, 2)


def test_two_processes_equal_one(two_proc: tuple[Path, str], tmp_path: Path) -> None:
    """2 processes x 32 examples == 1 process x 64: every tensor of the final checkpoint (network,
    EMA, learned schedule) within float tolerance; metrics (K averaged over ranks) likewise; one
    process alone writes and prints."""
    a, stdout = two_proc
    _train(tmp_path / "one", 1)
    wa, wb = _weights(a), _weights(tmp_path / "one")
    assert sorted(wa) == sorted(wb) and "ema.schedule.betas" in wa
    worst = {k: (wa[k].double() - wb[k].double()).abs().max().item() for k in wa}
    bad = {k: v for k, v in worst.items() if not torch.allclose(wa[k], wb[k], atol=ATOL, rtol=RTOL)}
    assert not bad, f"1 vs 2 processes differ beyond rounding: {bad}"
    assert any(v > 0 for v in worst.values()), "suspicious: bit-identical, was DDP used at all?"
    ma, mb = _metrics(a), _metrics(tmp_path / "one")
    assert [r["step"] for r in ma] == [5, 10] == [r["step"] for r in mb]
    for ra, rb in zip(ma, mb, strict=True):
        assert ra["lr"] == rb["lr"]
        assert ra["K_bits"] == pytest.approx(rb["K_bits"], rel=1e-6, abs=1e-6)
    assert stdout.count("trained:") == 1
    assert sorted(p.name for p in (a / "checkpoints").iterdir()) == [
        "LATEST",
        "step_00000005",
        "step_00000010",
    ]


def test_resume_under_ddp_equals_uninterrupted(two_proc: tuple[Path, str], tmp_path: Path) -> None:
    """2 processes to step 5, then `--resume` on 2 processes to step 10 == 2 processes straight to
    10, bit for bit (same ranks, same reduction order), metrics included."""
    a, _ = two_proc
    b = tmp_path / "resumed"
    _train(b, 2, "train.steps=5")
    _train(b, 2, resume=True)
    wa, wb = _weights(a), _weights(b)
    assert sorted(wa) == sorted(wb)
    different = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert not different, f"tensors differ after resume under DDP: {different}"
    assert _metrics(a) == _metrics(b)
