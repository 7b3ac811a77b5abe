"""``torchconform run``: the suites under pytest in a child process, then the run record's reports.

Interrupting a run keeps what it did. SIGINT and SIGTERM sent to ``torchconform run`` are forwarded
to pytest once (pytest runs in its own process group, so a terminal's Ctrl-C reaches it only through
this forwarding, never twice); the plugin turns either into pytest's interrupt, which stops the xdist
workers, ends the session and writes the record with ``complete: false``. ``run`` waits ``--grace``
seconds for that, then kills pytest's whole process group; after an interrupt it also kills whatever
is left in that group (a stray worker, a test's subprocess). The reports are rendered from whatever record
exists and marked INCOMPLETE; the exit status is 130 (SIGINT) or 143 (SIGTERM).
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from harness import devices, options, record
from harness.cli.records import print_paths, write_reports
from harness.errors import HarnessError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = Path("reports") / "latest"
GRACE_S = 30.0
SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}


def _suites_dir(arg: str | None) -> Path:
    if arg:
        p = Path(arg)
    elif Path("suites").is_dir():
        p = Path("suites")
    else:
        p = PROJECT_ROOT / "suites"
    if not p.is_dir():
        raise HarnessError(f"suites folder not found: {p} (pass --suites PATH)")
    return p


class _Forwarder:
    """While installed: the first SIGINT/SIGTERM is forwarded to the child and remembered; a second
    one kills the child's process group at once (the user insists)."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.received: int | None = None
        self.at = 0.0
        self._old = {}

    def __enter__(self):
        for sig in SIGNAL_EXIT:
            self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)

    def _handle(self, signum, frame):
        if self.received is None:
            self.received, self.at = signum, time.monotonic()
            try:
                os.kill(self.proc.pid, signum)  # pytest itself; it stops its xdist workers
            except ProcessLookupError:
                pass
        else:
            _signal_group(self.proc, signal.SIGKILL)


def _signal_group(proc: subprocess.Popen, sig) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_pytest(cmd: list[str], env: dict, grace: float) -> tuple[int, int | None]:
    """Run ``cmd``; returns (its exit status, the signal received or None)."""
    # SIGINT back to its default in the child: a shell starts background jobs (`cmd &`, CI scripts) with
    # SIGINT ignored, the child would inherit that, and Python then never raises KeyboardInterrupt, so the
    # forwarded Ctrl-C would be lost and pytest would run to the end.
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, preexec_fn=_default_sigint)
    with _Forwarder(proc) as fwd:
        while True:
            try:
                rc = proc.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                if fwd.received is not None and time.monotonic() - fwd.at > grace:
                    print(f"torchconform: pytest still running {grace:.0f}s after the signal; killing it",
                          file=sys.stderr, flush=True)
                    _signal_group(proc, signal.SIGKILL)
                    rc = proc.wait()
                    break
    if fwd.received is not None:
        _signal_group(proc, signal.SIGKILL)  # nothing of an interrupted run outlives it (e.g. a stray worker)
    return rc, fwd.received


def cmd_run(args) -> int:
    """Run the suites under pytest, write the run record and the three reports."""
    devices.resolve(args.device)  # fail fast, with one clear line, on an unknown/missing device
    if args.grace < 0:
        raise HarnessError(f"--grace must be >= 0 (got {args.grace})")
    out = Path(args.out)
    rec_path = Path(args.record) if args.record else out / record.RECORD_FILENAME
    suites = _suites_dir(args.suites)
    cmd = [sys.executable, "-m", "pytest", str(suites), "-p", "harness.pytest_plugin", "--device", args.device,
           "--tier", args.tier, "--record", str(rec_path), *(["--shard", args.shard] if args.shard else []),
           *(["--policy", args.policy] if args.policy else []), *(["--tc-coverage"] if args.coverage else []),
           *(["--tc-coverage-kinds", args.coverage_kinds] if args.coverage and args.coverage_kinds else []),
           *args.pytest_args]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    print("torchconform run:", " ".join(cmd), flush=True)
    started = time.monotonic()
    rec_before = rec_path.stat().st_mtime_ns if rec_path.exists() else None
    rc, sig = run_pytest(cmd, env, args.grace)
    elapsed = time.monotonic() - started
    fresh = rec_path.exists() and rec_path.stat().st_mtime_ns != rec_before
    if not fresh:
        what = f"was interrupted ({signal.Signals(sig).name})" if sig else f"exited with status {rc}"
        raise HarnessError(f"pytest {what} and wrote no run record at {rec_path}")
    rec = record.load(rec_path)
    paths = write_reports(rec, out)
    print(f"torchconform: {elapsed:.0f}s; record {rec_path}" + ("" if rec.get("complete") else
          f" (INCOMPLETE: {len(rec['tests'])} tests recorded)"))
    print_paths(paths)
    if sig is not None:
        return SIGNAL_EXIT[sig]
    return 0 if rc == 0 else (1 if rc in (1, 5) else 2)


def add_parser(sub) -> None:
    r = sub.add_parser("run", help="run the suites and write a run record plus HTML, Markdown and JUnit reports",
                       description="Run the conformance suites under pytest, then write the run record and "
                                   "the reports (index.html, summary.md, junit.xml) into --out. Extra arguments "
                                   "after -- go to pytest (e.g. -- -k matmul -x -n 2). SIGINT/SIGTERM end the run "
                                   "early: the partial record and its reports are kept (exit 130/143).")
    options.add_to_argparse(r)
    r.add_argument("--out", default=str(DEFAULT_OUT), help=f"report folder (default {DEFAULT_OUT})")
    r.add_argument("--record", default=None, help="run record path (default OUT/record.json)")
    r.add_argument("--coverage", action="store_true",
                   help="also record the coverage ledger (pytest's --tc-coverage): which public callables, aten "
                        "overloads and torch.nn classes the tests exercised with a check; into the record and the "
                        "reports' Coverage section (see `torchconform coverage RECORD`). Off by default")
    r.add_argument("--coverage-kinds", default=None, metavar="KINDS",
                   help=f"with --coverage: pytest's --tc-coverage-kinds ({options.COVERAGE_KINDS.help})")
    options.add_to_argparse(r, (options.SUITES,))
    r.add_argument("--grace", type=float, default=GRACE_S, metavar="SECONDS",
                   help=f"after SIGINT/SIGTERM, wait this long for pytest to write the record before killing "
                        f"it (default {GRACE_S:.0f})")
    r.add_argument("pytest_args", nargs=argparse.REMAINDER, help="arguments passed to pytest after --")
    r.set_defaults(func=cmd_run)
