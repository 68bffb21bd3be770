"""Image networks: the paper's multi-scale conv net (P D.2.1) and the DDPM U-Net (Ho et al. 2020)."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from thermodiff.nets.multiscale import MultiScaleConv, PaperImageNet
from thermodiff.nets.time import TemporalBumpReadout, bump_basis
from thermodiff.nets.unet import UNet

MNIST, CIFAR = (1, 28, 28), (3, 32, 32)


def _perturb_(layer: torch.nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(0.1 * torch.randn(p.shape, generator=g))


def _check_all_grads(net: torch.nn.Module, x: torch.Tensor, t: torch.Tensor) -> None:
    out = net(x, t)
    (out * torch.randn_like(out)).sum().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"no gradient reaches {missing}"


# ---- the multi-scale convolution layer -------------------------------------------------------------


@pytest.mark.parametrize("hw", [(32, 32), (28, 28), (7, 7), (12, 20)])
def test_multiscale_shape(hw: tuple[int, int]) -> None:
    layer = MultiScaleConv(3, 8, n_scales=4)
    assert layer(torch.randn(2, 3, *hw)).shape == (2, 8, *hw)


def test_one_scale_is_conv_softplus() -> None:
    torch.manual_seed(0)
    layer = MultiScaleConv(3, 8, n_scales=1)
    x = torch.randn(2, 3, 16, 16)
    conv = layer.convs[0]
    torch.testing.assert_close(layer(x), F.softplus(F.conv2d(x, conv.weight, conv.bias, padding=1)))


def test_constant_in_constant_out_away_from_borders() -> None:
    """Zero padding touches at most 2^(S-1) pixels from each border (coarsest block); inside, a constant
    image must give a constant output per channel, and it is softplus of the mean conv response."""
    torch.manual_seed(0)
    layer = MultiScaleConv(2, 4, n_scales=3)
    x = torch.full((1, 2, 32, 32), 0.7)
    inner = layer(x)[..., 4:-4, 4:-4]
    torch.testing.assert_close(inner, inner[..., :1, :1].expand_as(inner))
    resp = sum(c.weight.sum((1, 2, 3)) * 0.7 + c.bias for c in layer.convs) / 3
    torch.testing.assert_close(inner[0, :, 0, 0], F.softplus(resp))


def test_coarse_branch_sees_block_pattern_not_checkerboard() -> None:
    """Scale 1/2 alone (fine and 1/4 convs zeroed): a 2x2-block image z upsampled gives exactly
    softplus(up(conv(z)) / 3); a pixel checkerboard averages to 0 at every coarse scale: invisible."""
    torch.manual_seed(0)
    layer = MultiScaleConv(1, 3, n_scales=3)
    with torch.no_grad():
        for s in (0, 2):
            layer.convs[s].weight.zero_()
            layer.convs[s].bias.zero_()
    z = torch.randn(2, 1, 8, 8)
    x = z.repeat_interleave(2, -2).repeat_interleave(2, -1)  # (2, 1, 16, 16)
    coarse = layer.convs[1](z).repeat_interleave(2, -2).repeat_interleave(2, -1)
    torch.testing.assert_close(layer(x), F.softplus(coarse / 3))
    ii, jj = torch.meshgrid(torch.arange(16), torch.arange(16), indexing="ij")
    checker = ((ii + jj) % 2 * 2.0 - 1.0).expand(2, 1, 16, 16)
    torch.testing.assert_close(layer(checker), layer(torch.zeros_like(checker)))
    assert not torch.allclose(layer(x), layer(torch.zeros_like(x)))


@pytest.mark.parametrize(("n_scales", "side"), [(1, 3), (2, 6), (3, 12)])
def test_receptive_field_grows_with_scales(n_scales: int, side: int) -> None:
    """One output pixel (16, 16) depends on a 3x3 window at the coarsest scale 2^-(S-1): side 3*2^(S-1)."""
    torch.manual_seed(0)
    layer = MultiScaleConv(1, 2, n_scales=n_scales)
    x = torch.randn(1, 1, 32, 32, requires_grad=True)
    layer(x)[..., 16, 16].sum().backward()
    rows, cols = (x.grad[0, 0] != 0).nonzero(as_tuple=True)
    assert (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1) == (side, side)
    assert (x.grad[0, 0] != 0).sum() == side * side


# ---- the bump readout ------------------------------------------------------------------------------


def test_bump_weights_sum_to_one() -> None:
    torch.testing.assert_close(bump_basis(1000, 10).sum(1), torch.ones(1001))
    readout = TemporalBumpReadout(T=50, J=10)
    y = torch.full((3, 2 * 10, 4, 4), 1.5)  # the same coefficient for every bump
    out = readout(y, torch.tensor([1, 25, 50]))
    torch.testing.assert_close(out, torch.full((3, 2, 4, 4), 1.5))


# ---- the paper's image network ---------------------------------------------------------------------

PAPER_CASES = {
    "mnist_dense_only": (MNIST, dict(n_conv_layers=0, dense_layers=2, dense_hidden=64)),
    "mnist_conv_dense": (MNIST, dict(n_conv_layers=2, conv_channels=8, dense_layers=2, dense_hidden=64)),
    "cifar_conv_only": (CIFAR, dict(n_conv_layers=2, conv_channels=8, n_scales=3)),
}


@pytest.mark.parametrize("case", list(PAPER_CASES))
def test_paper_net_shape_zero_init_and_grads(case: str) -> None:
    shape, kw = PAPER_CASES[case]
    torch.manual_seed(0)
    net = PaperImageNet(shape, T=100, out_factor=2, pixel_hidden=16, **kw)
    x, t = torch.randn(3, *shape), torch.tensor([1, 50, 100])
    out = net(x, t)
    assert out.shape == (3, 2 * shape[0], *shape[1:])
    assert torch.equal(out, torch.zeros_like(out))
    _perturb_(net.readout)
    _check_all_grads(net, x, t)


def test_paper_net_time_dependence_and_channel_layout() -> None:
    torch.manual_seed(0)
    net = PaperImageNet(CIFAR, T=100, out_factor=2, n_conv_layers=1, conv_channels=8, J=10)
    x = torch.randn(1, *CIFAR).expand(2, *CIFAR)
    _perturb_(net.readout)
    out = net(x, torch.tensor([2, 90]))
    assert not torch.allclose(out[0], out[1], atol=1e-4)
    torch.testing.assert_close(net(x, torch.tensor([2, 2])), out[:1].expand(2, -1, -1, -1))
    # readout bias k*J + j = c_k for all j: output channel k is c_k for every t and pixel; channels
    # [0, C) are the first quantity and [C, 2C) the second, as raw.chunk(2, dim=1) expects.
    c = torch.arange(6.0) - 2.5
    with torch.no_grad():
        net.readout.weight.zero_()
        net.readout.bias.copy_(c.repeat_interleave(10))
    out = net(x, torch.tensor([2, 90]))
    torch.testing.assert_close(out, c[None, :, None, None].expand_as(out))
    first, second = out.chunk(2, dim=1)
    torch.testing.assert_close(first[0, :, 0, 0], c[:3])
    torch.testing.assert_close(second[0, :, 0, 0], c[3:])


def test_paper_net_needs_a_pathway() -> None:
    with pytest.raises(ValueError):
        PaperImageNet(MNIST, T=10, out_factor=2, n_conv_layers=0, dense_layers=0)


# ---- the DDPM U-Net --------------------------------------------------------------------------------


def test_unet_ddpm_cifar10_has_35_7m_parameters() -> None:
    """Ho et al. 2020, CIFAR-10: 35.7M (diffusers google/ddpm-cifar10-32: 35,746,307)."""
    net = UNet(CIFAR, out_factor=1, base=128, mults=(1, 2, 2, 2), num_res_blocks=2, attn_resolutions=(16,))
    n = sum(p.numel() for p in net.parameters())
    assert abs(n - 35.7e6) < 0.05e6, n
    n_attn = sum(1 for m in net.modules() if type(m).__name__ == "AttnBlock")
    assert n_attn == 2 + 1 + 3  # down 16x16, middle, up 16x16


UNET_CASES = {
    "mnist": (MNIST, dict(base=32, mults=(1, 2, 2), num_res_blocks=1, attn_resolutions=(14,))),
    "mnist_attn7_2heads": (
        MNIST,
        dict(base=32, mults=(1, 2, 2), num_res_blocks=1, attn_resolutions=(7,), heads=2),
    ),
    "cifar": (CIFAR, dict(base=32, mults=(1, 2, 2, 2), num_res_blocks=1, attn_resolutions=(16,))),
}


@pytest.mark.parametrize("case", list(UNET_CASES))
def test_unet_shape_zero_init_and_grads(case: str) -> None:
    shape, kw = UNET_CASES[case]
    torch.manual_seed(0)
    net = UNet(shape, out_factor=2, dropout=0.0, **kw)
    x, t = torch.randn(2, *shape), torch.tensor([1, 700])
    out = net(x, t)
    assert out.shape == (2, 2 * shape[0], *shape[1:])
    assert torch.equal(out, torch.zeros_like(out))
    _perturb_(net.conv_out)
    _check_all_grads(net, x, t)


def test_unet_time_dependence_and_channels_last() -> None:
    shape, kw = UNET_CASES["cifar"]
    torch.manual_seed(0)
    net = UNet(shape, out_factor=2, dropout=0.1, **kw).eval()
    _perturb_(net.conv_out)
    x = torch.randn(1, *shape).expand(2, *shape).contiguous()
    out = net(x, torch.tensor([3, 800]))
    assert not torch.allclose(out[0], out[1], atol=1e-4)
    out_cl = net(x.to(memory_format=torch.channels_last), torch.tensor([3, 800]))
    torch.testing.assert_close(out_cl, out, atol=1e-5, rtol=1e-4)


def test_unet_rejects_indivisible_size() -> None:
    with pytest.raises(ValueError, match="divisible"):
        UNet(MNIST, out_factor=2, base=32, mults=(1, 2, 2, 2))


@pytest.mark.parametrize("heads", [1, 2])
def test_unet_attention_matches_explicit_softmax(heads: int) -> None:
    from thermodiff.nets.unet import AttnBlock

    torch.manual_seed(0)
    blk = AttnBlock(8, heads)
    x = torch.randn(2, 8, 4, 4)
    q, k, v = blk.qkv(blk.norm(x)).reshape(2, 3, heads, 8 // heads, 16).unbind(1)  # (B, h, d, HW)
    w = torch.softmax(torch.einsum("bhdi,bhdj->bhij", q, k) / (8 // heads) ** 0.5, dim=-1)
    h = torch.einsum("bhij,bhdj->bhdi", w, v).reshape(2, 8, 4, 4)
    torch.testing.assert_close(blk(x), x + blk.proj(h), atol=1e-5, rtol=1e-4)


# ---- the vector MLP ------------------------------------------------------------------------------


def test_mlp_time_table_matches_per_example_time_path() -> None:
    """A batch larger than T + 1 computes the blocks' time shifts once per step and gathers them; the
    per-example path (a float t, or a small batch) must give the same outputs and the same gradients."""
    from thermodiff.nets.mlp import MLP

    net = MLP(2, 10, 5, hidden=32, layers=3, fourier=8)
    _perturb_(net)  # the readout is zero-initialised: give the comparison something to compare
    g = torch.Generator().manual_seed(1)
    x, t = torch.randn(64, 2, generator=g), torch.randint(0, 11, (64,), generator=g)
    grads = []
    for steps in (t, t.float()):  # table (64 > 11 steps), then per example
        net.zero_grad()
        out = net(x, steps)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        grads.append([p.grad.clone() for p in net.parameters()])
        if steps is t:
            table_out = out.detach()
    torch.testing.assert_close(table_out, out.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(net(x[:4], t[:4]), table_out[:4], rtol=1e-5, atol=1e-6)  # 4 < 11: per example
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
