"""Evaluations that accumulate: each written under a name saying what it was, listed in evals/index.json.

RUN/evals/NAME.json holds one evaluation, NAME = split_estimate_nN_weights_stepS (estimate: exact, or
stochastic with its draws per example; `_parzen` when it holds the Parzen estimate too); a second one of
the same kind gets `_2`, `_3` ... and nothing is overwritten. RUN/eval.json is the run's own evaluation:
the latest made as its config says (test split, eval.n examples, eval.exact, one draw, EMA weights),
what `reproduce` writes; a quick check on fewer examples never replaces it.
"""

from __future__ import annotations

import json
from pathlib import Path

from thermodiff.config import Config
from thermodiff.run.checkpoint import atomic_write_text, check_writable


def eval_name(split: str, exact: bool, draws: int, n: int, weights: str, step: int, parzen: bool) -> str:
    """What an evaluation was, as a file stem: split, estimate, examples, weights, step."""
    estimate = ("exact" if draws == 1 else f"exact{draws}") if exact else f"stochastic{draws}"
    return f"{split}_{estimate}_n{n}_{weights}_step{step}" + ("_parzen" if parzen else "")


def is_own(cfg: Config, split: str, exact: bool, draws: int, n_asked: int, weights: str) -> bool:
    """Whether an evaluation is the one the run's config describes (eval.json's)."""
    own = split == "test" and n_asked == cfg.eval.n and exact == cfg.eval.exact
    return own and draws == 1 and weights == "ema"


def planned_paths(run_dir: Path, name: str, out: Path | None, own: bool) -> list[Path]:
    """Where an evaluation will go, checked writable before it runs: --out, else a fresh evals/ name;
    and eval.json when it is the run's own."""
    run_dir = Path(run_dir)
    if out is not None:
        paths = [Path(out)]
    else:
        path, k = run_dir / "evals" / f"{name}.json", 1
        while path.exists():
            k += 1
            path = run_dir / "evals" / f"{name}_{k}.json"
        paths = [path]
    if own and out is None:
        paths.append(run_dir / "eval.json")
    paths.append(run_dir / "evals" / "index.json")
    for path in paths:
        check_writable(path)
    return paths


def record(run_dir: Path, r: dict, paths: list[Path]) -> None:
    """Write the evaluation to paths[:-1] and add a line to the index (paths[-1]): file, what, K."""
    text = json.dumps(r, indent=1)
    for path in paths[:-1]:
        atomic_write_text(path, text)
    index_path = paths[-1]
    try:
        index = json.loads(index_path.read_text()) if index_path.exists() else []
    except ValueError:
        index = []  # a torn or hand-edited index is rebuilt from here on, the evaluations themselves kept
    if not isinstance(index, list):
        index = []
    where = paths[0]
    try:
        where = where.resolve().relative_to(Path(run_dir).resolve())
    except ValueError:
        pass
    keys = (
        "split",
        "t_draws",
        "n_examples",
        "weights",
        "step",
        "K_bits",
        "stderr_bits",
        "unit",
        "parzen_bits",
    )
    index.append({"file": str(where), **{k: r[k] for k in keys if k in r}})
    atomic_write_text(index_path, json.dumps(index, indent=1))
