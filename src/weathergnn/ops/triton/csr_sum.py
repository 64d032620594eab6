"""Segmented row sum over a compressed (CSR/CSC) index: the aggregation kernel.

``out[b, i] = sum_{k in ptr[i]:ptr[i+1]} w[b, eid[k]] * x[b, col[k]]``

One program per (row, feature block, batch); it walks its segment in tiles of
``BLOCK_E`` entries, gathers the ``[BLOCK_E, BLOCK_F]`` rows of ``x`` and
accumulates in float32 registers, then writes the row once. No atomics: each
output row has exactly one writer, so the result is deterministic. With
``col`` omitted the rows of ``x`` are read in segment order (a segment sum of
destination-sorted edge messages); with ``col`` they are gathered from a node
table (a sparse-dense product ``A @ x`` without materialising ``[E, F]``).
The same kernel runs the transpose for backward passes, given the
source-sorted permutation (``weathergnn.ops.adjacency``).

Reference: :func:`weathergnn.ops.reference.segment_sum` and
:func:`weathergnn.ops.reference.neighbour_sum`.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from weathergnn.ops.triton import interpreting


@triton.jit
def _csr_sum_kernel(
    x_ptr, ptr_ptr, col_ptr, eid_ptr, w_ptr, out_ptr,
    F, x_bstride, out_bstride, w_bstride,
    HAS_COL: tl.constexpr, HAS_EID: tl.constexpr, HAS_W: tl.constexpr,
    BLOCK_E: tl.constexpr, BLOCK_F: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    fb = tl.program_id(1)
    b = tl.program_id(2).to(tl.int64)
    start = tl.load(ptr_ptr + row)
    end = tl.load(ptr_ptr + row + 1)
    offs_f = fb * BLOCK_F + tl.arange(0, BLOCK_F)
    fmask = offs_f < F
    acc = tl.zeros([BLOCK_F], dtype=tl.float32)
    x_base = x_ptr + b * x_bstride
    for k0 in range(start, end, BLOCK_E):
        ks = k0 + tl.arange(0, BLOCK_E)
        kmask = ks < end
        if HAS_COL:
            rows = tl.load(col_ptr + ks, mask=kmask, other=0)
        else:
            rows = ks
        vals = tl.load(
            x_base + rows[:, None] * F + offs_f[None, :],
            mask=kmask[:, None] & fmask[None, :],
            other=0.0,
        ).to(tl.float32)  # [BLOCK_E, BLOCK_F]
        if HAS_W:
            if HAS_EID:
                eids = tl.load(eid_ptr + ks, mask=kmask, other=0)
            else:
                eids = ks
            w = tl.load(w_ptr + b * w_bstride + eids, mask=kmask, other=0.0).to(tl.float32)
            vals = vals * w[:, None]
        acc += tl.sum(vals, axis=0)
    tl.store(out_ptr + b * out_bstride + row * F + offs_f, acc.to(out_ptr.dtype.element_ty), mask=fmask)


def _blocks(num_entries: int, num_rows: int, features: int) -> tuple[int, int, int]:
    """(BLOCK_E, BLOCK_F, num_warps) from the mean segment length and the width.

    Short segments (mesh2grid: 3 per grid node) get a short tile so few lanes
    idle; long ones (grid2mesh: ~40) a taller tile for more loads in flight.
    """
    mean_deg = num_entries / max(num_rows, 1)
    block_f = min(triton.next_power_of_2(max(features, 1)), 256)
    if interpreting():
        return 4, min(block_f, 32), 1
    block_e = 4 if mean_deg <= 4 else (8 if mean_deg <= 12 else 16)
    num_warps = 4 if block_e * block_f >= 2048 else 2
    return block_e, block_f, num_warps


def csr_sum(
    x: torch.Tensor,
    ptr: torch.Tensor,
    col: torch.Tensor | None = None,
    eid: torch.Tensor | None = None,
    weight: torch.Tensor | None = None,
    out_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Launch the kernel.

    Args:
        x: [B, R, F] rows to sum (node table with ``col``; edge messages without).
        ptr: [N + 1] int64 segment offsets.
        col: [K] int64 row of ``x`` per entry, or None (entry ``k`` reads row ``k``).
        eid: [K] int64 index into ``weight`` per entry, or None (entry ``k``).
        weight: [E] or [B, E] per-edge coefficients, or None (all ones).
        out_dtype: defaults to ``x.dtype``.

    Returns:
        [B, N, F]; rows with empty segments are zero.
    """
    x = x.contiguous()
    b, _, f = x.shape
    n = ptr.shape[0] - 1
    out = torch.empty(b, n, f, device=x.device, dtype=out_dtype or x.dtype)
    if n == 0 or f == 0 or b == 0:
        return out.zero_()
    dummy = ptr  # never read when the matching flag is off
    w_bstride = 0
    if weight is not None:
        weight = weight.contiguous()
        w_bstride = weight.shape[-1] if weight.dim() == 2 else 0
    block_e, block_f, num_warps = _blocks(col.shape[0] if col is not None else x.shape[1], n, f)
    grid = (n, triton.cdiv(f, block_f), b)
    _csr_sum_kernel[grid](
        x, ptr, col if col is not None else dummy, eid if eid is not None else dummy,
        weight if weight is not None else x, out,
        f, x.shape[1] * f, n * f, w_bstride,
        HAS_COL=col is not None, HAS_EID=eid is not None, HAS_W=weight is not None,
        BLOCK_E=block_e, BLOCK_F=block_f, num_warps=num_warps,
    )
    return out
