"""Each class of bad input or bad luck ends in one line and exit code 2, with nothing written or lost:
a full disk, an allocation that fails, a decompression bomb, deeply nested JSON, a run whose data no
longer fit its network, a non-finite result, and the cases whose message used to mislead."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_OVERRIDES

from thermodiff.cli.main import main
from thermodiff.errors import DataError
from thermodiff.run.checkpoint import latest_checkpoint, load_checkpoint

TRAIN = ["train", "swiss_roll", "--quiet", "--device", "cpu"] + [
    a for o in TINY_OVERRIDES for a in ("--set", o)
]


@pytest.fixture
def run(tiny_run: Path, tmp_path: Path) -> Path:
    """A copy of the tiny trained run (30 steps, checkpoints at 20 and 30)."""
    r = tmp_path / "r"
    shutil.copytree(tiny_run, r)
    return r


def one_line_error(capsys, *words: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith("thermodiff: error: ") and err.count("\n") == 1, err
    for w in words:
        assert w in err, err
    return err


def _files(run: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file() and p.name != ".lock"}


def _fail_on_second_save(monkeypatch, where: str, exc: Exception) -> None:
    """`where` (a writer used by save_checkpoint) raises exc from its second call on: a disk that
    fills up after the first checkpoint."""
    import thermodiff.run.checkpoint as ck

    real, calls = getattr(ck, where), []

    def writer(*args, **kwargs):
        calls.append(1)
        if len(calls) > 1:
            Path(args[1]).write_bytes(b"\0" * 10)  # a torn file, as a full disk leaves
            raise exc
        return real(*args, **kwargs)

    monkeypatch.setattr(ck, where, writer)


@pytest.mark.parametrize(
    "where, exc, says",
    [
        ("save_file", OSError(errno.ENOSPC, "No space left on device"), "No space left on device"),
        ("torch", None, "No space left on device"),  # torch.save: "unexpected pos"
    ],
)
def test_full_disk_is_one_line_and_keeps_the_last_checkpoint(
    tmp_path: Path, monkeypatch, capsys, where: str, exc, says: str
) -> None:
    """A mocked ENOSPC in the second checkpoint's write: one line, exit 2, LATEST still names the
    first checkpoint, which loads; no half-written folder is left beside it."""
    out = tmp_path / "r"
    if where == "torch":
        import thermodiff.run.checkpoint as ck

        calls = []

        class _Torch:
            def __getattr__(self, name):
                return getattr(torch, name)

            def save(self, obj, path):
                calls.append(1)
                if len(calls) > 1:
                    raise RuntimeError(
                        "[enforce fail at inline_container.cc:672] . unexpected pos 8320 vs 8212"
                    )
                return torch.save(obj, path)

        monkeypatch.setattr(ck, "torch", _Torch())
    else:
        _fail_on_second_save(monkeypatch, where, exc)
    assert main([*TRAIN, "--out", str(out)]) == 2
    one_line_error(capsys, "step_00000020", says, "previous checkpoint is kept")
    assert latest_checkpoint(out).name == "step_00000010"
    load_checkpoint(latest_checkpoint(out), with_train_state=True)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["LATEST", "step_00000010"]


def test_full_disk_on_a_real_tmpfs(tmp_path: Path, capsys) -> None:
    """Where root may mount one: a tmpfs filled up after the first checkpoint; --resume cannot save
    the next, says so in one line, and the first still loads."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if (
        os.geteuid() != 0
        or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], capture_output=True
        ).returncode
    ):
        pytest.skip("mounting a tmpfs needs root")
    try:
        out = disk / "r"
        assert main([*TRAIN, "--out", str(out), "--set", "train.steps=10"]) == 0
        capsys.readouterr()
        size = sum(p.stat().st_size for p in latest_checkpoint(out).iterdir())
        filler = disk / "filler"
        with open(filler, "wb") as f:  # the rest of the disk
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        os.truncate(filler, max(0, filler.stat().st_size - size // 2))  # room for half a checkpoint
        assert main([*TRAIN, "--out", str(out), "--set", "train.steps=20", "--resume"]) == 2
        one_line_error(capsys, "cannot write checkpoint step_00000020", "No space left on device")
        assert latest_checkpoint(out).name == "step_00000010"
        load_checkpoint(latest_checkpoint(out), with_train_state=True)
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_out_of_memory_is_one_line(run: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    """An allocation the machine cannot hold (here mocked where sampling allocates) is named as such."""
    import thermodiff.sampling.ancestral as ancestral

    def oom(*args, **kwargs):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory")

    monkeypatch.setattr(ancestral, "sample", oom)
    assert main(["sample", str(run), "--n", "10000000", "--out", str(tmp_path / "s.npy")]) == 2
    one_line_error(capsys, "out of memory")
    assert not (tmp_path / "s.npy").exists()


def test_decompression_bomb_is_a_data_error(tmp_path: Path, monkeypatch) -> None:
    """PIL refuses an image of more pixels than its limit before decoding it: one DataError (the
    limit lowered here so that a 64 x 64 PNG stands in for a 20000 x 20000 one)."""
    from PIL import Image

    from thermodiff.data.images import decode_image

    png = tmp_path / "bomb.png"
    Image.new("L", (64, 64)).save(png)
    for limit in (1000, 3000):  # over twice the limit PIL raises; between once and twice it warns
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
        with pytest.raises(DataError, match="too many pixels"):
            decode_image(png, png.name)


@pytest.mark.parametrize("target", ["meta.json", "config.json", "metrics.jsonl"])
def test_deeply_nested_json(run: Path, capsys, target: str) -> None:
    """200,000 '[' in meta.json (evaluate) or config.json (--resume): one line; appended to
    metrics.jsonl, --resume drops it as the torn line it is."""
    deep = "[" * 200_000
    if target == "meta.json":
        (latest_checkpoint(run) / "meta.json").write_text(deep)
        assert main(["evaluate", str(run), "--n", "10"]) == 2
        one_line_error(capsys, "meta.json", "nested too deeply")
    elif target == "config.json":
        (run / "config.json").write_text(deep)
        assert main([*TRAIN, "--out", str(run), "--resume"]) == 2
        one_line_error(capsys, "config.json", "corrupt")
    else:
        with open(run / "metrics.jsonl", "a") as f:
            f.write(deep + "\n")
        assert main([*TRAIN, "--out", str(run), "--resume", "--set", "train.steps=40"]) == 0
        assert "[[[" not in (run / "metrics.jsonl").read_text()


def test_data_of_another_experiment_is_refused(run: Path, capsys) -> None:
    """meta.json's data.name edited to heartbeat (vectors of another shape): evaluate says that the
    data do not fit the network instead of a matrix-shape traceback."""
    meta_path = latest_checkpoint(run) / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["config"]["data"]["name"] = "heartbeat"
    meta_path.write_text(json.dumps(meta))
    before = _files(run)
    assert main(["evaluate", str(run), "--n", "10"]) == 2
    one_line_error(capsys, "heartbeat", "shape")
    assert _files(run) == before


def test_non_finite_denoising_writes_nothing(tmp_path: Path, capsys) -> None:
    """denoise of an input of 1e300 (and noise of std 1e308): the chain overflows; one line, no file."""
    run = tmp_path / "diag"
    assert (
        main([*TRAIN, "--out", str(run), "--set", "diffusion.variance=learned", "--set", "train.steps=10"])
        == 0
    )
    capsys.readouterr()
    x = tmp_path / "huge.npy"
    np.save(x, np.full((1, 2), 1e300))
    out = tmp_path / "o.npy"
    assert main(["denoise", str(run), "--input", str(x), "--out", str(out)]) == 2
    one_line_error(capsys, "NaN or infinite", "nothing written")
    np.save(x, np.zeros((1, 2)))
    assert (
        main(
            ["denoise", str(run), "--input", str(x), "--noise-std", "1e308", "--add-noise", "--out", str(out)]
        )
        == 2
    )
    one_line_error(capsys, "NaN or infinite")
    assert not out.exists() and not list(tmp_path.glob("o_*"))


def test_overflowing_data_sigma_says_overflow(tmp_path: Path, capsys) -> None:
    assert main([*TRAIN, "--out", str(tmp_path / "r"), "--set", "data.sigma=1e308"]) == 2
    one_line_error(capsys, "overflows")
    assert not (tmp_path / "r").exists()


def test_interpolate_steps_bounds_agree(run: Path, tmp_path: Path, capsys) -> None:
    """--steps 1 and --steps 100000 name the same interval, on the CLI and in the library."""
    from thermodiff.errors import ThermodiffError
    from thermodiff.sampling.tasks import interpolate_file

    for steps in ("1", "100000"):
        assert main(["interpolate", str(run), "--a", "x", "--b", "y", "--steps", steps]) == 2
        one_line_error(capsys, "[2, 1e4]")
    with pytest.raises(ThermodiffError, match=r"\[2, 1e4\]"):
        interpolate_file(run, "x", "y", steps=1)


def test_resume_below_the_runs_step_says_so(run: Path, capsys) -> None:
    """--resume --set train.steps=10 on a run at step 30: nothing to do is an error, not 'trained'."""
    before = _files(run)
    assert main([*TRAIN, "--out", str(run), "--resume", "--set", "train.steps=10"]) == 2
    one_line_error(capsys, "train.steps = 10", "step 30")
    assert _files(run) == before


def test_unwritable_output_is_named_for_itself(run: Path, tmp_path: Path, capsys) -> None:
    """sample --out into a folder that cannot be written names the output, not a _panel.png."""
    ro = tmp_path / "ro"
    ro.write_text("a file, not a folder")
    assert main(["sample", str(run), "--out", str(ro / "s.npy")]) == 2
    err = one_line_error(capsys, "s.npy")
    assert "_panel" not in err


TINY_IMAGES = (
    "data.image_size=8 data.n_train=64 data.n_test=16 model.net=unet model.base=8 model.mults=1 "
    "model.num_res_blocks=1 model.attn_resolutions= diffusion.T=10 diffusion.parameterization=eps "
    "diffusion.variance=small train.batch=8 train.steps=5 train.log_every=5 train.ckpt_every=5 "
    "train.sample_every=0"
).split()


def test_eight_bit_samples_as_npy_are_grey_levels(tmp_path: Path, capsys) -> None:
    """`sample --out x.npy` of an 8-bit run holds integers 0..255 (as its PNG would); --raw keeps the
    chain's continuous values, which are exactly the levels before rounding and clamping."""
    run = tmp_path / "dl"
    assert (
        main(
            ["train", "dead_leaves", "--quiet", "--out", str(run)]
            + [a for o in TINY_IMAGES for a in ("--set", o)]
        )
        == 0
    )
    grid, raw = tmp_path / "g.npy", tmp_path / "raw.npy"
    assert main(["sample", str(run), "--n", "4", "--no-clip", "--out", str(grid)]) == 0
    assert main(["sample", str(run), "--n", "4", "--no-clip", "--raw", "--out", str(raw)]) == 0
    g, r = np.load(grid), np.load(raw)
    assert g.shape == r.shape == (4, 1, 8, 8)
    assert np.array_equal(g, np.round(g)) and g.min() >= 0 and g.max() <= 255
    assert not np.array_equal(r, np.round(r))  # continuous: the last step's noise
    assert np.array_equal(g, np.clip(np.round(r), 0, 255))
    assert main(["sample", str(run), "--raw", "--out", str(tmp_path / "x.png")]) == 2
