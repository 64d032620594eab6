"""Fused first edge-MLP layer of the interaction network: gather, add, activate.

Forward::

    pre[b, e] = x[b, e] + p_src[b, src[e]] + p_dst[b, dst[e]]
    a[b, e]   = silu(pre[b, e])

where ``x = W_e e + b1`` (edge part, one GEMM), ``p_src = W_s h_src`` and
``p_dst = W_d h_dst`` (node parts, computed once per node): the split first
layer of GraphCast's edge MLP (Lam et al. 2023, supplement sec. 3.3;
``weathergnn.models.mlp.EdgeMLP``). ``pre`` is never stored: the backward
kernel recomputes it from ``x`` and the two node tables and writes
``dL/dpre = dL/da * silu'(pre)``, with ``silu'(z) = s (1 + z (1 - s))``,
``s = sigmoid(z)``. The sums over edges that give ``dL/dp_src`` and
``dL/dp_dst`` are done by :mod:`~weathergnn.ops.triton.csr_sum`.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from weathergnn.ops.triton import cdiv, interpreting, next_power_of_2


@triton.jit
def _pre(x_ptr, ps_ptr, pd_ptr, src_ptr, dst_ptr, b, offs_e, offs_h, m, E, Ns, Nd, H):
    s = tl.load(src_ptr + offs_e, mask=offs_e < E, other=0)
    d = tl.load(dst_ptr + offs_e, mask=offs_e < E, other=0)
    xv = tl.load(x_ptr + (b * E + offs_e)[:, None] * H + offs_h[None, :], mask=m, other=0.0)
    sv = tl.load(ps_ptr + (b * Ns + s)[:, None] * H + offs_h[None, :], mask=m, other=0.0)
    dv = tl.load(pd_ptr + (b * Nd + d)[:, None] * H + offs_h[None, :], mask=m, other=0.0)
    return xv.to(tl.float32) + sv.to(tl.float32) + dv.to(tl.float32)


@triton.jit
def _gather_add_silu_kernel(
    g_ptr, x_ptr, ps_ptr, pd_ptr, src_ptr, dst_ptr, out_ptr, E, Ns, Nd, H,
    BACKWARD: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_H: tl.constexpr,
):
    """Forward: out = silu(pre). BACKWARD: out = g * silu'(pre), with g = dL/da."""
    pid = tl.program_id(0).to(tl.int64)
    hb = tl.program_id(1)
    b = tl.program_id(2).to(tl.int64)
    offs_e = pid * BLOCK_E + tl.arange(0, BLOCK_E)
    offs_h = hb * BLOCK_H + tl.arange(0, BLOCK_H)
    m = (offs_e < E)[:, None] & (offs_h < H)[None, :]
    z = _pre(x_ptr, ps_ptr, pd_ptr, src_ptr, dst_ptr, b, offs_e, offs_h, m, E, Ns, Nd, H)
    sig = tl.sigmoid(z)
    ptrs = (b * E + offs_e)[:, None] * H + offs_h[None, :]
    if BACKWARD:
        g = tl.load(g_ptr + ptrs, mask=m, other=0.0).to(tl.float32)
        out = g * sig * (1.0 + z * (1.0 - sig))
    else:
        out = z * sig
    tl.store(out_ptr + ptrs, out.to(out_ptr.dtype.element_ty), mask=m)


# Overridable for tuning sweeps (benchmarks/ops_probe.py): None or (BLOCK_E, BLOCK_H, warps).
TUNE: tuple[int, int, int] | None = None


def _launch(args, x: torch.Tensor, p_src: torch.Tensor, p_dst: torch.Tensor, backward: bool) -> None:
    b, e, h = x.shape
    if TUNE is not None:
        block_e, block_h, warps = TUNE
    elif interpreting():
        block_e, block_h, warps = 8, min(next_power_of_2(h), 32), 1
    else:
        block_e, block_h, warps = 16, min(next_power_of_2(h), 256), 4
    grid = (cdiv(e, block_e), cdiv(h, block_h), b)
    _gather_add_silu_kernel[grid](
        *args, e, p_src.shape[1], p_dst.shape[1], h,
        BACKWARD=backward, BLOCK_E=block_e, BLOCK_H=block_h, num_warps=warps,
    )


def gather_add_silu(x, p_src, p_dst, src, dst) -> torch.Tensor:
    """``silu(x + p_src[:, src] + p_dst[:, dst])``.

    Args:
        x: [B, E, H] edge part (bias included).
        p_src: [B, Ns, H]; p_dst: [B, Nd, H] node parts.
        src, dst: [E] int64.

    Returns:
        [B, E, H] in the dtype of ``x``.
    """
    x, p_src, p_dst = x.contiguous(), p_src.contiguous(), p_dst.contiguous()
    out = torch.empty_like(x)
    if x.numel():
        _launch((x, x, p_src, p_dst, src, dst, out), x, p_src, p_dst, backward=False)  # g_ptr unused
    return out


def gather_add_silu_backward(grad, x, p_src, p_dst, src, dst) -> torch.Tensor:
    """``dL/dpre`` [B, E, H] from ``dL/da`` (recomputes ``pre``); dtype of ``x``."""
    grad, x, p_src, p_dst = grad.contiguous(), x.contiguous(), p_src.contiguous(), p_dst.contiguous()
    out = torch.empty_like(x)
    if x.numel():
        _launch((grad, x, p_src, p_dst, src, dst, out), x, p_src, p_dst, backward=True)
    return out
