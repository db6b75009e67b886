"""Human output: aligned tables with units (rich), and JSON."""

from __future__ import annotations

import json
import sys
from typing import Any, Iterable, Sequence

__all__ = ["print_json", "print_table", "si", "bytes_h"]


def print_json(document: Any) -> None:
    json.dump(document, sys.stdout, indent=2)
    sys.stdout.write("\n")


def si(value: float, unit: str = "", digits: int = 3) -> str:
    """1.23e12 -> '1.23 T' + unit (decimal prefixes)."""
    value = float(value)
    for factor, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.{digits}g} {prefix}{unit}"
    return f"{value:.{digits}g} {unit}".rstrip()


def bytes_h(value: float) -> str:
    """Bytes in binary units: 65248815744 -> '60.77 GiB'."""
    value = float(value)
    for factor, unit in ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if abs(value) >= factor:
            return f"{value / factor:.2f} {unit}"
    return f"{int(value)} B"


def print_table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]], *,
                right: Sequence[bool] | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left", header_style="bold")
    for i, column in enumerate(columns):
        justify = "right" if (right[i] if right else i > 0) else "left"
        table.add_column(column, justify=justify)
    for row in rows:
        table.add_row(*(str(cell) for cell in row))
    console = Console()
    if not console.is_terminal:  # files and pipes get the whole table, never cut at 80 columns
        console = Console(width=200)
    console.print(table)
