"""Options shared by the pytest plugin and the CLI's commands, each defined once.

Each option is data: the plugin adds it with pytest's ``parser.addoption`` (dest prefixed
``torchconform_``) and the CLI with argparse's ``add_argument``, so names, choices, defaults and help
never drift apart between ``pytest suites --device ...``, ``torchconform run --device ...`` and
``torchconform bench run --device ...``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

TIERS = ("smoke", "default", "full")


@dataclass(frozen=True)
class Option:
    name: str  # e.g. "--device"
    help: str
    default: object = None
    choices: tuple | None = None
    metavar: str | None = None
    kwargs: dict = field(default_factory=dict)  # more argparse keywords (action, type, ...); CLI only

    @property
    def dest(self) -> str:
        return "torchconform_" + self.name.lstrip("-").replace("-", "_")


DEVICE = Option(
    "--device",
    help="devices to run on: 'all' (every available device, the default), 'cpu', 'cuda', or a "
    "comma-separated list such as 'cpu,cuda'",
    default="all",
    metavar="DEVICES",
)
TIER = Option(
    "--tier",
    help="how much to run: 'smoke' (tests marked smoke; the first case of each benchmark), 'default', or "
    "'full' (adds slow tests, full-tier benchmarks and larger property-test budgets)",
    default="default",
    choices=TIERS,
)
RECORD = Option(
    "--record",
    help="write a torchconform run record (JSON) to this path when the session ends",
    default=None,
    metavar="PATH",
)
SHARD = Option(
    "--shard",
    help="run only shard I of N (e.g. 2/4): a stable split by test module, so N runners cover the suite "
    "once between them; merge their records with `torchconform merge`",
    default=None,
    metavar="I/N",
)
POLICY = Option(
    "--policy",
    help="gate policy (TOML, docs/policy.md): its expectation manifest marks known failures of this build, "
    "its rules decide what blocks (default: $TORCHCONFORM_POLICY, else the checkout's "
    "policy/torchconform-policy.toml, else built-in defaults)",
    default=None,
    metavar="FILE",
)
MANIFEST = Option(
    "--manifest",
    help="extra expectation manifest ([[expected_failure]] tables); repeatable. Applies to candidate records "
    "that carry no manifest of their own (a run records the one it applied)",
    default=None,
    metavar="FILE",
    kwargs={"action": "append"},
)
NOISE = Option(
    "--noise",
    help="benchmark noise file from `torchconform bench calibrate` (overrides the policy's)",
    default=None,
    metavar="FILE",
)
NO_PLOTS = Option("--no-plots", help="skip the matplotlib plots (faster)", default=False,
                  kwargs={"action": "store_true"})
SUITES = Option("--suites", help="suites folder (default ./suites, else the installed checkout's)", default=None,
                metavar="DIR")
COVERAGE = Option(
    "--tc-coverage",
    help="record the coverage ledger (harness.coverage): which public callables, aten overloads and torch.nn "
    "module classes each test's call ran, counted as exercised where the test made a harness.checks check; "
    "written to the run record's \"coverage\" (off by default: without it no mode or hook is installed). "
    "`torchconform run --coverage` passes it",
    default=False,
    kwargs={"action": "store_true"},
)
COVERAGE_KINDS = Option(
    "--tc-coverage-kinds",
    help="what --tc-coverage records: a comma list of callables, overloads, nn_modules, or 'all' (the "
    "default). overloads pushes a TorchDispatchMode, which steps aside for the callables known to change "
    "results under one (harness.coverage.recorder.DISPATCH_OPAQUE)",
    default="all",
    metavar="KINDS",
)

SUITE_OPTIONS = (DEVICE, TIER, SHARD, POLICY)


def add_to_argparse(parser, options=SUITE_OPTIONS, **overrides) -> None:
    """Add options to an argparse parser (the CLI), without the pytest prefix. ``overrides`` maps an
    option's dest (``out``) to keyword changes for this command only (e.g. a ``default``)."""
    for opt in options:
        dest = opt.name.lstrip("-").replace("-", "_")
        kw = dict(help=opt.help, default=opt.default, **opt.kwargs)
        if opt.choices:
            kw["choices"] = opt.choices
        if opt.metavar and kw.get("action") not in ("store_true", "store_false"):
            kw["metavar"] = opt.metavar
        kw.update(overrides.get(dest, {}))
        parser.add_argument(opt.name, dest=dest, **kw)


def add_to_pytest(group, options=SUITE_OPTIONS + (RECORD, COVERAGE, COVERAGE_KINDS)) -> None:
    """Add options to a pytest option group (the plugin); a flag keeps its ``action`` (``store_true``)."""
    for opt in options:
        kw = dict(help=opt.help, default=opt.default, dest=opt.dest, action=opt.kwargs.get("action", "store"))
        if opt.choices:
            kw["choices"] = list(opt.choices)
        if opt.metavar and kw["action"] == "store":
            kw["metavar"] = opt.metavar
        group.addoption(opt.name, **kw)
