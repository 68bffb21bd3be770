"""The GPU fast path (model/fast.py): on a CPU every switch is a no-op, so a run with all of
them on is bit for bit the plain run; with train.fast_cpu the same code (bf16 autocast, channels-last,
torch.compile) runs on the CPU and agrees with the plain fp32 eager call within bf16 tolerance; on a
GPU (tests skipped without one) the graphed bf16 network call does too."""

from __future__ import annotations

import shutil
from dataclasses import fields
from pathlib import Path

import pytest
import torch
from conftest import make_tiny_cfg
from safetensors.torch import load_file
from torch._dynamo.utils import counters

from thermodiff.config import Config, with_overrides
from thermodiff.errors import ConfigError
from thermodiff.model.assemble import build_model
from thermodiff.model.fast import FastPath, GraphedFn, adamw, load_optimizer_state
from thermodiff.run.checkpoint import latest_checkpoint
from thermodiff.training.loop import ema_update
from thermodiff.training.train import train

FAST = ("train.precision=bf16", "train.channels_last=true", "train.compile=true", "train.cuda_graphs=true")
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
needs_cxx = pytest.mark.skipif(
    not any(shutil.which(c) for c in ("g++", "c++", "clang++")),
    reason="torch.compile on a CPU needs a C++ compiler (none found)",
)
BF16_RTOL = 3e-2  # relative RMS error of a bf16 network against fp32 (8 bits of mantissa, a few layers)


def test_config_fields_and_validation() -> None:
    fp = FastPath.from_config(with_overrides(Config(), list(FAST)).train)
    assert (fp.precision, fp.channels_last, fp.compile, fp.cuda_graphs) == ("bf16", True, True, True)
    assert FastPath.from_config(Config().train).precision == "fp32"
    with pytest.raises(ConfigError, match="train.precision"):
        with_overrides(Config(), ["train.precision=fp16"])


def test_cpu_run_with_every_switch_on_is_the_plain_run(tmp_path: Path) -> None:
    """bf16, channels-last, compile and CUDA graphs requested on a CPU: the same weights, bit for bit,
    as the plain run (the CPU path is unchanged), with a learned schedule."""
    train(make_tiny_cfg("train.steps=10", "diffusion.schedule=learned"), tmp_path / "plain")
    train(make_tiny_cfg("train.steps=10", "diffusion.schedule=learned", *FAST), tmp_path / "fast")
    wa = load_file(latest_checkpoint(tmp_path / "plain") / "weights.safetensors")
    wb = load_file(latest_checkpoint(tmp_path / "fast") / "weights.safetensors")
    assert sorted(wa) == sorted(wb)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def tensors(step) -> list[torch.Tensor]:
    """A step's tensors in field order (astuple would deep-copy them, which non-leaf tensors refuse)."""
    return [getattr(step, f.name) for f in fields(step)]


def test_cpu_model_fn_graphed_is_eager() -> None:
    model = build_model(make_tiny_cfg(*FAST), (2,))
    kernel = model.kernel()
    x, t = torch.randn(8, 2, dtype=torch.float64), torch.randint(2, 11, (8,))
    a, b = model.model_fn(kernel)(x, t), model.model_fn(kernel, graphed=True)(x, t)
    assert type(a) is type(b) and all(torch.equal(u, v) for u, v in zip(tensors(a), tensors(b), strict=True))
    assert (
        FastPath().compiled(model.net) is model.net
        and FastPath(compile=True).compiled(model.net) is model.net
    )
    g = GraphedFn(model.model_fn(kernel))  # CPU inputs: eager, nothing captured
    assert all(torch.equal(u, v) for u, v in zip(tensors(g(x, t)), tensors(a), strict=True)) and not g.graphs


def test_adamw_and_state_across_devices() -> None:
    """CPU: the fused AdamW takes the per-tensor loop's steps; a state saved by another kernel choice
    (the loop, as older CPU runs wrote it) loads with this one's."""
    p = [torch.nn.Parameter(torch.randn(3)), torch.nn.Parameter(torch.randn(4, dtype=torch.float64))]
    loop_p = [torch.nn.Parameter(q.detach().clone()) for q in p]
    opt, loop = adamw(p, lr=1e-2, weight_decay=0.01), torch.optim.AdamW(loop_p, lr=1e-2, weight_decay=0.01)
    assert opt.param_groups[0]["fused"] and not loop.param_groups[0]["fused"]
    for k in range(3):
        for q in (p, loop_p):
            q[0].grad, q[1].grad = torch.full((3,), 1.0 + k), torch.linspace(-1, 1, 4, dtype=torch.float64)
        opt.step(), loop.step()
    for a, b in zip(p, loop_p, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    fresh = adamw(p, lr=1e-2, weight_decay=0.01)
    load_optimizer_state(fresh, loop.state_dict())
    assert fresh.param_groups[0]["fused"]
    assert torch.equal(fresh.state[p[0]]["exp_avg"], loop.state[loop_p[0]]["exp_avg"])
    fresh.step()  # runs on the CPU


def _unet_model(*extra: str):
    over = ["model.net=unet", "model.base=32", "model.mults=1,2", "model.attn_resolutions=8"]
    over += ["diffusion.parameterization=eps", "diffusion.variance=small", "model.dropout=0.0", *extra]
    over += ["data.name=cifar10"]  # an image data set for an image network (3 x 16 x 16 below)
    model = build_model(with_overrides(Config(), over), (3, 16, 16))
    model.net.conv_out.reset_parameters()  # zero-initialised: give the comparison something to compare
    return model


@cuda
def test_cuda_fast_path_matches_plain() -> None:
    """bf16 + channels-last + CUDA graph vs fp32 eager on the same weights: sampler params within
    bf16 tolerance; graph replays with new inputs give new outputs; the foreach EMA is the loop EMA."""
    plain, fast = _unet_model(), _unet_model("train.precision=bf16", "train.channels_last=true")
    fast.net.load_state_dict(plain.net.state_dict())
    for m in (plain, fast):
        m.net.cuda().eval()
        m.schedule.to("cuda")
        m.fast.prepare(m.net)
    kernel = plain.kernel()
    fn_p, fn_f = plain.model_fn(kernel), fast.model_fn(kernel, graphed=True)
    assert isinstance(fn_f, GraphedFn)
    with torch.no_grad():
        for seed in range(3):
            g = torch.Generator("cuda").manual_seed(seed)
            x = torch.randn(4, 3, 16, 16, generator=g, device="cuda", dtype=torch.float64)
            t = torch.randint(2, 41, (4,), generator=g, device="cuda")
            mp, mf = fn_p(x, t).mean, fn_f(x, t).mean
            assert ((mp - mf).norm() / mp.norm()).item() < 3e-2
    assert len(fn_f.graphs) == 1 and next(iter(fn_f.graphs.values())) is not None
    ema = [torch.randn(5, device="cuda") for _ in range(3)]
    params, loop = [torch.randn(5, device="cuda") for _ in range(3)], [e.clone() for e in ema]
    ema_update(ema, params, 0.9)
    for e, p in zip(loop, params, strict=True):
        e.lerp_(p, 0.1)
    assert all(torch.allclose(a, b) for a, b in zip(ema, loop, strict=True))


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


def test_fast_cpu_bf16_channels_last_matches_plain() -> None:
    """train.fast_cpu: the U-Net really runs in bf16 (its output dtype) with NHWC weights, and its
    output and the sampler's params agree with fp32 eager on the same weights within bf16 tolerance."""
    plain = _unet_model()
    fast = _unet_model("train.precision=bf16", "train.channels_last=true", "train.fast_cpu=true")
    fast.net.load_state_dict(plain.net.state_dict())
    fast.fast.prepare(fast.net)
    assert fast.net.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, 16, 16, generator=g)
    t = torch.randint(2, 41, (4,), generator=g)
    with torch.no_grad():
        raw_f, raw_p = fast.fast.forward(fast.net, x, t), plain.net(x, t)
        assert raw_f.dtype == torch.bfloat16 and raw_p.dtype == torch.float32
        assert 0 < _rel(raw_f, raw_p) < BF16_RTOL
        kernel = plain.kernel()
        f, p = fast.model_fn(kernel)(x.double(), t), plain.model_fn(kernel)(x.double(), t)
        (mf, vf), (mp, vp) = (f.mean, f.logvar), (p.mean, p.logvar)
        assert mf.dtype == torch.float64 and _rel(mf, mp) < BF16_RTOL and torch.equal(vf, vp)


@needs_cxx
def test_fast_cpu_compiled_network_and_training(tmp_path: Path) -> None:
    """torch.compile through the fast path on a CPU: the compiled U-Net (bf16, channels-last) equals
    its eager self within bf16 tolerance and is compiled once; a compiled fp32 training run ends at the
    weights of the eager run (float rounding apart)."""
    fast = _unet_model(
        "train.precision=bf16", "train.channels_last=true", "train.compile=true", "train.fast_cpu=true"
    )
    fast.fast.prepare(fast.net)
    compiled = fast.fast.compiled(fast.net)
    assert compiled is not fast.net and fast.fast.compiled(fast.net) is compiled
    g = torch.Generator().manual_seed(0)
    x, t = torch.randn(4, 3, 16, 16, generator=g), torch.randint(2, 41, (4,), generator=g)
    with torch.no_grad():
        eager = fast.fast.forward(fast.net, x, t)
        assert _rel(fast.fast.forward(compiled, x, t), eager) < BF16_RTOL
    steps = ("train.steps=5", "train.ckpt_every=5", "train.compile=true")
    train(make_tiny_cfg(*steps), tmp_path / "eager")
    counters.clear()
    train(make_tiny_cfg(*steps, "train.fast_cpu=true"), tmp_path / "compiled")
    assert counters["stats"]["unique_graphs"] >= 1  # the training loop really ran a compiled graph
    wa = load_file(latest_checkpoint(tmp_path / "eager") / "weights.safetensors")
    wb = load_file(latest_checkpoint(tmp_path / "compiled") / "weights.safetensors")
    assert all(torch.allclose(wa[k], wb[k], rtol=1e-4, atol=1e-6) for k in wa)


@cuda
def test_cuda_resume_and_swiss_roll_figure(tmp_path: Path) -> None:
    """On a GPU: a run resumed from step 20 ends where the uninterrupted run does (the schedule's
    tables stay on the GPU when a checkpoint is loaded; the random stream is the CUDA one), a CPU
    resume of it is refused in one line, and the 2-D figure draws a CUDA model."""
    from thermodiff.data import load_dataset
    from thermodiff.errors import CheckpointError
    from thermodiff.evaluation.figure1 import swiss_roll_figure
    from thermodiff.run.load import load_run

    for schedule in ("paper", "learned"):
        cfg = make_tiny_cfg(f"diffusion.schedule={schedule}")
        a, b = tmp_path / f"a_{schedule}", tmp_path / f"b_{schedule}"
        train(cfg, a, device="cuda")
        train(make_tiny_cfg(f"diffusion.schedule={schedule}", "train.steps=20"), b, device="cuda")
        train(cfg, b, device="cuda", resume=True)
        wa = load_file(latest_checkpoint(a) / "weights.safetensors")
        wb = load_file(latest_checkpoint(b) / "weights.safetensors")
        assert all(torch.allclose(wa[k], wb[k], rtol=1e-5, atol=1e-7) for k in wa)
    with pytest.raises(CheckpointError, match="saved on cuda"):
        train(cfg, b, device="cpu", resume=True)
    model = load_run(a, "cuda").model
    png = swiss_roll_figure(model, load_dataset(cfg.data), tmp_path / "figure1.png", n=200)
    assert Path(png).stat().st_size > 0
