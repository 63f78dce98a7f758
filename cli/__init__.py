"""What every script shares: logging set-up and one-line errors instead of tracebacks.

``from cli import run, setup_logging, UsageError`` at the top of each entry point; only the
scripts (the top level, tools/, bench/) import this package.
"""
from cli.runner import STORAGE_ERRORS, UsageError, run, setup_logging

__all__ = ["STORAGE_ERRORS", "UsageError", "run", "setup_logging"]
