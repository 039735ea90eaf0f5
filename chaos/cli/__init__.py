"""The ``harness`` command line: stack, load, run, suite, validate, demo."""

from chaos.cli.commands import main

__all__ = ["main"]
