"""``torchconform history``: change-points per benchmark series with asv's step detection
(harness.bench.history), the report's plot with the steps marked, and the command's exit statuses."""
from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest

from harness import record
from harness.bench import history
from harness.cli import main
from tests.conftest import make_record

pytest.importorskip("asv", reason="asv is not installed (pip install torchconform[bench])")

NAME = "tensors.add[cpu,numel=1048576]"


def series_records(levels, *, noise=0.02, seed=0, name=NAME, instructions=None):
    """One record per level (oldest first, a day apart): 12 samples around the level with ``noise``
    relative scatter of the run's median (between runs) and 0.5% within the run."""
    rng = np.random.default_rng(seed)
    start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    recs = []
    for i, level in enumerate(levels):
        run_median = level * np.exp(rng.normal(0, noise))
        samples = list(run_median * np.exp(rng.normal(0, 0.005, 12)))
        e = {"name": name, "group": "tensors.add", "section": "tensors", "device": "cpu", "samples": samples}
        if instructions is not None:
            e["instructions"] = {"status": "ok", "per_call": instructions[i], "repeats": [instructions[i]] * 3,
                                 "calls": 5, "spread": 0.0}
        r = make_record(tests=[], benchmarks=[e], label=f"nightly-{i:02d}", run_id=f"run-{i:02d}",
                        created=(start + dt.timedelta(days=i)).isoformat(timespec="seconds"))
        r["fingerprint"]["torch"]["version"] = f"2.13.0.dev{20260101 + i}"
        recs.append(r)
    return recs


def fit(recs, kind="wall"):
    return history.changepoints(recs)["series"][kind][NAME]


def test_planted_step_is_found_at_its_first_record():
    """30 nightly points with 2% noise, 15% slower from the 19th on: one step, named by the first record
    after it, with its size."""
    got = fit(series_records([1e-3] * 18 + [1.15e-3] * 12))
    assert got["status"] == "ok" and len(got["steps"]) == 1
    (step,) = got["steps"]
    assert step["index"] == 18 and step["label"] == "nightly-18" and step["run_id"] == "run-18"
    assert step["change"] == pytest.approx(0.15, abs=0.03) and step["torch"] == "2.13.0.dev20260119"


def test_flat_series_has_no_step():
    got = fit(series_records([1e-3] * 30))
    assert got["status"] == "ok" and got["steps"] == [] and len(got["segments"]) == 1


def test_detection_rate_over_seeds():
    """The documented sensitivity: a 10-sigma step (20% at 2% noise) is found at the right record in at
    least 18 of 20 series; none of 20 flat series shows a step."""
    found = sum([s["index"] for s in fit(series_records([1e-3] * 15 + [1.2e-3] * 15, seed=k))["steps"]] == [15]
                for k in range(20))
    flat = sum(bool(fit(series_records([1e-3] * 30, seed=100 + k))["steps"]) for k in range(20))
    assert found >= 18 and flat == 0


def test_short_series_is_insufficient_data():
    got = fit(series_records([1e-3] * 4))
    assert got == {"points": 4, "status": "insufficient data", "steps": [], "segments": []}


def test_instruction_series_steps_exactly():
    counts = [1_000_000] * 10 + [1_020_000] * 10
    got = fit(series_records([1e-3] * 20, instructions=counts), "instructions")
    assert [s["index"] for s in got["steps"]] == [10] and got["steps"][0]["change"] == pytest.approx(0.02)


def _write(recs, folder):
    for r in recs:
        record.save(r, folder / r["run_id"] / record.RECORD_FILENAME)
    return folder


def test_history_command_reports_and_plots(tmp_path, capsys, monkeypatch):
    """`torchconform history FOLDER --out DIR`: one line per step, history.json, and index.html whose plot
    marks the step with a dashed line between the last record before it and the first after it."""
    from harness.report import plots

    folder = _write(series_records([1e-3] * 18 + [1.15e-3] * 12), tmp_path / "nightly")
    figures = []
    real = plots._data_uri
    monkeypatch.setattr(plots, "_data_uri", lambda fig: (figures.append(fig), real(fig))[1])
    assert main(["history", str(folder), "--out", str(tmp_path / "rep")]) == 0
    out = capsys.readouterr().out
    assert f"{NAME} (median seconds per call) from run nightly-18" in out and out.count("step +") == 1
    data = json.loads((tmp_path / "rep" / "history.json").read_text())
    assert data["series"]["wall"][NAME]["steps"][0]["index"] == 18
    html = (tmp_path / "rep" / "index.html").read_text()
    assert "Change-points (1)" in html and "nightly-18" in html and 'alt="median time per benchmark' in html
    hist_fig = figures[-1]
    ax = hist_fig.axes[0]
    dashed = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert [ln.get_xdata()[0] for ln in dashed] == [17.5]
    assert any(t.get_text().startswith("+1") for t in ax.texts)
    assert "### Change-points (1)" in (tmp_path / "rep" / "summary.md").read_text()


def test_history_command_exit_statuses(tmp_path, capsys):
    empty = make_record(benchmarks=[])
    record.save(empty, tmp_path / "e" / record.RECORD_FILENAME)
    assert main(["history", str(tmp_path / "e")]) == 3
    assert "nothing to analyse" in capsys.readouterr().err
    assert main(["history", str(tmp_path / "missing.json")]) == 2
    folder = _write(series_records([1e-3] * 3), tmp_path / "short")
    assert main(["history", str(folder)]) == 0
    assert "insufficient data" in capsys.readouterr().out
