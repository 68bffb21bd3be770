"""The figures a run gets when its training ends, and from `thermodiff plot`: the training curve and, for
images, the progressive-denoising strip; a figure that fails never loses the run."""

from __future__ import annotations

import shutil
from pathlib import Path

import test_figures
from conftest import make_tiny_cfg

from thermodiff.run.load import load_run
from thermodiff.training.figures import run_plots
from thermodiff.training.train import train

image_run = test_figures.image_run  # the tiny trained image run (a fixture), as there


def test_training_ends_with_its_cheap_figures(image_run: Path, tiny_run: Path) -> None:
    """RUN/plots/curve.png for every run, and the progressive strip for images, as `plot` draws them."""
    assert (tiny_run / "plots" / "curve.png").is_file()
    assert not (tiny_run / "plots" / "denoising.png").exists()
    assert (image_run / "plots" / "curve.png").is_file() and (image_run / "plots" / "denoising.png").is_file()
    assert "Figures: `plots/curve.png`, `plots/denoising.png`." in (image_run / "README.md").read_text()


def test_a_figure_that_fails_at_the_end_of_training_never_loses_the_run(tmp_path: Path, monkeypatch) -> None:
    import thermodiff.training.figures as end

    def broken(*args, **kwargs):
        raise RuntimeError("no display")

    monkeypatch.setattr(end, "run_curve", broken)
    out = train(make_tiny_cfg("train.steps=2", "train.warmup=1"), tmp_path / "a")
    assert load_run(out).step == 2 and not (out / "plots" / "curve.png").exists()
    monkeypatch.setattr(end, "load_run", broken)
    out = train(make_tiny_cfg("train.steps=2", "train.warmup=1"), tmp_path / "b")
    assert load_run(out).step == 2


def test_a_finished_run_resumed_keeps_its_figures_untouched(tiny_run: Path, tmp_path: Path) -> None:
    """The end-of-training figures are redrawn on a resume of a finished run; the same bytes are not
    rewritten (the model card does the same)."""
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run, run_dir)
    curve = run_dir / "plots" / "curve.png"
    before = (curve.read_bytes(), curve.stat().st_mtime_ns)
    train(make_tiny_cfg(), run_dir, resume=True)
    assert (curve.read_bytes(), curve.stat().st_mtime_ns) == before


def test_plot_says_which_figure_it_could_not_draw(
    tiny_run: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    import thermodiff.training.figures as end
    from thermodiff.cli.main import main

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(end, "run_curve", broken)
    assert main(["plot", str(tiny_run), "--out", str(tmp_path / "p")]) == 1
    err = capsys.readouterr().err
    assert err == "thermodiff: could not draw curve: RuntimeError: disk full\n"


def test_reproduce_lists_the_strip_training_drew_instead_of_drawing_it_again(
    image_run: Path, tmp_path: Path, monkeypatch
) -> None:
    """The strip drawn when training ended (after the latest checkpoint) is listed as it is; one older
    than the latest checkpoint is drawn again."""
    import os

    import thermodiff.training.figures as end

    def broken(*args, **kwargs):
        raise RuntimeError("drawn again")

    monkeypatch.setattr(end, "denoising_strip", broken)
    run_dir = tmp_path / "run"
    shutil.copytree(image_run, run_dir)
    run = load_run(run_dir)
    strip = run_plots(run, run_dir / "plots", reuse_strip=True)[1]
    assert strip.path == str(run_dir / "plots" / "denoising.png") and strip.missing is None
    latest = run_dir / "checkpoints" / "LATEST"
    later = (run_dir / "plots" / "denoising.png").stat().st_mtime_ns + 10**9
    os.utime(latest, ns=(later, later))
    assert run_plots(run, run_dir / "plots", reuse_strip=True)[1].missing == "RuntimeError: drawn again"
