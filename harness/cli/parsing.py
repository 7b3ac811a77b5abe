"""The CLI's argument parser: usage errors are one line on stderr and exit status 2, like every other
bad input, never argparse's usage block."""
from __future__ import annotations

import argparse


class Parser(argparse.ArgumentParser):
    """An argparse parser whose usage errors are one line on stderr and exit status 2."""

    def error(self, message):
        where = self.prog.removeprefix("torchconform").strip()
        self.exit(2, f"torchconform: error: {where + ': ' if where else ''}{message}\n")
