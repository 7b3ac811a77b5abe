"""Valgrind's callgrind for the deterministic lane (:mod:`harness.bench.instructions`): whether it can
run here, the command line its worker runs under, and counting in that worker.

Why not ``torch.utils.benchmark.Timer.collect_callgrind``? It starts one ``valgrind`` process per
call, with instrumentation on from the start, so every case pays for importing torch under full
instrumentation: measured here (2-core VM under load) 297 s for ``import torch`` alone, 344 s for a
single 50-call count, and it needs its globals wrapped in ``CopyIfCallgrind``. This lane starts ONE
worker (``python -m harness.bench.worker``, the same protocol as ``bench pair``) under
``valgrind --tool=callgrind --instr-atstart=no --collect-atstart=no``: torch is imported without
instrumentation (64 s in the same conditions, 79 s for the same count), and for each case
instrumentation is switched on only around the counted calls with callgrind's client requests
(``CALLGRIND_START_INSTRUMENTATION``, ``TOGGLE_COLLECT``, ``DUMP_STATS``), compiled once per lane from
``valgrind/callgrind.h`` into a tiny shared library called through ctypes. Where gcc or the header is
missing, it falls back to torch's own ``torch._C._valgrind_toggle`` with instrumentation on from the
start (slower, same counts).

Per case (CPU only): setup and warm-up run uninstrumented; then, instrumented but discarded, two
single calls and one whole repeat (first instrumented passes differ by up to 1%: one-time costs, caches
of kernel primitives), and ``repeats`` repeats of ``calls`` calls are counted (``calls`` chosen so one
repeat is about ten million instructions, a few milliseconds of native work, from the second call). The
entry's ``instructions`` holds the per-call count of each repeat, their median and their spread
(``(max - min) / median``), from which the comparison derives the case's noise margin.

What this lane cannot see: memory-bound slowdowns (a cache miss is one instruction), threading (one
thread, ``torch.set_num_threads(1)``; contention and scaling are invisible), clock frequency and
anything in other processes (cases whose definition says ``in_process=False``, or that leave child
processes running, are skipped with that reason). Wall time stays the signal for those.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from harness.record import median

CONTROL_SOURCE = """\
#include <valgrind/callgrind.h>
int tc_running_on_valgrind(void) { return (int)RUNNING_ON_VALGRIND; }
void tc_start_instrumentation(void) { CALLGRIND_START_INSTRUMENTATION; }
void tc_stop_instrumentation(void) { CALLGRIND_STOP_INSTRUMENTATION; }
void tc_toggle_collect(void) { CALLGRIND_TOGGLE_COLLECT; }
void tc_dump_stats(void) { CALLGRIND_DUMP_STATS; }
"""
DEFAULT_REPEATS = 3
TARGET_INSTRUCTIONS = 10_000_000  # per counted repeat: enough calls that per-call noise averages out
MAX_CALLS = 10_000
_TOTALS = re.compile(r"^(?:totals|summary):\s+(\d+)", re.M)


# ------------------------------------------------------------------------------- parent: the lane

def unavailable() -> str | None:
    """Why the lane cannot run here (None: it can)."""
    if shutil.which("valgrind") is None:
        return "valgrind is not installed (apt-get install valgrind): instruction counts skipped"
    import torch

    probe = getattr(torch._C, "_valgrind_supported_platform", None)
    if probe is None or not probe():
        return f"torch {torch.__version__} on this platform does not support callgrind client requests"
    return None


def tool_version() -> str | None:
    try:
        return subprocess.run(["valgrind", "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def build_control(folder: Path) -> Path | None:
    """The client-request library compiled into ``folder``; None where gcc or callgrind.h is missing."""
    cc = shutil.which(os.environ.get("CC", "gcc")) or shutil.which("cc")
    if cc is None:
        return None
    src, lib = Path(folder) / "tc_callgrind.c", Path(folder) / "libtc_callgrind.so"
    src.write_text(CONTROL_SOURCE)
    try:
        done = subprocess.run([cc, "-O1", "-shared", "-fPIC", "-o", str(lib), str(src)], capture_output=True,
                              text=True, timeout=120)
    except (OSError, subprocess.SubprocessError):
        return None
    return lib if done.returncode == 0 and lib.is_file() else None


def wrapper(folder: Path, control: Path | None) -> list[str]:
    """The valgrind command line the worker runs under."""
    return ["valgrind", "--tool=callgrind", "--quiet", f"--instr-atstart={'no' if control else 'yes'}",
            "--collect-atstart=no", "--dump-line=no", "--dump-instr=no",
            f"--callgrind-out-file={Path(folder) / 'callgrind.out.%p'}"]


# ------------------------------------------------------------------------------- worker: counting

class InstructionCounter:
    """Counts instructions of calls in THIS process, which must run under the lane's valgrind command."""

    def __init__(self, folder: str, control: str | None = None):
        import ctypes

        self.folder = Path(folder)
        self.lib = ctypes.CDLL(control) if control else None
        self.dumps = 0

    def running(self) -> bool:
        if self.lib is not None:
            return bool(self.lib.tc_running_on_valgrind())
        return "vgpreload" in os.environ.get("LD_PRELOAD", "")

    def _collect(self, fn, calls: int) -> int:
        import torch

        if self.lib is not None:
            self.lib.tc_toggle_collect()
            for _ in range(calls):
                fn()
            self.lib.tc_toggle_collect()
            self.lib.tc_dump_stats()
        else:
            torch._C._valgrind_toggle()
            for _ in range(calls):
                fn()
            torch._C._valgrind_toggle_and_dump_stats()
        self.dumps += 1
        path = self.folder / f"callgrind.out.{os.getpid()}.{self.dumps}"
        text = path.read_text(errors="replace")
        path.unlink()
        m = _TOTALS.search(text)
        if m is None:
            raise RuntimeError(f"no instruction total in {path.name}")
        return int(m.group(1))

    def count(self, fn, calls: int | None, repeats: int, known_children=frozenset()) -> dict:
        """Per-call instruction counts of ``repeats`` repeats of ``calls`` calls. Before them, under
        instrumentation and discarded: two single calls (the first pays one-time costs such as a kernel's
        primitive cache; the second sizes ``calls`` when it is None, to about
        :data:`TARGET_INSTRUCTIONS` per repeat) and one whole repeat (the state at that call count).
        A case that started child processes (not in ``known_children``, the pids alive before its
        setup) is skipped: their work is not counted."""
        import math
        import multiprocessing

        repeats = max(int(repeats), 2)
        if self.lib is not None:
            self.lib.tc_start_instrumentation()
        try:
            self._collect(fn, 1)
            second = self._collect(fn, 1)
            if not calls:
                calls = min(MAX_CALLS, max(1, math.ceil(TARGET_INSTRUCTIONS / max(second, 1))))
            calls = max(int(calls), 1)
            if calls > 1:  # at one call per repeat, the second single call was that discarded repeat
                self._collect(fn, calls)
            per_call = [self._collect(fn, calls) / calls for _ in range(repeats)]
        finally:
            if self.lib is not None:
                self.lib.tc_stop_instrumentation()
        if {p.pid for p in multiprocessing.active_children()} - set(known_children):
            return {"status": "skipped", "reason": "the case started child processes: their work is not counted"}
        med = median(per_call)
        return {"status": "ok", "reason": None, "per_call": med, "repeats": per_call, "calls": calls,
                "spread": (max(per_call) - min(per_call)) / med if med > 0 else 0.0, "threads": 1, "tool": "callgrind"}
