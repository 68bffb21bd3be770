"""thermodiff's command line: the parser and the entry point; one module per command does the work."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from thermodiff.cli.args import check_args
from thermodiff.cli.chain import add_chain_args
from thermodiff.cli.condition import cmd_condition
from thermodiff.cli.evaluate import cmd_evaluate
from thermodiff.cli.init import cmd_init
from thermodiff.cli.reproduce import cmd_reproduce
from thermodiff.cli.sample import cmd_sample
from thermodiff.cli.train import cmd_train
from thermodiff.errors import ThermodiffError, first_line


def _add_condition_commands(sub) -> None:
    """The parsers of denoise, inpaint and interpolate; file units in data/files.py."""
    d = sub.add_parser("denoise", help="denoise an observation y = x + noise (P Fig. 5)")
    d.add_argument("run")
    d.add_argument("--input", required=True, help="PNG or .npy (data units), the noisy y")
    d.add_argument("--noise-std", type=float, default=1.0, help="in units of the data std; 1 = SNR 1")
    d.add_argument("--add-noise", action="store_true", help="the input is clean: add the noise first")
    i = sub.add_parser("inpaint", help="fill the unknown pixels of an image (P Fig. 4)")
    i.add_argument("run")
    i.add_argument("--input", required=True, help="PNG or .npy (data units)")
    i.add_argument("--mask", required=True, help="PNG (white = known) or .npy (1 = known)")
    i.add_argument(
        "--schedule",
        choices=("forward", "constant"),
        default="forward",
        help="known pixels follow q(x_t | x_0) (forward) or stay clean at every step (constant, the paper's)",
    )
    for c in (d, i):
        c.add_argument("--no-clip", action="store_true", help="do not keep predicted images in 0..255")
    n = sub.add_parser("interpolate", help="mix two inputs through the noisy state at step t (DDPM 4.4)")
    n.add_argument("run")
    n.add_argument("--a", required=True)
    n.add_argument("--b", required=True)
    n.add_argument("--t", type=int, help="the step to mix at (default T/2)")
    n.add_argument("--steps", type=int, default=8, help="number of mixes, lambda = 0..1")
    add_chain_args(d)
    add_chain_args(i)
    add_chain_args(n, "--chain-steps")  # --steps is the number of mixes here
    for c in (d, i, n):
        c.add_argument("--out", help="FILE.png or FILE.npy (default RUN/samples/); figure: FILE_panel.png")
        c.add_argument("--seed", type=int, default=0)
        c.add_argument("--device", default="auto")
        c.set_defaults(func=cmd_condition)


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line like every other thermodiff error (exit code 2)."""

    def error(self, message: str):
        self.exit(2, f"thermodiff: error: {message} (see {self.prog} -h)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="thermodiff",
        description="Diffusion probabilistic models (Sohl-Dickstein et al. 2015).",
    )
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model from a config (path or bundled name)")
    t.add_argument("config")
    t.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE")
    t.add_argument("--out", help="run directory (default runs/CONFIG_NAME)")
    t.add_argument("--device", default="auto")
    t.add_argument("--resume", action="store_true", help="continue the run in --out exactly")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="the bound K on held-out data, in bits")
    e.add_argument("run")
    e.add_argument("--split", default="test", choices=["test", "train"])
    g = e.add_mutually_exclusive_group()
    g.add_argument("--exact", dest="exact", action="store_true", default=None, help="all t")
    g.add_argument("--stochastic", dest="exact", action="store_false", help="one random t per example")
    e.add_argument("--n", type=int, help="number of examples (default: eval.n)")
    e.add_argument(
        "--draws",
        type=int,
        default=1,
        help="estimates per example, averaged (--stochastic: t; --exact: x_t per step)",
    )
    e.add_argument("--json", action="store_true")
    e.add_argument("--parzen", action="store_true", help="also the Parzen-window estimate (P 3.3)")
    e.add_argument("--parzen-samples", type=int, default=10_000, help="model samples for --parzen")
    e.add_argument("--device", default="auto")
    add_chain_args(e, sampler=False)
    e.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("sample", help="draw samples to PNG or .npy")
    s.add_argument("run")
    s.add_argument("--n", type=int, default=64)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out")
    s.add_argument("--device", default="auto")
    s.add_argument("--guide", type=int, metavar="CLASS", help="classifier guidance toward CLASS")
    s.add_argument("--scale", type=float, default=1.0, help="guidance gradient scale s (r = p(y|x_t)^s)")
    s.add_argument("--no-clip", action="store_true", help="images: do not keep predicted x_0 in 0..255")
    s.add_argument("--classifier", metavar="RUN", help="a noisy classifier run, for --guide")
    s.add_argument(
        "--raw", action="store_true", help=".npy of 8-bit images: the continuous values, not 0..255"
    )
    add_chain_args(s)
    s.set_defaults(func=cmd_sample)
    _add_condition_commands(sub)

    n = sub.add_parser("init", help="write a commented starter config for a data file or image folder")
    n.add_argument("source", metavar="FILE_OR_FOLDER", help=".npy, .npz, .csv, or a folder / .zip of images")
    n.add_argument("--out", help="CONFIG.toml to write (default: SOURCE_NAME.toml here)")
    n.set_defaults(func=cmd_init)

    r = sub.add_parser("reproduce", help="train + evaluate + figures for the paper's experiments")
    r.add_argument("experiments", nargs="*")
    r.add_argument("--budget", default="quick", choices=["quick", "full"])
    r.add_argument("--out", default="runs/reproduce")
    r.add_argument("--device", default="auto")
    r.add_argument("--quiet", action="store_true")
    r.set_defaults(func=cmd_reproduce)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    previous = signal.getsignal(signal.SIGTERM)
    if threading.current_thread() is threading.main_thread():  # kill (torchrun's too) = Ctrl-C: clean up
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        check_args(args)
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
