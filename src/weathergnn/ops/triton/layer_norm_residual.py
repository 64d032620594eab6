"""LayerNorm with a residual add fused in: ``out = res + gamma * (y - mu) / sigma + beta``.

With ``y_bias`` (the bias of the product that made ``y``, added on load)
the backward's row sum of ``dL/dy`` is that bias's gradient, so an MLP's
last bias costs no reduction pass of its own
(:class:`weathergnn.models.mlp.MLP`).

Without ``res`` it is a LayerNorm whose output keeps the input dtype (bf16
under autocast, where ``torch.nn.functional.layer_norm`` returns float32 and
every following Linear pays a cast).

Closes the interaction network's edge update ``e' = e + LN(MLP(...))`` in one
pass over ``[rows, L]`` (read ``y`` and ``res``, write ``out``) instead of three
(LayerNorm, then add). Statistics are float32; ``sigma = sqrt(var + eps)``
with the biased variance, as ``torch.nn.functional.layer_norm`` (Ba et al.
2016). The row mean and ``1 / sigma`` are saved for the backward kernel,
which gives ``dL/dy`` from ``dL/dout``::

    xhat = (y - mu) * rstd,   gx = dL/dout * gamma
    dL/dy = rstd * (gx - mean(gx) - xhat * mean(gx * xhat))

and per-program partial sums of ``dL/dout * xhat`` and ``dL/dout`` (the
gradients of ``gamma`` and ``beta``), reduced afterwards in float32 by one
matrix-vector product with a vector of ones (cuBLAS, deterministic, no
scratch memory; see :func:`layer_norm_residual_backward`). The
gradient of ``res`` is ``dL/dout`` itself. One program owns whole rows
(``BLOCK_L >= L``), so widths up to a few thousand fit. With two warps per
program a row is split between the warps, so its two sums, ``mean(gx)``
and ``mean(gx * xhat)``, are taken as one paired reduction (one exchange
through shared memory instead of two): 0.341 against 0.349 ms on the
327,660 mesh edges, 2.933 against 2.987 ms on the 3,114,720 mesh2grid
edges (H200, latent 512, bf16, GPU ms;
``benchmarks/results/kernel_sweeps_h200_2026-11-21/ln_backward_variants_ff8a052.json``).
Per-row-slot column partials summed once after the loop were slower there
(0.455 / 3.214 ms: more registers).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from weathergnn.ops.triton import cdiv, interpreting, next_power_of_2


@triton.jit
def _ln_res_fwd(
    y_ptr, res_ptr, w_ptr, b_ptr, yb_ptr, out_ptr, mean_ptr, rstd_ptr, R, L, eps,
    HAS_RES: tl.constexpr, HAS_YB: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_L: tl.constexpr,
):
    pid = tl.program_id(0).to(tl.int64)
    rows = pid * BLOCK_R + tl.arange(0, BLOCK_R)
    cols = tl.arange(0, BLOCK_L)
    rmask = rows < R
    cmask = cols < L
    m = rmask[:, None] & cmask[None, :]
    ptrs = rows[:, None] * L + cols[None, :]
    y = tl.load(y_ptr + ptrs, mask=m, other=0.0).to(tl.float32)
    if HAS_YB:  # the bias of the product that made y, added on load
        y += tl.load(yb_ptr + cols, mask=cmask, other=0.0).to(tl.float32)[None, :]
    mu = tl.sum(y, axis=1) / L
    d = tl.where(m, y - mu[:, None], 0.0)
    var = tl.sum(d * d, axis=1) / L
    rstd = 1.0 / tl.sqrt(var + eps)
    w = tl.load(w_ptr + cols, mask=cmask, other=0.0).to(tl.float32)
    bias = tl.load(b_ptr + cols, mask=cmask, other=0.0).to(tl.float32)
    out = d * rstd[:, None] * w[None, :] + bias[None, :]
    if HAS_RES:
        out += tl.load(res_ptr + ptrs, mask=m, other=0.0).to(tl.float32)
    tl.store(out_ptr + ptrs, out.to(out_ptr.dtype.element_ty), mask=m)
    tl.store(mean_ptr + rows, mu, mask=rmask)
    tl.store(rstd_ptr + rows, rstd, mask=rmask)


@triton.jit
def _add_pair(a0, b0, a1, b1):
    return a0 + a1, b0 + b1


@triton.jit
def _ln_res_bwd(
    g_ptr, y_ptr, w_ptr, yb_ptr, mean_ptr, rstd_ptr, gy_ptr, part_ptr,
    gagg_ptr, dst_ptr, gtot_ptr, R, L, E, Nd, rows_per_prog,
    HAS_G: tl.constexpr, HAS_GAGG: tl.constexpr, WRITE_GTOT: tl.constexpr, HAS_YB: tl.constexpr,
    BLOCK_R: tl.constexpr, BLOCK_L: tl.constexpr,
):
    pid = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK_L)
    cmask = cols < L
    w = tl.load(w_ptr + cols, mask=cmask, other=0.0).to(tl.float32)
    if HAS_YB:
        yb = tl.load(yb_ptr + cols, mask=cmask, other=0.0).to(tl.float32)
    gw_acc = tl.zeros([BLOCK_L], dtype=tl.float32)
    gb_acc = tl.zeros([BLOCK_L], dtype=tl.float32)
    gyb_acc = tl.zeros([BLOCK_L], dtype=tl.float32)
    for r0 in range(0, rows_per_prog, BLOCK_R):
        rows = pid * rows_per_prog + r0 + tl.arange(0, BLOCK_R)
        rmask = rows < R
        m = rmask[:, None] & cmask[None, :]
        ptrs = rows[:, None] * L + cols[None, :]
        if HAS_G:
            g = tl.load(g_ptr + ptrs, mask=m, other=0.0).to(tl.float32)
        else:
            g = tl.zeros([BLOCK_R, BLOCK_L], dtype=tl.float32)
        if HAS_GAGG:
            # rows are (batch, edge): add the gradient of the receiver's aggregate, dL/dagg[b, dst[e]].
            b = rows // E
            d = tl.load(dst_ptr + rows % E, mask=rmask, other=0)
            g += tl.load(gagg_ptr + (b * Nd + d)[:, None] * L + cols[None, :], mask=m, other=0.0).to(tl.float32)
        if WRITE_GTOT:
            tl.store(gtot_ptr + ptrs, g.to(gtot_ptr.dtype.element_ty), mask=m)
        y = tl.load(y_ptr + ptrs, mask=m, other=0.0).to(tl.float32)
        if HAS_YB:
            y += yb[None, :]
        mu = tl.load(mean_ptr + rows, mask=rmask, other=0.0)
        rstd = tl.load(rstd_ptr + rows, mask=rmask, other=0.0)
        xhat = tl.where(m, (y - mu[:, None]) * rstd[:, None], 0.0)
        gx = g * w[None, :]
        # Both row sums in one reduction: one exchange between the warps that share a row, not two.
        s1, s2 = tl.reduce((gx * xhat, gx), 1, _add_pair)
        c1 = s1 / L
        c2 = s2 / L
        gy = tl.where(m, (gx - c2[:, None] - xhat * c1[:, None]) * rstd[:, None], 0.0)
        tl.store(gy_ptr + ptrs, gy.to(gy_ptr.dtype.element_ty), mask=m)
        gw_acc += tl.sum(g * xhat, axis=0)  # within each thread: the warps split columns, not rows
        gb_acc += tl.sum(g, axis=0)
        gyb_acc += tl.sum(gy, axis=0)
    part = part_ptr + pid * 3 * L + cols  # this program's row of parts [P, 3, L]
    tl.store(part, gw_acc, mask=cmask)
    tl.store(part + L, gb_acc, mask=cmask)
    tl.store(part + 2 * L, gyb_acc, mask=cmask)


# Overridable for tuning sweeps (benchmarks/kernel_sweep_ln_backward.py): None or (BLOCK_R, warps, rows per
# backward program).
TUNE: tuple[int, int, int] | None = None


def _rows_per_program(rows: int, block_r: int) -> int:
    """Rows per backward program: 128 from 2^18 rows on (fewer, longer programs; half the partial sums),
    64 below, one block under the interpreter. Sweep on the H200, latent 512, GPU ms with the
    reduction (``benchmarks/results/kernel_sweeps_h200_2026-11-21/ln_backward_sweep_04feb64.json``):
    128 against 64 rows, 0.343 / 0.349 (327,660 edge rows), 1.572 / 1.594 (1,618,824), 3.030 / 3.084
    (3,114,720), 0.936 / 0.959 (1,038,240 node rows); but 0.093 / 0.069 on 40,962 rows (too few programs)."""
    if TUNE is not None:
        return TUNE[2]
    if interpreting():
        return block_r
    return 128 if rows >= 1 << 18 else 64


def _backward_launch(rows: int, length: int, gathered: bool) -> tuple[int, int, int, int]:
    """(BLOCK_R, BLOCK_L, warps, rows per program) of the backward kernel.

    Edge rows with ``dL/dagg`` gathered keep :func:`_rows_block` / :func:`_rows_per_program`. Node rows
    (nothing gathered) from 2^18 rows on run one warp per program, 64 rows each: 0.864 against 0.907 ms
    on the 1,038,240 grid nodes at latent 512, where edge rows lose with one warp (0.401 against
    0.341 ms on the 327,660 mesh edges; ``kernel_sweeps_h200_2026-11-21/ln_backward_variants_ff8a052.json``,
    ``python benchmarks/kernel_sweep_ln_backward.py --variants 1d,2d,1d-pair,2d-pair --json F``, GPU ms,
    variant ``1d-pair``, the kernel kept).
    """
    block_r, block_l, warps = _rows_block(length)
    rows_per_prog = _rows_per_program(rows, block_r)
    if TUNE is None and not interpreting() and not gathered and rows >= 1 << 18 and block_l <= 512:
        warps, rows_per_prog = 1, 64
    return block_r, block_l, warps, rows_per_prog


def _column_sums(parts: torch.Tensor) -> torch.Tensor:
    """[P, K] float32 -> [K]: the sum over P as ``parts^T @ ones`` (one cuBLAS GEMV).

    ``parts.sum(0)`` reduces the same numbers, but torch's reduction kernel, asked to sum a long
    outer dimension, allocates a global staging buffer for a two-level reduction: 0.06 GiB on the
    327,660 mesh edges, at the interaction layer's memory peak
    (``benchmarks/results/kernel_sweeps_h200_2026-11-21/memory_peak_interaction_mesh_3031377.json``).
    The GEMV reads ``parts`` once with cuBLAS's preallocated workspace. Autocast is off so that the
    product stays in float32.
    """
    ones = parts.new_ones(parts.shape[0])
    with torch.autocast(parts.device.type, enabled=False):
        return torch.mv(parts.t(), ones)


def _rows_block(length: int) -> tuple[int, int, int]:
    block_l = next_power_of_2(max(length, 1))
    if TUNE is not None:
        return TUNE[0], block_l, TUNE[1]
    if interpreting():
        return max(1, min(8, 256 // block_l)), block_l, 1
    # Sweep on the H200, 3.1 M rows x 512 bf16 (forward / backward ms): 2 rows x
    # 2 warps, 64 rows per backward program: 2.35 / 2.58 (3.7 TB/s); 8 rows x 4
    # warps: 2.46 / 5.02; 4 rows x 8 warps: 2.85 / 28.1 (register spills).
    block_r = max(1, min(16, 1024 // block_l))
    return block_r, block_l, 2 if block_l <= 512 else 4


def layer_norm_residual(y, res, weight, bias, eps: float, y_bias=None):
    """``res + LayerNorm(y + y_bias)`` (``res``, ``y_bias`` may be None); y, res: [R, L], y_bias: [L]
    -> (out [R, L] dtype of y, mean [R], rstd [R] float32)."""
    y = y.contiguous()
    res = res.contiguous() if res is not None else None
    r, length = y.shape
    out = torch.empty_like(y)
    mean = torch.empty(r, device=y.device, dtype=torch.float32)
    rstd = torch.empty(r, device=y.device, dtype=torch.float32)
    if r:
        block_r, block_l, warps = _rows_block(length)
        _ln_res_fwd[(cdiv(r, block_r),)](
            y, res if res is not None else y, weight.contiguous(), bias.contiguous(),
            y_bias.contiguous() if y_bias is not None else bias, out, mean, rstd, r, length, eps,
            HAS_RES=res is not None, HAS_YB=y_bias is not None, BLOCK_R=block_r, BLOCK_L=block_l, num_warps=warps,
        )
    return out, mean, rstd


def layer_norm_residual_backward(grad, y, weight, mean, rstd, grad_agg=None, dst=None, write_total=False,
                                 y_bias=None):
    """Backward of :func:`layer_norm_residual`, optionally with the edge-aggregation gradient folded in.

    Args:
        grad: [R, L] dL/dout, or None (zero).
        y, weight, mean, rstd: as saved by the forward.
        grad_agg: optional [B, Nd, L] gradient of ``agg = segment_sum(out)``;
            rows are (batch, edge) with ``R = B * E`` and ``dst`` [E] gives
            each edge's receiver: the kernel adds ``grad_agg[b, dst[e]]`` to
            row ``(b, e)`` instead of materialising the gathered tensor.
        write_total: also return that total row gradient (the gradient of the
            residual input).
        y_bias: the forward's ``y_bias`` (or None).

    Returns:
        (dL/dy [R, L]; sums [3, L] float32: dL/dgamma, dL/dbeta and the sum of
        dL/dy over rows (the gradient of a bias added to ``y``); total [R, L] or None).
        The three column sums come from per-program partials ``[P, 3, L]``
        reduced in one launch (:func:`_column_sums`; three launches before:
        0.26 against 0.11 ms on 3.1 M rows, and 198 of the 236 reduction
        launches of a 0.25 deg training step;
        ``benchmarks/results/kernel_sweeps_h200_2026-11-21/ln_backward_partials_ce0d53f.txt``).
        Programs of at most 64 per multiprocessor made smaller partials but
        a slower kernel (2.85 against 2.75 ms, same file).
    """
    y = y.contiguous()
    r, length = y.shape
    gy = torch.empty_like(y)
    block_r, block_l, warps, rows_per_prog = _backward_launch(r, length, grad_agg is not None)
    progs = max(1, cdiv(r, rows_per_prog))
    parts = y.new_empty(progs, 3, length, dtype=torch.float32)  # every program writes its three rows
    has_g = grad is not None
    grad = grad.contiguous() if has_g else y
    has_agg = grad_agg is not None
    gagg = grad_agg.contiguous() if has_agg else y
    n_edges = dst.shape[0] if has_agg else 1
    n_dst = gagg.shape[1] if has_agg else 1
    total = torch.empty_like(grad if has_g else y) if write_total else None
    _ln_res_bwd[(progs,)](
        grad, y, weight.contiguous(), y_bias.contiguous() if y_bias is not None else weight,
        mean, rstd, gy, parts,
        gagg, dst if has_agg else mean, total if write_total else y, r, length, n_edges, n_dst, rows_per_prog,
        HAS_G=has_g, HAS_GAGG=has_agg, WRITE_GTOT=write_total, HAS_YB=y_bias is not None,
        BLOCK_R=block_r, BLOCK_L=block_l, num_warps=warps,
    )
    return gy, _column_sums(parts.view(progs, 3 * length)).view(3, length), total
