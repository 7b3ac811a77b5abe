"""Progress lines for long benchmark runs, and the time formats they use."""
from __future__ import annotations

import math
import os
import sys
import time


class Progress:
    """``[done/total] case ... (eta)``: one ``\\r``-rewritten line on a terminal, plain lines otherwise.

    With ``rounds`` > 1 each case is measured once per round: :meth:`start` shows the round, the ETA
    counts chunks (case x round) and a case's line is printed by :meth:`finish` in its last round;
    earlier rounds call :meth:`tick`."""

    def __init__(self, total: int, stream=None, enabled: bool = True, rounds: int = 1):
        self.total = total
        self.rounds = max(int(rounds), 1)
        self.chunks = 0
        self.stream = stream or sys.stdout
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)()) and os.environ.get("CI") is None
        self.enabled = enabled
        self.t0 = time.monotonic()
        self.done = 0
        self._width = 0

    def _eta(self) -> str:
        done = self.chunks if self.rounds > 1 else self.done
        if done == 0:
            return "eta ?"
        left = (time.monotonic() - self.t0) / done * (self.total * self.rounds - done)
        return f"eta {fmt_duration(left)}"

    def tick(self) -> None:
        """One case measured in one round (not its last)."""
        self.chunks += 1

    def start(self, name: str, round_: int | None = None) -> None:
        if self.enabled and self.tty:
            where = f" (round {round_ + 1}/{self.rounds})" if round_ is not None and self.rounds > 1 else ""
            index = self.chunks % self.total + 1 if self.rounds > 1 else self.done + 1
            line = f"[{index}/{self.total}] {name}{where} ... ({self._eta()})"
            pad = max(self._width - len(line), 0)
            self._width = len(line)
            self.stream.write("\r" + line + " " * pad)
            self.stream.flush()

    def finish(self, name: str, result: str) -> None:
        self.done += 1
        self.chunks += 1
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
