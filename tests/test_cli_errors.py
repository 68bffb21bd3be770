"""Bad input ends with one line `thermodiff: error: ...` on stderr, a non-zero exit code, no traceback
and no new or changed file (DESIGN.md 3, 4). The CLI runs in a subprocess so that the exit code and
stderr are real. Checkpoint loading never unpickles arbitrary objects (weights_only=True)."""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import make_tiny_cfg
from PIL import Image

from thermodiff.errors import CheckpointError
from thermodiff.run.checkpoint import latest_checkpoint, load_checkpoint

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}

# `python -m thermodiff` costs a torch import (1-3 s) per call. The runner below imports torch once in
# one real interpreter process, then serves each request by os.fork(): the child is a separate
# process that runs `python -m thermodiff ARGS` via runpy, with its own fds 1 and 2 redirected to
# files and its real exit status returned, an escaping exception printed as the interpreter would.
RUNNER = r"""
import json, os, runpy, sys, traceback
import torch, thermodiff.cli, thermodiff.training.train  # warm imports
import thermodiff.evaluation.heldout, thermodiff.run.load
for line in sys.stdin:
    req = json.loads(line)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.chdir(req["cwd"])
            for fd, name in ((1, "out"), (2, "err")):
                f = os.open(req[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
                os.dup2(f, fd)
            sys.argv = ["thermodiff", *req["args"]]
            try:
                runpy.run_module("thermodiff", run_name="__main__", alter_sys=True)
                code = 0
            except SystemExit as e:
                if e.code is None or isinstance(e.code, int):
                    code = e.code or 0
                else:
                    print(e.code, file=sys.stderr)
            except BaseException:
                traceback.print_exc()
        finally:
            sys.stdout.flush(); sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    print(json.dumps(os.waitstatus_to_exitcode(status)), flush=True)
"""


class CliRunner:
    def __init__(self, scratch: Path):
        self.scratch = scratch
        self.proc = subprocess.Popen(
            [sys.executable, "-c", RUNNER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=ENV, text=True
        )

    def __call__(self, *args: str, cwd: Path) -> subprocess.CompletedProcess:
        out, err = self.scratch / "stdout", self.scratch / "stderr"
        req = {"args": list(args), "cwd": str(cwd), "out": str(out), "err": str(err)}
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        rc = json.loads(self.proc.stdout.readline())
        return subprocess.CompletedProcess(list(args), rc, out.read_text(), err.read_text())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def run_cli(tmp_path_factory: pytest.TempPathFactory):
    if not hasattr(os, "fork"):
        pytest.skip("the forking CLI runner needs os.fork")
    runner = CliRunner(tmp_path_factory.mktemp("cli-io"))
    yield runner
    runner.close()


def run_cli_subprocess(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The plain way: a fresh `python -m thermodiff` (used for a few cases, to check the runner)."""
    return subprocess.run(
        [sys.executable, "-m", "thermodiff", *args],
        cwd=cwd,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )


def snapshot(root: Path) -> dict[str, str]:
    """Every file and directory under root (hidden ones too) with a hash of its content."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        out[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def assert_one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode != 0, proc
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("thermodiff: error:"), proc.stderr
    return lines[0]


# --- train: bad configs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args,mentions",
    [
        (["train", "missing/nope.toml"], "nope.toml"),
        (["train", "no_such_bundled_config"], "no_such_bundled_config"),
        (["train", "swiss_roll", "--set", "diffusion.T=1"], "diffusion.T"),
        (["train", "swiss_roll", "--set", "train.ema=1.5"], "train.ema"),
        (["train", "swiss_roll", "--set", "diffusion.schedule=foo"], "diffusion.schedule"),
        (["train", "swiss_roll", "--set", "train.steps=abc"], "train.steps"),
        (["train", "swiss_roll", "--set", "train.no_such_field=1"], "no_such_field"),
        (["train", "swiss_roll", "--set", "nosection"], "nosection"),
        (["train", "swiss_roll", "--set", "diffusion.first_step=learned"], "first_step"),
        (["train", "bad.toml"], "bad.toml"),
        (
            [
                "train",
                "dead_leaves",
                "--set",
                "data.name=image_folder",
                "--set",
                "data.path=flat",
                "--set",
                "data.n_test=2",
            ],
            "same value",
        ),
        (
            ["train", "swiss_roll", "--set", "data.n_train=100", "--set", "train.steps=2.5", "--quiet"],
            "train.steps",
        ),
    ],
)
def test_train_config_errors(run_cli, tmp_path: Path, args: list[str], mentions: str) -> None:
    """Each names the offending file or field; nothing is written (the default --out is under cwd)."""
    (tmp_path / "bad.toml").write_text("[train\nsteps = = 3\n")
    (tmp_path / "flat").mkdir()
    for i in range(4):  # all black: nothing sets the scale to unit variance
        Image.new("L", (8, 8)).save(tmp_path / "flat" / f"{i}.png")
    before = snapshot(tmp_path)
    line = assert_one_line_error(run_cli(*args, cwd=tmp_path))
    assert mentions in line
    assert snapshot(tmp_path) == before


# --- evaluate: missing and corrupt run directories --------------------------------------------------


def _weights(run: Path) -> Path:
    return latest_checkpoint(run) / "weights.safetensors"


def _garbage_weights(run: Path) -> None:
    """A plausible 8-byte header length followed by bytes that are not a safetensors header."""
    _weights(run).write_bytes(b"\x20" + b"\x00" * 7 + b"this is not a safetensors header" + b"\xff" * 4096)


def _truncated_weights(run: Path) -> None:
    data = _weights(run).read_bytes()
    _weights(run).write_bytes(data[: len(data) // 2])


def _garbage_meta(run: Path) -> None:
    (latest_checkpoint(run) / "meta.json").write_text("{not json at all")


def _mismatched_config(run: Path) -> None:
    """model.hidden changed (32 -> 48) in both config files: the weights no longer fit the network."""
    meta_path = latest_checkpoint(run) / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["config"]["model"]["hidden"] = 48
    meta_path.write_text(json.dumps(meta))
    cfg = json.loads((run / "config.json").read_text())
    cfg["model"]["hidden"] = 48
    (run / "config.json").write_text(json.dumps(cfg))


def _missing_latest(run: Path) -> None:
    (run / "checkpoints" / "LATEST").unlink()


def _missing_weight(run: Path) -> None:
    """A valid safetensors file that lacks the EMA schedule."""
    from safetensors.torch import load_file, save_file

    tensors = load_file(_weights(run))
    del tensors["ema.schedule.betas"]
    save_file(tensors, _weights(run))


def _nan_weight(run: Path) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(_weights(run))
    tensors["ema.schedule.betas"][3] = float("nan")
    save_file(tensors, _weights(run))


def _beta_above_one(run: Path) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(_weights(run))
    tensors["ema.schedule.betas"][3] = 1.5  # a learned schedule would clamp it, silently
    save_file(tensors, _weights(run))


def _nan_shift(run: Path) -> None:
    path = latest_checkpoint(run) / "meta.json"
    meta = json.loads(path.read_text())
    meta["scaling"]["shift"][0] = float("nan")
    path.write_text(json.dumps(meta))


@pytest.mark.parametrize(
    "damage",
    [
        _garbage_weights,
        _truncated_weights,
        _garbage_meta,
        _mismatched_config,
        _missing_latest,
        _missing_weight,
        _nan_weight,
        _beta_above_one,
        _nan_shift,
    ],
)
def test_evaluate_on_a_damaged_run(run_cli, tiny_run: Path, tmp_path: Path, damage) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    damage(run)
    before = snapshot(tmp_path)
    assert_one_line_error(run_cli("evaluate", str(run), "--json", "--n", "20", cwd=tmp_path))
    assert snapshot(tmp_path) == before  # in particular no eval.json


def test_evaluate_on_a_missing_run(run_cli, tmp_path: Path) -> None:
    line = assert_one_line_error(run_cli("evaluate", str(tmp_path / "nope"), cwd=tmp_path))
    assert "nope" in line
    assert snapshot(tmp_path) == {}


# --- train_state.pt is loaded with weights_only=True -----------------------------------------------------


class Payload:
    """Unpickling this calls Path.touch(marker): harmless, but proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def _plant_payload(run: Path, marker: Path) -> Path:
    ckpt = latest_checkpoint(run)
    torch.save({"optimizer": Payload(marker), "generator": torch.zeros(3)}, ckpt / "train_state.pt")
    return ckpt


def test_train_state_with_a_pickled_object_is_refused(tiny_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    marker = tmp_path / "executed"
    ckpt = _plant_payload(run, marker)
    with pytest.raises(CheckpointError, match="train_state.pt"):
        load_checkpoint(ckpt, with_train_state=True)
    assert not marker.exists()
    # control: the payload is live, an unrestricted unpickler would have run it
    torch.load(ckpt / "train_state.pt", weights_only=False)
    assert marker.exists()


def test_resume_with_a_pickled_object_fails_cleanly(run_cli, tiny_run: Path, tmp_path: Path) -> None:
    """`train --resume` on such a run: one error line, the payload not executed, nothing written."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    marker = tmp_path / "executed"
    _plant_payload(run, marker)
    before = snapshot(tmp_path)
    args = ("train", "swiss_roll", "--out", str(run), "--resume", "--set", "train.steps=40", "--quiet")
    line = assert_one_line_error(run_cli(*args, cwd=tmp_path))
    assert "train_state.pt" in line
    assert not marker.exists()
    assert snapshot(tmp_path) == before


def test_runner_agrees_with_a_fresh_interpreter(run_cli, tmp_path: Path) -> None:
    """The forking runner reports the same exit code and stderr as `python -m thermodiff`, and shows
    what it would have to catch: argparse's error, with exit code 2."""
    args = ("train", "swiss_roll", "--set", "train.ema=1.5")
    fresh, forked = run_cli_subprocess(*args, cwd=tmp_path), run_cli(*args, cwd=tmp_path)
    assert (forked.returncode, forked.stderr, forked.stdout) == (fresh.returncode, fresh.stderr, fresh.stdout)
    usage = run_cli("evaluate", cwd=tmp_path)  # argparse's own errors are one line too
    assert "required: run" in assert_one_line_error(usage) and usage.returncode == 2


@pytest.mark.parametrize("written", ["with_device", "before_device_was_saved"])
def test_resume_on_another_device_type_fails_cleanly(
    run_cli, tiny_run: Path, tmp_path: Path, written: str
) -> None:
    """A run whose random stream was saved on a GPU cannot continue exactly on a CPU (different
    generators): `train --resume` says so in one line and changes nothing, whether the state names
    its device or predates that (a 16-byte CUDA Philox state)."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    path = latest_checkpoint(run) / "train_state.pt"
    state = torch.load(path, weights_only=True)
    assert state["generator_device"] == "cpu"
    if written == "with_device":
        state["generator_device"] = "cuda"
    else:
        del state["generator_device"]
        state["generator"] = torch.zeros(16, dtype=torch.uint8)
    torch.save(state, path)
    before = snapshot(tmp_path)
    args = ("train", "swiss_roll", "--out", str(run), "--resume", "--set", "train.steps=40", "--quiet")
    line = assert_one_line_error(run_cli(*args, cwd=tmp_path))
    want = ("saved on cuda", "--device cuda") if written == "with_device" else ("does not fit a cpu",)
    assert all(w in line for w in want), line
    assert snapshot(tmp_path) == before


def test_parameterization_must_fit_the_kernel() -> None:
    """eps is a Gaussian parameterization and offset a binomial one: each is refused for the other
    kernel with a message naming the field; paper fits both."""
    from thermodiff.config import load_toml
    from thermodiff.errors import ConfigError

    for config, bad in (("heartbeat", "eps"), ("swiss_roll", "offset"), ("swiss_roll", "bernoulli")):
        with pytest.raises(ConfigError, match="diffusion.parameterization"):
            load_toml(config, [f"diffusion.parameterization={bad}"])
    for config, good in (("heartbeat", "offset"), ("heartbeat", "paper"), ("swiss_roll", "eps")):
        assert load_toml(config, [f"diffusion.parameterization={good}"]).diffusion.parameterization == good


# --- resume: a damaged or mismatched run is refused before anything changes --------------------------


def _meta_edit(**fields):
    def damage(run: Path) -> None:
        path = latest_checkpoint(run) / "meta.json"
        meta = json.loads(path.read_text())
        meta.update(fields)
        path.write_text(json.dumps(meta))

    damage.__name__ = f"meta_{'_'.join(fields)}"
    return damage


def _meta_is_a_list(run: Path) -> None:
    (latest_checkpoint(run) / "meta.json").write_text("[1]")


def _latest_not_text(run: Path) -> None:
    (run / "checkpoints" / "LATEST").write_bytes(b"\xff\xfe")


def _state_edit(change):
    def damage(run: Path) -> None:
        path = latest_checkpoint(run) / "train_state.pt"
        torch.save(change(torch.load(path, weights_only=True)), path)

    return damage


def _config_json(text: str):
    def damage(run: Path) -> None:
        (run / "config.json").write_text(text)

    return damage


def _moment_of_another_shape(state: dict) -> dict:
    state["optimizer"]["state"][0]["exp_avg"] = torch.zeros(3)
    return state


RESUME_DAMAGE = {
    "NaN in the weights": _nan_weight,
    "optimizer moment of another shape": _state_edit(_moment_of_another_shape),
    "negative step": _meta_edit(step=-1),
    "step not a number": _meta_edit(step="abc"),
    "config not an object": _meta_edit(config=[1]),
    "meta a list": _meta_is_a_list,
    "LATEST not text": _latest_not_text,
    "empty train state": _state_edit(lambda s: {}),
    "train state a list": _state_edit(lambda s: [1, 2]),
    "optimizer state None": _state_edit(lambda s: {**s, "optimizer": None}),
    "config.json not JSON": _config_json("{not json"),
    "config.json a list": _config_json("[]"),
}


@pytest.mark.parametrize("damage", RESUME_DAMAGE.values(), ids=RESUME_DAMAGE.keys())
def test_resume_of_a_damaged_run(run_cli, tiny_run: Path, tmp_path: Path, damage) -> None:
    """One line, and nothing changed: metrics.jsonl in particular is not truncated first."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    damage(run)
    before = snapshot(tmp_path)
    args = ("train", "swiss_roll", "--out", str(run), "--resume", "--set", "train.steps=40", "--quiet")
    assert_one_line_error(run_cli(*args, cwd=tmp_path))
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    "args,mentions",
    [
        (("train", "heartbeat", "--resume"), "data.name"),  # another experiment's config
        (("train", "swiss_roll", "--resume", "--set", "diffusion.T=99"), "diffusion.T = 99"),
        (("train", "swiss_roll"), "already holds a run"),  # fresh, without LATEST: still a run
    ],
)
def test_a_run_is_not_taken_over(run_cli, tiny_run: Path, tmp_path: Path, args, mentions: str) -> None:
    """A resume whose config names another experiment or overrides a saved value, or a fresh run
    into a directory holding checkpoints without LATEST, is refused; nothing changes."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "checkpoints" / "LATEST").unlink()
    if "--resume" in args:  # a complete run for the resume cases
        shutil.rmtree(run)
        shutil.copytree(tiny_run, run)
    before = snapshot(tmp_path)
    line = assert_one_line_error(run_cli(*args, "--out", str(run), "--quiet", cwd=tmp_path))
    assert mentions in line
    assert snapshot(tmp_path) == before


def test_a_torn_metrics_line_is_dropped_on_resume(tiny_run: Path, tmp_path: Path) -> None:
    """A run killed mid-write leaves half a JSON line; resume drops it and the log reads cleanly."""
    from thermodiff.training.train import train

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"step": 3')
    train(make_tiny_cfg("train.steps=40"), run, resume=True)
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [10, 20, 30, 40]


def test_outputs_that_cannot_be_written_are_refused_first(run_cli, tiny_run: Path, tmp_path: Path) -> None:
    """sample --out a directory, evals/ a file, train --out a file: one line before any work."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (tmp_path / "dir.png").mkdir()
    (run / "evals").write_text("")  # a file where evaluations go (issue 17: evals/NAME.json)
    (tmp_path / "afile").write_text("keep")
    before = snapshot(tmp_path)
    for args, mentions in (
        (("sample", str(run), "--out", str(tmp_path / "dir.png")), "is a directory"),
        (("evaluate", str(run), "--n", "20"), "evals"),
        (("train", "swiss_roll", "--out", str(tmp_path / "afile")), "is a file"),
        (("evaluate", str(run), "--n", "-5"), "--n"),
    ):
        assert mentions in assert_one_line_error(run_cli(*args, cwd=tmp_path))
    assert snapshot(tmp_path) == before


def test_checkpoint_files_have_ordinary_permissions(tiny_run: Path) -> None:
    """Every checkpoint file is readable as any file the user writes (mkstemp and safetensors: 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    for f in latest_checkpoint(tiny_run).iterdir():
        assert f.stat().st_mode & 0o777 == 0o666 & ~mask, f.name


def test_nan_weights_are_refused(run_cli, tiny_run: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    tensors = load_file(latest_checkpoint(run) / "weights.safetensors")
    name = next(k for k in tensors if k.startswith("ema.net."))
    tensors[name] = torch.full_like(tensors[name], float("nan"))
    save_file(tensors, latest_checkpoint(run) / "weights.safetensors")
    before = snapshot(tmp_path)
    for args in (("evaluate", str(run), "--n", "20"), ("sample", str(run), "--n", "4")):
        assert name in assert_one_line_error(run_cli(*args, cwd=tmp_path))
    assert snapshot(tmp_path) == before


def test_divergence_stops_training_before_a_checkpoint(tmp_path: Path) -> None:
    """lr = 100 blows the weights up within ten steps; the first log raises, no NaN checkpoint is written."""
    from thermodiff.errors import ThermodiffError
    from thermodiff.training.train import train

    with pytest.raises(ThermodiffError, match="diverged"):
        train(make_tiny_cfg("train.lr=100", "train.lr_final=0", "train.warmup=0"), tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_killed_training_leaves_a_resumable_run(tmp_path: Path, sig: int) -> None:
    """Ctrl-C or kill (torchrun's SIGTERM) mid-run: 'interrupted' on one line, exit code 130, no
    temporary file or checkpoint directory left behind, and --resume finishes the run."""
    run = tmp_path / "run"
    args = ["train", "swiss_roll", "--out", str(run), "--quiet", "--set", "train.ckpt_every=20"]
    args += ["--set", "train.log_every=20", "--set", "data.n_train=2000", "--set", "model.hidden=32"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "thermodiff", *args], env=ENV, stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 60
    while not (run / "metrics.jsonl").exists() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err.strip() == "thermodiff: interrupted", err
    assert not [p.name for p in run.rglob(".*")]  # hidden names: the atomic writes' temporaries
    resume = ("train", "swiss_roll", "--out", str(run), "--resume", "--set", "train.steps=200", "--quiet")
    cont = run_cli_subprocess(*resume, cwd=tmp_path)
    assert cont.returncode == 0, cont.stderr
    assert json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["step"] == 200


def test_resume_keeps_the_runs_own_steps(run_cli, tiny_run: Path, tmp_path: Path) -> None:
    """`train CONFIG --resume` without --set train.steps finishes the run as it was set up (30 steps
    here), not the bundled config's 8,000: no flag from training needs repeating."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    before = snapshot(tmp_path)
    done = run_cli("train", "swiss_roll", "--out", str(run), "--resume", "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert snapshot(tmp_path) == before  # nothing left to do: nothing written


def test_reproduce_checks_its_output_before_training(run_cli, tmp_path: Path) -> None:
    (tmp_path / "rp" / "eval.json").mkdir(parents=True)
    before = snapshot(tmp_path)
    line = assert_one_line_error(
        run_cli("reproduce", "swiss_roll", "--out", str(tmp_path / "rp"), cwd=tmp_path)
    )
    assert "eval.json" in line and snapshot(tmp_path) == before


def test_resume_with_a_nan_field_given_as_it_was(run_cli, tiny_run: Path, tmp_path: Path) -> None:
    """NaN ('the paper reports no K') never equals itself, yet given as the run has it, it agrees."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    cfg = json.loads((run / "config.json").read_text())
    cfg["eval"]["reference_K_bits"] = float("nan")
    (run / "config.json").write_text(json.dumps(cfg))
    nan = ("--set", "eval.reference_K_bits=nan")
    done = run_cli("train", "swiss_roll", "--out", str(run), "--resume", "--quiet", *nan, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    other = ("--set", "eval.reference_K_bits=2.35")
    line = assert_one_line_error(
        run_cli("train", "swiss_roll", "--out", str(run), "--resume", "--quiet", *other, cwd=tmp_path)
    )
    assert "reference_K_bits" in line
