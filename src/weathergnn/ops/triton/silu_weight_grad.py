"""Weight gradient of a linear layer fed by a SiLU, with the SiLU applied on load.

For the edge MLP's second layer ``y = W2 silu(pre) + b2`` (Lam et al. 2023,
supplement sec. 3.3) the weight gradient is a reduction over all ``R = B x
E`` edge rows::

    dL/dW2 [L, H] = sum_r dL/dy[r, :]^T silu(pre[r, :])

cuBLAS needs ``a = silu(pre)`` as a tensor: one more ``[R, H]`` buffer (3.2
GB on the 3.1 M mesh2grid edges at H = 512, bf16) alive in the backward next
to ``dL/dy``, ``pre`` and ``dL/dpre``, and one more pass over memory to write
it. This kernel reads ``pre`` and applies the SiLU to each tile in registers
before its matrix product, so ``a`` never exists.

Split-K: the ``[L / BM] x [H / BN]`` output tiles are few (16 at 512 x 512),
so each is reduced over ``S`` disjoint slices of the rows by ``S`` programs
(enough to fill the GPU), which write float32 partial sums ``[S, L, H]``;
the caller sums them (no atomics: the result is deterministic). Tiles come
through TMA descriptors when the widths allow (16-byte aligned rows), else
through masked pointer loads.

On Hopper with bf16 / fp16 and widths that fill its tiles, the Gluon kernel
of :mod:`.silu_weight_grad_gluon` runs instead (switch:
``weathergnn.ops.triton.edge_linear.GLUON``): it forms the product
transposed, so the SiLU'd tile goes from registers into ``wgmma`` without
the round trip through shared memory.

Reference: ``grad_y.reshape(-1, L).t() @ silu(pre).reshape(-1, H)``
(:func:`weathergnn.ops.reference.silu_weight_grad`).
"""

from __future__ import annotations

import json
import os

import torch
import triton
import triton.language as tl
from triton.tools.tensor_descriptor import TensorDescriptor

from weathergnn.ops.triton import cdiv, edge_linear, has_tma, interpreting, next_power_of_2, row_splits
from weathergnn.ops.triton.activations import silu


@triton.jit
def _silu_weight_grad_kernel(
    g_ptr, p_ptr, g_desc, p_desc, part_ptr, R, L, H, ROWS_PER_SPLIT,
    USE_TMA: tl.constexpr, IEEE: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr,
    WS: tl.constexpr,
):
    """Program (tile, split): ``part[split, tile] = sum over its rows of g[r, tile_m]^T silu(p[r, tile_n])``.

    g: [R, L], p: [R, H] row-major; part: [S, L, H] float32. ``ROWS_PER_SPLIT``
    is a multiple of BK, so no row block straddles two splits; rows past ``R``
    read as zeros (TMA fills them, the pointer path masks them). WS: the row
    loop is warp-specialised by the compiler (loads in producer warps).
    """
    pid = tl.program_id(0)
    split = tl.program_id(1)
    num_n = tl.cdiv(H, BN)
    off_m = (pid // num_n) * BM
    off_n = (pid % num_n) * BN
    r0 = split * ROWS_PER_SPLIT
    r1 = tl.minimum(R, r0 + ROWS_PER_SPLIT)
    cols_m = off_m + tl.arange(0, BM)
    cols_n = off_n + tl.arange(0, BN)
    acc = tl.zeros((BM, BN), dtype=tl.float32)
    for r in tl.range(r0, r1, BK, warp_specialize=WS):
        if USE_TMA:
            g = g_desc.load([r, off_m])  # [BK, BM]
            p = p_desc.load([r, off_n])  # [BK, BN]
        else:
            rows = (r + tl.arange(0, BK)).to(tl.int64)
            live = (rows < r1)[:, None]
            g = tl.load(g_ptr + rows[:, None] * L + cols_m[None, :], mask=live & (cols_m < L)[None, :], other=0.0)
            p = tl.load(p_ptr + rows[:, None] * H + cols_n[None, :], mask=live & (cols_n < H)[None, :], other=0.0)
        a = silu(p, IEEE)  # silu(0) = 0: zero-filled rows add nothing
        if IEEE:  # float32 inputs; and under the interpreter, whose bf16 dot is wrong (Triton 3.9)
            acc = tl.dot(tl.trans(g.to(tl.float32)), a, acc, input_precision="ieee")
        else:
            acc = tl.dot(tl.trans(g), a.to(g.dtype), acc)
    out = part_ptr + split.to(tl.int64) * L * H + cols_m[:, None] * H + cols_n[None, :]
    tl.store(out, acc, mask=(cols_m < L)[:, None] & (cols_n < H)[None, :])


# Overridable for tuning sweeps: (BM, BN, BK, warps, stages[, warp-specialised row loop (1) or not (0)]).
TUNE: tuple[int, ...] | None = None
# H200 default (bf16, L = H = 512): kernel_sweeps_h200_2026-11-21/silu_on_load_sweep_98759a2.json, 3.65 ms
# (447 TFLOP/s, TMA loads) on the 3.1 M mesh2grid edges, against cuBLAS 2.36 ms on a materialised silu(pre).
GPU_CONFIG: tuple[int, ...] = (512, 64, 64, 8, 3)


def load_sweep(path: str) -> bool:
    """Use the ``uses.silu_weight_grad.best`` configuration of a ``kernel_sweep_warp_specialize.py`` file.

    Returns whether the file had one.
    """
    with open(path) as fh:
        best = json.load(fh).get("uses", {}).get("silu_weight_grad", {}).get("best")
    if best:
        global GPU_CONFIG
        GPU_CONFIG = tuple(best["config"])
    return bool(best)


if os.environ.get("WEATHERGNN_EDGE_LINEAR_SWEEP"):  # tuning aid, shared with edge_linear
    load_sweep(os.environ["WEATHERGNN_EDGE_LINEAR_SWEEP"])


def _config(length: int, hidden: int) -> tuple[int, int, int, int, int, int]:
    """(BM, BN, BK, warps, stages, WS): TUNE, else the interpreter's, else GPU_CONFIG with tiles capped at the widths."""
    if TUNE is not None:
        cfg = TUNE
    elif interpreting():
        cfg = (16, 16, 16, 1, 1)
    else:
        bm, bn, *rest = GPU_CONFIG
        cfg = (min(bm, max(16, next_power_of_2(length))), min(bn, max(16, next_power_of_2(hidden))),
               *rest)
    return (*cfg, 0)[:6]  # WS, when not given: 0


def _tma_ok(length: int, hidden: int, bm: int, bn: int, dtype: torch.dtype) -> bool:
    per16 = 16 // dtype.itemsize
    return length % per16 == 0 and hidden % per16 == 0 and length % bm == 0 and hidden % bn == 0


# None = TMA where the device (compute capability >= 9) and widths allow; True / False force it (tests).
TMA: bool | None = None


def silu_weight_grad(grad_y: torch.Tensor, pre: torch.Tensor) -> torch.Tensor:
    """``dL/dW2 = sum over rows of dL/dy^T silu(pre)`` for ``y = W2 silu(pre) + b2``.

    Args:
        grad_y: [B, E, L] (or any [..., L]) gradient of the layer output.
        pre: [B, E, H] (same leading shape) pre-activation; same dtype as ``grad_y``.

    Returns:
        [L, H] float32 (the layout of ``nn.Linear.weight``).

    Raises:
        ValueError: leading shapes or dtypes of ``grad_y`` and ``pre`` differ.
    """
    if grad_y.shape[:-1] != pre.shape[:-1] or grad_y.dtype != pre.dtype:
        raise ValueError(f"silu_weight_grad: grad_y {tuple(grad_y.shape)} {grad_y.dtype} and pre "
                         f"{tuple(pre.shape)} {pre.dtype} must share leading shape and dtype")
    length, hidden = grad_y.shape[-1], pre.shape[-1]
    g = grad_y.reshape(-1, length).contiguous()
    p = pre.reshape(-1, hidden).contiguous()
    gl_mod = edge_linear.gluon_module("silu_weight_grad_gluon") if edge_linear.gluon_enabled(g.device) else None
    if gl_mod is not None and gl_mod.supported(g.device, g.dtype, length, hidden):
        return gl_mod.silu_weight_grad(g, p)
    rows = g.shape[0]
    if rows == 0:
        return g.new_zeros(length, hidden, dtype=torch.float32)
    bm, bn, bk, warps, stages, ws = _config(length, hidden)
    use_tma = (has_tma(g.device) if TMA is None else TMA) and _tma_ok(length, hidden, bm, bn, g.dtype)
    tiles = cdiv(length, bm) * cdiv(hidden, bn)
    slots = 3 if interpreting() else 2 * torch.cuda.get_device_properties(g.device).multi_processor_count
    splits, per_split = row_splits(rows, bk, cdiv(slots, tiles))
    part = g.new_empty(splits, length, hidden, dtype=torch.float32)
    if use_tma:
        g_desc = TensorDescriptor.from_tensor(g, [bk, bm])
        p_desc = TensorDescriptor.from_tensor(p, [bk, bn])
    else:
        g_desc = p_desc = g
    _silu_weight_grad_kernel[(tiles, splits)](
        g, p, g_desc, p_desc, part, rows, length, hidden, per_split,
        USE_TMA=use_tma, IEEE=g.dtype == torch.float32 or interpreting(), BM=bm, BN=bn, BK=bk, WS=bool(ws) and use_tma,
        num_warps=warps, num_stages=stages,
    )
    return part[0] if splits == 1 else part.sum(0)
