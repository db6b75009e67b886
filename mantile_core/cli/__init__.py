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


DESCRIPTION = """Analytical cost of serving LLMs on accelerators: FLOPs, bytes, memory, TTFT, TPOT and
throughput per GPU, from a model's config.json. Memory is shown in GiB (binary units), rates
in decimal units; --json documents keep exact bytes (docs/json.md).

exit status: 0 success (warnings, if any, on stderr); 1 validate found a failing case;
2 bad input, a missing plugin, or a warning under --strict (one line on stderr)."""


def version_text() -> str:
    """"mantile-core 0.1.0; plugins: mantile-rope-yarn 0.1.0, ...", read from the installed
    distributions' metadata without importing any plugin."""
    from importlib import metadata

    try:
        core = metadata.version("mantile-core")
    except metadata.PackageNotFoundError:
        core = "unknown"
    plugins = {}
    for entry_point in metadata.entry_points(group="mantile"):
        dist = getattr(entry_point, "dist", None)
        if dist is not None:
            plugins[dist.metadata["Name"]] = dist.version
    listed = ", ".join(f"{name} {version}" for name, version in sorted(plugins.items())) or "none"
    return f"mantile-core {core}; plugins: {listed}"


class _Version(argparse.Action):
    """``--version``: the text is read only when asked for."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, help="print the versions of mantile-core and the installed plugins")

    def __call__(self, parser, namespace, values, option_string=None):
        print(version_text())
        parser.exit(0)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mantile", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action=_Version)
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
