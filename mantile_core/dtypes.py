"""Storage formats with their real size, scales included.

``DType.nbytes(n)`` is exact: ``ceil(n·bits/8)`` for the elements plus one scale of
``scale_bits`` per ``block`` elements (mxfp4: 4 bits + an 8-bit scale per 32 elements, i.e.
4.25 bits; nvfp4: 4 bits + an 8-bit scale per 16, i.e. 4.5 bits). Works element-wise on numpy
integer arrays too.
"""

from __future__ import annotations

import attrs

from .errors import ConfigError

__all__ = ["DType", "DTYPES", "get_dtype"]


@attrs.frozen
class DType:
    """A storage format: ``bits`` per element, plus ``scale_bits`` per ``block`` elements."""

    name: str
    bits: int
    block: int = 0
    scale_bits: int = 0
    compute: str = ""  # the tensor-core format that runs it natively ("" = its own name)

    @property
    def bits_per_element(self) -> float:
        """Average storage bits per element, scales included (mxfp4: 4.25)."""
        return self.bits + (self.scale_bits / self.block if self.block else 0.0)

    def nbytes(self, numel):
        """Exact bytes of ``numel`` elements: ceil(numel·bits/8) + ceil(numel/block)·scale_bits/8."""
        data = (numel * self.bits + 7) // 8
        if not self.block:
            return data
        return data + ((numel + self.block - 1) // self.block) * self.scale_bits // 8

    @property
    def compute_name(self) -> str:
        return self.compute or self.name


DTYPES: dict[str, DType] = {
    d.name: d
    for d in (
        DType("fp32", 32),
        DType("bf16", 16),
        DType("fp16", 16),
        DType("fp8", 8),
        DType("int8", 8),
        DType("mxfp4", 4, block=32, scale_bits=8, compute="fp4"),
        DType("nvfp4", 4, block=16, scale_bits=8, compute="fp4"),
    )
}

_ALIASES = {
    "float32": "fp32",
    "float": "fp32",
    "bfloat16": "bf16",
    "float16": "fp16",
    "half": "fp16",
    "float8": "fp8",
    "fp8_e4m3": "fp8",
    "fp8_e5m2": "fp8",
    "float8_e4m3fn": "fp8",
    "e4m3": "fp8",
    "mxfp8": "fp8",
    "auto": "bf16",
}


def get_dtype(name: str | DType) -> DType:
    """Look up a dtype by its name or a torch / transformers alias ("bfloat16" -> bf16)."""
    if isinstance(name, DType):
        return name
    key = str(name).lower().removeprefix("torch.")
    key = _ALIASES.get(key, key)
    try:
        return DTYPES[key]
    except KeyError:
        known = ", ".join(sorted(DTYPES))
        raise ConfigError(f"unknown dtype {name!r}: known dtypes are {known}") from None
