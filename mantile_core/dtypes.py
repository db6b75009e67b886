"""Storage formats with their real size, scales included.

``DType.nbytes(n)`` is exact: ``ceil(n·bits/8)`` for the elements plus one scale of
``scale_bits`` per ``block`` elements (mxfp4: 4 bits + an 8-bit scale per 32 elements, i.e.
4.25 bits; nvfp4: 4 bits + an 8-bit scale per 16, i.e. 4.5 bits). Works element-wise on numpy
integer arrays too.

Block-scaled matrices (DeepSeek-V3's fp8 checkpoints, ``quantization_config.weight_block_size``
[128, 128]) carry one ``scale_bits`` scale per (rows × cols) ``tile`` of each weight matrix:
``DType.matrix_nbytes(out, in, count)`` = count·(ceil(out·in·bits/8) +
ceil(out/128)·ceil(in/128)·scale_bits/8), e.g. a 7168 × 2048 fp8 weight holds 14,680,064 bytes
plus 56·16 float32 ``weight_scale_inv`` values (3,584 bytes). Their size depends on the matrix
shapes, not on the element count alone, so :meth:`DType.nbytes` refuses a tiled dtype
(a MantileError, never a silently wrong figure); layers give their matrices to
:func:`matrices_nbytes`.

Per-tensor scales (modelopt's FP8 and NVFP4 exports, :mod:`mantile_core.quant`) add
``tensor_scale_bytes`` to every weight matrix: FP8 stores a float32 ``weight_scale`` and
``input_scale`` per matrix (8 bytes), NVFP4 a float32 ``weight_scale_2`` and ``input_scale``
beside its fp8 scale per 16 elements of a row (``rows·ceil(cols/16)`` bytes), so a
4096 × 1536 NVFP4 matrix holds 3,145,728 + 393,216 + 8 bytes. They too need the matrix count:
``nbytes`` refuses such a dtype, ``matrix_nbytes`` is exact.

A layer whose projections a checkpoint stores in different formats holds a
:class:`LinearFormats` (a default format and the projections that differ) and sums each
projection's bytes at its own format.
"""

from __future__ import annotations

import attrs

from .errors import ConfigError

__all__ = ["DType", "DTYPES", "LinearFormats", "get_dtype", "block_scaled", "matrices_nbytes"]


@attrs.frozen
class DType:
    """A storage format: ``bits`` per element, plus ``scale_bits`` per ``block`` elements."""

    name: str
    bits: int
    block: int = 0
    scale_bits: int = 0
    compute: str = ""  # the tensor-core format that runs it natively ("" = its own name)
    tile: tuple[int, int] = ()  # (rows, cols) of a matrix per scale: 2-D block scaling
    tensor_scale_bytes: int = 0  # per-matrix scales (modelopt weight_scale(_2) + input_scale)

    @property
    def tiled(self) -> bool:
        """True for 2-D block-scaled matrices (one scale per ``tile``)."""
        return bool(self.tile)

    @property
    def per_matrix(self) -> bool:
        """True when the bytes depend on the matrix shapes or count (tiles, per-tensor scales)."""
        return bool(self.tile) or bool(self.tensor_scale_bytes)

    @property
    def bits_per_element(self) -> float:
        """Average storage bits per element, scales included (mxfp4: 4.25)."""
        return self.bits + (self.scale_bits / self.block if self.block else 0.0)

    def nbytes(self, numel):
        """Exact bytes of ``numel`` elements: ceil(numel·bits/8) + ceil(numel/block)·scale_bits/8.
        A tiled dtype needs the matrix shapes (:meth:`matrix_nbytes`) and raises ConfigError."""
        if self.tile:
            raise ConfigError(f"dtype {self.name!r} scales {self.tile[0]}x{self.tile[1]} blocks of each matrix: "
                              f"its bytes need matrix shapes (DType.matrix_nbytes), not an element count")
        if self.tensor_scale_bytes:
            raise ConfigError(f"dtype {self.name!r} stores {self.tensor_scale_bytes} bytes of scales per weight matrix: "
                              f"its bytes need the matrices (DType.matrix_nbytes), not an element count")
        data = (numel * self.bits + 7) // 8
        if not self.block:
            return data
        return data + ((numel + self.block - 1) // self.block) * self.scale_bits // 8

    def matrix_nbytes(self, rows, cols, count=1):
        """Exact bytes of ``count`` (rows × cols) weight matrices: for a tiled dtype
        count·(ceil(rows·cols·bits/8) + ceil(rows/tile_rows)·ceil(cols/tile_cols)·scale_bits/8),
        for a per-tensor-scaled one count·(ceil(rows·cols·bits/8) + rows·ceil(cols/block)·
        scale_bits/8 + tensor_scale_bytes), otherwise ``nbytes(count·rows·cols)``."""
        if not self.per_matrix:
            return self.nbytes(count * rows * cols)
        if self.tile:
            tr, tc = self.tile
            scales = ((rows + tr - 1) // tr) * ((cols + tc - 1) // tc)
        else:
            scales = rows * ((cols + self.block - 1) // self.block) if self.block else 0
        return count * ((rows * cols * self.bits + 7) // 8 + scales * self.scale_bits // 8 + self.tensor_scale_bytes)

    @property
    def compute_name(self) -> str:
        return self.compute or self.name


def block_scaled(base: str | DType, tile: tuple[int, int], scale_bits: int = 32) -> DType:
    """``base`` (e.g. "fp8") stored with one ``scale_bits`` scale per ``tile`` (rows, cols)
    block of each matrix (DeepSeek's float32 ``weight_scale_inv``), named "fp8-b128x128"."""
    base = get_dtype(base)
    rows, cols = tile
    return DType(f"{base.name}-b{rows}x{cols}", base.bits, scale_bits=scale_bits, compute=base.compute_name,
                 tile=(int(rows), int(cols)))


def matrices_nbytes(dtype: DType, shapes) -> object:
    """Bytes of the weight matrices ``shapes`` = [(count, rows, cols), ...] in ``dtype``: one
    ``nbytes`` of their summed elements for an element-wise dtype (as before), the sum of
    :meth:`DType.matrix_nbytes` for a tiled or per-tensor-scaled one. Works on numpy integer
    arrays."""
    if not dtype.per_matrix:
        return dtype.nbytes(sum(count * rows * cols for count, rows, cols in shapes))
    return sum(dtype.matrix_nbytes(rows, cols, count) for count, rows, cols in shapes)


@attrs.frozen
class LinearFormats:
    """Storage formats of a layer's named projections (a checkpoint that quantizes some
    projections of one layer and keeps the others: nvidia's DeepSeek-V3.1-NVFP4 stores MLA's
    o_proj in NVFP4 and q_a/q_b/kv_a/kv_b in bf16).

    ``default``: the format of every projection not named in ``per_linear`` (the format most
    of the layer's projections have); ``per_linear``: (projection name, DType) of the others."""

    default: DType
    per_linear: tuple[tuple[str, DType], ...] = ()

    def of(self, linear: str) -> DType:
        """The format of projection ``linear``."""
        return dict(self.per_linear).get(linear, self.default)

    def nbytes(self, shapes) -> object:
        """Exact bytes of the named matrices ``shapes`` = [(name, count, rows, cols), ...], each
        at its projection's format: the sum over formats of :func:`matrices_nbytes` of the
        matrices in that format."""
        groups: dict[DType, list] = {}
        for name, count, rows, cols in shapes:
            groups.setdefault(self.of(name), []).append((count, rows, cols))
        return sum(matrices_nbytes(dtype, group) for dtype, group in groups.items())


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
