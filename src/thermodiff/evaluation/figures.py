"""A run's figures for `reproduce` and its report: each drawn, with its caption, or named as missing with
the reason, so that a report can say what is absent instead of silently leaving it out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from thermodiff.data import Dataset
from thermodiff.run.load import Run


@dataclass(frozen=True)
class Figure:
    """One figure of a run: a stable name, its caption, the file (None when missing) and why it is missing."""

    name: str
    caption: str
    path: str | None = None
    missing: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def draw(name: str, caption: str, make: Callable[[], Path]) -> Figure:
    """Draw one figure; a failure to draw it is recorded on the Figure, never raised or dropped."""
    try:
        return Figure(name, caption, str(make()))
    except Exception as err:  # noqa: BLE001 - any failure becomes the figure's stated absence
        return Figure(name, caption, None, f"{type(err).__name__}: {err}")


def run_figures(run: Run, ds: Dataset, out: Path, device: str = "cpu") -> list[Figure]:
    """The figures `reproduce` draws into the run directory `out`, by what the data are."""
    model, out = run.model, Path(out)
    figures = []
    if ds.spec.shape == (2,):
        from thermodiff.evaluation.figure1 import swiss_roll_figure

        figures.append(
            draw(
                "figure1",
                "Figure 1: the forward trajectory q(x_t) (top), the reverse trajectory p(x_t) (middle) "
                "and the drift of the reverse mean (bottom), at t = 0, T/2, T.",
                lambda: swiss_roll_figure(model, ds, out / "figure1.png"),
            )
        )
    if ds.units.eight_bit:
        from thermodiff.sampling.ancestral import sample_grid

        figures.append(
            draw(
                "samples",
                "16 samples from the model (EMA weights, seed 0), in pixels.",
                lambda: sample_grid(model, ds.spec, ds.scaling, out / "samples.png", device=device),
            )
        )
    return figures
