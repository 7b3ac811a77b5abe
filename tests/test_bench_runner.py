"""``torchconform bench run|pair|calibrate`` on a tiny fake definition set (tmp_path): rounds with ceiling
probes, exact counters, the instruction lane (skipped without valgrind; counted with it at the full tier),
exit statuses, and the asv adapter's classes."""
from __future__ import annotations

import json
import textwrap

import pytest

from harness import record
from harness.cli import main

FAKE = textwrap.dedent('''
    from harness.bench import Benchmark

    def _add(device, n):
        import torch
        a = torch.ones(n, device=device)
        return lambda: a.add(1.0)

    def _mm(device, n, dtype):
        import torch
        if dtype == "float16":
            raise NotImplementedError("float16 is not benchmarked here")
        a = torch.ones(n, n, device=device)
        return lambda: a @ a

    def _boom(device):
        raise RuntimeError("kaboom")

    BENCHMARKS = [
        Benchmark(name="add", section="fake", setup=_add, params={"n": [10, 1000]}, bytes=lambda n: 8 * n),
        Benchmark(name="mm", section="fake", setup=_mm, params={"n": [8], "dtype": ["float32", "float16"]},
                  flops=lambda n, dtype: 2 * n ** 3),
        Benchmark(name="boom", section="other", setup=_boom, tier="full"),
    ]
''')

FAST = ["--min-time", "0.01", "--min-samples", "5", "--block-time", "0.0005", "--no-ceilings", "-q", "--threads", "1"]


@pytest.fixture
def suite(tmp_path):
    d = tmp_path / "suites" / "fake"
    d.mkdir(parents=True)
    (d / "bench_fake.py").write_text(FAKE)
    return tmp_path / "suites"


def _run(suite, out, *extra, mode=("run",)):
    return main(["bench", *mode, "--suites", str(suite), "--out", str(out), *FAST, *extra])


def test_record_has_every_sample_and_skip_reason(suite, tmp_path):
    out = tmp_path / "out"
    assert _run(suite, out) == 0
    rec = record.load(out)  # validates against the schema
    assert rec["complete"] and rec["exit_status"] == 0 and rec["bench"]["threads"] == 1
    by = {b["name"]: b for b in rec["benchmarks"]}
    assert set(by) == {"fake.add[cpu,n=10]", "fake.add[cpu,n=1000]", "fake.mm[cpu,n=8,dtype=float32]",
                       "fake.mm[cpu,n=8,dtype=float16]"}  # the full-tier 'boom' is not run at default tier
    ok = by["fake.add[cpu,n=10]"]
    assert ok["status"] == "ok" and len(ok["samples"]) >= 5 and ok["inner_loops"] >= 1 and ok["bytes"] == 80
    assert min(ok["samples"]) <= ok["median"] <= max(ok["samples"]) and ok["timer"] == "perf_counter"
    sk = by["fake.mm[cpu,n=8,dtype=float16]"]
    assert sk["status"] == "skipped" and sk["samples"] == [] and "float16" in sk["reason"]


def test_selection_k_and_section_and_tier(suite, tmp_path, capsys):
    assert main(["bench", "run", "--suites", str(suite), "--list", "-k", "add and not 1000"]) == 0
    assert capsys.readouterr().out.split() == ["fake.add[cpu,n=10]"]
    assert main(["bench", "--suites", str(suite), "--list", "--tier", "full", "--section", "other"]) == 0
    assert capsys.readouterr().out.split() == ["other.boom[cpu]"]
    assert main(["bench", "--suites", str(suite), "--list", "--tier", "smoke"]) == 0
    assert capsys.readouterr().out.split() == ["fake.add[cpu,n=10]", "fake.mm[cpu,n=8,dtype=float32]"]


def test_erroring_case_recorded_exit_1(suite, tmp_path):
    out = tmp_path / "o"
    assert _run(suite, out, "--tier", "full", "-k", "boom") == 1
    (e,) = record.load(out)["benchmarks"]
    assert e["status"] == "error" and "kaboom" in e["reason"]


@pytest.mark.parametrize("mode,bad", [
    (("run",), ["--section", "nope"]), (("run",), ["-k", "add and ("]), (("run",), ["--device", "tpu"]),
    (("run",), ["-k", "nothing-matches"]), (("run",), ["--threads", "0"]), (("calibrate", "1"), []),
    (("run",), ["--bogus-option"]), (("pair", "python"), []),
    (("pair", "python", "python"), ["--threshold", "0.1"]),  # the policy decides pair verdicts now
])
def test_bad_input_exit_2_one_line(suite, tmp_path, capsys, mode, bad):
    assert _run(suite, tmp_path / "o", *bad, mode=mode) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("torchconform: error:")


def test_bad_suites_folder_exit_2(tmp_path, capsys):
    assert main(["bench", "run", "--suites", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2


@pytest.mark.parametrize("old,new", [
    (["--pair", "py-a", "py-b"], "`torchconform bench pair py-a py-b`"),
    (["--calibrate", "3"], "`torchconform bench calibrate 3`"),
    (["--calibrate=3"], "`torchconform bench calibrate 3`"),
    ([], None),  # bench without a mode is bench run
])
def test_old_bench_flags_still_work(suite, capsys, old, new):
    """`bench --pair A B` / `bench --calibrate K` keep working, with one deprecation line on stderr."""
    assert main(["bench", "--suites", str(suite), "--list", "-k", "add and 10]", *old]) == 0
    out, err = capsys.readouterr()
    assert out.split() == ["fake.add[cpu,n=10]"]
    if new is None:
        assert err == ""
    else:
        assert err.count("\n") == 1 and err.startswith("torchconform: deprecated: ") and new in err


def test_record_saved_incrementally(suite, tmp_path, monkeypatch):
    """An interrupt after the first case of the first round leaves a valid record with complete=false
    and that case's samples so far."""
    from harness.bench import rounds

    real = rounds.measure_case
    calls = {"n": 0}

    def flaky(sides, case, cfg, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(sides, case, cfg, **kw)

    monkeypatch.setattr(rounds, "measure_case", flaky)
    out = tmp_path / "o"
    assert _run(suite, out) == 130
    rec = record.load(out)
    assert rec["complete"] is False and len(rec["benchmarks"]) == 1 and rec["benchmarks"][0]["samples"]
    assert rec["benchmarks"][0]["rounds"]["samples"] == [len(rec["benchmarks"][0]["samples"])]


def test_rounds_probes_and_counters(suite, tmp_path):
    """Every case measured once per round (3 here), the machine's ceilings probed before each round and
    kept beside the case's samples (memory-bound add: GB/s), the exact counters of one call recorded."""
    out = tmp_path / "o"
    assert _run(suite, out, "-k", "add", "--rounds", "3") == 0
    rec = record.load(out)
    assert rec["bench"]["rounds"] == 3 and [p["round"] for p in rec["bench"]["probes"]["cpu"]] == [0, 1, 2]
    assert all(p["gbps"] > 0 and p["gflops"] > 0 for p in rec["bench"]["probes"]["cpu"])
    e = next(b for b in rec["benchmarks"] if b["name"] == "fake.add[cpu,n=1000]")
    r = e["rounds"]
    assert len(r["samples"]) == 3 and sum(r["samples"]) == len(e["samples"]) and min(r["samples"]) >= 3
    assert r["ceiling_kind"] == "gbps" and r["ceiling"] == [p["gbps"] for p in rec["bench"]["probes"]["cpu"]]
    c = e["counters"]
    assert c["dispatcher_calls"] == 1 and c["ops"] == {"aten.add.Tensor": 1}
    assert c["bytes_allocated"] >= 4000 and c["allocations"] >= 1  # a.add(1.0) allocates its 1000-float result


def test_one_round_is_one_block(suite, tmp_path):
    out = tmp_path / "o"
    assert _run(suite, out, "-k", "add and 10]", "--rounds", "1", "--no-counters") == 0
    (e,) = record.load(out)["benchmarks"]
    assert e["rounds"]["samples"] == [len(e["samples"])] and "counters" not in e


def test_nothing_measured_exits_3(suite, tmp_path, capsys):
    """Every selected case skipped: an empty record, exit 3 (it must not look like a pass)."""
    assert _run(suite, tmp_path / "o", "-k", "float16") == 3
    assert "nothing was measured" in capsys.readouterr().err


def test_instruction_lane_skips_with_a_reason_without_valgrind(suite, tmp_path, monkeypatch, capsys):
    import shutil

    from harness.bench import callgrind

    real = shutil.which
    monkeypatch.setattr(callgrind.shutil, "which", lambda name, *a: None if name == "valgrind" else real(name, *a))
    out = tmp_path / "o"
    assert _run(suite, out, "-k", "add and 10]", "--rounds", "1", "--instructions") == 0
    rec = record.load(out)
    assert rec["bench"]["instructions"]["status"] == "skipped"
    (e,) = rec["benchmarks"]
    assert e["instructions"]["status"] == "skipped" and "valgrind is not installed" in e["instructions"]["reason"]
    assert "instruction lane skipped: valgrind is not installed" in capsys.readouterr().out


@pytest.mark.slow  # one worker under callgrind imports torch: ~1-4 min on a busy 2-core machine
def test_instruction_lane_counts_and_sees_two_percent(tmp_path):
    """The lane counts per-call instructions in one callgrind worker: repeated counts agree to well under
    the margin, and a callable doing 2% more of the same work (51 adds instead of 50) is a regression."""
    import shutil

    from harness.bench import exact
    from harness.bench.cases import select_cases
    from harness.bench.instructions import count_cases
    from harness.bench.sensitivity_suite import INSTRUCTION_SUITE, PLANT_2PCT

    if shutil.which("valgrind") is None:
        pytest.skip("valgrind is not installed: the instruction lane cannot run here")
    cases = [c for c in select_cases(INSTRUCTION_SUITE, ["cpu"]) if c.name in PLANT_2PCT]
    entries = {c.name: {"name": c.name} for c in cases}
    lane = count_cases(cases, entries, log=lambda m: None,
                       definitions="harness.bench.sensitivity_suite:INSTRUCTION_SUITE")
    assert lane["status"] == "ok" and lane["tool"].startswith("valgrind") and lane["wall_s"] > 0
    base, planted = (entries[n]["instructions"] for n in PLANT_2PCT)
    assert base["status"] == planted["status"] == "ok" and base["spread"] < exact.MIN_MARGIN / 10
    assert planted["per_call"] / base["per_call"] == pytest.approx(1.02, abs=0.002)
    got = exact.instructions(entries[PLANT_2PCT[0]], entries[PLANT_2PCT[1]])
    assert got["verdict"] == "regression"
    assert exact.instructions(entries[PLANT_2PCT[0]], entries[PLANT_2PCT[0]])["verdict"] == "unchanged"


def test_progress_plain_lines_when_not_a_tty(suite, tmp_path, capsys):
    fast = [a for a in FAST if a != "-q"]
    assert main(["bench", "run", "--suites", str(suite), "--out", str(tmp_path / "o"), *fast, "-k", "add"]) == 0
    out = capsys.readouterr().out
    assert "\r" not in out and "[1/2] fake.add[cpu,n=10]: median" in out and "[2/2]" in out


@pytest.mark.slow  # two worker processes importing torch: ~25 s on a busy 2-core machine
def test_pair_mode_two_workers(suite, tmp_path):
    """bench pair with the same python twice: both records written, compare.json rows judged under the
    policy, nothing flagged."""
    import sys

    out = tmp_path / "pair"
    assert _run(suite, out, "-k", "add and 10]", mode=("pair", sys.executable, sys.executable)) == 0
    base, cand = record.load(out / "baseline"), record.load(out / "candidate")
    assert len(base["benchmarks"][0]["samples"]) >= 5 and len(cand["benchmarks"][0]["samples"]) >= 5
    data = json.loads((out / "compare.json").read_text())
    rows = data["rows"]
    assert [r["name"] for r in rows] == ["fake.add[cpu,n=10]"] and rows[0]["verdict"] != "regression"
    assert data["policy"] and rows[0]["rule"] == "*" and "gating" in rows[0] and "detectable" in rows[0]


def test_asv_classes_follow_asv_conventions(suite):
    from harness.bench.asv_adapter import build

    classes = build("benchmarks.benchmarks", suites=suite)
    mm = classes["FakeMm"]
    assert mm.param_names == ["n", "dtype", "device"] and mm.params == [[8], ["float32", "float16"], ["cpu", "cuda"]]
    assert hasattr(mm, "time_mm") and hasattr(mm, "track_roofline_mm") and not hasattr(classes["OtherBoom"], "track_roofline_boom")
    inst = mm()
    with pytest.raises(NotImplementedError):
        inst.setup(8, "float16", "cpu")
    inst.setup(8, "float32", "cpu")
    inst.time_mm(8, "float32", "cpu")
