"""bench/throughput.py's cost model against hand counts: the bytes an op moves, attention's FLOPs on
the math backend, and the roofline's two bounds (the figures it prints beside the measured speeds)."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch.nn import functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from throughput import BytesCounter, roofline  # noqa: E402


def test_bytes_counter_counts_inputs_and_outputs_not_views() -> None:
    """(64 x 32) @ (32 x 16) in float32 reads 64*32 + 32*16 and writes 64*16 values; a transpose
    (a view) moves nothing, an elementwise add reads two and writes one."""
    a, b = torch.randn(64, 32), torch.randn(16, 32)
    with BytesCounter() as moved:
        c = a @ b.t()
    assert moved.bytes == 4 * (64 * 32 + 32 * 16 + 64 * 16)
    with BytesCounter() as moved:
        c + c
    assert moved.bytes == 4 * 3 * 64 * 16


def test_attention_flops_are_counted_on_the_math_backend() -> None:
    """QK^T and AV: 2 * 2 * B * heads * N^2 * d multiply-adds counted as FLOPs (softmax excluded)."""
    B, h, N, d = 2, 3, 16, 8
    q, k, v = (torch.randn(B, h, N, d) for _ in range(3))
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        F.scaled_dot_product_attention(q, k, v)
    assert counter.get_total_flops() == 4 * B * h * N * N * d


def test_roofline_bounds() -> None:
    """100 TFLOP/s and 1 TB/s: ridge 100 FLOP/byte; 1e12 FLOPs over 1e9 bytes (1000 FLOP/byte) take
    at least 10 ms (compute-bound); over 1e11 bytes (10 FLOP/byte) at least 100 ms (memory-bound)."""
    ceil = {"bf16_matmul_tflops": 100.0, "copy_gb_s": 1000.0}
    fast = roofline(1e12, 1e9, ceil)
    assert fast["ridge_flop_per_byte"] == 100.0 and fast["bound"] == "compute"
    assert abs(fast["min_seconds"] - 0.01) < 1e-15 and fast["intensity_flop_per_byte"] == 1000.0
    assert fast["compute_seconds"] == fast["min_seconds"]
    slow = roofline(1e12, 1e11, ceil)
    assert slow["bound"] == "memory" and abs(slow["min_seconds"] - 0.1) < 1e-15
    assert abs(slow["compute_seconds"] - 0.01) < 1e-15  # the same FLOPs: the same compute time
