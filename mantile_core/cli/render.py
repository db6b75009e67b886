"""Human output: aligned tables with units (rich), and JSON.

Units, one convention in every table: memory in binary units (``bytes_h``: GiB = 2^30 bytes,
MiB, KiB), as vLLM, PyTorch and nvidia-smi report it; rates and counts with decimal prefixes
(``si``: FLOP, FLOP/s, B/s, tokens/s), as datasheets state them; plain figures with three
significant digits (``sig``: never "0.0 tok/s" for a small rate). JSON keeps exact bytes.
"""

from __future__ import annotations

import sys
from typing import Any, Iterable, Sequence

from ..units import bytes_h

__all__ = ["print_json", "print_table", "si", "bytes_h", "sig"]


def print_json(document: Any) -> None:
    """The document as strict JSON on stdout (built whole first: an error writes nothing)."""
    from ..jsonout import dumps

    sys.stdout.write(dumps(document) + "\n")


def si(value: float, unit: str = "", digits: int = 3) -> str:
    """1.23e12 -> '1.23 T' + unit (decimal prefixes)."""
    value = float(value)
    for factor, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.{digits}g} {prefix}{unit}"
    return f"{value:.{digits}g} {unit}".rstrip()


def sig(value: float, digits: int = 3) -> str:
    """``value`` with at least ``digits`` significant digits, no exponent: 0.04123 -> '0.0412',
    12.345 -> '12.3'; from 10^(digits−1) on, whole and thousands-separated: 12345.6 -> '12,346'."""
    import math

    value = float(value)
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    if abs(value) >= 10 ** (digits - 1):
        return f"{value:,.0f}"
    value = float(f"{value:.{digits}g}")  # rounded first: 99.96 -> 100, not 100.0
    decimals = max(digits - 1 - math.floor(math.log10(abs(value))), 0)
    return f"{value:,.{decimals}f}"


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
