"""Where a benchmark case is measured: in this process, or in a worker process of another Python.

Both kinds of *side* answer the same calls (``hello``, ``ceilings``, ``probe``, ``setup``, ``warmup``,
``samples``, ``counters``, ``instructions``, ``release``), so one measurement loop can alternate
between a baseline and a candidate installation (``torchconform bench pair PY_A PY_B``) or run
in-process, and the instruction lane can drive a worker running under valgrind (``wrapper``).
A worker is ``PYTHON -m harness.bench.worker`` speaking one JSON object per line over stdin and
stdout; the project root goes first on its ``PYTHONPATH`` so every side runs the same harness and
definitions and only the torch installation differs.
"""
from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import threading
from collections import deque
from pathlib import Path

from harness.bench.timer import CaseTimer, CeilingProbe, TimerConfig, measure_ceilings
from harness.errors import HarnessError

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class InProcessSide:
    """Measures in the current process. ``overrides`` maps a benchmark's full name to parameter values
    forced on every case (used by the sensitivity self-benchmark to plant a slowdown). The definitions
    are ``benchmarks``, else ``definitions`` (``"package.module:NAME"``, a list of them), else those
    discovered under ``suites``."""

    def __init__(self, *, suites: str | os.PathLike | None = None, benchmarks=None, threads: int | None = None,
                 config: TimerConfig | dict | None = None, overrides: dict | None = None, label: str | None = None,
                 callgrind: dict | None = None, definitions: str | None = None):
        import importlib

        import torch

        from harness.bench.definition import discover

        if benchmarks is None and definitions:
            mod, _, attr = definitions.partition(":")
            benchmarks = getattr(importlib.import_module(mod), attr)
        if benchmarks is None:
            benchmarks = discover(suites)
        self.benchmarks = {b.full_name: b for b in benchmarks}
        if threads:
            torch.set_num_threads(int(threads))
        self.threads = torch.get_num_threads()
        self.cfg = config if isinstance(config, TimerConfig) else TimerConfig(**(config or {}))
        self.overrides = overrides or {}
        self.label = label
        self.timer: CaseTimer | None = None
        self._case = None
        self._probes: dict = {}
        self._children: frozenset = frozenset()
        self._counter = None
        if callgrind:
            from harness.bench.callgrind import InstructionCounter

            self._counter = InstructionCounter(callgrind["dir"], callgrind.get("control"))

    def hello(self) -> dict:
        from harness import fingerprint

        return {"fingerprint": fingerprint.collect(), "threads": self.threads, "python": sys.executable}

    def ceilings(self, device: str) -> dict:
        return measure_ceilings(device)

    def probe(self, device: str) -> dict:
        """The machine's ceilings right now (:class:`~harness.bench.timer.CeilingProbe`, ~20 ms)."""
        if device not in self._probes:
            self._probes[device] = CeilingProbe(device)
        return self._probes[device]()

    def setup(self, name: str, params: dict, device: str) -> dict:
        import multiprocessing

        self.release()
        self._children = frozenset(p.pid for p in multiprocessing.active_children())
        b = self.benchmarks.get(name)
        if b is None:
            return {"status": "error", "reason": f"benchmark {name} is not defined on this side"}
        p = dict(params)
        p.update(self.overrides.get(name, {}))
        try:
            fn = b.make(device, p)
        except NotImplementedError as exc:
            return {"status": "skipped", "reason": str(exc) or "not implemented for these parameters"}
        except Exception as exc:  # a broken op is a result, not a harness crash
            return {"status": "error", "reason": f"setup raised {type(exc).__name__}: {exc}"[:500]}
        self.timer = CaseTimer(fn, device, self.cfg)
        self._case = (b, p, device)
        return {"status": "ok"}

    def warmup(self) -> dict:
        t = self._need_timer()
        try:
            t.warmup()
        except Exception as exc:
            return {"status": "error", "reason": f"call raised {type(exc).__name__}: {exc}"[:500]}
        return {"status": "ok", "inner_loops": t.inner_loops, "per_call": t.per_call_estimate,
                "warmup_calls": t.warmup_calls_done, "timer": t.timer_name, "l2": t.l2_state}

    def samples(self, k: int, inner_loops: int) -> dict:
        t = self._need_timer()
        try:
            return {"status": "ok", "samples": t.samples(int(k), int(inner_loops))}
        except Exception as exc:
            return {"status": "error", "reason": f"call raised {type(exc).__name__}: {exc}"[:500]}

    def counters(self) -> dict:
        """Exact counters of one call of the current case (:mod:`harness.bench.counters`)."""
        from harness.bench import counters

        t = self._need_timer()
        b, p, device = self._case
        return counters.measure(t.fn, device, b, p, sync=t.sync)

    def instructions(self, repeats: int, calls: int | None = None) -> dict:
        """Instructions per call of the current case; only in a worker under the lane's valgrind
        (``calls`` None: chosen from the first count, :meth:`InstructionCounter.count`)."""
        t = self._need_timer()
        if self._counter is None or not self._counter.running():
            return {"status": "skipped", "reason": "not running under callgrind"}
        try:
            return self._counter.count(t.fn, calls, repeats, known_children=self._children)
        except Exception as exc:
            return {"status": "error", "reason": f"counting raised {type(exc).__name__}: {exc}"[:500]}

    def release(self) -> dict:
        if self.timer is not None:
            self.timer = None
            gc.collect()
            try:
                import torch

                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
            except Exception:
                pass
        return {"status": "ok"}

    def close(self) -> None:
        self.release()

    def _need_timer(self) -> CaseTimer:
        if self.timer is None:
            raise HarnessError("no benchmark case is set up on this side")
        return self.timer


class WorkerSide:
    """A worker process running ``python -m harness.bench.worker`` with another Python (venv)."""

    def __init__(self, python: str, *, suites: str | os.PathLike | None = None, threads: int | None = None,
                 config: TimerConfig | dict | None = None, overrides: dict | None = None, label: str | None = None,
                 wrapper: list[str] | None = None, env: dict | None = None, callgrind: dict | None = None,
                 definitions: str | None = None):
        self.python = str(python)
        self.label = label
        cfg = config.to_dict() if isinstance(config, TimerConfig) else dict(config or {})
        extra_env, env = env, dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
        env.setdefault("PYTHONUNBUFFERED", "1")
        # Two workers take turns on the same cores: OpenMP threads that spin after their side's turn
        # would steal cycles from the other side's measurement, so idle threads sleep instead.
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        env.update(extra_env or {})
        init = {"suites": str(suites) if suites else None, "threads": threads, "config": cfg,
                "overrides": overrides or {}, "callgrind": callgrind, "definitions": definitions}
        try:
            self.proc = subprocess.Popen([*(wrapper or []), self.python, "-m", "harness.bench.worker", json.dumps(init)],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         text=True, env=env, cwd=str(PROJECT_ROOT), bufsize=1)
        except OSError as exc:
            raise HarnessError(f"cannot start a benchmark worker with {self.python}: {exc}") from None
        self._stderr = deque(maxlen=40)
        self._t = threading.Thread(target=self._drain, daemon=True)
        self._t.start()
        first = self._read()
        if "error" in first:
            self.close()
            raise HarnessError(f"benchmark worker {self.python} failed to start: {first['error']}")

    def _drain(self):
        for line in self.proc.stderr:
            self._stderr.append(line.rstrip("\n"))

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(timeout=10)
            tail = " | ".join(list(self._stderr)[-5:])
            raise HarnessError(f"benchmark worker {self.python} exited (status {self.proc.returncode}): {tail}")
        return json.loads(line)

    def _call(self, op: str, **kw):
        try:
            self.proc.stdin.write(json.dumps({"op": op, "args": kw}) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            tail = " | ".join(list(self._stderr)[-5:])
            raise HarnessError(f"benchmark worker {self.python} is gone: {tail}") from None
        reply = self._read()
        if "error" in reply:
            raise HarnessError(f"benchmark worker {self.python}: {reply['error']}")
        return reply["ok"]

    def hello(self) -> dict:
        return self._call("hello")

    def ceilings(self, device: str) -> dict:
        return self._call("ceilings", device=device)

    def probe(self, device: str) -> dict:
        return self._call("probe", device=device)

    def setup(self, name: str, params: dict, device: str) -> dict:
        return self._call("setup", name=name, params=params, device=device)

    def warmup(self) -> dict:
        return self._call("warmup")

    def samples(self, k: int, inner_loops: int) -> dict:
        return self._call("samples", k=k, inner_loops=inner_loops)

    def counters(self) -> dict:
        return self._call("counters")

    def instructions(self, repeats: int, calls: int | None = None) -> dict:
        return self._call("instructions", repeats=repeats, calls=calls)

    def release(self) -> dict:
        return self._call("release")

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps({"op": "quit", "args": {}}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=10)
            except Exception:
                self.proc.kill()
                self.proc.wait()
