"""Units (data/units.py): the one conversion between model space, data units, pixels and the data's
box, bit for bit the operations each caller used before (P 3.2; DDPM 3.3)."""

from __future__ import annotations

import torch

from thermodiff.data import DataSpec, Scaling, Units

F64 = torch.float64


def _image8() -> Units:
    g = torch.Generator().manual_seed(0)
    scaling = Scaling(tuple((255 * torch.rand(12, generator=g, dtype=F64)).tolist()), 1 / 70.0)
    return Units(DataSpec((3, 2, 2), "image8", "bits/pixel"), scaling)


def test_image8_round_trip_and_pixels() -> None:
    u = _image8()
    y = torch.randn(5, 3, 2, 2, dtype=F64) * 3
    x = u.scaling.invert(y)
    assert torch.equal(u.to_data(y), x)
    assert torch.equal(u.to_model(x), u.scaling.apply(x))
    assert torch.equal(u.to_pixels(x), (x / 255.0).clamp(0, 1))
    assert torch.equal(u.model_to_pixels(y), (u.scaling.invert(y) / 255.0).clamp(0.0, 1.0))
    assert torch.equal(u.grid(x), x.float() / 255.0)
    assert u.is_image and u.eight_bit and u.grey == 127.5


def test_image8_box_is_grey_levels_0_and_255_in_model_space() -> None:
    u = _image8()
    lo, hi = u.box()
    assert torch.allclose(u.to_data(lo), torch.zeros(1, 3, 2, 2, dtype=F64), atol=1e-12)
    assert torch.allclose(u.to_data(hi), torch.full((1, 3, 2, 2), 255.0, dtype=F64))


def test_binary_is_not_scaled_and_has_no_box() -> None:
    u = Units(DataSpec((1, 2, 2), "binary", "bits/image"), Scaling.identity(4))
    x = torch.tensor([[[[0.0, 1.0], [1.0, 0.0]]]], dtype=F64)
    assert torch.equal(u.to_model(x), x) and torch.equal(u.to_data(x), x)
    assert torch.equal(u.to_pixels(x), x) and torch.equal(u.model_to_pixels(x), x)
    assert torch.equal(
        u.from_png(torch.tensor([0.0, 127.0, 128.0, 255.0], dtype=F64)), torch.tensor([0, 0, 1, 1.0]).double()
    )
    assert u.box() is None and u.grey == 0.5 and u.is_image and not u.eight_bit


def test_vectors_are_a_row_of_pixels_in_data_units() -> None:
    u = Units(DataSpec((3,), "continuous", "bits/example"), Scaling((1.0, 2.0, 3.0), 0.5))
    y = torch.randn(4, 3, dtype=F64)
    assert torch.equal(u.model_to_pixels(y), u.scaling.invert(y))
    assert u.grid(u.to_data(y)).shape == (4, 1, 1, 3)
    assert not u.is_image and u.box() is None
