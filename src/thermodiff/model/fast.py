"""The GPU fast path: bf16 autocast of the network, channels-last memory, a fused
optimiser, torch.compile, and CUDA graphs for fixed-shape network calls (the reverse loop).

Everything here acts on CUDA tensors only, unless train.fast_cpu asks for bf16, channels-last and
torch.compile on a CPU too (CUDA graphs stay CUDA-only): by default a CPU call runs the network exactly
as before, so the CPU path is unchanged and stays deterministic. The bound itself is never autocast: the
network runs in bf16 and its raw output goes back to float64 in the reverse map.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from thermodiff.diffusion.steps import Step

PRECISIONS = ("fp32", "bf16")


def _device(module_or_tensor: nn.Module | Tensor) -> torch.device | None:
    if isinstance(module_or_tensor, Tensor):
        return module_or_tensor.device
    p = next(module_or_tensor.parameters(), None)
    return None if p is None else p.device


@dataclass
class FastPath:
    """How a network is called on a GPU (train.precision, channels_last, compile, cuda_graphs)."""

    precision: str = "fp32"  # fp32 | bf16: autocast of the network's forward (and backward)
    channels_last: bool = False  # 4-D inputs and conv weights in NHWC
    compile: bool = False  # torch.compile of the network
    cuda_graphs: bool = False  # graphed_fn: replay a captured call per input shape (no grad only)
    cpu: bool = False  # apply precision, channels_last and compile on a CPU as well (train.fast_cpu)
    _compiled: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_config(cls, train_cfg) -> FastPath:
        return cls(
            precision=getattr(train_cfg, "precision", "fp32"),
            channels_last=getattr(train_cfg, "channels_last", False),
            compile=getattr(train_cfg, "compile", False),
            cuda_graphs=getattr(train_cfg, "cuda_graphs", False),
            cpu=getattr(train_cfg, "fast_cpu", False),
        )

    def applies(self, module_or_tensor: nn.Module | Tensor) -> bool:
        """Whether the switches act on this network or tensor: on CUDA, or on a CPU with fast_cpu."""
        device = _device(module_or_tensor)
        return device is not None and (device.type == "cuda" or (self.cpu and device.type == "cpu"))

    def autocast(self, x: Tensor):
        """bf16 autocast for inputs the fast path applies to when precision = bf16; otherwise a null
        context. The weight cast cache is off so that the context may be used inside CUDA-graph capture."""
        if self.precision == "bf16" and self.applies(x):
            return torch.autocast(x.device.type, dtype=torch.bfloat16, cache_enabled=False)
        return contextlib.nullcontext()

    def forward(self, net: nn.Module, x: Tensor, t: Tensor) -> Tensor:
        """net(x, t); on CUDA (or with fast_cpu) in the configured memory format and precision."""
        if not self.applies(x):
            return net(x, t)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with self.autocast(x):
            return net(x, t)

    def prepare(self, net: nn.Module) -> nn.Module:
        """Convert a CUDA network's weights to channels-last (in place); a CPU network is returned as is
        unless fast_cpu."""
        if self.channels_last and self.applies(net):
            net.to(memory_format=torch.channels_last)
        on_cuda = getattr(_device(net), "type", None) == "cuda"
        if on_cuda and (self.precision == "bf16" or self.compile or self.channels_last):
            torch.backends.cudnn.benchmark = True
        return net

    def compiled(self, net: nn.Module) -> nn.Module:
        """torch.compile(net) when compile is on and the fast path applies to net (cached per module)."""
        if not (self.compile and self.applies(net)):
            return net
        key = id(net)
        if key not in self._compiled:
            self._compiled[key] = (net, torch.compile(net, dynamic=False))
        return self._compiled[key][1]

    def graphed_fn(self, fn: Callable[[Tensor, Tensor], Step]) -> Callable[[Tensor, Tensor], Step]:
        """fn itself, or (cuda_graphs on) a GraphedFn that replays it on CUDA inputs without grad."""
        return GraphedFn(fn) if self.cuda_graphs and torch.cuda.is_available() else fn


def adamw(params: list[Tensor], lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW; the fused kernel when every parameter lives on one kind of device, a GPU or the CPU (on a
    CPU it halves the optimiser's time per step beside the per-tensor loop: many small tensors)."""
    fused = bool(params) and len(kinds := {p.device.type for p in params}) == 1 and kinds <= {"cpu", "cuda"}
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=fused)


def load_optimizer_state(opt: torch.optim.Optimizer, state: dict) -> None:
    """opt.load_state_dict(state) keeping this optimiser's own kernel choice (fused / foreach), so a
    checkpoint written on a GPU resumes on a CPU and vice versa."""
    keep = [{k: g.get(k) for k in ("fused", "foreach")} for g in opt.param_groups]
    if len(keep) == len(state["param_groups"]):  # else load_state_dict reports the mismatch
        groups = [{**saved, **own} for saved, own in zip(state["param_groups"], keep, strict=True)]
        state = {**state, "param_groups": groups}  # the step counters then go where fused wants them
    opt.load_state_dict(state)
    for group in opt.param_groups:  # load_state_dict takes any shapes; the first step would fail
        for p in group["params"]:
            for name, v in opt.state.get(p, {}).items():
                if name == "step" and not float(v) >= 0:
                    raise ValueError(f"optimizer step count {float(v)}")
                if torch.is_tensor(v) and v.dim() > 0 and v.shape != p.shape:
                    raise ValueError(
                        f"optimizer {name} of shape {tuple(v.shape)} for a {tuple(p.shape)} weight"
                    )


class GraphedFn:
    """(x, t) -> a step (steps.py), replayed from a CUDA graph captured once per (shape, dtype) of x.

    For the fixed-shape reverse loop: t's values change from step to step but live in a static
    tensor, so one graph serves all T steps. CPU inputs, or calls with grad enabled, run eagerly;
    a failed capture warns once and falls back to eager for that shape."""

    def __init__(self, fn: Callable[[Tensor, Tensor], Step], warmup: int = 3):
        self.fn = fn
        self.warmup = warmup
        self.graphs: dict[tuple, tuple | None] = {}

    def __call__(self, x: Tensor, t: Tensor) -> Step:
        if not x.is_cuda or torch.is_grad_enabled():
            return self.fn(x, t)
        key = (tuple(x.shape), x.dtype, tuple(t.shape), t.dtype, x.device)
        if key not in self.graphs:
            self.graphs[key] = self._capture(x, t)
        entry = self.graphs[key]
        if entry is None:
            return self.fn(x, t)
        static_x, static_t, out, graph = entry
        static_x.copy_(x)
        static_t.copy_(t)
        graph.replay()
        return out.map(torch.clone)  # the graph's static outputs are overwritten by the next replay

    def _capture(self, x: Tensor, t: Tensor) -> tuple | None:
        static_x, static_t = x.clone(), t.clone()
        try:
            side = torch.cuda.Stream(device=x.device)
            side.wait_stream(torch.cuda.current_stream(x.device))
            with torch.cuda.stream(side):
                for _ in range(self.warmup):  # cuDNN autotuning, compilation, allocator warm-up
                    self.fn(static_x, static_t)
            torch.cuda.current_stream(x.device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                out = self.fn(static_x, static_t)
        except Exception as e:  # noqa: BLE001 - any capture failure: run this shape eagerly
            warnings.warn(
                f"CUDA graph capture failed ({type(e).__name__}: {e}); running eagerly", stacklevel=2
            )
            torch.cuda.synchronize(x.device)
            return None
        return static_x, static_t, out, graph
