"""The arguments that pick the chain a command samples: --steps (respacing, iDDPM §4), --sampler, --eta."""

from __future__ import annotations

import argparse

STEPS_HELP = (
    "sample a respaced chain: N steps evenly spaced from 1 to T, 'a,b,c' sections, 'ddimN' (iDDPM's "
    "notation) or 'list:s1,s2,...'; default: all T steps"
)


def add_chain_args(p: argparse.ArgumentParser, flag: str = "--steps", sampler: bool = True) -> None:
    """--steps (or `flag`) into args.chain_steps; with `sampler`, --sampler and --eta too."""
    p.add_argument(flag, dest="chain_steps", metavar="N|SPACING", help=STEPS_HELP)
    if sampler:
        p.add_argument(
            "--sampler",
            choices=("ancestral", "ddim"),
            default="ancestral",
            help="ancestral: draw each reverse step; ddim: DDIM's step (Song et al. 2021; eps models)",
        )
        p.add_argument(
            "--eta", type=float, default=0.0, help="DDIM's eta in [0, 1]: 0 deterministic, 1 = ancestral"
        )


def chain_kwargs(args: argparse.Namespace) -> dict:
    """steps, sampler and eta as the sampling functions take them."""
    return {"steps": args.chain_steps, "sampler": args.sampler, "eta": args.eta}
