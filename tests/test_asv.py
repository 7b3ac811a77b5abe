"""asv works offline on the installed torch: `asv-run run` on a tiny selection saves results keyed by the
torch build's history commit, and `asv-run publish` builds the dashboard (full tier: asv imports torch
several times, ~1 min on a busy machine)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytest.importorskip("asv", reason="asv is not installed (pip install torchconform[bench])")

SUITE = textwrap.dedent('''
    from harness.bench import Benchmark

    def _add(device, n):
        import torch
        a = torch.ones(n, device=device)
        return lambda: a.add(1.0)

    BENCHMARKS = [Benchmark(name="add", section="tiny", setup=_add, params={"n": [1000]}, bytes=lambda n: 8 * n)]
''')


@pytest.mark.slow
def test_asv_run_and_publish_offline(tmp_path):
    (tmp_path / "suites" / "tiny").mkdir(parents=True)
    (tmp_path / "suites" / "tiny" / "bench_tiny.py").write_text(SUITE)
    env = dict(os.environ, TORCHCONFORM_SUITES=str(tmp_path / "suites"), TORCHCONFORM_ASV_DIR=str(tmp_path / "asv"),
               TORCHCONFORM_ASV_MACHINE="testbox")
    run = subprocess.run([sys.executable, "-m", "harness.bench.asv_run", "run", "-b", "TinyAdd", "--quick"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    results = [p for p in (tmp_path / "asv" / "results" / "testbox").glob("*.json") if p.name != "machine.json"]
    assert len(results) == 1
    data = json.loads(results[0].read_text())
    import torch

    tag_commit = subprocess.run(["git", "log", "-1", "--format=%H %s"], cwd=tmp_path / "asv" / "torch-history",
                                capture_output=True, text=True).stdout.split(" ", 1)
    assert data["commit_hash"] == tag_commit[0] and torch.__version__ in tag_commit[1]
    assert any(k.startswith("benchmarks.TinyAdd.time_add") for k in data["results"])
    pub = subprocess.run([sys.executable, "-m", "harness.bench.asv_run", "publish"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert pub.returncode == 0, pub.stdout[-2000:] + pub.stderr[-2000:]
    assert (tmp_path / "asv" / "html" / "index.html").is_file()
    assert not (Path.home() / ".asv-machine.json").exists() or "testbox" not in (Path.home() / ".asv-machine.json").read_text()
