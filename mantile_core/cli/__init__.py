"""The ``mantile`` command line: ``estimate``, ``layers``, ``plugins``, ``hardware``,
``validate`` (and any command module listed in ``COMMAND_MODULES``).

Every MantileError becomes one line on stderr and exit status 2; so do argument errors.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings

from ..errors import MantileError

__all__ = ["main", "build_parser", "COMMAND_MODULES"]

# Each module defines register(subparsers) adding its subcommand with set_defaults(run=...).
COMMAND_MODULES = ("estimate_cmd", "info_cmds", "validate_cmd", "sweep_cmd", "reconcile_cmd")


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit status 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mantile", description="Analytical cost of serving LLMs on accelerators.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(f".{name}", __name__).register(sub)
    return parser


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    print(f"mantile: warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    warnings.showwarning = _one_line_warning
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 0
    try:
        return int(args.run(args) or 0)
    except MantileError as exc:
        print(f"mantile: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. piped into head
        return 0
