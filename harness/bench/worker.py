"""Benchmark worker: ``python -m harness.bench.worker INIT_JSON``; one JSON request per stdin line.

Started by :class:`harness.bench.sides.WorkerSide`. Replies go on a private copy of the original
stdout; the process's fd 1 is pointed at stderr so prints from benchmark code cannot corrupt the
protocol. The first reply is ``{"ok": "ready"}`` or ``{"error": ...}``.
"""
from __future__ import annotations

import json
import os
import sys


OPS = ("hello", "ceilings", "probe", "setup", "warmup", "samples", "counters", "instructions", "release")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def send(obj):
        proto.write(json.dumps(obj, allow_nan=True) + "\n")
        proto.flush()

    try:
        init = json.loads(argv[0]) if argv else {}
        from harness.bench.sides import InProcessSide

        side = InProcessSide(suites=init.get("suites"), threads=init.get("threads"), config=init.get("config"),
                             overrides=init.get("overrides"), callgrind=init.get("callgrind"), definitions=init.get("definitions"))
    except Exception as exc:
        send({"error": f"{type(exc).__name__}: {exc}"})
        return 2
    send({"ok": "ready"})
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        op = req.get("op")
        if op == "quit":
            break
        fn = getattr(side, op, None) if op in OPS else None
        if fn is None:
            send({"error": f"unknown request {op!r}"})
            continue
        try:
            send({"ok": fn(**req.get("args", {}))})
        except Exception as exc:
            send({"error": f"{type(exc).__name__}: {exc}"})
    side.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
