"""`thermodiff sample`: draws from a run, to PNG or .npy (optionally classifier-guided)."""

from __future__ import annotations

import math
from pathlib import Path

from thermodiff.cli.args import device_of, load_weights
from thermodiff.errors import ThermodiffError

CHUNK_VALUES = 1 << 22  # values per chunk of samples: 32 MiB a float64 state, whatever the data's shape


def chunks(n: int, shape: tuple[int, ...]) -> list[int]:
    """Sizes of the batches `sample` draws n samples in, one after another from the same generator:
    one batch (the same draws as a single call) unless n samples hold more than CHUNK_VALUES values."""
    per = max(1, CHUNK_VALUES // max(1, math.prod(shape)))
    return [min(per, n - start) for start in range(0, n, per)]


def cmd_sample(args) -> int:
    import numpy as np
    import torch

    from thermodiff.data.files import check_out
    from thermodiff.plots.draw import image_grid, scatter, sequences
    from thermodiff.run.checkpoint import atomic_write_bytes
    from thermodiff.sampling.ancestral import data_box, sample
    from thermodiff.sampling.chain import chain_of

    device = device_of(args.device)
    run = load_weights(args)
    model, spec, units = run.model, run.spec, run.units
    out = check_out(args.out or Path(args.run) / "samples" / f"samples_seed{args.seed}.png", panel=False)
    if args.raw and out.suffix != ".npy":
        raise ThermodiffError("--raw goes with --out FILE.npy (a PNG holds grey levels)")
    gen = torch.Generator(device).manual_seed(args.seed)
    chain = chain_of(model, args.chain_steps, args.sampler, args.eta, graphed=True)
    mults = [] if args.no_clip else data_box(model, units)
    if args.guide is not None:  # classifier guidance (ADM Alg. 1), checked before any output
        from thermodiff.sampling.tasks import guidance

        if not args.classifier:
            raise ThermodiffError("--guide needs --classifier RUN (a run with train.task = classifier)")
        mults += guidance(args.classifier, args.guide, args.scale, model, run.scaling, device)
    elif args.classifier or args.scale != 1.0:
        raise ThermodiffError("--classifier and --scale go with --guide CLASS")
    mults = chain.adapt(mults)
    parts = []  # in chunks, so that memory stays bounded however large --n is
    for n in chunks(args.n, spec.shape):
        x = sample(chain.kernel, chain.model_fn, spec.shape, n, gen, device, mults, None, chain.rule)
        parts.append(x.cpu())
    x = units.to_data(torch.cat(parts))
    if out.suffix == ".npy":
        import io

        buf = io.BytesIO()  # 8-bit images on their grid 0..255 unless --raw (the chain's last values)
        np.save(buf, (x if args.raw else units.to_levels(x)).numpy())
        atomic_write_bytes(out, buf.getvalue())
    elif len(spec.shape) == 1 and spec.shape[0] == 2:
        scatter(x, out, title=f"{args.n} samples")
    elif len(spec.shape) == 1:  # sequences: line plots, readable where a row of pixels is not
        sequences(x, out, title=f"{min(args.n, 16)} of {args.n} samples ({run.weights} weights)")
    else:
        image_grid(units.grid(x), out)
    print(f"wrote {out}  ({args.n} samples, {run.weights} weights at step {run.step}; {chain.description})")
    return 0
