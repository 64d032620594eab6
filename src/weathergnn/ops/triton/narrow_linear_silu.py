"""First layer of an embedder MLP over a few input features: ``a = silu(x W^T + b)``.

GraphCast embeds each edge set's static geometric features (edge length and
the three components of the displacement vector: 4 features) and the mesh
nodes' (3 position features) with an MLP ``LN(W2 silu(W1 x + b1) + b2)``
(Lam et al. 2023, supplement sec. 3.1; :class:`weathergnn.models.mlp.MLP`).
With ``K <= 32`` input features the first layer is a few multiply-adds per
output element and the work is moving ``[R, H]`` tensors: cuBLAS writes
``pre``, a pointwise kernel reads it and writes ``a = silu(pre)``, autograd
keeps ``pre``; the backward reads ``dL/da`` and ``pre``, writes ``dL/dpre``,
and reads it twice more for ``dL/dW1`` and ``dL/db1``: eight ``[R, H]``
passes. On the 0.25 deg graphs ``R`` is 1.6 M (grid2mesh) and 3.1 M
(mesh2grid) edges, ``H = 512``: 1.6 and 3.2 GB per pass in bf16.

Here:

* forward (:func:`narrow_linear_silu`): one pass that writes ``a``; ``pre``
  is formed in registers from the ``[R, K]`` input and never stored;
* backward (:func:`narrow_linear_silu_backward`): one pass that reads
  ``dL/da``, recomputes ``pre``, forms ``dL/dpre = dL/da silu'(pre)`` per tile
  and reduces it against ``[x, 1]`` on the tensor cores into ``[K + 1, H]``
  float32 partial sums per row split (``dL/dW1`` and, from the ones column,
  ``dL/db1``); ``dL/dpre`` is never written. Row splits write their partial
  sums, the caller adds them: deterministic, no atomics.

``dL/dx`` is not formed here (the embedders' inputs are constant graph
features); the autograd formula in :mod:`weathergnn.ops.custom_ops` falls back
to the reference for it when ``x`` requires a gradient.

Numerics follow ``torch.autocast``: 16-bit inputs, float32 products and sums,
output rounded once to the input dtype. The SiLU and its derivative use
``tanh.approx.f16x2`` for 16-bit inputs on the GPU (error bound in
:mod:`.activations`), the exact form for float32 and under the interpreter.

Reference: ``F.silu(F.linear(x, w, b))`` and its autograd
(:func:`weathergnn.ops.reference.linear_silu`).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from weathergnn.ops.triton import NARROW_MAX_FEATURES, cdiv, interpreting, next_power_of_2, row_splits
from weathergnn.ops.triton.activations import sigmoid, silu

#: The widest input this module handles (:data:`weathergnn.ops.triton.NARROW_MAX_FEATURES`).
MAX_FEATURES = NARROW_MAX_FEATURES


@triton.jit
def _pre_tile(x_ptr, w_ptr, b_ptr, rows, cols, rmask, hmask, K: tl.constexpr, HAS_BIAS: tl.constexpr,
              BLOCK_R: tl.constexpr, BLOCK_H: tl.constexpr):
    """``x[rows] W[cols]^T + b[cols]`` in float32: [BLOCK_R, BLOCK_H] (x [R, K], W [H, K] row-major)."""
    acc = tl.zeros((BLOCK_R, BLOCK_H), dtype=tl.float32)
    for k in tl.static_range(K):
        xk = tl.load(x_ptr + rows * K + k, mask=rmask, other=0.0).to(tl.float32)  # [BLOCK_R]
        wk = tl.load(w_ptr + cols * K + k, mask=hmask, other=0.0).to(tl.float32)  # [BLOCK_H]
        acc += xk[:, None] * wk[None, :]
    if HAS_BIAS:
        acc += tl.load(b_ptr + cols, mask=hmask, other=0.0).to(tl.float32)[None, :]
    return acc


@triton.jit
def _narrow_linear_silu_fwd(x_ptr, w_ptr, b_ptr, out_ptr, R, H, K: tl.constexpr, HAS_BIAS: tl.constexpr,
                    EXACT: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_H: tl.constexpr):
    """Program (row block, column block): ``out = silu(x W^T + b)`` for its [BLOCK_R, BLOCK_H] tile."""
    rows = tl.program_id(0).to(tl.int64) * BLOCK_R + tl.arange(0, BLOCK_R)
    cols = tl.program_id(1) * BLOCK_H + tl.arange(0, BLOCK_H)
    rmask, hmask = rows < R, cols < H
    pre = _pre_tile(x_ptr, w_ptr, b_ptr, rows, cols, rmask, hmask, K, HAS_BIAS, BLOCK_R, BLOCK_H)
    a = silu(pre, EXACT)
    tl.store(out_ptr + rows[:, None] * H + cols[None, :], a.to(out_ptr.dtype.element_ty),
             mask=rmask[:, None] & hmask[None, :])


@triton.jit
def _narrow_linear_silu_bwd(g_ptr, x_ptr, w_ptr, b_ptr, part_ptr, R, H, ROWS_PER_SPLIT, K: tl.constexpr,
                     KP: tl.constexpr, HAS_BIAS: tl.constexpr, EXACT: tl.constexpr, IEEE: tl.constexpr,
                     BLOCK_R: tl.constexpr, BLOCK_H: tl.constexpr):
    """Program (row split, column block): ``part[split, :K+1, cols] = sum_r [x_r, 1]^T dL/dpre[r, cols]``.

    ``dL/dpre = g silu'(pre)`` with ``silu'(p) = s (1 + p (1 - s))``, ``s =
    sigmoid(p)``; ``pre`` recomputed from ``x``. Row ``K`` of the left operand
    is the ones column (bias gradient); rows ``K + 1 .. KP - 1`` are zero.
    part: [S, KP, H] float32. (The transposed product, ``dL/dpre^T [x, 1]``
    with the ``dL/dpre`` tile as the left operand, measured 6-20% slower:
    ``kernel_sweeps_h200_2026-11-21/narrow_linear_silu_probe_71c8b90.json``.)
    """
    split = tl.program_id(0)
    cols = tl.program_id(1) * BLOCK_H + tl.arange(0, BLOCK_H)
    hmask = cols < H
    kk = tl.arange(0, KP)
    r0 = split.to(tl.int64) * ROWS_PER_SPLIT
    r1 = tl.minimum(R, r0 + ROWS_PER_SPLIT)
    acc = tl.zeros((KP, BLOCK_H), dtype=tl.float32)
    for r in tl.range(r0, r1, BLOCK_R):
        rows = r + tl.arange(0, BLOCK_R)
        rmask = rows < r1
        pre = _pre_tile(x_ptr, w_ptr, b_ptr, rows, cols, rmask, hmask, K, HAS_BIAS, BLOCK_R, BLOCK_H)
        g = tl.load(g_ptr + rows[:, None] * H + cols[None, :], mask=rmask[:, None] & hmask[None, :], other=0.0)
        s = sigmoid(pre, EXACT)
        d = g.to(tl.float32) * (s * (1.0 + pre * (1.0 - s)))  # [BLOCK_R, BLOCK_H]; 0 on masked rows
        xt = tl.load(x_ptr + rows[None, :] * K + kk[:, None], mask=(kk < K)[:, None] & rmask[None, :], other=0.0)
        xt = tl.where((kk == K)[:, None] & rmask[None, :], 1.0, xt.to(tl.float32))  # [KP, BLOCK_R]
        if IEEE:  # float32 inputs; and under the interpreter, whose bf16 dot is wrong (Triton 3.9)
            acc = tl.dot(xt, d, acc, input_precision="ieee")
        else:  # as cuBLAS under autocast: 16-bit operands, float32 sums
            acc = tl.dot(xt.to(g.dtype), d.to(g.dtype), acc)
    out = part_ptr + split.to(tl.int64) * KP * H + kk[:, None] * H + cols[None, :]
    tl.store(out, acc, mask=(kk <= K)[:, None] & hmask[None, :])


# (BLOCK_R, BLOCK_H, warps) of each kernel on the GPU; overridable for tuning sweeps. H200, bf16, 4 -> 512
# features (benchmarks/narrow_linear_silu_probe.py, kernel_sweeps_h200_2026-11-21/narrow_linear_silu_probe_
# 71c8b90.json), 389,340 rows: forward 0.170 ms (a write of the output's size: 0.124; torch.compile'd addmm +
# SiLU: 0.486), backward 0.263 ms (64 x 128 tiles: 0.297).
FORWARD_CONFIG: tuple[int, int, int] = (32, 256, 4)
BACKWARD_CONFIG: tuple[int, int, int, int] = (32, 256, 4, 3)  # ... and pipeline stages


def _check(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> None:
    k = x.shape[-1]
    if w.dim() != 2 or w.shape[1] != k or (b is not None and b.shape != (w.shape[0],)):
        raise ValueError(f"narrow_linear_silu: x [..., {k}], w {tuple(w.shape)} and b "
                         f"{None if b is None else tuple(b.shape)} do not form x W^T + b")
    if k > MAX_FEATURES:
        raise ValueError(f"narrow_linear_silu: {k} input features; this kernel is for at most {MAX_FEATURES}")
    if w.dtype != x.dtype or (b is not None and b.dtype != x.dtype):
        raise ValueError(f"narrow_linear_silu: x, w and b must share a dtype (got {x.dtype}, {w.dtype}, "
                         f"{None if b is None else b.dtype})")


def _exact(x: torch.Tensor) -> bool:
    return x.dtype == torch.float32 or interpreting()


def narrow_linear_silu(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """``silu(x W^T + b)`` without storing the pre-activation.

    Args:
        x: [..., K] input features, ``K <= MAX_FEATURES``.
        w: [H, K] weight (``nn.Linear.weight``); b: [H] bias or None. Same dtype as ``x``.

    Returns:
        [..., H] in the dtype of ``x``.

    Raises:
        ValueError: shapes that do not form ``x W^T + b``, ``K > MAX_FEATURES``, or mixed dtypes.
    """
    _check(x, w, b)
    k, h = x.shape[-1], w.shape[0]
    x2 = x.reshape(-1, k).contiguous()
    rows = x2.shape[0]
    out = x.new_empty(rows, h)
    if rows and h:
        block_r, block_h, warps = (16, 16, 1) if interpreting() else FORWARD_CONFIG
        block_h = min(block_h, max(16, next_power_of_2(h)))
        _narrow_linear_silu_fwd[(cdiv(rows, block_r), cdiv(h, block_h))](
            x2, w.contiguous(), b if b is not None else x2, out, rows, h,
            K=k, HAS_BIAS=b is not None, EXACT=_exact(x), BLOCK_R=block_r, BLOCK_H=block_h, num_warps=warps,
        )
    return out.view(*x.shape[:-1], h)


def narrow_linear_silu_backward(
    grad: torch.Tensor, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(dL/dW [H, K], dL/db [H])``, both float32, for ``a = silu(x W^T + b)`` and upstream ``dL/da``.

    Args:
        grad: [..., H] gradient of the output, dtype of ``x``.
        x, w, b: the forward's inputs (:func:`narrow_linear_silu`).

    Raises:
        ValueError: as :func:`narrow_linear_silu`, or ``grad`` not shaped like the output.
    """
    _check(x, w, b)
    k, h = x.shape[-1], w.shape[0]
    if grad.shape != (*x.shape[:-1], h) or grad.dtype != x.dtype:
        raise ValueError(f"narrow_linear_silu_backward: grad {tuple(grad.shape)} {grad.dtype} should be "
                         f"{(*x.shape[:-1], h)} {x.dtype}")
    x2 = x.reshape(-1, k).contiguous()
    g2 = grad.reshape(-1, h).contiguous()
    rows = x2.shape[0]
    if rows == 0 or h == 0:
        return x.new_zeros(h, k, dtype=torch.float32), x.new_zeros(h, dtype=torch.float32)
    if interpreting():
        block_r, block_h, warps, stages = 16, 16, 1, 1
    else:
        block_r, block_h, warps, stages = BACKWARD_CONFIG
    block_h = min(block_h, max(16, next_power_of_2(h)))
    kp = max(16, next_power_of_2(k + 1))  # the ones column, and tl.dot's smallest M
    col_blocks = cdiv(h, block_h)
    slots = 3 if interpreting() else 2 * torch.cuda.get_device_properties(x.device).multi_processor_count
    splits, per_split = row_splits(rows, block_r, cdiv(slots, col_blocks))
    part = x.new_empty(splits, kp, h, dtype=torch.float32)
    _narrow_linear_silu_bwd[(splits, col_blocks)](
        g2, x2, w.contiguous(), b if b is not None else x2, part, rows, h, per_split,
        K=k, KP=kp, HAS_BIAS=b is not None, EXACT=_exact(x), IEEE=_exact(x), BLOCK_R=block_r, BLOCK_H=block_h,
        num_warps=warps, num_stages=stages,
    )
    total = part[0] if splits == 1 else part.sum(0)  # [KP, H]
    return total[:k].t().clone(memory_format=torch.contiguous_format), total[k].clone()  # own storage each
