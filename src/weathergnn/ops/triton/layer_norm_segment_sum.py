"""LayerNorm, residual add and the segmented sum over receivers in one pass, ``e'`` never written.

The interaction network's edge update ends with ``e' = e + LN(y)`` and the
receivers' aggregate ``agg_i = sum_{e -> i} e'_e`` (GraphCast, Lam et al. 2023,
supplement sec. 3; Battaglia et al. 2018, eq. 2 with sum aggregation). In the
last layer on an edge set (encoder, decoder, the processor's last layer)
``e'`` is used only through ``agg``. Run as :mod:`.layer_norm_residual` then
:mod:`.csr_sum`, the edges are still read three times (``y`` and ``e`` by the
LayerNorm, ``e'`` by the sum) and written once. Here each program owns whole
destination segments of the destination-sorted edges, normalises their rows
and sums them in registers: ``y`` and ``e`` are read once, and only the row
statistics (for the backward) and ``agg`` are written::

    mu_e = mean(y_e),  rstd_e = 1 / sqrt(var(y_e) + eps)     (biased variance, float32)
    e'_e = res_e + gamma * (y_e - mu_e) * rstd_e + beta      (rounded to the dtype of y)
    agg_i = sum_{e in ptr[i]:ptr[i+1]} e'_e                  (float32 accumulation)

``e'`` is rounded to the dtype of ``y`` before it is summed, so ``agg`` is
what a segment sum of the written ``e'`` gives (the same numbers as the
two-kernel path). Segments longer than ``csr_sum.SPLIT_MIN_MEAN`` on average
run as pieces (``weathergnn.ops.adjacency.split_segments``): float32 partial
sums per piece, then the pieces of each receiver summed by
:func:`weathergnn.ops.triton.csr_sum.csr_sum`'s kernel. No atomics; every row
and every receiver has one writer. The backward is the LayerNorm backward
with ``dL/dagg[dst]`` added on load
(:func:`.layer_norm_residual.layer_norm_residual_backward`).

History: a version that also wrote ``e'`` (4338ed4) was no faster than the
two kernels on the H200 and was reverted (7d48ff1;
``benchmarks/results/kernel_sweeps_h200_2026-11-21/ln_segment_sum_sweep_a64f8a2.json``).
Launch configurations: ``benchmarks/kernel_sweep_ln_segment_sum.py``.

Reference: :func:`weathergnn.ops.reference.layer_norm_residual_segment_sum`.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from weathergnn.ops.triton import cdiv, interpreting, next_power_of_2
from weathergnn.ops.triton.csr_sum import SPLIT_MIN_MEAN, segment_block
from weathergnn.ops.triton.csr_sum import _launch as _csr_launch


@triton.jit
def _ln_res_segsum_kernel(
    y_ptr, res_ptr, w_ptr, b_ptr, mean_ptr, rstd_ptr, ptr_ptr, agg_ptr,
    N, E, L, res_bstride, eps,
    HAS_RES: tl.constexpr, BLOCK_S: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_L: tl.constexpr,
):
    pid = tl.program_id(0).to(tl.int64)
    b = tl.program_id(1).to(tl.int64)
    segs, smask, start, deg, max_deg = segment_block(ptr_ptr, pid, N, BLOCK_S)
    cols = tl.arange(0, BLOCK_L)
    cmask = cols < L
    w = tl.load(w_ptr + cols, mask=cmask, other=0.0).to(tl.float32)
    bias = tl.load(b_ptr + cols, mask=cmask, other=0.0).to(tl.float32)
    slots = tl.arange(0, BLOCK_E)
    acc = tl.zeros([BLOCK_S, BLOCK_L], dtype=tl.float32)
    # Slots j0 .. j0 + BLOCK_E of every segment at once: BLOCK_S x BLOCK_E whole rows per step.
    for j0 in range(0, max_deg, BLOCK_E):
        j = j0 + slots
        live = j[None, :] < deg[:, None]  # [S, E]
        k = start[:, None] + j[None, :]  # edge of each slot
        row = b * E + k  # its row of y and of the statistics
        m = live[:, :, None] & cmask[None, None, :]  # [S, E, L]
        y = tl.load(y_ptr + row[:, :, None] * L + cols[None, None, :], mask=m, other=0.0).to(tl.float32)
        mu = tl.sum(y, axis=2) / L
        d = tl.where(m, y - mu[:, :, None], 0.0)
        var = tl.sum(d * d, axis=2) / L
        rstd = 1.0 / tl.sqrt(var + eps)
        out = d * rstd[:, :, None] * w[None, None, :] + bias[None, None, :]
        if HAS_RES:
            out += tl.load(res_ptr + b * res_bstride + k[:, :, None] * L + cols[None, None, :],
                           mask=m, other=0.0).to(tl.float32)
        tl.store(mean_ptr + row, mu, mask=live)
        tl.store(rstd_ptr + row, rstd, mask=live)
        # e' as it would be stored, summed in float32
        acc += tl.sum(tl.where(m, out.to(y_ptr.dtype.element_ty).to(tl.float32), 0.0), axis=1)
    agg = agg_ptr + (b * N + segs)[:, None] * L + cols[None, :]
    tl.store(agg, acc.to(agg_ptr.dtype.element_ty), mask=smask[:, None] & cmask[None, :])


# Overridable for tuning sweeps (benchmarks/kernel_sweep_ln_segment_sum.py): None or (BLOCK_S, BLOCK_E, warps).
TUNE: tuple[int, int, int] | None = None


def _blocks(mean_len: float, length: int) -> tuple[int, int, int, int]:
    """(BLOCK_S, BLOCK_E, BLOCK_L, num_warps): segments and slots per step, whole rows.

    One segment per program and one warp per 512 columns; one row per step
    for short segments, two for long ones. Fastest of twelve configurations on
    the H200 (``kernel_sweeps_h200_2026-11-21/ln_segment_sum_nowrite_sweep_cccff70.json``,
    latent 512, bf16), ms against the two kernels it replaces:

    ============  ==========  =================  ===========  ===========
    edge set      mean degree  configuration     this kernel  two kernels
    ============  ==========  =================  ===========  ===========
    mesh          8            (1, 1, 1 warp)    0.313        0.375
    grid2mesh     40 (pieces)  (1, 2, 1 warp)    1.192        1.763
    mesh2grid     3            (1, 1, 1 warp)    2.316        3.371
    ============  ==========  =================  ===========  ===========
    """
    block_l = next_power_of_2(max(length, 1))
    if interpreting():
        return 2, 2, block_l, 1
    if TUNE is not None:
        return TUNE[0], TUNE[1], block_l, TUNE[2]
    return 1, 2 if mean_len > 8 else 1, block_l, max(1, block_l // 512)


def layer_norm_residual_segment_sum(y, res, weight, bias, eps: float, ptr, pieces=None, groups=None):
    """Row statistics of ``LayerNorm(y)`` and ``agg``, the segment sums of ``res + LayerNorm(y)``.

    Args:
        y: [B, E, L] LayerNorm input (edges destination-sorted).
        res: [E, L] (the same for every batch entry) or [B, E, L] residual, or None.
        weight, bias: [L] LayerNorm gain and offset.
        eps: added to the variance.
        ptr: [N + 1] int64 segment offsets (``dst_ptr``, ``ptr[-1] == E``).
        pieces, groups: ``split_segments(ptr)``; used when the mean segment is
            longer than ``csr_sum.SPLIT_MIN_MEAN``.

    Returns:
        ``(mean [B * E] float32, rstd [B * E] float32, agg [B, N, L] dtype of y)``;
        receivers without edges get zeros.

    Raises:
        ValueError: ``y`` not 3-D, or ``res`` of another edge or feature count.
    """
    if y.dim() != 3:
        raise ValueError(f"y must be [B, E, L], got shape {tuple(y.shape)}")
    bsz, n_e, length = y.shape
    if res is not None and tuple(res.shape[-2:]) != (n_e, length):
        raise ValueError(f"res {tuple(res.shape)} does not match y {tuple(y.shape)}")
    y = y.contiguous()
    n = ptr.shape[0] - 1
    mean = torch.empty(bsz * n_e, device=y.device, dtype=torch.float32)
    rstd = torch.empty_like(mean)
    split = pieces is not None and groups is not None and n and n_e / n > SPLIT_MIN_MEAN
    seg_ptr = pieces if split else ptr
    n_seg = seg_ptr.shape[0] - 1
    agg = torch.empty(bsz, n_seg, length, device=y.device, dtype=torch.float32 if split else y.dtype)
    if bsz == 0 or length == 0 or n_seg == 0:
        agg.zero_()
    else:
        res_bstride = 0
        if res is not None:
            res = res.contiguous()
            res_bstride = n_e * length if res.dim() == 3 else 0
        block_s, block_e, block_l, warps = _blocks(n_e / max(n_seg, 1), length)
        _ln_res_segsum_kernel[(cdiv(n_seg, block_s), bsz)](
            y, res if res is not None else y, weight.contiguous(), bias.contiguous(), mean, rstd, seg_ptr, agg,
            n_seg, n_e, length, res_bstride, eps,
            HAS_RES=res is not None, BLOCK_S=block_s, BLOCK_E=block_e, BLOCK_L=block_l, num_warps=warps,
        )
    if split:
        agg = _csr_launch(agg, groups, None, None, None, y.dtype)
    return mean, rstd, agg
