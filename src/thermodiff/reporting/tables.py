"""The report's tables as cells (strings), every number read from a run's eval.json, or, for the published
references alone, from references.py: K beside the paper (P Tables 1-2), the truth, modern units, cost."""

from __future__ import annotations

import math
from dataclasses import dataclass

from thermodiff.reporting.collect import Entry
from thermodiff.reporting.references import references_for

DASH = "—"


@dataclass(frozen=True)
class Table:
    """A titled table: a note under the title, column headers, rows of cells."""

    title: str
    note: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


def num(value, stderr=None, digits: int = 4) -> str:
    """A number with its standard error, or a dash when absent."""
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return DASH
    if isinstance(stderr, (int, float)) and math.isfinite(stderr):
        return f"{value:.{digits}f} ± {stderr:.{digits}f}"
    return f"{value:.{digits}f}"


def published(value) -> str:
    """A published number as printed in its paper (no digits added)."""
    return f"{value:g}" if isinstance(value, (int, float)) and math.isfinite(value) else DASH


def duration(seconds) -> str:
    """Wall time as a reader says it: 42.0 s, 3 min 05 s, 1 h 02 min."""
    if not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        return DASH
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


def estimated(e: dict) -> str:
    """How K was estimated: over which t, on how many examples of which split, which weights."""
    return (
        f"{e.get('t_draws', '?')}; {e.get('n_examples', '?')} {e.get('split', '?')} examples; "
        f"{e.get('weights', '?')} weights, step {e.get('step', '?')}"
    )


def status_table(entries: list[Entry]) -> Table:
    """Each experiment: finished, still training (how far), or not started, and where its run is."""
    rows = tuple(
        (x.name, x.budget, x.status + (f" ({x.detail})" if x.detail else ""), str(x.run_dir)) for x in entries
    )
    return Table("Experiments", "", ("Experiment", "Budget", "Status", "Run directory"), rows)


def k_table(done: list[Entry]) -> Table:
    """K and K - L_null beside the paper's (P Tables 1-2), with how each was estimated."""
    rows = []
    for x in done:
        e, paper = x.evaluation, x.evaluation.get("paper", {})
        rows.append(
            (
                x.name,
                x.budget,
                str(e.get("unit", DASH)),
                published(paper.get("K_bits")),
                num(e.get("K_bits"), e.get("stderr_bits")),
                published(paper.get("K_minus_Lnull_bits")),
                num(e.get("K_minus_Lnull_bits"), e.get("K_minus_Lnull_stderr_bits")),
                num(e.get("L_null_bits")),
                estimated(e),
            )
        )
    note = (
        "K is the lower bound on the log-likelihood of held-out data (P eq. 14), higher is better; "
        "L_null that of the distribution the forward chain ends in (an identity-covariance Gaussian; for "
        "binary data, independent bits at the data's mean rate). ± is one "
        "standard error over the examples. A dash: the paper reports no K (MNIST: a Parzen estimate)."
    )
    headers = (
        "Experiment",
        "Budget",
        "Unit",
        "K, paper",
        "K, ours",
        "K − L_null, paper",
        "K − L_null, ours",
        "L_null",
        "Estimated from",
    )
    return Table("K on held-out data beside the paper (P Tables 1–2)", note, headers, tuple(rows))


def truth_table(done: list[Entry]) -> Table:
    """The true log-likelihood where the data have a density, K per example, and the paired gap."""
    rows = []
    for x in done:
        e = x.evaluation
        if "true_loglik_bits" not in e:
            continue
        per = e.get("units_per_example", 1)  # the truth and the gap are per example; K per unit
        unit = e.get("unit", DASH) if per == 1 else "bits/example"
        k, k_se = e.get("K_bits"), e.get("stderr_bits")
        if per != 1 and isinstance(k, (int, float)) and isinstance(k_se, (int, float)):
            k, k_se = k * per, k_se * per
        rows.append(
            (
                x.name,
                x.budget,
                str(unit),
                num(e["true_loglik_bits"], e.get("true_loglik_stderr_bits")),
                num(k, k_se),
                num(e.get("gap_to_truth_bits"), e.get("gap_stderr_bits")),
            )
        )
    note = (
        "Where the data have a known density: its mean log-likelihood on the same examples, and the gap "
        "truth − K per example with its paired standard error (the bound's slack plus the model's error)."
    )
    headers = ("Experiment", "Budget", "Unit", "True log-likelihood", "K, ours", "Gap, truth − K")
    return Table("Against the truth", note, headers, tuple(rows))


# eval.json key, what it is (and its unit), its stderr key
MEASURES = (
    ("K_bits", "log-likelihood bound K (higher is better)", "stderr_bits"),
    ("nll_bits_per_dim", "NLL bound, bits/dim (lower is better)", "nll_stderr_bits_per_dim"),
    (
        "dequantized_nll_bits_per_dim",
        "NLL bound, bits/dim, dequantized",
        "dequantized_nll_stderr_bits_per_dim",
    ),
    ("nll_nats", "NLL bound, nats per example (lower is better)", "nll_stderr_nats"),
)


def modern_table(done: list[Entry]) -> Table:
    """Bits/dim on the 8-bit grid, nats for binary data, beside published results (references.py)."""
    rows = []
    for x in done:
        e, data = x.evaluation, (x.config or {}).get("data", {}).get("name", x.name)
        for key, what, se_key in MEASURES:
            refs = references_for(data, key)
            if key not in e or (key == "K_bits" and not refs):
                continue
            shown = "; ".join(f"{r.model} {'≤ ' if r.bound else ''}{r.value} ({r.source})" for r in refs)
            if key == "nll_bits_per_dim" and "nll_note" in e:
                what = "NLL bound, bits/dim on the 8-bit grid (lower is better)"
            rows.append((x.name, x.budget, what, num(e[key], e.get(se_key)), shown or DASH))
    note = (
        "Modern units where they apply: the negative log-likelihood bound in bits per dimension on the "
        "0..255 grid (a discretized last step, as DDPM), or in nats for binary images, beside published "
        "results on the same data. The references are the only numbers not read from our runs; a short "
        "CPU budget is not expected to approach them. (DDPM's Table 1 lists the paper's CIFAR-10 K as "
        "'≤ 5.40' bits/dim; it is a log-likelihood bound per RGB pixel on scaled data, not comparable.)"
    )
    headers = ("Experiment", "Budget", "Measure", "Ours", "Published")
    return Table("Modern units beside published results", note, headers, tuple(rows))


def cost_table(done: list[Entry]) -> Table:
    """Steps, training and evaluation wall time, and the device, as reproduce recorded them."""
    rows = []
    for x in done:
        c = x.evaluation.get("cost", {})
        steps = c.get("train_steps", x.evaluation.get("step"))
        rows.append(
            (
                x.name,
                x.budget,
                str(steps if steps is not None else DASH),
                duration(c.get("train_seconds")),
                str(c.get("train_sessions", DASH)),
                duration(c.get("eval_seconds")),
                str(c.get("device_name", DASH)),
            )
        )
    note = (
        "Training wall time is the training loop's, summed over its sessions (metrics.jsonl, each "
        "session's start in sessions.json); evaluation includes the figures. Both as measured on the "
        "device named, beside whatever else ran on it."
    )
    headers = ("Experiment", "Budget", "Steps", "Training", "Sessions", "Evaluation", "Device")
    return Table("Cost", note, headers, tuple(rows))


def tables(entries: list[Entry]) -> list[Table]:
    """The report's tables; those of evaluations cover the finished experiments only."""
    done = [x for x in entries if x.status == "done" and x.evaluation is not None]
    out = [status_table(entries), k_table(done), truth_table(done), modern_table(done), cost_table(done)]
    return [t for t in out if t.rows or t is out[0]]
