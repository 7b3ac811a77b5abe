"""``python -m harness.cli``: the torchconform command without an installed entry point."""
import sys

from harness.cli import main

sys.exit(main())
