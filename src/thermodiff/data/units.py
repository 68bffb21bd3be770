"""The one conversion between model space, data units, pixels in [0, 1] and the data's box (P 3.2).

Data units: 0..255 grey levels for 8-bit images ("image8"), 0/1 for binary data, the raw units for vector
data ("continuous"). Model space: the run's Scaling applied to data units (unit variance; binary data are
not scaled), so a noise std of 1 in model space is the paper's SNR 1 (P 3.2). Pixels: [0, 1] for figures.
The box: 0..255 in model space, where DDPM clips its predicted 8-bit images (Ho et al. 2020, 3.3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:
    from thermodiff.data import DataSpec, Scaling

KINDS = ("continuous", "binary", "image8")  # the values DataSpec.kind may take
WHITE = 255.0  # the grey level of a white 8-bit pixel


@dataclass(frozen=True)
class Units:
    """A run's data spec and scaling (as stored with it), and every conversion built from them."""

    spec: DataSpec
    scaling: Scaling

    @property
    def is_image(self) -> bool:
        """Whether one example is a (C, H, W) image read and written as PNG (8-bit or binary)."""
        return len(self.spec.shape) == 3 and self.spec.kind in ("image8", "binary")

    @property
    def eight_bit(self) -> bool:
        """Whether the data are 8-bit grey levels 0..255 (they have a box; Parzen applies, P 3.2)."""
        return self.spec.kind == "image8"

    @property
    def grey(self) -> float:
        """Mid-grey in data units (where a figure shows an unknown pixel): 0.5 binary, else 127.5."""
        return 0.5 if self.spec.kind == "binary" else WHITE / 2

    def from_png(self, levels: Tensor) -> Tensor:
        """8-bit PNG values (float64) -> data units: a binary run reads p >= 128 as 1."""
        return (levels >= 128).to(torch.float64) if self.spec.kind == "binary" else levels

    def to_model(self, x: Tensor) -> Tensor:
        """Data units -> model space (binary data are not scaled). float64."""
        x = x.to(torch.float64)
        return x if self.spec.kind == "binary" else self.scaling.apply(x)

    def to_data(self, y: Tensor) -> Tensor:
        """Model space -> data units (binary data unchanged). float64."""
        y = y.to(torch.float64)
        return y if self.spec.kind == "binary" else self.scaling.invert(y)

    def to_pixels(self, x: Tensor) -> Tensor:
        """Data units -> [0, 1] for figures: 8-bit grey levels / 255, clamped. float64."""
        x = x.to(torch.float64)
        return (x if self.spec.kind == "binary" else x / WHITE).clamp(0, 1)

    def to_levels(self, x: Tensor) -> Tensor:
        """Data units -> the data's own grid: 8-bit images rounded and clamped to the grey levels
        0..255 (integers as float64), as a PNG of them would hold; other data unchanged."""
        x = x.to(torch.float64)
        return x.round().clamp(0, WHITE) if self.eight_bit else x

    def model_to_pixels(self, y: Tensor) -> Tensor:
        """Model space -> [0, 1] for 8-bit images (to_data, then to_pixels); other data in data units."""
        x = self.to_data(y)
        return self.to_pixels(x) if self.eight_bit else x

    def grid(self, x: Tensor) -> Tensor:
        """Data units -> float32 (N, C, H, W) for a sample grid: vectors as one row of pixels, 8-bit
        grey levels / 255 (in float32, as `thermodiff sample` has always drawn them)."""
        shape = self.spec.shape if len(self.spec.shape) == 3 else (1, 1, math.prod(self.spec.shape))
        return x.reshape(-1, *shape).float() / (WHITE if self.eight_bit else 1.0)

    def box(self) -> tuple[Tensor, Tensor] | None:
        """(lo, hi): grey levels 0 and 255 in model space, shape (1, *shape), for 8-bit images; else None."""
        if not self.eight_bit:
            return None
        full = (torch.full((1, *self.spec.shape), v, dtype=torch.float64) for v in (0.0, WHITE))
        lo, hi = (self.scaling.apply(v) for v in full)
        return lo, hi
