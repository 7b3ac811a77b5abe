"""Options shared by the pytest plugin and the CLI, defined once.

Each option is data: the plugin adds it with pytest's ``parser.addoption`` and the CLI with
argparse's ``add_argument``, so names, choices, defaults and help never drift apart.
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
    kwargs: dict = field(default_factory=dict)

    @property
    def dest(self) -> str:
        return "torchconform_" + self.name.lstrip("-").replace("-", "_")


DEVICE = Option(
    "--device",
    help="devices to run device-generic tests on: 'all' (every available device, the default), "
    "'cpu', 'cuda', or a comma-separated list such as 'cpu,cuda'",
    default="all",
    metavar="DEVICES",
)
TIER = Option(
    "--tier",
    help="how much to run: 'smoke' (tests marked smoke only), 'default', or 'full' "
    "(adds slow tests and larger property-test budgets)",
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
    help="gate policy whose expectation manifest marks known failures of this build as expected "
    "(default: $TORCHCONFORM_POLICY, else the checkout's policy/torchconform-policy.toml)",
    default=None,
    metavar="FILE",
)

SUITE_OPTIONS = (DEVICE, TIER, SHARD, POLICY)


def add_to_argparse(parser, options=SUITE_OPTIONS) -> None:
    """Add options to an argparse parser (the CLI), without the pytest prefix."""
    for opt in options:
        kw = dict(help=opt.help, default=opt.default)
        if opt.choices:
            kw["choices"] = opt.choices
        if opt.metavar:
            kw["metavar"] = opt.metavar
        parser.add_argument(opt.name, dest=opt.name.lstrip("-").replace("-", "_"), **kw)


def add_to_pytest(group, options=SUITE_OPTIONS + (RECORD,)) -> None:
    """Add options to a pytest option group (the plugin)."""
    for opt in options:
        kw = dict(help=opt.help, default=opt.default, dest=opt.dest, action="store")
        if opt.choices:
            kw["choices"] = list(opt.choices)
        if opt.metavar:
            kw["metavar"] = opt.metavar
        group.addoption(opt.name, **kw)
