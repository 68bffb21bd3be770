"""Memory asked for is estimated before it is allocated (model/memory.py), and an allocation that fails
anyway is named at the CLI: one line, exit 2, nothing written. The machine's room is mocked (a fake
/proc/meminfo and cgroup), so nothing large is ever allocated here."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import thermodiff as td
from thermodiff.cli.main import main
from thermodiff.config import load_toml
from thermodiff.errors import ResourceError
from thermodiff.model import memory
from thermodiff.model.assemble import build_model, raw_width
from thermodiff.nets import build_net

GiB = 2**30


def _fake_machine(tmp_path: Path, monkeypatch, available: int, swap: int = 0, cgroup=None) -> None:
    """/proc/meminfo saying `available` bytes (+ swap), and a cgroup v2 (limit, usage) or none."""
    info = tmp_path / "meminfo"
    info.write_text(
        f"MemTotal:       {4 * available // 1024} kB\nMemAvailable:   {available // 1024} kB\n"
        f"SwapFree:       {swap // 1024} kB\n"
    )
    monkeypatch.setattr(memory, "MEMINFO", info)
    v2 = tmp_path / "cgroup"
    v2.mkdir(exist_ok=True)
    if cgroup is not None:
        (v2 / "memory.max").write_text(f"{cgroup[0]}\n")
        (v2 / "memory.current").write_text(f"{cgroup[1]}\n")
    monkeypatch.setattr(memory, "CGROUP_V2", v2)
    monkeypatch.setattr(memory, "CGROUP_V1", tmp_path / "no-v1")


def test_available_memory_reads_meminfo_and_the_cgroup(tmp_path: Path, monkeypatch) -> None:
    _fake_machine(tmp_path, monkeypatch, 8 * GiB, swap=GiB)
    assert memory.available_bytes() == 9 * GiB  # MemAvailable + SwapFree
    _fake_machine(tmp_path, monkeypatch, 8 * GiB, cgroup=("max", GiB))
    assert memory.available_bytes() == 8 * GiB  # no cgroup limit
    _fake_machine(tmp_path, monkeypatch, 8 * GiB, cgroup=(3 * GiB, GiB))
    assert memory.available_bytes() == 2 * GiB  # the cgroup's limit less its usage


def test_bytes_per_example_of_a_known_network() -> None:
    """10 -> 1000 -> tanh -> 1000 -> tanh -> 10, float32. Without grad the most held at once is one
    tanh's input and output (2 x 1000 floats = 8000 bytes per example); with grad, what autograd keeps:
    the input (10) and both tanh outputs (each also the next layer's input, counted once): 8040."""
    net = nn.Sequential(nn.Linear(10, 1000), nn.Tanh(), nn.Linear(1000, 1000), nn.Tanh(), nn.Linear(1000, 10))

    def run(b: int):
        return net(torch.zeros(b, 10))

    assert memory.bytes_per_example(run) == 8000
    assert memory.bytes_per_example(run, grad=True) == 8040


def _mlp_parameters(d: int, fourier: int, embed: int, hidden: int, layers: int, out: int) -> int:
    """nets/mlp.py's residual MLP: input layer, time embedding (2 layers), 2 linears and a LayerNorm
    per block, output layer; weights plus biases."""
    h = hidden
    return (
        (d + 2 * fourier + 1) * h
        + (embed + 1) * h
        + (h + 1) * h
        + layers * (2 * (h + 1) * h + 2 * h)
        + (h + 1) * out
    )


def test_the_meta_count_is_the_networks(tmp_path: Path, monkeypatch) -> None:
    """The parameters counted on the meta device are the real network's (a small one, built for real)
    and the architecture's count; the need is 5 copies of them plus a batch's activations."""
    cfg = load_toml("swiss_roll_quick", ["model.hidden=48", "model.layers=2"])
    out = raw_width(cfg, (2,))
    real = sum(p.numel() for p in build_net(cfg.model, (2,), cfg.diffusion.T, out).parameters())
    assert real == _mlp_parameters(2, 32, 64, 48, 2, out)
    need = memory.TRAINING_COPIES * 4 * real
    _fake_machine(tmp_path, monkeypatch, need - 1024)
    with pytest.raises(ResourceError, match=f"training {real:,} parameters on batches of 512"):
        memory.check_training_fits(cfg, (2,), out, "cpu")
    _fake_machine(tmp_path, monkeypatch, need + 512 * 100_000)  # room for 100 kB per example
    memory.check_training_fits(cfg, (2,), out, "cpu")


def test_the_issues_network_is_refused_before_it_is_built(tmp_path: Path, monkeypatch, capsys) -> None:
    """`train swiss_roll_quick --set model.hidden=65536 --set model.layers=1000` (inside the documented
    ranges): 8.6e12 parameters, 156 TiB with gradients, AdamW's moments and the EMA; one line naming the
    need and the room, exit 2, no run directory."""
    _fake_machine(tmp_path, monkeypatch, 20 * GiB)
    out = tmp_path / "r"
    argv = ["train", "swiss_roll_quick", "--set", "model.hidden=65536", "--set", "model.layers=1000"]
    assert main([*argv, "--out", str(out), "--quiet", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    count = _mlp_parameters(2, 32, 64, 65536, 1000, raw_width(load_toml("swiss_roll_quick"), (2,)))
    assert err.count("\n") == 1 and f"training {count:,} parameters" in err, err
    assert "156.3 TiB" in err and "cpu has 20.0 GiB available" in err, err
    assert not out.exists()


def test_sampling_needs_three_states_per_example_beside_the_network(tmp_path: Path, monkeypatch) -> None:
    """n chains of shape (2,) hold at least 3 float64 states each (48 bytes) beside what the network
    holds; a model_fn without a network (the reverse step x_{t-1} ~ N(x_t, 1)) holds nothing more, so
    48 n bytes is exactly the line between refused (naming n) and drawn."""
    from conftest import make_tiny_cfg

    from thermodiff.diffusion.steps import GaussianStep

    kernel = build_model(make_tiny_cfg("diffusion.variance=learned"), (2,)).kernel()

    def fn(x, t):
        return GaussianStep(x, torch.zeros_like(x))

    n = 2**17  # 48 n bytes: a whole number of kB, as meminfo counts
    _fake_machine(tmp_path, monkeypatch, 48 * n - 1024)
    with pytest.raises(
        ResourceError, match="sampling 131072 examples of shape \\(2,\\) needs at least 6.0 MiB"
    ):
        td.sample(kernel, fn, (2,), n)
    _fake_machine(tmp_path, monkeypatch, 48 * n)
    assert td.sample(kernel, fn, (2,), n).shape == (n, 2)


def test_a_network_adds_its_activations(tmp_path: Path, monkeypatch) -> None:
    """With the tiny MLP (32 units) the need per example is more than the states' 48 bytes: what the
    network holds is counted too."""
    from conftest import make_tiny_cfg

    model = build_model(make_tiny_cfg("diffusion.variance=learned"), (2,))
    kernel = model.kernel()
    _fake_machine(tmp_path, monkeypatch, 48 * 1000 + 1024)
    with pytest.raises(ResourceError, match="sampling 1000 examples"):
        td.sample(kernel, model.model_fn(kernel), (2,), 1000)


def test_a_model_fn_is_probed_once_per_shape() -> None:
    """The probe (batches of 1 and 2) runs once per model_fn and shape, not at every sample() call (sample
    --n's chunks, Parzen batches, repeated grids): activation sizes do not change with the weights."""
    from thermodiff.diffusion.steps import GaussianStep

    calls = []

    def fn(x, t):
        calls.append(x.shape[0])
        return GaussianStep(x, torch.zeros_like(x))

    memory.check_sampling_fits(fn, 10, (3,), 5)
    memory.check_sampling_fits(fn, 10, (3,), 500)
    assert calls == [1, 2]
    memory.check_sampling_fits(fn, 10, (4,), 5)
    assert calls == [1, 2, 1, 2]


def test_allocation_failures_are_named_and_other_errors_are_not(
    tmp_path: Path, run_copy, monkeypatch, capsys
):
    """torch.OutOfMemoryError and the CPU allocator's RuntimeError end in one line at the CLI; any
    other RuntimeError is a bug and keeps its traceback."""
    import thermodiff.sampling.ancestral as ancestral

    argv = ["sample", str(run_copy), "--n", "4", "--out", str(tmp_path / "s.npy")]
    for exc in (
        torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 80.00 GiB"),
        RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory"),
    ):
        monkeypatch.setattr(ancestral, "sample", _raiser(exc))
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("thermodiff: error: out of memory") and err.count("\n") == 1, err
    monkeypatch.setattr(ancestral, "sample", _raiser(RuntimeError("shapes do not match")))
    with pytest.raises(RuntimeError, match="shapes do not match"):
        main(argv)
    assert not (tmp_path / "s.npy").exists()


def _raiser(exc: BaseException):
    def fail(*args, **kwargs):
        raise exc

    return fail


@pytest.fixture
def run_copy(tiny_run: Path, tmp_path: Path) -> Path:
    import shutil

    r = tmp_path / "r"
    shutil.copytree(tiny_run, r)
    return r
