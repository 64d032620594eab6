"""Segmented row sum over a compressed (CSR/CSC) index: the aggregation kernel.

``out[b, i] = sum_{k in ptr[i]:ptr[i+1]} w[b, eid[k]] * x[b, col[k]]``

One program per (block of ``BLOCK_R`` rows, feature block, batch); it walks
the segments of its rows ``BLOCK_E`` slots at a time (one step gathers entries
``j .. j + BLOCK_E`` of every row at once, masked where a row is shorter),
accumulates a ``[BLOCK_R, BLOCK_F]`` tile in float32 registers and writes it
once. A
huge-degree row only lengthens the loop of its own block. No atomics: each
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

from weathergnn.ops.triton import cdiv, interpreting, next_power_of_2


@triton.jit
def segment_block(ptr_ptr, pid, N, BLOCK: tl.constexpr):
    """Segments ``pid * BLOCK ..`` of a CSR offset array ``ptr`` [N + 1]: (ids, in range, start, degree, max degree).

    Segments past ``N`` have degree 0, so ``range(0, max_degree, ...)`` walks only the live ones.
    """
    segs = pid * BLOCK + tl.arange(0, BLOCK)
    live = segs < N
    start = tl.load(ptr_ptr + segs, mask=live, other=0)
    deg = tl.load(ptr_ptr + segs + 1, mask=live, other=0) - start
    return segs, live, start, deg, tl.max(deg, axis=0)


@triton.jit
def _csr_sum_kernel(
    x_ptr, ptr_ptr, col_ptr, eid_ptr, w_ptr, out_ptr,
    N, F, x_bstride, out_bstride, w_bstride,
    HAS_COL: tl.constexpr, HAS_EID: tl.constexpr, HAS_W: tl.constexpr,
    BLOCK_R: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_F: tl.constexpr,
):
    pid = tl.program_id(0).to(tl.int64)
    fb = tl.program_id(1)
    b = tl.program_id(2).to(tl.int64)
    rows, rmask, start, deg, max_deg = segment_block(ptr_ptr, pid, N, BLOCK_R)
    offs_f = fb * BLOCK_F + tl.arange(0, BLOCK_F)
    fmask = offs_f < F
    slots = tl.arange(0, BLOCK_E)
    acc = tl.zeros([BLOCK_R, BLOCK_F], dtype=tl.float32)
    x_base = x_ptr + b * x_bstride
    # Slots j0 .. j0 + BLOCK_E of every row in the tile at once:
    # BLOCK_R x BLOCK_E independent row gathers in flight per step.
    for j0 in range(0, max_deg, BLOCK_E):
        j = j0 + slots
        live = j[None, :] < deg[:, None]  # [BLOCK_R, BLOCK_E]
        ks = start[:, None] + j[None, :]
        if HAS_COL:
            src_rows = tl.load(col_ptr + ks, mask=live, other=0)
        else:
            src_rows = ks
        vals = tl.load(
            x_base + src_rows[:, :, None] * F + offs_f[None, None, :],
            mask=live[:, :, None] & fmask[None, None, :],
            other=0.0,
        ).to(tl.float32)  # [BLOCK_R, BLOCK_E, BLOCK_F]
        if HAS_W:
            if HAS_EID:
                eids = tl.load(eid_ptr + ks, mask=live, other=0)
            else:
                eids = ks
            w = tl.load(w_ptr + b * w_bstride + eids, mask=live, other=0.0).to(tl.float32)
            vals = vals * w[:, :, None]
        acc += tl.sum(vals, axis=1)
    out = out_ptr + b * out_bstride + rows[:, None] * F + offs_f[None, :]
    tl.store(out, acc.to(out_ptr.dtype.element_ty), mask=rmask[:, None] & fmask[None, :])


# Overridable for tuning sweeps (benchmarks/ops_probe.py): None or (BLOCK_R, BLOCK_E, BLOCK_F, warps[, stages]).
TUNE: tuple[int, ...] | None = None


def _blocks(num_entries: int, num_rows: int, features: int) -> tuple[int, int, int, int]:
    """(BLOCK_R, BLOCK_E, BLOCK_F, num_warps) for a segment sum.

    Short segments (mesh2grid forward: 3 per grid node) take many rows and
    one slot per step; long ones (grid2mesh forward, mesh2grid backward:
    ~40-80 per mesh node) few rows and many slots, so every program keeps
    several independent gathers in flight. From block-size sweeps on the H200
    (benchmarks/ops_probe.py).
    """
    block_f = min(next_power_of_2(max(features, 1)), 512)
    if interpreting():
        return 2, 2, min(block_f, 32), 1
    if TUNE is not None:
        return TUNE
    # Rows x slots = 8 gathers of a 512-wide bf16 row per step. Sweep on the
    # H200 (forward / transpose, ms): grid2mesh mean degree 40 -> (2, 4): 1.05
    # vs (8, 1): 3.29; mesh2grid transpose, degree 76 -> (2, 4): 1.61 vs (8, 1):
    # 5.32; short rows (degree 1.6) -> (8, 1): 0.54 vs (2, 4): 0.74. (1, 8)
    # compiles to a far slower kernel (5.4 ms), so BLOCK_R stays >= 2.
    # Long rows (> 16 per row) do best with 4 rows x 4 slots of 256 features:
    # grid2mesh forward 1.01 ms, mesh2grid transpose 1.51 ms (second sweep).
    mean_deg = num_entries / max(num_rows, 1)
    if mean_deg > 16 and block_f >= 256:
        return 4, 4, 256, 4
    budget = max(2, 4096 // block_f)  # rows x slots per step
    block_e = 1 if mean_deg <= 2 else (2 if mean_deg <= 4 else 4)
    block_e = min(block_e, budget // 2)
    block_r = max(2, min(8, budget // block_e))
    return block_r, block_e, block_f, 4


#: Two-pass sum (pieces, then groups) when the mean segment is longer than this.
SPLIT_MIN_MEAN = 16.0


def csr_sum(
    x: torch.Tensor,
    ptr: torch.Tensor,
    col: torch.Tensor | None = None,
    eid: torch.Tensor | None = None,
    weight: torch.Tensor | None = None,
    out_dtype: torch.dtype | None = None,
    pieces: torch.Tensor | None = None,
    groups: torch.Tensor | None = None,
) -> torch.Tensor:
    """Launch the kernel.

    Args:
        x: [B, R, F] rows to sum (node table with ``col``; edge messages without).
        ptr: [N + 1] int64 segment offsets.
        col: [K] int64 row of ``x`` per entry, or None (entry ``k`` reads row ``k``).
        eid: [K] int64 index into ``weight`` per entry, or None (entry ``k``).
        weight: [E] or [B, E] per-edge coefficients, or None (all ones).
        out_dtype: defaults to ``x.dtype``.
        pieces, groups: the segments cut into short pieces
            (``weathergnn.ops.adjacency.split_segments(ptr)``). When given and
            the mean segment is longer than ``SPLIT_MIN_MEAN``, the sum runs in
            two passes: float32 partial sums per piece, then the pieces of each
            row (measured on the H200, mesh2grid transpose: 1.50 -> see
            benchmarks/results).

    Returns:
        [B, N, F]; rows with empty segments are zero.
    """
    n = ptr.shape[0] - 1
    entries = col.shape[0] if col is not None else x.shape[1]
    if pieces is not None and groups is not None and n and entries / n > SPLIT_MIN_MEAN:
        partial = _launch(x, pieces, col, eid, weight, torch.float32)  # [B, V, F]
        return _launch(partial, groups, None, None, None, out_dtype or x.dtype)
    return _launch(x, ptr, col, eid, weight, out_dtype or x.dtype)


def _launch(x, ptr, col, eid, weight, out_dtype):
    x = x.contiguous()
    b, _, f = x.shape
    n = ptr.shape[0] - 1
    out = torch.empty(b, n, f, device=x.device, dtype=out_dtype)
    if n == 0 or f == 0 or b == 0:
        return out.zero_()
    dummy = ptr  # never read when the matching flag is off
    w_bstride = 0
    if weight is not None:
        weight = weight.contiguous()
        w_bstride = weight.shape[-1] if weight.dim() == 2 else 0
    cfg = _blocks(col.shape[0] if col is not None else x.shape[1], n, f)
    block_r, block_e, block_f, num_warps = cfg[:4]
    stages = {"num_stages": cfg[4]} if len(cfg) > 4 else {}
    grid = (cdiv(n, block_r), cdiv(f, block_f), b)
    _csr_sum_kernel[grid](
        x, ptr, col if col is not None else dummy, eid if eid is not None else dummy,
        weight if weight is not None else x, out,
        n, f, x.shape[1] * f, n * f, w_bstride,
        HAS_COL=col is not None, HAS_EID=eid is not None, HAS_W=weight is not None,
        BLOCK_R=block_r, BLOCK_E=block_e, BLOCK_F=block_f, num_warps=num_warps, **stages,
    )
    return out
