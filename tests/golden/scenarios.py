"""The golden scenarios: every user-visible output of the comparison/report path on the golden records.

``tests/test_golden.py`` re-runs each scenario and compares its outputs byte for byte with
``tests/golden/expected/<scenario>/`` (captured by ``python -m tests.golden.capture`` from the code
as it was BEFORE the layering refactor of issue 14; re-capture only to accept a deliberate, documented
change). Every scenario passes ``--policy`` explicitly, so entries that others add to the checkout's
policy file cannot change these outputs.
"""
from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

GOLDEN = Path(__file__).resolve().parent
EXPECTED = GOLDEN / "expected"
P = str(GOLDEN / "policy.toml")


def g(name: str) -> str:
    return str(GOLDEN / f"{name}.json")


# name -> CLI argv ("{out}" is replaced by the scenario's output folder)
SCENARIOS = {
    "compare": ["compare", g("baseline"), g("candidate"), "--policy", P, "--out", "{out}"],
    "compare-gate": ["compare", g("baseline"), g("candidate"), "--policy", P, "--out", "{out}", "--no-plots", "--gate"],
    "compare-same": ["compare", g("baseline"), g("baseline"), "--policy", P, "--out", "{out}", "--no-plots"],
    "gate-fail": ["gate", g("baseline"), g("candidate"), "--policy", P],
    "gate-pass": ["gate", g("baseline"), g("baseline"), "--policy", P],
    "gate-out": ["gate", g("baseline"), g("candidate"), "--policy", P, "--out", "{out}", "--no-plots"],
    "gate-missing": ["gate", g("baseline"), str(GOLDEN / "no-such-record.json"), "--policy", P],
    "report-plain": ["report", g("candidate"), "--out", "{out}", "--no-plots"],
    "report-history": ["report", g("baseline"), g("candidate"), "--out", "{out}"],
    "report-baseline": ["report", g("candidate"), "--baseline", g("baseline"), "--policy", P, "--out", "{out}",
                        "--no-plots"],
    "report-hostile": ["report", g("hostile"), "--baseline", g("baseline"), "--policy", P, "--out", "{out}",
                       "--no-plots"],
    "report-partial": ["report", g("partial"), "--out", "{out}", "--no-plots"],
    "compare-pair": ["compare", g("pair-baseline"), g("pair-candidate"), "--policy", P, "--out", "{out}",
                     "--no-plots"],
    # issue 15: schema-version-1 records (one block per case: no between-run evidence), both signals with
    # normalised figures (tests/golden/make_v2.py), an empty record, a nightly history with a step
    "compare-v1": ["compare", g("v1-baseline"), g("v1-candidate"), "--policy", P, "--out", "{out}", "--no-plots"],
    "compare-signals": ["compare", g("signals-baseline"), g("signals-candidate"), "--policy", P, "--out", "{out}",
                        "--no-plots"],
    "gate-empty": ["gate", g("baseline"), g("empty"), "--policy", P],
    "history": ["history", str(GOLDEN / "history"), "--out", "{out}", "--no-plots"],
    # issue 12: both records carry a coverage ledger (tests/golden/make_coverage.py): the Coverage section and
    # the advisory coverage diff of the comparison
    "compare-coverage": ["compare", g("coverage-baseline"), g("coverage-candidate"), "--policy", P, "--out", "{out}",
                         "--no-plots"],
}


def run_cli(argv: list[str], out: Path) -> dict[str, str]:
    """Run one CLI scenario in-process; returns {file name: text} of everything it printed and wrote."""
    from harness.cli import main

    argv = [a.replace("{out}", str(out)) for a in argv]
    so, se = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(so), contextlib.redirect_stderr(se):
        rc = main(argv)
    files = {"exit_status": f"{rc}\n", "stdout": so.getvalue(), "stderr": se.getvalue()}
    if out.is_dir():
        for p in sorted(out.iterdir()):
            files[p.name] = p.read_text(encoding="utf-8")
    return {k: v.replace(str(out), "<OUT>").replace(str(GOLDEN), "<GOLDEN>") for k, v in files.items()}


def summary_table(by_device: bool) -> str:
    """What ``scripts/gpu-check`` prints (``python -m harness.summary``) for the golden candidate."""
    from harness import record
    from harness.cli.records import summary_table

    return summary_table(record.load(g("candidate")), by_device) + "\n"


def pair_verdicts() -> str:
    """The lines ``bench pair`` prints for the golden pair records (what it decides, not how long it
    took), under the built-in default policy. (Captured before issue 14 with bench --pair's own
    alpha 0.01 and threshold 0.05: ``compare_benchmarks(base, cand, alpha=0.01, threshold=0.05)``.)"""
    from harness import policy
    from harness.bench.runner import print_rows
    from harness.cli.bench import judge_with

    base = json.loads(Path(g("pair-baseline")).read_text())
    cand = json.loads(Path(g("pair-candidate")).read_text())
    rows = judge_with(policy.default(), None)(base, cand)
    buf = io.StringIO()
    print_rows([r for r in rows if r["verdict"] != "unchanged"], stream=buf)
    n_flag = sum(r["verdict"] == "regression" and r["gating"] for r in rows)
    buf.write(f"{n_flag} confirmed gating regression(s)\n")
    return buf.getvalue()
