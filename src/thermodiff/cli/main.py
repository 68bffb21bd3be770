"""thermodiff's command line: the parser and the entry point; one module per command does the work."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from thermodiff import progress
from thermodiff.cli.args import WEIGHTS_HELP, check_args, show_progress
from thermodiff.cli.chain import add_chain_args
from thermodiff.cli.condition import cmd_condition
from thermodiff.cli.evaluate import cmd_evaluate
from thermodiff.cli.init import cmd_init
from thermodiff.cli.plot import cmd_plot
from thermodiff.cli.reproduce import cmd_reproduce
from thermodiff.cli.sample import cmd_sample
from thermodiff.cli.train import cmd_train
from thermodiff.errors import ThermodiffError, first_line

RUN_HELP = "a run directory written by `thermodiff train` (config.json, checkpoints/)"
DEVICE_HELP = "auto (CUDA when available), cpu, cuda or cuda:N"
THREADS_HELP = (
    "CPU threads per operation; default: 1 for vector data (small networks gain nothing from more and "
    "lose several-fold on a busy machine), else torch's choice; OMP_NUM_THREADS, when set, is respected"
)


def _common(c: argparse.ArgumentParser, quiet: bool = True) -> None:
    """--device, --threads (and --quiet) on every command."""
    c.add_argument("--device", default="auto", help=DEVICE_HELP)
    c.add_argument("--threads", type=int, metavar="N", help=THREADS_HELP)
    if quiet:
        c.add_argument(
            "--quiet", action="store_true", help="no progress bar (none either when stderr is not a terminal)"
        )


def _io(c: argparse.ArgumentParser, what: str) -> None:
    """The run, its weights and the seed of a command that samples."""
    c.add_argument("run", help=RUN_HELP)
    c.add_argument("--weights", choices=("ema", "raw"), default="ema", help=WEIGHTS_HELP)
    c.add_argument("--seed", type=int, default=0, help=f"seed of the {what}: the same seed, the same output")


def _add_condition_commands(sub) -> None:
    """The parsers of denoise, inpaint and interpolate; file formats in README (Inputs and outputs)."""
    d = _command(sub, "denoise", "denoise an observation y = x + noise (P Fig. 5)")
    _io(d, "reverse chain")
    d.add_argument(
        "--input", required=True, help="PNG (images) or .npy in data units, one example or a batch (N, ...)"
    )
    d.add_argument(
        "--noise-std", type=float, default=1.0, help="the noise's std in units of the data std; 1 = SNR 1"
    )
    d.add_argument("--add-noise", action="store_true", help="the input is clean: add the noise first")
    i = _command(sub, "inpaint", "fill the unknown pixels of an image (P Fig. 4)")
    _io(i, "reverse chain")
    i.add_argument("--input", required=True, help="PNG or .npy in data units (0..255 for 8-bit images)")
    i.add_argument("--mask", required=True, help="PNG (white = known) or .npy (1 = known), the input's shape")
    i.add_argument(
        "--schedule",
        choices=("forward", "constant"),
        default="forward",
        help="known pixels follow q(x_t | x_0) (forward) or stay clean at every step (constant, the paper's)",
    )
    for c in (d, i):
        c.add_argument("--no-clip", action="store_true", help="do not keep predicted images in 0..255")
    n = _command(sub, "interpolate", "mix two inputs through the noisy state at step t (DDPM 4.4)")
    _io(n, "forward noise and reverse chain")
    n.add_argument("--a", required=True, help="the first input: PNG or .npy holding one example")
    n.add_argument("--b", required=True, help="the second input, the same shape")
    n.add_argument("--t", type=int, help="the step to mix at (default T/2)")
    n.add_argument("--steps", type=int, default=8, help="number of mixes, lambda = 0..1")
    add_chain_args(d)
    add_chain_args(i)
    add_chain_args(n, "--chain-steps")  # --steps is the number of mixes here
    for c in (d, i, n):
        c.add_argument("--out", help="FILE.png or FILE.npy (default RUN/samples/); figure: FILE_panel.png")
        _common(c)
        c.set_defaults(func=cmd_condition)


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line like every other thermodiff error (exit code 2)."""

    def error(self, message: str):
        self.exit(2, f"thermodiff: error: {message} (see {self.prog} -h)\n")


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Every default shown, except where there is none to show (None, an off switch, an empty list)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or action.default is False or action.default == [] or not action.help:
            return action.help or ""
        return super()._get_help_string(action)


def _command(sub, name: str, help: str) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=help, description=help, formatter_class=_Help)


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; imports no torch, so that -h and argument errors answer at once."""
    from thermodiff.evaluation.experiments import EXPERIMENTS

    p = _Parser(
        prog="thermodiff",
        description="Diffusion probabilistic models (Sohl-Dickstein et al. 2015): train, evaluate the "
        "bound K in bits, sample, denoise, inpaint, interpolate, reproduce the paper's experiments.",
        formatter_class=_Help,
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = _command(sub, "train", "train a model from a config (path or bundled name)")
    t.description += (
        ". The progress bar's K is the mean one-t estimate on the last training batches with the raw"
        " weights; `evaluate` gives K on held-out data with the EMA weights (--weights)."
    )
    t.add_argument("config", help="a TOML file or a bundled config's name: swiss_roll, heartbeat, mnist, ...")
    t.add_argument(
        "--set", action="append", default=[], metavar="SECTION.FIELD=VALUE", help="override a config field"
    )
    t.add_argument("--out", help="run directory (default runs/CONFIG_NAME)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out exactly")
    _common(t)
    t.set_defaults(func=cmd_train)

    e = _command(sub, "evaluate", "the bound K on held-out data, in bits")
    e.add_argument("run", help=RUN_HELP)
    e.add_argument("--weights", choices=("ema", "raw"), default="ema", help=WEIGHTS_HELP)
    e.add_argument("--split", default="test", choices=["test", "train"], help="the examples evaluated")
    g = e.add_mutually_exclusive_group()
    g.add_argument(
        "--exact", dest="exact", action="store_true", default=None, help="all t (default: eval.exact)"
    )
    g.add_argument(
        "--stochastic", dest="exact", action="store_false", default=None, help="one random t per example"
    )
    e.add_argument("--n", type=int, help="number of examples (default: eval.n)")
    e.add_argument(
        "--draws",
        type=int,
        default=1,
        help="estimates per example, averaged (--stochastic: t; --exact: x_t per step)",
    )
    e.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    e.add_argument("--parzen", action="store_true", help="also the Parzen-window estimate (P 3.3)")
    e.add_argument("--parzen-samples", type=int, default=10_000, help="model samples for --parzen")
    e.add_argument(
        "--out",
        help="write the JSON here (overwritten); default RUN/evals/SPLIT_EXACT_nN_WEIGHTS_stepS.json, "
        "never overwritten, and RUN/eval.json when the evaluation is the config's own "
        "(test, eval.n, eval.exact, ema)",
    )
    add_chain_args(e, sampler=False)
    _common(e)
    e.set_defaults(func=cmd_evaluate)

    s = _command(sub, "sample", "draw samples to PNG or .npy")
    _io(s, "samples")
    s.add_argument("--n", type=int, default=64, help="number of samples")
    s.add_argument(
        "--out", help="FILE.png (a grid or a scatter) or FILE.npy in data units (default RUN/samples/)"
    )
    s.add_argument("--guide", type=int, metavar="CLASS", help="classifier guidance toward CLASS")
    s.add_argument("--scale", type=float, default=1.0, help="guidance gradient scale s (r = p(y|x_t)^s)")
    s.add_argument("--no-clip", action="store_true", help="images: do not keep predicted x_0 in 0..255")
    s.add_argument("--classifier", metavar="RUN", help="a noisy classifier run, for --guide")
    s.add_argument(
        "--raw", action="store_true", help=".npy of 8-bit images: the continuous values, not 0..255"
    )
    add_chain_args(s)
    _common(s)
    s.set_defaults(func=cmd_sample)
    _add_condition_commands(sub)

    n = _command(sub, "init", "write a commented starter config for a data file or image folder")
    n.add_argument("source", metavar="FILE_OR_FOLDER", help=".npy, .npz, .csv, or a folder / .zip of images")
    n.add_argument("--out", help="CONFIG.toml to write (default: SOURCE_NAME.toml here)")
    n.set_defaults(func=cmd_init)

    pl = _command(sub, "plot", "a run's figures: the training curve; for images, progressive denoising")
    _io(pl, "denoising strip")
    pl.add_argument("--out", help="folder for curve.png (and denoising.png) (default RUN/plots/)")
    _common(pl)
    pl.set_defaults(func=cmd_plot)

    r = _command(sub, "reproduce", "train + evaluate + figures for the paper's experiments")
    r.add_argument(
        "experiments",
        nargs="*",
        metavar="EXPERIMENT",
        help=f"any of {', '.join(EXPERIMENTS)} (default: all of them)",
    )
    r.add_argument(
        "--budget",
        default="quick",
        choices=["quick", "full"],
        help="quick: CPU minutes, smaller data and nets; full: the bundled configs (GPU-sized)",
    )
    r.add_argument("--out", default="runs/reproduce", help="directory (one sub-directory per experiment)")
    _common(r)
    r.set_defaults(func=cmd_reproduce)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    previous = signal.getsignal(signal.SIGTERM)
    if threading.current_thread() is threading.main_thread():  # kill (torchrun's too) = Ctrl-C: clean up
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        check_args(args)
        with progress.shown(show_progress(args)):  # bars on stderr; stdout keeps the results alone
            return args.func(args)
    except ThermodiffError as e:
        print(f"thermodiff: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a path that cannot be read or written, a full disk
        where = f": {e.filename}" if e.filename else ""
        print(f"thermodiff: error: {e.strerror or e}{where}", file=sys.stderr)
        return 2
    except (MemoryError, RuntimeError) as e:  # torch's OutOfMemoryError is a RuntimeError
        if not _out_of_memory(e):
            raise
        print(f"thermodiff: error: out of memory ({first_line(e)}): ask for less", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("thermodiff: interrupted", file=sys.stderr)
        return 130
    finally:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, previous)


def _out_of_memory(e: BaseException) -> bool:
    """An allocation that failed (CPU or GPU), whatever asked for it: a size the machine cannot hold."""
    text = str(e).lower()
    return isinstance(e, MemoryError) or "out of memory" in text or "can't allocate memory" in text


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
