"""The command line: argument parsing and printing (the only place that prints)."""

from thermodiff.cli.main import main

__all__ = ["main"]
