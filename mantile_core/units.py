"""Byte sizes for people: binary units (GiB = 2^30 bytes), the convention of every table and
message (vLLM, PyTorch and nvidia-smi report memory the same way); JSON keeps exact bytes."""

from __future__ import annotations

__all__ = ["bytes_h"]


def bytes_h(value: float) -> str:
    """Bytes in binary units, two decimals: 65248815744 -> '60.77 GiB', 1536 -> '1.50 KiB'."""
    value = float(value)
    for factor, unit in ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if abs(value) >= factor:
            return f"{value / factor:.2f} {unit}"
    return f"{int(value)} B"
