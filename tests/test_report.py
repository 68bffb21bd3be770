"""The reproduction report (issue 18): its numbers are the runs' eval.json values, an interrupted
reproduction resumes and the report then covers every experiment, a missing figure is named with its
reason, the HTML page is self-contained, and headless Chromium renders it."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from thermodiff.cli.main import main
from thermodiff.evaluation.experiments import EXPERIMENTS
from thermodiff.evaluation.reproduce import cost
from thermodiff.reporting import build_report
from thermodiff.reporting.references import REFERENCES

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from report_screenshot import chromium, screenshot  # noqa: E402

# A few training steps each: the whole two-experiment reproduction takes seconds.
TINY = {
    "swiss_roll": (
        "swiss_roll",
        ("train.steps=40", "train.log_every=10", "train.ckpt_every=10", "train.warmup=5", "eval.n=200",
         "model.hidden=16", "diffusion.T=10", "data.n_train=500", "data.n_test=200",
         "eval.reference_K_minus_Lnull_bits=nan"),  # no reference (as MNIST's): a rerun must still resume
    ),
    "heartbeat": (
        "heartbeat",
        ("train.steps=40", "train.log_every=10", "train.ckpt_every=10", "train.warmup=5", "eval.n=50",
         "diffusion.T=50"),
    ),
}  # fmt: skip


@pytest.fixture
def tiny_experiments(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, spec in TINY.items():
        monkeypatch.setitem(EXPERIMENTS, name, {"quick": spec, "full": spec})


def reproduce(out: Path) -> int:
    return main(["reproduce", "swiss_roll", "heartbeat", "--out", str(out), "--threads", "1", "--quiet"])


class Cells(HTMLParser):
    """The text of every table cell of an HTML page, row by row, and every src/href it holds."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.links: list[str] = []
        self.tags: set[str] = set()
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.links += [v or "" for k, v in attrs if k in ("src", "href")]
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def md_rows(md: str, title: str) -> list[dict[str, str]]:
    """The rows of the Markdown table under heading `title`, as {header: cell}."""
    lines = md.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0].splitlines()
    table = [ln for ln in lines if ln.startswith("|")]
    split = [[c.strip() for c in re.split(r"(?<!\\)\|", ln)[1:-1]] for ln in table]
    return [dict(zip(split[0], row, strict=True)) for row in split[2:]]


def value_and_se(cell: str) -> tuple[float, float | None]:
    parts = cell.split(" ± ")
    return float(parts[0]), float(parts[1]) if len(parts) > 1 else None


def test_the_reports_numbers_are_the_runs_eval_json_and_a_rerun_keeps_finished_work(
    tiny_experiments, tmp_path: Path
) -> None:
    assert reproduce(tmp_path / "rp") == 0
    md = (tmp_path / "rp" / "report.md").read_text()
    evals = {n: json.loads((tmp_path / "rp" / n / "eval.json").read_text()) for n in TINY}
    k_rows = md_rows(md, "K on held-out data beside the paper (P Tables 1–2)")
    assert sorted(r["Experiment"] for r in k_rows) == sorted(TINY)
    for row in k_rows:
        e = evals[row["Experiment"]]
        k, se = value_and_se(row["K, ours"])
        assert k == pytest.approx(e["K_bits"], abs=5e-5) and se == pytest.approx(e["stderr_bits"], abs=5e-5)
        gap, gap_se = value_and_se(row["K − L_null, ours"])
        assert gap == pytest.approx(e["K_minus_Lnull_bits"], abs=5e-5)
        assert gap_se == pytest.approx(e["K_minus_Lnull_stderr_bits"], abs=5e-5)
        assert float(row["K, paper"]) == e["paper"]["K_bits"]
        if row["Experiment"] == "swiss_roll":  # its reference set to NaN: none shown, none invented
            assert "K_minus_Lnull_bits" not in e["paper"] and row["K − L_null, paper"] == "—"
        else:
            assert float(row["K − L_null, paper"]) == e["paper"]["K_minus_Lnull_bits"]
        assert (
            f"{e['n_examples']} test examples" in row["Estimated from"]
            and e["t_draws"] in row["Estimated from"]
        )
    for row in md_rows(md, "Against the truth"):  # both data sets have a density
        e = evals[row["Experiment"]]
        assert value_and_se(row["True log-likelihood"])[0] == pytest.approx(e["true_loglik_bits"], abs=5e-5)
        gap, gap_se = value_and_se(row["Gap, truth − K"])
        assert gap == pytest.approx(e["gap_to_truth_bits"], abs=5e-5)
        assert gap_se == pytest.approx(e["gap_stderr_bits"], abs=5e-5)
    for row in md_rows(md, "Cost"):
        c = evals[row["Experiment"]]["cost"]
        assert int(row["Steps"]) == c["train_steps"] == 40 and row["Device"] == c["device_name"]
    # the HTML page shows the same cells as the Markdown
    page = Cells()
    page.feed((tmp_path / "rp" / "report.html").read_text())
    html_cells = {tuple(r) for r in page.rows}
    for row in k_rows:
        assert tuple(row.values()) in html_cells
    # a rerun finds both experiments finished: nothing trained or evaluated again
    before = {n: (tmp_path / "rp" / n / "eval.json").read_bytes() for n in TINY}
    assert reproduce(tmp_path / "rp") == 0
    assert {n: (tmp_path / "rp" / n / "eval.json").read_bytes() for n in TINY} == before
    assert all(len(json.loads((tmp_path / "rp" / n / "evals" / "index.json").read_text())) == 1 for n in TINY)
    # another experiment asked into a finished run's directory: refused, nothing written
    files = {p: p.read_bytes() for p in (tmp_path / "rp" / "swiss_roll").rglob("*") if p.is_file()}
    assert main(["reproduce", "heartbeat", "--out", str(tmp_path / "rp" / "swiss_roll"), "--quiet"]) == 2
    assert {p: p.read_bytes() for p in (tmp_path / "rp" / "swiss_roll").rglob("*") if p.is_file()} == files


def test_an_interrupted_reproduction_resumes_and_the_report_then_covers_every_experiment(
    tiny_experiments, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import thermodiff.evaluation.reproduce as rp

    real_train = rp.train

    def interrupted(cfg, out, **kw):
        def stop(record: dict) -> None:
            if record["step"] == 20:  # logged, but the last checkpoint is step 10's
                raise KeyboardInterrupt

        return real_train(cfg, out, on_log=stop if cfg.data.name == "heartbeat" else None, **kw)

    monkeypatch.setattr(rp, "train", interrupted)
    assert reproduce(tmp_path / "rp") == 130  # the CLI's answer to an interrupt
    md = (tmp_path / "rp" / "report.md").read_text()  # written after swiss_roll finished
    status = {r["Experiment"]: r["Status"] for r in md_rows(md, "Experiments")}
    assert status["swiss_roll"] == "done"
    assert status["heartbeat"] == "training (trained to step 20 of 40; not yet evaluated)"
    assert [r["Experiment"] for r in md_rows(md, "K on held-out data beside the paper (P Tables 1–2)")] == [
        "swiss_roll"
    ]
    monkeypatch.setattr(rp, "train", real_train)
    assert reproduce(tmp_path / "rp") == 0
    md = (tmp_path / "rp" / "report.md").read_text()
    assert {r["Experiment"]: r["Status"] for r in md_rows(md, "Experiments")} == dict.fromkeys(TINY, "done")
    heartbeat = json.loads((tmp_path / "rp" / "heartbeat" / "eval.json").read_text())
    assert heartbeat["step"] == 40 and heartbeat["cost"]["train_sessions"] == 2  # resumed, not restarted
    k_rows = md_rows(md, "K on held-out data beside the paper (P Tables 1–2)")
    assert sorted(r["Experiment"] for r in k_rows) == sorted(TINY)


def test_training_time_is_summed_over_sessions(tmp_path: Path) -> None:
    """Each session restarts its clock; the resumed one (from the step-10 checkpoint) took longer to its
    first log than the first did, so only sessions.json can tell them apart."""
    lines = [{"step": 10, "seconds": 1.0}, {"step": 20, "seconds": 1.6}, {"step": 30, "seconds": 2.9}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines) + '{"step": 4')
    (tmp_path / "sessions.json").write_text(json.dumps([{"from_step": 0}, {"from_step": 10}]))
    c = cost(tmp_path, 30, 3.0, "cpu")
    assert (c["train_sessions"], c["train_seconds"], c["train_steps"]) == (2, 3.9, 30)
    (tmp_path / "sessions.json").unlink()  # a run trained by `thermodiff train`: one session
    assert cost(tmp_path, 30, 3.0, "cpu")["train_seconds"] == 2.9


def fake_run(run: Path, figures: list[dict], data: str = "cifar10", **extra) -> None:
    run.mkdir(parents=True, exist_ok=True)
    (run / "config.json").write_text(json.dumps({"train": {"steps": 5}, "data": {"name": data}}))
    e = {"step": 5, "K_bits": 1.5, "stderr_bits": 0.25, "unit": "bits/pixel", "figures": figures, **extra}
    (run / "eval.json").write_text(json.dumps(e))


PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201e5270d"
    "4f0000000049454e44ae426082"
)


def test_a_missing_figure_is_named_with_its_reason_never_dropped(tmp_path: Path) -> None:
    figures = [
        {
            "name": "curve",
            "caption": "the training curve",
            "path": "somewhere/run/curve.png",
            "missing": None,
        },
        {"name": "samples", "caption": "16 samples", "path": None, "missing": "ValueError: no test images"},
        {"name": "beta", "caption": "learned beta", "path": str(tmp_path / "gone.png"), "missing": None},
    ]
    fake_run(tmp_path / "run", figures)
    (tmp_path / "run" / "curve.png").write_bytes(PNG)
    texts = build_report(tmp_path / "run", ["cifar10"], "quick")
    md, html = texts["report.md"], texts["report.html"]
    assert "![curve](curve.png)" in md and "the training curve" in md
    assert "**samples: missing** (ValueError: no test images). 16 samples" in md
    assert f"**beta: missing** (file not found: {tmp_path / 'gone.png'})" in md
    assert "samples: missing</b> (ValueError: no test images)" in html and "beta: missing</b>" in html
    page = Cells()
    page.feed(html)
    assert page.links == ["data:image/png;base64," + base64.b64encode(PNG).decode()]  # the file itself


def test_the_html_page_is_self_contained(tmp_path: Path) -> None:
    fake_run(tmp_path / "rp" / "cifar10", [], nll_bits_per_dim=5.5, nll_note="8-bit grid")
    html = build_report(tmp_path / "rp", ["cifar10", "mnist"], "quick", list(EXPERIMENTS))["report.html"]
    page = Cells()
    page.feed(html)
    assert "script" not in page.tags and not {"link", "iframe", "object", "embed"} & page.tags
    assert all(link.startswith("data:") for link in page.links)
    assert not re.search(r"(https?:)?//[\w.-]+\.\w", html.replace("file://", ""))
    # the published CIFAR-10 references, each with its source, beside our bits/dim
    rows = [
        r
        for r in page.rows
        if r[:3] == ["cifar10", "quick", "NLL bound, bits/dim on the 8-bit grid (lower is better)"]
    ]
    assert rows and rows[0][3] == "5.5000"
    for ref in (r for r in REFERENCES if r.data == "cifar10"):
        assert f"{ref.model} {'≤ ' if ref.bound else ''}{ref.value} ({ref.source})" in rows[0][4]
    assert ["mnist", "quick", "not started", str(tmp_path / "rp" / "mnist")] in page.rows


def test_the_report_imports_no_torch() -> None:
    code = "import sys, thermodiff.reporting; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.skipif(chromium() is None, reason="headless Chromium (/usr/bin/chromium) not installed")
def test_headless_chromium_renders_the_report(tmp_path: Path) -> None:
    from PIL import Image

    fake_run(tmp_path / "rp" / "cifar10", [], nll_bits_per_dim=5.5, nll_note="8-bit grid")
    fake_run(tmp_path / "rp" / "dead_leaves", [{"name": "samples", "caption": "c", "path": "samples.png"}])
    (tmp_path / "rp" / "dead_leaves" / "samples.png").write_bytes(PNG)
    for file, text in build_report(tmp_path / "rp", ["cifar10", "dead_leaves"], "quick").items():
        (tmp_path / "rp" / file).write_text(text)
    png = screenshot(tmp_path / "rp" / "report.html", tmp_path / "shot.png", 1000, 900)
    with Image.open(png) as im:
        assert im.size == (1000, 900)
        colours = im.convert("L").getextrema()
    assert colours[0] < 100 < colours[1]  # text drawn on a light page, not a blank or error screen


def test_the_truth_table_puts_k_per_example_beside_the_truth(tmp_path: Path) -> None:
    """With several units per example (e.g. per pixel), K is shown per example, as the truth and the gap
    are: truth - K must equal the gap shown."""
    fake_run(
        tmp_path / "rp",
        [],
        units_per_example=4,
        true_loglik_bits=10.0,
        true_loglik_stderr_bits=0.5,
        gap_to_truth_bits=4.0,
        gap_stderr_bits=0.25,
    )  # K_bits = 1.5 ± 0.25 per unit: 6.0 ± 1.0 per example
    md = build_report(tmp_path / "rp", ["x"], "quick")["report.md"]
    (row,) = md_rows(md, "Against the truth")
    truth, k, gap = (value_and_se(row[h]) for h in ("True log-likelihood", "K, ours", "Gap, truth − K"))
    assert row["Unit"] == "bits/example" and k == (6.0, 1.0)
    assert truth[0] - k[0] == gap[0]


def test_the_report_package_leaves_the_librarys_report_function_alone() -> None:
    """thermodiff.report is the held-out evaluation (td.report); the report package must not shadow it."""
    import thermodiff as td
    import thermodiff.reporting  # noqa: F401

    assert callable(td.report) and td.report.__module__ == "thermodiff.evaluation.heldout"


def test_a_failed_experiment_is_reported_and_the_others_go_on(
    tiny_experiments, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """Of several experiments, one that fails (here: a config value out of range; a data set that is
    not there fails the same way) is named in the report with the reason, the next one still runs, and
    the command exits 2 naming it."""
    monkeypatch.setitem(EXPERIMENTS, "swiss_roll", {"quick": ("swiss_roll", ("data.n_train=0",))})
    assert reproduce(tmp_path / "rp") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == "thermodiff: swiss_roll: data.n_train = 0 must lie in [1, 1e8]"
    assert err[-1] == "thermodiff: 1 of 2 experiments failed: swiss_roll"
    md = (tmp_path / "rp" / "report.md").read_text()
    status = {r["Experiment"]: r["Status"] for r in md_rows(md, "Experiments")}
    assert status["heartbeat"] == "done"
    assert status["swiss_roll"] == "failed (data.n_train = 0 must lie in [1, 1e8])"


def test_reproduce_and_the_report_agree_on_what_is_finished(tmp_path: Path) -> None:
    """A run evaluated at its last step by `thermodiff evaluate` alone (no figures) is not finished for
    either: reproduce evaluates it again with its figures, and the report says so instead of 'done'."""
    from types import SimpleNamespace

    from thermodiff.evaluation.reproduce import finished
    from thermodiff.reporting.collect import entry

    cfg = SimpleNamespace(train=SimpleNamespace(steps=5))
    fake_run(tmp_path / "run", [])
    assert (
        finished(tmp_path / "run", cfg) is not None and entry("x", "quick", tmp_path / "run").status == "done"
    )
    e = json.loads((tmp_path / "run" / "eval.json").read_text())
    del e["figures"]
    (tmp_path / "run" / "eval.json").write_text(json.dumps(e))
    assert finished(tmp_path / "run", cfg) is None
    found = entry("x", "quick", tmp_path / "run")
    assert (found.status, found.detail) == (
        "training",
        "trained and evaluated to step 5; figures not yet drawn (rerun reproduce)",
    )
