"""``torchconform run`` interrupted by SIGINT or SIGTERM: the signal reaches pytest, which ends the
session and writes a partial record (``complete: false``); the reports are rendered from it and say
INCOMPLETE; ``run`` exits 130 / 143; and no process of the run keeps running."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
N_TESTS = 40

SUITE = f'''
import os, time, pytest

@pytest.mark.parametrize("i", range({N_TESTS}))
def test_slow(i):
    with open(os.environ["TC_PIDS"], "a") as fh:
        fh.write(f"{{os.getpid()}} {{os.getppid()}}\\n")
    time.sleep(0.5)
'''


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not running
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return True


@pytest.mark.parametrize("sig,xdist", [
    (signal.SIGINT, False), (signal.SIGTERM, False),
    pytest.param(signal.SIGTERM, True, marks=pytest.mark.slow),  # 2 workers importing torch: ~40 s under load
])
def test_interrupted_run_keeps_a_partial_record(tmp_path, sig, xdist):
    if xdist:
        pytest.importorskip("xdist", reason="pytest-xdist is not installed: the -n 2 variant needs it")
    (tmp_path / "suites" / "slow").mkdir(parents=True)
    (tmp_path / "suites" / "slow" / "test_slow.py").write_text(SUITE)
    pids = tmp_path / "pids.txt"
    pids.touch()
    env = dict(os.environ, TC_PIDS=str(pids), TORCHCONFORM_POLICY="",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "harness.cli", "run", "--suites", "suites", "--out", str(out), "--device", "cpu",
           "--grace", "60", "--", "-p", "no:cacheprovider", "-q", *(["-n", "2"] if xdist else [])]
    # started as a shell starts a background job (CI scripts, `cmd &`): with SIGINT ignored, which the run
    # must not pass on to pytest (it would never see the forwarded Ctrl-C)
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        deadline = time.monotonic() + 180
        while len(pids.read_text().splitlines()) < 4:  # a few tests ran (torch imports are slow under load)
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "the run did not start its tests in time"
            time.sleep(0.2)
        proc.send_signal(sig)
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == {signal.SIGINT: 130, signal.SIGTERM: 143}[sig], output
    rec = json.loads((out / "record.json").read_text())
    from harness import record

    record.validate(rec)
    assert rec["complete"] is False and rec["exit_status"] == 2  # pytest: interrupted
    assert 1 <= len(rec["tests"]) < N_TESTS
    assert f"INCOMPLETE: {len(rec['tests'])} tests recorded" in output
    assert "INCOMPLETE" in (out / "index.html").read_text()
    assert "**INCOMPLETE**" in (out / "summary.md").read_text()
    assert 'name="torchconform.run"' in (out / "junit.xml").read_text()
    # nothing of the run outlives it: pytest, its xdist workers, and the process group they ran in
    seen = {int(p) for line in pids.read_text().splitlines() for p in line.split()} - {os.getpid()}
    time.sleep(0.5)
    assert [p for p in seen if _alive(p)] == []
