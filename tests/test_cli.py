"""The CLI: bad input gives one line on stderr and exit 2; report/env/merge work."""
from __future__ import annotations

import pytest

from harness import cli, record
from tests.conftest import make_record


def _one_error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("torchconform: error: ")
    return err[0]


@pytest.mark.parametrize("content,needle", [
    (None, "no such file"),
    ("{not json", "corrupt JSON"),
    ('{"hello": "world"}', "not a torchconform run record"),
    ('{"kind": "torchconform.run-record", "schema_version": 2}', "schema version 2"),
])
@pytest.mark.parametrize("command", ["report", "merge"])
def test_bad_records(tmp_path, capsys, content, needle, command):
    path = tmp_path / "r.json"
    if content is not None:
        path.write_text(content)
    argv = [command, str(path)] + (["--out", str(tmp_path / "m.json")] if command == "merge" else [])
    assert cli.main(argv) == 2
    assert needle in _one_error_line(capsys)


def test_unknown_device(capsys):
    assert cli.main(["run", "--device", "tpu"]) == 2
    assert "unknown device 'tpu'" in _one_error_line(capsys)


def test_report_writes_three_files(tmp_path, record_file, capsys):
    assert cli.main(["report", str(record_file), "--out", str(tmp_path / "rep")]) == 0
    for name in ("index.html", "summary.md", "junit.xml"):
        assert (tmp_path / "rep" / name).stat().st_size > 200
    out = capsys.readouterr().out
    assert "index.html" in out


def test_report_escapes_html(tmp_path):
    rec = make_record()
    rec["tests"][1]["nodeid"] = "suites/nn/test_b.py::test_<script>alert(1)</script>"
    rec["tests"][1]["message"] = "<img src=x onerror=alert(2)>"
    rec["fingerprint"]["hostname"] = "<b>host</b>"
    path = record.save(rec, tmp_path / "r.json")
    assert cli.main(["report", str(path)]) == 0
    html = (tmp_path / "index.html").read_text()
    assert "<script>alert" not in html and "<img src=x" not in html and "<b>host</b>" not in html
    assert "&lt;script&gt;" in html


def test_junit_is_parseable(tmp_path, record_file):
    import xml.etree.ElementTree as ET

    assert cli.main(["report", str(record_file), "--out", str(tmp_path)]) == 0
    root = ET.parse(tmp_path / "junit.xml").getroot()
    assert root.tag == "testsuites"
    assert sum(int(s.get("failures")) for s in root) == 1
    assert sum(int(s.get("skipped")) for s in root) == 1


def test_env_prints_fingerprint(capsys):
    assert cli.main(["env"]) == 0
    out = capsys.readouterr().out
    assert "torch" in out and "CPU" in out
    assert cli.main(["env", "--json"]) == 0
    import json

    assert json.loads(capsys.readouterr().out)["torch"]["version"]


def test_merge_cli(tmp_path, capsys):
    a = record.save(make_record(), tmp_path / "a.json")
    other = make_record()
    other["fingerprint"]["cpu"]["model"] = "Other CPU"
    b = record.save(other, tmp_path / "b.json")
    assert cli.main(["merge", str(a), str(b), "--out", str(tmp_path / "m.json")]) == 2
    assert "fingerprints differ in cpu_model" in _one_error_line(capsys)
    assert cli.main(["merge", str(a), str(b), "--allow-mixed", "--out", str(tmp_path / "m.json")]) == 0
    record.load(tmp_path / "m.json")


def test_help_lists_commands(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for cmd in ("run", "report", "compare", "gate", "env", "merge", "summary", "bench"):
        assert cmd in out
    assert cli.main(["bench", "--help"]) == 0
    out = capsys.readouterr().out
    assert all(mode in out for mode in ("run", "pair", "calibrate"))


@pytest.mark.parametrize("argv", [["run", "--tier", "huge"], ["gate"], ["compare", "a.json"], ["nosuchcommand"],
                                  ["report", "r.json", "--bogus"], ["bench", "pair", "--threads", "x", "a", "b"]])
def test_usage_errors_are_one_line(capsys, argv):
    """Bad options keep the contract: exit 2 and one line on stderr (argparse's usage block is not printed)."""
    assert cli.main(argv) == 2
    line = _one_error_line(capsys)
    assert "usage:" not in line


def test_options_defined_once():
    """--device defaults to 'all' for the plugin, `run` and `bench` alike; --policy has one definition."""
    from harness import options

    parser = cli.build_parser()
    subs = parser._subparsers._group_actions[0].choices
    bench = subs["bench"]._subparsers._group_actions[0].choices
    for p in (subs["run"], bench["run"], bench["pair"], bench["calibrate"]):
        dev = next(a for a in p._actions if "--device" in a.option_strings)
        assert dev.default == "all" and dev.help == options.DEVICE.help
    for p in (subs["run"], subs["report"], subs["compare"], subs["gate"], bench["pair"]):
        pol = next(a for a in p._actions if "--policy" in a.option_strings)
        assert pol.help == options.POLICY.help


def test_summary_command(capsys, record_file):
    """`torchconform summary` (what scripts/gpu-check prints): the report's section table, as text."""
    assert cli.main(["summary", str(record_file), "--wall", "12", "--by-device"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["section", "device", "passed", "failed", "error", "skipped", "xfailed", "xpassed", "time(s)"]
    assert out[1].split()[:6] == ["nn", "-", "0", "0", "0", "1"] and out[2].split()[:4] == ["nn", "cpu", "0", "1"]
    assert out[-2].split()[:3] == ["TOTAL", "1", "1"]
    assert out[-1].startswith("wall time 12 s; torch 2.13.0+cpu")


def test_summary_on_a_bare_machine(record_file):
    """scripts/gpu-check's table needs neither Jinja2 nor matplotlib nor jsonschema (bare GPU runners):
    the report's renderers are imported lazily, so the section table comes from the report model alone."""
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys\n"
            "for name in ('jinja2', 'matplotlib', 'jsonschema'):\n"
            "    sys.modules[name] = None  # import fails as if not installed\n"
            "from harness.cli import main\n"
            f"rc = main(['summary', {str(record_file)!r}])\n"
            "assert 'harness.report.html' not in sys.modules and 'jinja2' not in [m for m in sys.modules if sys.modules[m]]\n"
            "sys.exit(rc)\n")
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0].split()[0] == "section" and "TOTAL" in out.stdout
