"""`thermodiff denoise | inpaint | interpolate`: a run multiplied by r(x) (P 2.5), file in -> file out."""

from __future__ import annotations

from thermodiff.cli.args import device_of, load_weights
from thermodiff.cli.chain import chain_kwargs


def cmd_condition(args) -> int:
    """denoise / inpaint / interpolate (P 2.5; tasks.py): file in -> file out, plus a panel figure."""
    from thermodiff.sampling import tasks

    device, common = device_of(args.device), {"out": args.out, "seed": args.seed}
    run = load_weights(args)
    if args.command == "denoise":
        paths = tasks.denoise_file(
            run,
            args.input,
            noise_std=args.noise_std,
            add_noise=args.add_noise,
            device=device,
            clip=not args.no_clip,
            **common,
            **chain_kwargs(args),
        )
    elif args.command == "inpaint":
        kw = {"device": device, "clip": not args.no_clip, "schedule": args.schedule, **common}
        kw.update(chain_kwargs(args))
        paths = tasks.inpaint_file(run, args.input, args.mask, **kw)
    else:
        kw = {"t": args.t, "steps": args.steps, "device": device, **common}
        kw.update(chain_steps=args.chain_steps, sampler=args.sampler, eta=args.eta)
        paths, how = tasks.interpolate_file(run, args.a, args.b, **kw)
        print(how)
    for path in paths:
        print(f"wrote {path}  ({run.weights} weights at step {run.step})")
    return 0
