"""``torchconform``: the command-line face of the harness, and the only place that wires its layers
together and writes files (records, reports, comparisons).

    run        run the suites under pytest (:mod:`harness.cli.run`)
    report / compare / gate / merge / env / summary    commands on run records (:mod:`harness.cli.records`)
    bench run | pair | calibrate                       benchmarks (:mod:`harness.cli.bench`)
    history                                            change-points over run records (:mod:`harness.cli.history`)
    coverage                                           the coverage ledger of a record (:mod:`harness.cli.coverage`)

Every user error (missing or corrupt record, unknown device, bad option, bad policy, ...) is printed
as one line on stderr with exit status 2; tracebacks are for bugs in torchconform itself. The CLI
never imports pytest: ``run`` starts pytest in a child process.
"""
from __future__ import annotations

import argparse
import sys

from harness import __version__
from harness.cli.parsing import Parser
from harness.errors import HarnessError

DEPRECATED_BENCH_FLAGS = {"--pair": ("pair", 2), "--calibrate": ("calibrate", 1)}


def build_parser() -> argparse.ArgumentParser:
    from harness.cli import bench, coverage, history, records, run

    p = Parser(prog="torchconform",
               description="Conformance and benchmark suite for PyTorch builds: does the torch installed here "
                           "behave as documented, how fast is it, and what changed against a baseline?")
    p.add_argument("--version", action="version", version=f"torchconform {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    run.add_parser(sub)
    records.add_parsers(sub)
    bench.add_parser(sub)
    history.add_parser(sub)
    coverage.add_parser(sub)
    return p


def _modernise(argv: list[str]) -> list[str]:
    """``bench --pair A B ...`` and ``bench --calibrate K ...`` (the old flags) as the subcommands they
    now are, with a deprecation line on stderr; ``bench ...`` without a subcommand is ``bench run``."""
    if not argv or argv[0] != "bench":
        return argv
    rest = argv[1:]
    if rest and rest[0] in ("run", "pair", "calibrate", "-h", "--help"):
        return argv
    for i, a in enumerate(rest):
        flag, eq, value = a.partition("=")
        if flag in DEPRECATED_BENCH_FLAGS:
            mode, n = DEPRECATED_BENCH_FLAGS[flag]
            vals, tail = ([value], rest[:i] + rest[i + 1:]) if eq else (rest[i + 1:i + 1 + n], rest[:i] + rest[i + 1 + n:])
            print(f"torchconform: deprecated: `bench {flag} {' '.join(vals)}` is now "
                  f"`torchconform bench {mode} {' '.join(vals)}`", file=sys.stderr)
            return ["bench", mode, *vals, *tail]
    return ["bench", "run", *rest]


def main(argv: list[str] | None = None) -> int:
    argv = _modernise(list(sys.argv[1:] if argv is None else argv))
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) or a usage error (2, one line on stderr)
        return exc.code if isinstance(exc.code, int) else 2
    if getattr(args, "pytest_args", None) and args.pytest_args[0] == "--":
        args.pytest_args = args.pytest_args[1:]
    try:
        return int(args.func(args) or 0)
    except HarnessError as exc:
        print(f"torchconform: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("torchconform: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
