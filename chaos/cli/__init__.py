"""The ``harness`` command line: stack, load, run, suite, validate, demo."""

from isolation_harness.chaos.cli.commands import main

__all__ = ["main"]
