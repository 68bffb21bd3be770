"""A run's figures: a figure that cannot be drawn is named as missing with its reason, never dropped."""

from pathlib import Path

from thermodiff.evaluation.figures import Figure, draw


def test_a_failing_figure_is_recorded_as_missing_with_its_reason():
    def broken() -> Path:
        raise ValueError("no test images")

    fig = draw("samples", "caption", broken)
    assert fig == Figure("samples", "caption", None, "ValueError: no test images")


def test_a_drawn_figure_keeps_its_path(tmp_path):
    fig = draw("curve", "caption", lambda: tmp_path / "c.png")
    assert fig.path == str(tmp_path / "c.png") and fig.missing is None
    assert fig.as_dict() == {"name": "curve", "caption": "caption", "path": fig.path, "missing": None}
