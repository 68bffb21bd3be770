"""One writer per run directory: an advisory fcntl lock on RUN/.lock, released by the kernel when
the holder exits or dies, so a second `train --out RUN` or `--resume` is refused at once, not merged.
Also the clean-up of temporaries a killed write left behind, done under the lock."""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from thermodiff.errors import ConfigError

LOCK = ".lock"


@contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold RUN/.lock (creating RUN) for the block; another holder -> a ConfigError naming its pid.
    The lock file is removed on release (while still held; a waiter then finds its inode gone and
    retries), and so are the folders this call made if nothing was written in them. Under DDP only
    rank 0 holds it (training.distributed.rank0_run_lock)."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"{run_dir} is a file, not a run directory")
    created = [p for p in (run_dir, *run_dir.parents) if not p.exists()]  # folders this call makes
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        fd = _acquire(run_dir / LOCK)
    except OSError as e:
        raise ConfigError(f"cannot write {run_dir}: {e.strerror or e}") from None
    try:
        yield
    finally:
        (run_dir / LOCK).unlink(missing_ok=True)
        os.close(fd)  # releases the lock
        for folder in created:  # a fresh run that wrote nothing leaves nothing
            try:
                folder.rmdir()  # only if empty
            except OSError:
                break


def _acquire(path: Path) -> int:
    """An open, exclusively flocked descriptor of path (the file now holding this pid)."""
    for _ in range(100):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if not isinstance(e, BlockingIOError):
                os.close(fd)
                raise
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise ConfigError(
                f"{path.parent} is being written by another process (pid {holder}): "
                "wait for it to finish or pass another --out"
            ) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            except OSError:  # a full disk: the lock holds all the same, its pid unnamed
                pass
            return fd
        os.close(fd)  # the holder removed it as we locked it: take the new one
    raise ConfigError(f"cannot lock {path}: it keeps being replaced")


def remove_temporaries(run_dir: Path) -> list[Path]:
    """Delete what a killed atomic write left: checkpoints/.step_* folders and .NAME.*.tmp files in
    the run and its checkpoints/ (only under run_lock: nobody else is writing them). Returns them."""
    run_dir = Path(run_dir)
    found = []
    for folder in (run_dir, run_dir / "checkpoints"):
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            if p.name.startswith(".") and (p.name.endswith(".tmp") or p.name.startswith(".step_")):
                found.append(p)
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)
    return found
