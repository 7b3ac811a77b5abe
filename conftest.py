"""Root conftest: loads the torchconform pytest plugin when the package is not installed.

When torchconform is installed, the ``pytest11`` entry point named ``harness.pytest_plugin``
has already registered the same module and pytest does not load it twice.
"""
pytest_plugins = ["harness.pytest_plugin"]
