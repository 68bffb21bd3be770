"""`thermodiff reproduce`: one command per paper experiment: train, evaluate, figures."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import torch

from thermodiff.config import Config, load_toml
from thermodiff.data import load_dataset
from thermodiff.evaluation.experiments import EXPERIMENTS
from thermodiff.evaluation.figures import run_figures
from thermodiff.evaluation.heldout import report
from thermodiff.evaluation.records import eval_name, planned_paths, record
from thermodiff.run import status as run_status
from thermodiff.run.card import write_card
from thermodiff.run.checkpoint import atomic_write_text, check_writable, has_checkpoint, latest_checkpoint
from thermodiff.run.jsonl import read_jsonl
from thermodiff.run.load import load_run
from thermodiff.training.resume import config_for_run
from thermodiff.training.train import recorded, train


def reproduce(name: str, budget: str, out: Path, device: str = "cpu", progress: bool = True) -> dict:
    """Train the experiment's config (fresh, or resumed if `out` holds it), evaluate, draw figures;
    the evaluation goes to eval.json (the run's own) and evals/ (records.py). A run already trained
    and evaluated to this budget is returned as it stands (its eval.json), not trained again."""
    config, overrides = EXPERIMENTS[name][budget]
    cfg = load_toml(config, overrides)
    out = Path(out)
    check_writable(out / "eval.json")  # before the training, not after it
    # every field counts as given: out holds this experiment's run or nothing
    every_field = [f"{section}.{key}" for section, fields in cfg.to_dict().items() for key in fields]
    resume = (out / "config.json").exists()  # an interrupted reproduce continues
    # another experiment's run in `out` is refused here, before anything is written
    config_for_run(out, recorded(cfg, None), resume, every_field)
    done = finished(out, cfg)
    if done is not None:
        return done
    note_session(out, resume)
    train(cfg, out, device=device, resume=resume, progress=progress, overrides=every_field)
    started = time.time()
    run = load_run(out, device)
    cfg, model = run.config, run.model
    ds = load_dataset(cfg.data)
    ref = {
        "K_bits": cfg.eval.reference_K_bits,
        "K_minus_Lnull_bits": cfg.eval.reference_K_minus_Lnull_bits,
    }
    result = report(model, ds, cfg.eval.n, cfg.eval.exact, cfg.eval.batch, device, "test", ref)
    result["step"], result["weights"] = run.step, run.weights
    figures = run_figures(run, ds, out, device, evaluation=result)
    result["figures"] = [f.as_dict() for f in figures]
    result["experiment"], result["budget"] = name, budget
    result["cost"] = cost(out, run.step, time.time() - started, device)
    name = eval_name("test", cfg.eval.exact, 1, result["n_examples"], run.weights, run.step, False)
    record(out, result, planned_paths(out, name, None, own=True))
    write_card(out, cfg, run.step, result)
    return result


def finished(out: Path, cfg: Config) -> dict | None:
    """The run's eval.json when `out` (this experiment's run) is trained to cfg.train.steps and evaluated
    with its figures; None when anything is left to do."""
    path = out / "eval.json"
    if not (out / "config.json").is_file() or not path.is_file():
        return None
    try:
        result = json.loads(path.read_text())
    except ValueError:
        return None  # torn: evaluate again
    return result if run_status.finished(cfg.train.steps, result) else None


def note_session(out: Path, resume: bool) -> None:
    """Append to RUN/sessions.json the step this training session starts from (its checkpoint's), so that
    the cost can tell the sessions' records in metrics.jsonl apart (each restarts its clock)."""
    start = 0
    if resume and has_checkpoint(out):
        start = json.loads((latest_checkpoint(out) / "meta.json").read_text())["step"]
    path = out / "sessions.json"
    sessions = json.loads(path.read_text()) if resume and path.is_file() else []
    sessions.append({"from_step": start, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    atomic_write_text(path, json.dumps(sessions, indent=1))


def training_seconds(out: Path) -> tuple[float, int]:
    """The training loop's wall time summed over its sessions, and how many sessions logged: session i
    holds the metrics.jsonl records after its start step, up to the next session's (sessions.json;
    absent, one session). An interrupted session's records past its last checkpoint were dropped on resume."""
    path = out / "sessions.json"
    starts = sorted({s["from_step"] for s in json.loads(path.read_text())}) if path.is_file() else [0]
    last: dict[int, float] = {}
    for rec in read_jsonl(out / "metrics.jsonl"):
        step, seconds = rec.get("step"), rec.get("seconds")
        if isinstance(step, int) and isinstance(seconds, (int, float)):
            session = max((i for i, s in enumerate(starts) if s < step), default=0)
            last[session] = max(last.get(session, 0.0), float(seconds))
    return sum(last.values()), len(last)


def cost(out: Path, steps: int, eval_seconds: float, device: str) -> dict:
    """What the run cost, read from the run: its training steps, the training loop's wall time summed
    over its sessions, the evaluation's and figures' wall time, and the device."""
    total, sessions = training_seconds(out)
    if device.startswith("cuda"):
        where = torch.cuda.get_device_name(torch.device(device))
    else:
        where = f"CPU ({platform.machine() or 'unknown'}), {torch.get_num_threads()} thread(s)"
    return {
        "train_steps": steps,
        "train_seconds": round(total, 3),
        "train_sessions": sessions,
        "eval_seconds": round(eval_seconds, 3),
        "device": device,
        "device_name": where,
    }
