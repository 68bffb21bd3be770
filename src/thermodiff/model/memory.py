"""Memory asked for, estimated before it is allocated, against what the machine has: a size that cannot
fit is refused in one line instead of failing deep inside an allocator (or, on Linux, being killed
without a word by the kernel once an overcommitted allocation is touched).

Every estimate is a lower bound (weights, gradients, optimizer state, the largest tensors a network
pass must hold at once), so a refusal is never wrong; what it misses, the CLI still names when the
allocation itself fails.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor
from torch.nn.modules.module import register_module_forward_hook

from thermodiff.errors import ResourceError, ShapeError, first_line

MEMINFO = Path("/proc/meminfo")
CGROUP_V2 = Path("/sys/fs/cgroup")
CGROUP_V1 = Path("/sys/fs/cgroup/memory")
# per parameter in training: the weight, its gradient, AdamW's two moments and the EMA copy
TRAINING_COPIES = 5
# per example in the reverse chain: x_t, the step's mean, x_{t-1} (float64; more while a step runs)
CHAIN_STATES = 3


def available_bytes(device: str | torch.device = "cpu") -> int | None:
    """Bytes a new allocation can take on `device`: a GPU's free memory (torch.cuda.mem_get_info); on
    the CPU, /proc/meminfo's MemAvailable plus SwapFree, capped by the cgroup's limit less its usage
    (v2 memory.max, v1 memory.limit_in_bytes). None where none of these can be read (no check)."""
    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type != "cpu":
        return None
    info = _meminfo()
    found = [info["MemAvailable"] + info.get("SwapFree", 0)] if "MemAvailable" in info else []
    for limit, usage in (
        (CGROUP_V2 / "memory.max", CGROUP_V2 / "memory.current"),
        (CGROUP_V1 / "memory.limit_in_bytes", CGROUP_V1 / "memory.usage_in_bytes"),
    ):
        room = _cgroup_room(limit, usage)
        if room is not None:
            found.append(room)
    return min(found) if found else None


def _meminfo() -> dict[str, int]:
    """/proc/meminfo in bytes ({} where it cannot be read)."""
    out = {}
    try:
        for line in MEMINFO.read_text().splitlines():
            key, _, value = line.partition(":")
            parts = value.split()
            if parts and parts[0].isdigit():
                out[key] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    except OSError:
        return {}
    return out


def _cgroup_room(limit: Path, usage: Path) -> int | None:
    """A cgroup's limit less its usage; None without a limit ("max", or v1's huge unset value)."""
    try:
        text, used = limit.read_text().strip(), int(usage.read_text().strip())
    except (OSError, ValueError):
        return None
    if not text.isdigit() or int(text) >= 2**60:
        return None
    return max(0, int(text) - used)


def size(n: float) -> str:
    """Bytes as a person reads them: 512 B, 3.2 GiB, 17.2 TiB."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def check_fits(need: float, what: str, device: str | torch.device = "cpu") -> None:
    """ResourceError naming `what`, the need and the room when need > available_bytes(device)."""
    room = available_bytes(device)
    if room is not None and need > room:
        raise ResourceError(
            f"{what} needs at least {size(need)} of memory; {torch.device(device).type} has "
            f"{size(room)} available: ask for less"
        )


def _bytes(tensors) -> int:
    """The storages behind a module's inputs or outputs, in bytes, each counted once."""
    found, stack = {}, [tensors]
    while stack:
        item = stack.pop()
        if isinstance(item, Tensor):
            storage = item.untyped_storage()
            found[storage._cdata] = storage.nbytes()
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
    return sum(found.values())


def _held(fn: Callable[[int], object], batch: int, grad: bool) -> tuple[list[int], int]:
    """(for each module fn(batch) calls, its inputs plus its outputs in bytes, both held when it
    returns; the bytes autograd saves for the backward pass, each storage once)."""
    held: list[int] = []
    saved: dict[int, int] = {}

    def pack(t: Tensor) -> Tensor:
        storage = t.untyped_storage()
        saved[storage._cdata] = storage.nbytes()
        return t

    hook = register_module_forward_hook(lambda module, args, out: held.append(_bytes([args, out])))
    try:
        with torch.set_grad_enabled(grad), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            fn(batch)
    finally:
        hook.remove()
    return held, sum(saved.values())


def bytes_per_example(fn: Callable[[int], object], grad: bool = False) -> int:
    """What one more example adds to what `fn(batch)` holds at once: the largest inputs plus outputs of
    one module, and with `grad` the activations autograd keeps for the backward pass. fn runs on
    batches of 1 and 2 (cheap) and the two are compared (weights saved for backward cancel); 0 if the
    two call different modules."""
    with torch.random.fork_rng(devices=[]):  # a probe draws nothing from the run's RNG
        (one, kept_one), (two, kept_two) = _held(fn, 1, grad), _held(fn, 2, grad)
    if len(one) != len(two) or not one:
        return 0
    largest = max(b - a for a, b in zip(one, two, strict=True))
    return max(0, largest, kept_two - kept_one)


def check_sampling_fits(
    model_fn: Callable[[Tensor, Tensor], object],
    T: int,
    shape: tuple[int, ...],
    n: int,
    device: str | torch.device = "cpu",
) -> None:
    """n chains of `shape` run through model_fn (x_t, t) -> step: the chain's float64 states plus, on a
    CPU, what the network holds per example, probed on batches of 1 and 2; a model_fn that cannot take
    that shape is refused there, naming it. On a GPU the probe would compile or capture graphs for two
    extra batch sizes; a failed CUDA allocation is named at the CLI instead."""
    per = CHAIN_STATES * 8 * math.prod(shape)
    if torch.device(device).type == "cpu":
        per += _probed(model_fn, T, tuple(shape), device)
    check_fits(n * per, f"sampling {n} examples of shape {tuple(shape)}", device)


# model_fn -> {(T, shape, device): bytes per example}: a network's activation sizes do not change with
# its weights, so each sampler's model_fn is probed once per shape (sample --n's chunks, Parzen batches)
_PROBES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _probed(model_fn: Callable[[Tensor, Tensor], object], T: int, shape: tuple[int, ...], device) -> int:
    """bytes_per_example of model_fn on `shape`, remembered per model_fn; ShapeError where it cannot."""
    key = (T, shape, str(device))
    try:
        known = _PROBES.setdefault(model_fn, {})
    except TypeError:  # not weakly referenceable: probed at every call
        known = {}
    if key not in known:

        def run(b: int) -> object:
            x = torch.zeros((b, *shape), dtype=torch.float64, device=device)
            return model_fn(x, torch.full((b,), T, dtype=torch.long, device=device))

        try:
            known[key] = bytes_per_example(run)
        except (RuntimeError, ValueError, IndexError) as e:  # e.g. mat1 and mat2 shapes cannot be multiplied
            raise ShapeError(
                f"the model cannot take samples of shape {tuple(shape)} ({first_line(e)})"
            ) from None
    return known[key]


def check_training_fits(cfg, shape: tuple[int, ...], out_channels: int, device: str) -> None:
    """Training cfg's registered network on data of `shape`: its parameters times TRAINING_COPIES plus a
    batch's largest activations, counted on a network built on the meta device (nothing allocated)."""
    from thermodiff.nets import NETS, build_net

    if cfg.model.net not in NETS:  # an imported class may not build on the meta device
        return
    T = cfg.diffusion.T
    with torch.device("meta"):
        net = build_net(cfg.model, tuple(shape), T, out_channels, seed=cfg.train.seed)
    params = sum(p.numel() * p.element_size() for p in net.parameters())
    count = sum(p.numel() for p in net.parameters())
    what = f"training {count:,} parameters on batches of {cfg.train.batch}"
    check_fits(TRAINING_COPIES * params, what, device)  # before the probe, which is slow for huge nets

    def run(b: int) -> object:
        with torch.device("meta"):
            return net(torch.zeros((b, *shape)), torch.full((b,), T, dtype=torch.long))

    try:
        per = bytes_per_example(run, grad=True)
    except (RuntimeError, NotImplementedError, TypeError):  # an op without a meta kernel
        per = 0
    check_fits(TRAINING_COPIES * params + cfg.train.batch * per, what, device)
