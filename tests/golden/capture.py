"""Capture the golden outputs: ``python -m tests.golden.capture`` (from the repository root).

Writes ``tests/golden/expected/<scenario>/<file>`` for every scenario of :mod:`tests.golden.scenarios`.
Re-run this only to accept a deliberate output change, and say which in the commit message and in
tests/test_golden.py (its docstring keeps the history of the captures).
"""
from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from tests.golden import scenarios


def main() -> int:
    shutil.rmtree(scenarios.EXPECTED, ignore_errors=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, argv in scenarios.SCENARIOS.items():
            files = scenarios.run_cli(argv, Path(tmp) / name)
            dest = scenarios.EXPECTED / name
            dest.mkdir(parents=True)
            for fname, text in files.items():
                (dest / fname).write_text(text, encoding="utf-8")
    misc = scenarios.EXPECTED / "misc"
    misc.mkdir(parents=True)
    (misc / "summary.txt").write_text(scenarios.summary_table(False), encoding="utf-8")
    (misc / "summary-by-device.txt").write_text(scenarios.summary_table(True), encoding="utf-8")
    (misc / "pair-verdicts.txt").write_text(scenarios.pair_verdicts(), encoding="utf-8")
    import matplotlib

    (misc / "matplotlib-version.txt").write_text(matplotlib.__version__ + "\n", encoding="utf-8")
    print(f"captured {len(scenarios.SCENARIOS)} scenarios into {scenarios.EXPECTED}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
