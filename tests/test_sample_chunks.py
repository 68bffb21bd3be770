"""`thermodiff sample` draws a large --n in chunks, so memory stays bounded: a small n is one chunk (the
same draws as one call to sample), a large one is every sample, drawn chunk after chunk."""

from pathlib import Path

import numpy as np
import pytest

from thermodiff.cli import sample as sample_cmd
from thermodiff.cli.main import main


@pytest.mark.parametrize(("n", "shape", "sizes"), [(5, (2,), [5]), (10, (3, 4), [10])])
def test_small_n_is_one_chunk(n: int, shape: tuple[int, ...], sizes: list[int]) -> None:
    assert sample_cmd.chunks(n, shape) == sizes


def test_large_n_is_cut_into_chunks_that_sum_to_n(monkeypatch) -> None:
    monkeypatch.setattr(sample_cmd, "CHUNK_VALUES", 10)
    assert sample_cmd.chunks(12, (2,)) == [5, 5, 2]
    assert sample_cmd.chunks(3, (28, 28)) == [1, 1, 1]  # one example larger than a chunk: one at a time


def test_chunked_samples_are_all_drawn_and_the_first_chunk_is_the_single_calls(
    tiny_run: Path, tmp_path: Path, monkeypatch
) -> None:
    whole, cut = tmp_path / "whole.npy", tmp_path / "cut.npy"
    assert main(["sample", str(tiny_run), "--n", "6", "--out", str(whole), "--quiet"]) == 0
    monkeypatch.setattr(sample_cmd, "CHUNK_VALUES", 8)  # 4 two-dimensional samples a chunk: 4 + 2
    assert main(["sample", str(tiny_run), "--n", "6", "--out", str(cut), "--quiet"]) == 0
    a, b = np.load(whole), np.load(cut)
    assert a.shape == b.shape == (6, 2) and np.isfinite(b).all()
    first = tmp_path / "first.npy"
    monkeypatch.setattr(sample_cmd, "CHUNK_VALUES", 1 << 22)
    assert main(["sample", str(tiny_run), "--n", "4", "--out", str(first), "--quiet"]) == 0
    np.testing.assert_array_equal(np.load(first), b[:4])  # chunk 1 = the same draws as n = 4 at once
    assert not np.array_equal(a, b)  # the second chunk continues the generator, not a copy of the first
