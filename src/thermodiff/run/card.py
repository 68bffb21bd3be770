"""A run directory's README.md: what the run is (data, model, training, K), and how to use it."""

from __future__ import annotations

from pathlib import Path

from thermodiff.config import Config
from thermodiff.run.checkpoint import atomic_write_text
from thermodiff.run.jsonl import read_jsonl


def write_card(run_dir: Path, cfg: Config, step: int, evaluation: dict | None = None) -> Path:
    """RUN/README.md, a model card: written when training ends, rewritten by `reproduce` with its K."""
    run_dir = Path(run_dir)
    d, m, t = cfg.data, cfg.model, cfg.train
    last = (read_jsonl(run_dir / "metrics.jsonl") or [{}])[-1]
    lines = [
        f"# {run_dir.name}: a thermodiff run",
        "",
        f"A diffusion probabilistic model (Sohl-Dickstein et al. 2015) of `{d.name}`, trained with "
        f"thermodiff. Task: {t.task}.",
        "",
        "| | |",
        "| --- | --- |",
        f"| data | `{d.name}`"
        + (f" from `{d.path}`" if d.path else "")
        + f", {d.n_train} training examples |",
        f"| forward chain | {cfg.diffusion.kernel}, T = {cfg.diffusion.T}, "
        f"schedule `{cfg.diffusion.schedule}` |",
        f"| network | `{m.net}` |",
        f"| training | {step} of {t.steps} steps, batch {t.batch}, lr {t.lr} -> {t.lr_final}, "
        f"EMA {t.ema}{' (warmed up)' if t.ema_warmup else ''} |",
    ]
    if "seconds" in last:
        lines.append(
            f"| time | {last['seconds']:.0f} s of training (this session, to step {last.get('step')}) |"
        )
    if "K_bits" in last:
        lines.append(
            f"| K on training batches | {last['K_bits']:.4f} {last.get('unit', '')} "
            f"at step {last.get('step')} "
            "(one t per example, raw weights) |"
        )
    if evaluation:
        e = evaluation
        lines.append(
            f"| K held out | {e['K_bits']:.4f} ± {e['stderr_bits']:.4f} {e['unit']} "
            f"({e['n_examples']} {e['split']} examples, {e['t_draws']}, {e.get('weights', 'ema')} weights) |"
        )
    pngs = sorted(
        p.relative_to(run_dir).as_posix() for p in [*run_dir.glob("*.png"), *run_dir.glob("plots/*.png")]
    )
    if pngs:
        lines += ["", "Figures: " + ", ".join(f"`{p}`" for p in pngs) + "."]
    lines += [
        "",
        "The full config is `config.json`; the training log `metrics.jsonl`; the weights `checkpoints/`.",
        "To use it (RUN is this folder):",
        "",
        "```",
        "thermodiff evaluate RUN          # K in bits on held-out data (evals/, eval.json)",
        "thermodiff sample RUN --n 64     # samples to RUN/samples/",
        "thermodiff plot RUN              # the training curve, for images denoising (RUN/plots/)",
        "```",
        "",
        "```python",
        "import thermodiff as td",
        'run = td.load_run("RUN")         # ema=False: the last step\'s raw weights',
        "```",
        "",
    ]
    path, text = run_dir / "README.md", "\n".join(lines)
    if not path.is_file() or path.read_text(errors="replace") != text:  # a finished run, resumed: unchanged
        atomic_write_text(path, text)
    return path
