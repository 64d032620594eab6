"""Per-edge dot product ``out[b, e] = <a[b, dst[e]], c[b, src[e]]>``.

The gradient of the weighted neighbour sum with respect to its edge
coefficients: for ``m_i = sum_j alpha_ij h_j``, ``dL/dalpha_ij = <dL/dm_i, h_j>``.
One program per ``BLOCK_E`` edges; it loops over the features in
``BLOCK_F`` chunks, accumulating in float32. Nothing of size ``[E, F]`` is
materialised.

Reference: autograd of :func:`weathergnn.ops.reference.neighbour_sum`.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from weathergnn.ops.triton import cdiv, interpreting, next_power_of_2


@triton.jit
def _edge_dot_kernel(
    a_ptr, c_ptr, src_ptr, dst_ptr, out_ptr,
    E, F, a_bstride, c_bstride,
    BLOCK_E: tl.constexpr, BLOCK_F: tl.constexpr,
):
    pid = tl.program_id(0).to(tl.int64)
    b = tl.program_id(1).to(tl.int64)
    offs_e = pid * BLOCK_E + tl.arange(0, BLOCK_E)
    emask = offs_e < E
    s = tl.load(src_ptr + offs_e, mask=emask, other=0)
    d = tl.load(dst_ptr + offs_e, mask=emask, other=0)
    acc = tl.zeros([BLOCK_E], dtype=tl.float32)
    for f0 in range(0, F, BLOCK_F):
        offs_f = f0 + tl.arange(0, BLOCK_F)
        m = emask[:, None] & (offs_f < F)[None, :]
        av = tl.load(a_ptr + b * a_bstride + d[:, None] * F + offs_f[None, :], mask=m, other=0.0)
        cv = tl.load(c_ptr + b * c_bstride + s[:, None] * F + offs_f[None, :], mask=m, other=0.0)
        acc += tl.sum(av.to(tl.float32) * cv.to(tl.float32), axis=1)
    tl.store(out_ptr + b * E + offs_e, acc, mask=emask)


def edge_dot(a: torch.Tensor, c: torch.Tensor, src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """``[B, Nd, F], [B, Ns, F], [E], [E] -> [B, E]`` float32 dot products per edge."""
    a = a.contiguous()
    c = c.contiguous()
    b, nd, f = a.shape
    e = src.shape[0]
    out = torch.empty(b, e, device=a.device, dtype=torch.float32)
    if e == 0 or b == 0:
        return out
    if f == 0:
        return out.zero_()
    if interpreting():
        block_e, block_f, warps = 16, 32, 1
    else:
        block_e, block_f, warps = 32, min(next_power_of_2(f), 128), 4
    grid = (cdiv(e, block_e), b)
    _edge_dot_kernel[grid](
        a, c, src, dst, out, e, f, nd * f, c.shape[1] * f,
        BLOCK_E=block_e, BLOCK_F=block_f, num_warps=warps,
    )
    return out
