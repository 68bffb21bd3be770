"""The run lock under DDP: rank 0 alone holds it, and every rank learns whether it got it.

A real two-process gloo group on the CPU (torch.multiprocessing.spawn, a file store), each rank calling
training.distributed.rank0_run_lock on one run directory; a few seconds, no training. The whole
`torchrun ... train` path, where rank 1 used to wait in DDP's first collective until torchrun killed
it, is the same call (training/train.py); test_run_safety covers the lock in one process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

WORKER = """
import json, os, sys
from pathlib import Path
import torch
import torch.distributed as td

def main(rank, store, run, out):
    td.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    from thermodiff.errors import ConfigError, ThermodiffError
    from thermodiff.training.distributed import agree, rank0_run_lock
    seen = {"pid": os.getpid()}
    try:
        with rank0_run_lock(Path(run)):
            lock = Path(run) / ".lock"
            seen["holder"] = lock.read_text().strip() if lock.exists() else None
            td.barrier()  # both ranks inside at once
    except ThermodiffError as e:
        seen["error"] = str(e)

    def only_rank_1_fails():
        if rank == 1:
            raise ConfigError("a check that failed on rank 1 alone")
        return "fine"

    try:
        seen["agreed"] = agree(only_rank_1_fails)
    except ThermodiffError as e:
        seen["agree_error"] = str(e)
    Path(out, f"{rank}.json").write_text(json.dumps(seen))
    td.destroy_process_group()

if __name__ == "__main__":
    torch.multiprocessing.spawn(main, args=tuple(sys.argv[1:]), nprocs=2)
"""


def _ranks(tmp_path: Path, run: Path) -> list[dict]:
    script, out = tmp_path / "worker.py", tmp_path / "out"
    script.write_text(WORKER)
    out.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    cmd = [sys.executable, str(script), str(tmp_path / "store"), str(run), str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return [json.loads((out / f"{r}.json").read_text()) for r in (0, 1)]


def test_rank0_holds_the_lock_and_rank1_never_touches_it(tmp_path: Path) -> None:
    """Both ranks enter the block; the lock file then names rank 0's pid, and is gone afterwards."""
    run = tmp_path / "run"
    r0, r1 = _ranks(tmp_path, run)
    assert "error" not in r0 and "error" not in r1
    assert r0["holder"] == r1["holder"] == str(r0["pid"])
    assert not (run / ".lock").exists()


def test_a_check_that_fails_on_one_rank_fails_on_every_rank(tmp_path: Path) -> None:
    """agree(fn): rank 1's ThermodiffError is raised on rank 0 too, naming rank 1 (where rank 0 would
    otherwise go on alone into DDP's first collective)."""
    r0, r1 = _ranks(tmp_path, tmp_path / "run")
    assert r1["agree_error"] == "a check that failed on rank 1 alone"
    assert r0["agree_error"] == "rank 1: a check that failed on rank 1 alone"
    assert "agreed" not in r0 and "agreed" not in r1


def test_a_held_run_refuses_every_rank(tmp_path: Path) -> None:
    """While another process holds the run, rank 0 is refused naming the holder's pid, and rank 1 gets
    the same line (naming rank 0) at once instead of waiting in a collective."""
    run = tmp_path / "run"
    code = (
        "import time\nfrom thermodiff.run.lock import run_lock\n"
        f"with run_lock({str(run)!r}):\n    print('held', flush=True)\n    time.sleep(120)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        r0, r1 = _ranks(tmp_path, run)
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    says = f"is being written by another process (pid {holder.pid})"
    assert says in r0["error"] and "\n" not in r0["error"]
    assert r1["error"] == f"rank 0: {r0['error']}"
    assert "holder" not in r0 and "holder" not in r1


def test_worker_sees_the_sources_under_test() -> None:
    """The spawned ranks import this checkout's thermodiff (PYTHONPATH or the editable install)."""
    import thermodiff

    out = subprocess.run(
        [sys.executable, "-c", "import thermodiff; print(thermodiff.__file__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(out.stdout.strip()) == Path(thermodiff.__file__)
