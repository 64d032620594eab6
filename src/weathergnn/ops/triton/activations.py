"""Activation functions shared by the Triton kernels that apply them to GEMM operands on load.

Applied to every element of an operand tile before its matrix product, the
SiLU's ``exp`` and reciprocal (two special-function-unit operations per
element) take about as long as the tensor-core product of a 128 x 64 tile
with a 256-wide one on the H200, so the on-load kernels can use a faster
form: ``silu(x) = x sigmoid(x) = x/2 (1 + tanh(x/2))`` with the hardware's
packed half-precision ``tanh.approx.f16x2`` (one special-function operation
per two elements). The result stays within ``1e-3 |x|`` of the exact SiLU
(``tests/test_triton_kernels.py::test_fast_silu_against_float64``, on the
GPU), finer than the bfloat16 rounding it then gets (unit roundoff 2^-8 =
3.9e-3). Inputs too large for float16 become +-inf, where tanh is +-1 and the
result is exactly ``x`` or 0.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def tanh_f16x2(x):
    """``tanh(x)`` in float32 via the packed ``tanh.approx.f16x2`` (one special-function operation per two
    elements; the input rounded to float16, where +-inf past 65504 gives +-1). GPU only."""
    t = tl.inline_asm_elementwise(
        "tanh.approx.f16x2 $0, $1;", "=r,r", [x.to(tl.float16)], dtype=tl.float16, is_pure=True, pack=2,
    )
    return t.to(tl.float32)


@triton.jit
def silu(x, EXACT: tl.constexpr):
    """``x * sigmoid(x)`` in float32; unless EXACT, via packed float16 tanh (for 16-bit operands on the GPU)."""
    x = x.to(tl.float32)
    if EXACT:
        return x * tl.sigmoid(x)
    else:
        half = 0.5 * x
        return half + half * tanh_f16x2(half)


@triton.jit
def sigmoid(x, EXACT: tl.constexpr):
    """``1 / (1 + exp(-x))`` in float32; unless EXACT, as ``1/2 + tanh(x/2)/2`` via packed float16 tanh
    (one special-function operation per two elements instead of an ``exp`` and a reciprocal each)."""
    x = x.to(tl.float32)
    if EXACT:
        return tl.sigmoid(x)
    else:
        return 0.5 + 0.5 * tanh_f16x2(0.5 * x)
