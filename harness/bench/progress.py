"""Progress lines for long benchmark runs, and the time formats they use."""
from __future__ import annotations

import math
import os
import sys
import time


class Progress:
    """``[done/total] case ... (eta)``: one ``\\r``-rewritten line on a terminal, plain lines otherwise."""

    def __init__(self, total: int, stream=None, enabled: bool = True):
        self.total = total
        self.stream = stream or sys.stdout
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)()) and os.environ.get("CI") is None
        self.enabled = enabled
        self.t0 = time.monotonic()
        self.done = 0
        self._width = 0

    def _eta(self) -> str:
        if self.done == 0:
            return "eta ?"
        left = (time.monotonic() - self.t0) / self.done * (self.total - self.done)
        return f"eta {fmt_duration(left)}"

    def start(self, name: str) -> None:
        if self.enabled and self.tty:
            line = f"[{self.done + 1}/{self.total}] {name} ... ({self._eta()})"
            pad = max(self._width - len(line), 0)
            self._width = len(line)
            self.stream.write("\r" + line + " " * pad)
            self.stream.flush()

    def finish(self, name: str, result: str) -> None:
        self.done += 1
        if not self.enabled:
            return
        line = f"[{self.done}/{self.total}] {name}: {result} ({self._eta()})"
        if self.tty:
            pad = max(self._width - len(line), 0)
            self._width = 0
            self.stream.write("\r" + line + " " * pad + "\n")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def fmt_duration(s: float) -> str:
    s = int(round(s))
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def fmt_time(sec: float | None) -> str:
    if sec is None or not math.isfinite(sec):
        return "-"
    for unit, f in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if sec >= f:
            return f"{sec / f:.3g} {unit}"
    return f"{sec / 1e-9:.3g} ns"
