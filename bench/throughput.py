"""Throughput against diffusers (issue: speed and scale): Ho et al.'s 35.7M-parameter CIFAR-10 U-Net
built by thermodiff (nets/unet.py) and by diffusers (UNet2DModel + DDPMScheduler), same batch, same
precision (bf16 autocast on a GPU). Reports training images/s at batch 128 and 512 (diffusers: the
eps-MSE step; thermodiff: its real step on the stochastic bound K, and the same eps-MSE step for a
network-to-network comparison), sampling ms per reverse step at batch 128, the ratios, thermodiff's
achieved TFLOP/s (forward FLOPs by torch.utils.flop_counter, x3 for training) and the fast path's
outputs against the plain fp32 path. JSON to bench/results/, the table printed last.

    python bench/throughput.py                      # on a GPU: the measurement (H200 targets)
    python bench/throughput.py --device cpu --quick # smoke test of the code path (numbers mean nothing):
                                                    # the fast path on the CPU (train.fast_cpu), compiled

diffusers is needed by this script only (`pip install diffusers`); thermodiff does not depend on it.
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import torch
from benchio import write_json
from torch import nn
from torch.nn import functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import FlopCounterMode

from thermodiff import Config, with_overrides
from thermodiff.diffusion import bound_stochastic

# deep imports: this bench times the training loop's and the sampler's own parts, one by one
from thermodiff.model.assemble import build_model
from thermodiff.model.fast import adamw
from thermodiff.sampling.ancestral import p_sample_loop_progressive
from thermodiff.training.loop import ema_update
from thermodiff.training.objectives import negative_bound, trainable

SHAPE = (3, 32, 32)
T = 1000
DDPM = [
    "data.name=cifar10",
    f"diffusion.T={T}",
    "diffusion.schedule=linear",
    "diffusion.beta_1=1e-4",
    "diffusion.beta_max=0.02",
]
DDPM += ["diffusion.parameterization=eps", "diffusion.variance=small", "model.net=unet", "model.base=128"]
DDPM += ["model.mults=1,2,2,2", "model.num_res_blocks=2", "model.attn_resolutions=16", "model.dropout=0.1"]
TARGETS = {"train_128": 2.0, "train_512": 1.5, "sample_128": 4.0}  # thermodiff / diffusers, issue
BF16_RTOL = 3e-2  # relative RMS error allowed between the bf16 fast path and the fp32 plain path


def seconds_per_call(fn, iters: int, warmup: int, device: str) -> float:
    sync = torch.cuda.synchronize if device.startswith("cuda") else lambda: None
    for _ in range(warmup):
        fn()
    sync()
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    sync()
    return (time.perf_counter() - t0) / iters


def thermodiff_model(device: str, fast: bool, compile_: bool):
    extra = ["train.precision=bf16", "train.channels_last=true", f"train.compile={compile_}"] if fast else []
    extra += [f"train.fast_cpu={fast and device == 'cpu'}"]  # a CPU smoke test runs the same fast path
    model = build_model(with_overrides(Config(), [*DDPM, *extra, f"train.cuda_graphs={fast}"]), SHAPE)
    model.net.conv_out.reset_parameters()  # zero-initialised in thermodiff: make outputs comparable
    model.net.to(device)
    model.schedule.to(device)
    model.fast.prepare(model.net)
    return model


def diffusers_model(device: str):
    try:
        import diffusers
        from diffusers import DDPMScheduler, UNet2DModel
    except ImportError as e:
        raise SystemExit(
            f"bench/throughput.py compares against diffusers, which did not import ({e}): `pip install "
            "diffusers` (for this benchmark only; thermodiff does not depend on it)"
        ) from None
    unet = UNet2DModel(
        sample_size=32,
        in_channels=3,
        out_channels=3,
        block_out_channels=(128, 256, 256, 256),
        layers_per_block=2,
        down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=None,  # one head, as DDPM
        norm_eps=1e-6,
        norm_num_groups=32,
        downsample_padding=0,
        flip_sin_to_cos=False,
        freq_shift=1,
        dropout=0.1,
    ).to(device)
    sched = DDPMScheduler(num_train_timesteps=T, beta_start=1e-4, beta_end=0.02, beta_schedule="linear")
    return unet, sched, diffusers.__version__


def diffusers_train_step(unet, sched, opt, data, batch, gen, autocast):
    """The diffusers training example's step: add_noise, eps-MSE, clip 1.0, AdamW (eager)."""
    dev = data.device

    def step():
        x0 = data[torch.randint(data.shape[0], (batch,), generator=gen, device=dev)]
        noise = torch.randn(x0.shape, generator=gen, device=dev)
        t = torch.randint(0, T, (batch,), generator=gen, device=dev)
        with autocast():
            pred = unet(sched.add_noise(x0, noise, t), t).sample
        loss = F.mse_loss(pred.float(), noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()

    return step


def thermodiff_eps_step(model, net, opt, data, batch, gen):
    """The same eps-MSE step through thermodiff's network and fast path (apples to apples)."""
    dev = data.device
    alpha_bar = torch.exp(model.kernel().log_alpha_bar).float()
    params = trainable(model)

    def step():
        x0 = data[torch.randint(data.shape[0], (batch,), generator=gen, device=dev)]
        noise = torch.randn(x0.shape, generator=gen, device=dev)
        t = torch.randint(1, T + 1, (batch,), generator=gen, device=dev)
        ab = alpha_bar[t][:, None, None, None]
        pred = model.fast.forward(net, ab.sqrt() * x0 + (1 - ab).sqrt() * noise, t)
        loss = F.mse_loss(pred.float(), noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()

    return step


def thermodiff_bound_step(model, net, opt, ema, data, batch, gen):
    """thermodiff's real training step, objectives.negative_bound as in loop.fit: -K per dimension
    (float64 bound, network under the fast path), clip, fused AdamW, EMA."""
    dev = data.device
    params = trainable(model)

    def step():
        x0 = data[torch.randint(data.shape[0], (batch,), generator=gen, device=dev)].to(torch.float64)
        loss, _ = negative_bound(model, net, x0, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        ema_update(ema, params, 0.999)

    return step


def diffusers_sample_ms(unet, sched, batch, steps, warmup, device, autocast) -> float:
    """ms per reverse step: unet + scheduler.step (DDPM ancestral), bf16 autocast, eager."""
    unet.eval()
    sched.set_timesteps(T)
    gen = torch.Generator(device).manual_seed(0)
    ts = iter(list(sched.timesteps))
    x = [torch.randn(batch, *SHAPE, generator=gen, device=device)]

    @torch.no_grad()
    def step():
        t = next(ts)
        with autocast():
            eps = unet(x[0], t).sample
        x[0] = sched.step(eps.float(), t, x[0], generator=gen).prev_sample

    return 1e3 * seconds_per_call(step, steps, warmup, device)


def thermodiff_sample_ms(model, batch, steps, warmup, device) -> tuple[float, bool]:
    """ms per reverse step of thermodiff's sampler (p_sample_loop_progressive) with the fast path's
    graphed network call (CUDA graph, compiled if train.compile), and whether a graph was captured
    (a failed capture falls back to eager with a warning: the timing must say which it measured)."""
    model.net.eval()
    kernel = model.kernel()
    fn = model.model_fn(kernel, graphed=True)
    gen = torch.Generator(device).manual_seed(0)
    x_T = kernel.prior_sample((batch, *SHAPE), generator=gen, device=device)
    chain = p_sample_loop_progressive(kernel, fn, x_T, gen)
    next(chain)  # x_T itself
    ms = 1e3 * seconds_per_call(lambda: next(chain), steps, warmup, device)
    graphs = getattr(fn, "graphs", {})
    return ms, bool(graphs) and all(g is not None for g in graphs.values())


def rel_rms(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double(), b.double()
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


@torch.no_grad()
def fast_vs_plain(fast_model, device: str, batch: int) -> dict:
    """The fast path (bf16, channels-last, compiled, CUDA graph) against the plain fp32 eager path on
    the same weights: raw network output, sampler params (graphed model_fn) and the bound K."""
    plain = thermodiff_model(device, fast=False, compile_=False)
    plain.net.load_state_dict(fast_model.net.state_dict())
    plain.net.eval()
    fast_model.net.eval()
    gen = torch.Generator(device).manual_seed(1)
    x0 = torch.rand(batch, *SHAPE, generator=gen, device=device, dtype=torch.float64) * 2 - 1
    t = torch.randint(2, T + 1, (batch,), generator=gen, device=device)
    kernel = plain.kernel()
    x_t = kernel.q_sample(x0, t, kernel.noise_like(x0, gen))
    net = fast_model.fast.compiled(fast_model.net)
    raw = rel_rms(fast_model.fast.forward(net, x_t.float(), t), plain.net(x_t.float(), t))
    mean_f = fast_model.model_fn(kernel, graphed=True)(x_t, t).mean
    mean_p = plain.model_fn(kernel)(x_t, t).mean
    noise = kernel.noise_like(x0, gen)
    k_f = bound_stochastic(kernel, fast_model.model_fn(kernel, net), x0, t=t, noise=noise)[0].K
    k_p = bound_stochastic(kernel, plain.model_fn(kernel), x0, t=t, noise=noise)[0].K
    out = {"raw_output_rel_rms": raw, "sampler_mean_rel_rms": rel_rms(mean_f, mean_p)}
    out["bound_K_rel_rms"] = rel_rms(k_f, k_p)
    out["tolerance"] = BF16_RTOL
    out["ok"] = all(v <= BF16_RTOL for k, v in out.items() if k.endswith("rms"))
    return out


class BytesCounter(TorchDispatchMode):
    """Bytes every aten op reads and writes (its tensor arguments and outputs; views move nothing):
    the memory traffic of eager execution, an upper bound on what a fused (compiled) graph moves."""

    def __init__(self):
        super().__init__()
        self.bytes = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if not func.is_view:
            for x in tree_leaves((args, kwargs, out)):
                if isinstance(x, torch.Tensor):
                    self.bytes += x.numel() * x.element_size()
        return out


def forward_cost(model, device: str, batch: int) -> tuple[int, int]:
    """(FLOPs, bytes) of one forward per image at `batch`, through the fast path's precision and
    layout, eager. Attention on the math backend so that its matmuls are counted on any device."""
    net = copy.deepcopy(model.net).eval()
    x = torch.zeros(batch, *SHAPE, device=device)
    t = torch.ones(batch, dtype=torch.long, device=device)
    flops, moved = FlopCounterMode(display=False), BytesCounter()
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), flops, moved:
        model.fast.forward(net, x, t)
    return flops.get_total_flops() // batch, moved.bytes // batch


def limits(model, device: str, batch: int, passes: int, img_s: float, ceil: dict) -> dict:
    """What bounds a step of `batch` images costing `passes` forwards each (training ~3: the backward
    pass costs about twice the forward in FLOPs and bytes): a roofline ESTIMATE and how close img_s
    comes. Eager bytes overstate what a fused (compiled) graph moves, so a memory-bound estimate is
    pessimistic and the fraction can exceed 1; the compute bound is exact in FLOPs."""
    flops, moved = forward_cost(model, device, batch)
    out = {"forward_mb_per_image_eager": moved / 2**20, **roofline(passes * flops, passes * moved, ceil)}
    out["roofline_estimate_img_s"] = 1 / out.pop("min_seconds")
    out["fraction_of_estimate"] = img_s / out["roofline_estimate_img_s"]
    out["fraction_of_compute_bound"] = img_s * out.pop("compute_seconds")
    return out


def card_ceilings(device: str, quick: bool) -> dict:
    """The card's measured ceilings, in this run: bf16 matmul TFLOP/s (square n x n x n) and memory
    bandwidth GB/s (a copy: each byte read once and written once)."""
    n, mib = (1024, 64) if quick else (8192, 4096)
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    mm = seconds_per_call(lambda: a @ b, 3 if quick else 50, 2, device)
    src = torch.empty(mib * 2**20, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    cp = seconds_per_call(lambda: dst.copy_(src), 3 if quick else 50, 2, device)
    return {"bf16_matmul_tflops": 2 * n**3 / mm / 1e12, "copy_gb_s": 2 * src.numel() / cp / 1e9}


def roofline(flops: float, moved: float, ceil: dict) -> dict:
    """Lower bounds on the time of work of `flops` and `moved` bytes on this card: compute-bound when
    flops/bytes exceeds the card's ridge point (peak FLOP/s over bandwidth)."""
    t_compute = flops / (ceil["bf16_matmul_tflops"] * 1e12)
    t_memory = moved / (ceil["copy_gb_s"] * 1e9)
    return {
        "intensity_flop_per_byte": flops / moved,
        "ridge_flop_per_byte": ceil["bf16_matmul_tflops"] * 1e3 / ceil["copy_gb_s"],
        "bound": "compute" if t_compute >= t_memory else "memory",
        "compute_seconds": t_compute,
        "min_seconds": max(t_compute, t_memory),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batches", default="128,512", help="training batch sizes")
    p.add_argument("--sample-batch", type=int, default=128)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5, help="untimed calls first (compilation, autotuning)")
    p.add_argument("--no-compile", action="store_true", help="thermodiff without torch.compile")
    p.add_argument("--quick", action="store_true", help="smoke test: batch 2, 2 iterations")
    p.add_argument("--out", help="JSON path (default bench/results/throughput[_quick].json)")
    a = p.parse_args()
    if a.quick:
        a.batches, a.sample_batch, a.iters, a.warmup = "2", 2, 2, 1
    device, cuda = a.device, a.device.startswith("cuda")
    torch.manual_seed(0)
    compile_ = not a.no_compile
    kind = torch.device(device).type

    def autocast():
        return torch.autocast(kind, dtype=torch.bfloat16)

    unet, sched, dver = diffusers_model(device)
    model = thermodiff_model(device, fast=True, compile_=compile_)
    ema = [e.detach().clone() for e in trainable(model)]
    ceil = card_ceilings(device, a.quick)
    flops, _ = forward_cost(model, device, 1)
    res = {
        "device": torch.cuda.get_device_name() if cuda else "cpu",
        "torch": torch.__version__,
        "diffusers": dver,
        "precision": f"bf16 autocast ({kind})",
        "thermodiff_fast_path": {"channels_last": True, "compile": compile_, "cuda_graphs": cuda},
        "params": {
            k: sum(p.numel() for p in m.parameters())
            for k, m in (("thermodiff", model.net), ("diffusers", unet))
        },
        "forward_gflop_per_image": flops / 1e9,
        "ceilings": ceil,
        "quick": a.quick,
        "train": {},
        "sample": {},
    }
    out = Path(a.out or Path(__file__).parent / "results" / f"throughput{'_quick' * a.quick}.json")

    def save() -> None:  # after every phase: a run cut short keeps what it measured
        write_json(out, res)

    pool = torch.rand(4 * max(int(b) for b in a.batches.split(",")), *SHAPE, device=device) * 2 - 1
    d_opt = torch.optim.AdamW(unet.parameters(), lr=1e-4)  # diffusers' example: plain AdamW
    t_opt = adamw(trainable(model), lr=1e-4, weight_decay=0.0)  # fused on a GPU
    net = model.fast.compiled(model.net)
    for b in (int(s) for s in a.batches.split(",")):
        unet.train()
        model.net.train()
        g = torch.Generator(device).manual_seed(0)
        steps = {
            "diffusers": diffusers_train_step(unet, sched, d_opt, pool, b, g, autocast),
            "thermodiff_eps": thermodiff_eps_step(model, net, t_opt, pool, b, g),
            "thermodiff_bound": thermodiff_bound_step(model, net, t_opt, ema, pool, b, g),
        }
        row = {f"{k}_img_s": b / seconds_per_call(f, a.iters, a.warmup, device) for k, f in steps.items()}
        for k in ("eps", "bound"):
            row[f"ratio_{k}"] = row[f"thermodiff_{k}_img_s"] / row["diffusers_img_s"]
            row[f"thermodiff_{k}_tflops"] = 3 * flops * row[f"thermodiff_{k}_img_s"] / 1e12
        row["limits"] = limits(model, device, b, 3, row["thermodiff_bound_img_s"], ceil)  # fwd + 2x bwd
        res["train"][str(b)] = row
        save()
    sb, n_steps = a.sample_batch, a.iters * 5
    d_ms = diffusers_sample_ms(unet, sched, sb, n_steps, a.warmup, device, autocast)
    t_ms, captured = thermodiff_sample_ms(model, sb, n_steps, a.warmup, device)
    res["sample"][str(sb)] = {
        "diffusers_ms_per_step": d_ms,
        "thermodiff_ms_per_step": t_ms,
        "ratio": d_ms / t_ms,
        "thermodiff_tflops": flops * sb / (t_ms / 1e3) / 1e12,
        "thermodiff_cuda_graph_captured": captured,
        "limits": limits(model, device, sb, 1, sb / (t_ms / 1e3), ceil),
    }
    save()
    res["fast_vs_plain"] = fast_vs_plain(model, device, sb)  # the sampling batch: no recompilation
    res["targets"] = {k: _target(res, k, v) for k, v in TARGETS.items()}
    save()
    print(table(res))
    print(f"wrote {out}")


def _target(res: dict, key: str, need: float) -> dict:
    """thermodiff / diffusers against the issue's factor; met is None where that batch was not run."""
    kind, b = key.split("_")
    row, out = res[kind].get(b, {}), {"need": need}
    for name in ["ratio"] if kind == "sample" else ["ratio_eps", "ratio_bound"]:
        out[name] = r = row.get(name)
        out[name.replace("ratio", "met")] = None if r is None else r >= need
    return out


def _graph_missing(res: dict, row: dict) -> bool:
    return "cuda" in res["precision"] and not row["thermodiff_cuda_graph_captured"]


def table(res: dict) -> str:
    lines = [
        f"{res['device']}, {res['precision']}, torch {res['torch']}, diffusers {res['diffusers']}",
        f"params: thermodiff {res['params']['thermodiff']:,}  diffusers {res['params']['diffusers']:,};"
        f"  forward {res['forward_gflop_per_image']:.2f} GFLOP/image",
        f"{'training':<10}{'batch':>6}{'diffusers':>12}{'td eps':>10}{'td bound':>10}"
        f"{'x eps':>8}{'x bound':>9}{'TFLOP/s eps':>13}{'bound':>8}   (images/s)",
    ]
    for b, r in res["train"].items():
        lines.append(
            f"{'':<10}{b:>6}{r['diffusers_img_s']:>12.1f}{r['thermodiff_eps_img_s']:>10.1f}"
            f"{r['thermodiff_bound_img_s']:>10.1f}{r['ratio_eps']:>8.2f}{r['ratio_bound']:>9.2f}"
            f"{r['thermodiff_eps_tflops']:>13.1f}{r['thermodiff_bound_tflops']:>8.1f}"
        )
    for b, r in res["sample"].items():
        lines.append(
            f"{'sampling':<10}{b:>6}{r['diffusers_ms_per_step']:>12.2f}{r['thermodiff_ms_per_step']:>10.2f}"
            f"{'':>10}{r['ratio']:>8.2f}{'':>9}{r['thermodiff_tflops']:>13.1f}   (ms per reverse step"
            + ("; NO CUDA graph" if _graph_missing(res, r) else "")
            + ")"
        )
    c = res["ceilings"]
    lines.append(
        f"card, measured: {c['bf16_matmul_tflops']:.0f} TFLOP/s bf16 matmul, {c['copy_gb_s']:.0f} GB/s copy;"
        f" per image: forward FLOPs/bytes (eager bf16) -> roofline estimate, thermodiff's share of it"
    )
    rows = [("training", b, r["limits"], r["thermodiff_bound_img_s"]) for b, r in res["train"].items()]
    rows += [("sampling", b, r["limits"], None) for b, r in res["sample"].items()]
    for name, b, lim, _ in rows:
        lines.append(
            f"{'limits':<10}{b:>6}  {name}: {lim['forward_mb_per_image_eager']:.1f} MB/image,"
            f" {lim['intensity_flop_per_byte']:.0f} FLOP/byte (ridge {lim['ridge_flop_per_byte']:.0f}):"
            f" {lim['bound']}-bound by eager bytes, roofline estimate {lim['roofline_estimate_img_s']:.0f}"
            f" images/s, reached {100 * lim['fraction_of_estimate']:.0f}%"
            f" ({100 * lim['fraction_of_compute_bound']:.0f}% of the bf16 matmul peak)"
        )
    f = res["fast_vs_plain"]
    lines.append(
        f"fast vs plain (rel. RMS, tol {f['tolerance']}): raw {f['raw_output_rel_rms']:.2e}  sampler mean "
        f"{f['sampler_mean_rel_rms']:.2e}  K {f['bound_K_rel_rms']:.2e}  -> {'ok' if f['ok'] else 'FAIL'}"
    )
    met = ", ".join(
        f"{k} >= {v['need']}x: "
        + (f"{v['met']}" if "met" in v else f"eps {v['met_eps']} bound {v['met_bound']}")
        for k, v in res["targets"].items()
    )
    lines.append(
        f"targets: {met}" + ("   [--quick: smoke test, numbers mean nothing]" if res["quick"] else "")
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
