"""Weight gradient through a SiLU, with the SiLU applied on load: Gluon, Hopper.

``dL/dW2 [L, H] = sum over rows r of dL/dy[r, :]^T silu(pre[r, :])`` for
``y = W2 silu(pre) + b2`` (the edge MLP's second layer; the Triton kernel
and the reasons for reading ``pre`` instead of a written ``silu(pre)``:
:mod:`.silu_weight_grad`).

The Triton kernel must put the SiLU'd tile back into shared memory, where
``wgmma`` reads its right-hand operand. Here the product is formed
transposed, ``dL/dW2^T [H, L] = silu(pre)^T dL/dy``, so the SiLU'd operand
is the left-hand one, which ``wgmma`` takes from registers:

* each program owns a ``[128 (H), 256 (L)]`` tile of the result and a slice
  of the rows (split-K; the float32 partial sums ``[S, L, H]`` are summed by
  the caller, no atomics, deterministic);
* its two warpgroups issue TMA loads of ``[64 rows, 128]`` ``pre`` and
  ``[64 rows, 256]`` ``dL/dy`` tiles into a ring of shared-memory stages,
  ``STAGES - 1`` row blocks ahead; each ``pre`` tile is read transposed into
  registers, the SiLU is applied there (the packed-tanh form of
  :func:`.edge_linear_gluon._fast_silu`: one special-function operation per
  two elements) and it goes into the ``wgmma`` with the ``dL/dy`` tile;
* the accumulator is stored transposed, straight into ``[L, H]`` order.

Rows past the end come in as zeros (TMA fills them) and ``silu(0) = 0``.

On the H200 (bf16, L = H = 512; ``benchmarks/results/kernel_sweeps_h200_2026-11-21/
gluon_variants_sweep_b68a72a.json``): 0.416 ms on 389,340 rows and 2.78 ms on
3,114,720 (491 and 588 TFLOP/s), against 0.579 and 3.83 ms for the Triton
kernel (``silu_on_load_gluon_probe_4fbad6d.json``) and 0.287 and 2.24 ms for
cuBLAS on a materialised ``silu(pre)``. Defaults from that sweep: 3 stages,
drained every 16 steps, one program per SM (16 row splits of 8 tiles).

Shapes: ``grad_y`` [R, L], ``pre`` [R, H], bf16 or fp16; ``L % 256 == 0``,
``H % 128 == 0``. GPU only (Gluon has no interpreter): the GPU tests compare
it with the float64 reference (``tests/test_triton_kernels.py``).
"""

from __future__ import annotations

import torch
from triton.experimental import gluon
from triton.experimental.gluon import language as gl
from triton.experimental.gluon.language.nvidia.hopper import mbarrier, warpgroup_mma, warpgroup_mma_wait
from triton.experimental.gluon.nvidia.hopper import TensorDescriptor

from weathergnn.ops.triton import row_splits
from weathergnn.ops.triton.edge_linear_gluon import _fast_silu, _gl_dtype, _tma_load, hopper_16bit

__all__ = ["silu_weight_grad", "supported"]

# BM: columns of pre (H); BN: columns of grad_y (L); BK: rows per step; UNROLL: steps between pipeline drains
BM, BN, BK, STAGES, UNROLL = 128, 256, 64, 3, 16


def supported(device: torch.device, dtype: torch.dtype, length: int, hidden: int) -> bool:
    """Whether :func:`silu_weight_grad` runs for ``grad_y`` [*, length] and ``pre`` [*, hidden] in ``dtype``.

    Needs a Hopper GPU (compute capability 9.x), bf16 or fp16, ``length`` a
    multiple of 256 and ``hidden`` of 128.
    """
    return hopper_16bit(device, dtype) and length % BN == 0 and hidden % BM == 0


@gluon.jit
def _issue_load(s, n_steps, r0, off_h, off_l, p_desc, g_desc, p_bufs, g_bufs, ready,
                BK: gl.constexpr, STAGES: gl.constexpr):
    """TMA loads of row block ``s`` (rows ``r0 + s BK ...``) into stage ``s % STAGES``; none past ``n_steps``."""
    idx = s % STAGES
    pred = s < n_steps
    bar = ready.index(idx)
    mbarrier.expect(bar, p_desc.block_type.nbytes + g_desc.block_type.nbytes, pred=pred)
    _tma_load(p_desc, [r0 + s * BK, off_h], bar, p_bufs.index(idx), pred)
    _tma_load(g_desc, [r0 + s * BK, off_l], bar, g_bufs.index(idx), pred)


@gluon.jit
def _silu_wgrad_kernel(p_desc, g_desc, part_ptr, R, ROWS_PER_SPLIT, L: gl.constexpr, H: gl.constexpr,
                       BM: gl.constexpr, BN: gl.constexpr, BK: gl.constexpr, STAGES: gl.constexpr,
                       UNROLL: gl.constexpr, num_warps: gl.constexpr):
    """Program (tile, split): ``part[split, tile] = sum over its rows of g[r, tile_l]^T silu(p[r, tile_h])``."""
    NUM_N: gl.constexpr = L // BN
    pid = gl.program_id(0)
    split = gl.program_id(1)
    off_h = (pid // NUM_N) * BM
    off_l = (pid % NUM_N) * BN
    r0 = split * ROWS_PER_SPLIT
    n_steps = gl.cdiv(gl.minimum(R - r0, ROWS_PER_SPLIT), BK * UNROLL) * UNROLL  # past R: zero rows
    p_bufs = gl.allocate_shared_memory(p_desc.dtype, [STAGES, BK, BM], p_desc.layout)
    g_bufs = gl.allocate_shared_memory(g_desc.dtype, [STAGES, BK, BN], g_desc.layout)
    ready = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    for j in gl.static_range(STAGES):
        mbarrier.init(ready.index(j), count=1)
    mma_layout: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[num_warps, 1],
                                                         instr_shape=[16, BN, 16])
    a_layout: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=mma_layout, k_width=2)
    for j in gl.static_range(STAGES - 1):
        _issue_load(j, n_steps, r0, off_h, off_l, p_desc, g_desc, p_bufs, g_bufs, ready, BK, STAGES)
    acc = gl.zeros((BM, BN), dtype=gl.float32, layout=mma_layout)
    for t in range(n_steps // UNROLL):
        for u in gl.static_range(UNROLL):
            s = t * UNROLL + u
            idx = s % STAGES
            mbarrier.wait(ready.index(idx), (s // STAGES) & 1)
            a = _fast_silu(p_bufs.index(idx).permute((1, 0)).load(a_layout)).to(p_desc.dtype)  # [BM (H), BK]
            acc = warpgroup_mma(a, g_bufs.index(idx), acc, is_async=True)
            acc = warpgroup_mma_wait(num_outstanding=1, deps=(acc,))
            gl.thread_barrier()  # step s - 1 is done in both warpgroups: its stage takes step s + STAGES - 1
            _issue_load(s + STAGES - 1, n_steps, r0, off_h, off_l, p_desc, g_desc, p_bufs, g_bufs, ready, BK,
                        STAGES)
        # drained every UNROLL steps: a wgmma still running across the loop's back edge would have its
        # accumulator registers moved by the loop and ptxas would serialise every wgmma (C7515)
        acc = warpgroup_mma_wait(num_outstanding=0, deps=(acc,))
    hs = off_h + gl.arange(0, BM, layout=gl.SliceLayout(1, mma_layout))
    ls = off_l + gl.arange(0, BN, layout=gl.SliceLayout(0, mma_layout))
    out = part_ptr + split.to(gl.int64) * (L * H) + ls[None, :] * H + hs[:, None]  # [L, H] order
    gl.store(out, acc)
    for j in gl.static_range(STAGES):
        mbarrier.invalidate(ready.index(j))


def silu_weight_grad(grad_y: torch.Tensor, pre: torch.Tensor, splits: int | None = None, *,
                     stages: int = STAGES, unroll: int = UNROLL) -> torch.Tensor:
    """``dL/dW2 = sum over rows of grad_y^T silu(pre)`` (module docstring).

    Args:
        grad_y: [R, L] contiguous; pre: [R, H] contiguous, same dtype.
        splits: row slices per output tile (default: one program per SM in all).
        stages, unroll: shared-memory stages and steps between drains (tuning).

    Returns:
        [L, H] float32.

    Raises:
        ValueError: shapes, dtypes or a device that :func:`supported` rejects.
    """
    rows, length = grad_y.shape
    hidden = pre.shape[1]
    if (pre.shape[0] != rows or pre.dtype != grad_y.dtype
            or not supported(grad_y.device, grad_y.dtype, length, hidden)):
        raise ValueError(f"silu_weight_grad_gluon: unsupported grad_y {list(grad_y.shape)} {grad_y.dtype}, pre "
                         f"{list(pre.shape)} {pre.dtype} on {grad_y.device} (Hopper, bf16/fp16, L % {BN}, H % {BM})")
    if rows == 0:
        return grad_y.new_zeros(length, hidden, dtype=torch.float32)
    tiles = (hidden // BM) * (length // BN)
    if splits is None:
        splits = max(1, torch.cuda.get_device_properties(grad_y.device).multi_processor_count // tiles)
    step = BK * unroll  # a split's rows: a multiple of the rows between drains
    splits, per_split = row_splits(rows, step, splits)
    dt = _gl_dtype(grad_y.dtype)
    p_desc = TensorDescriptor.from_tensor(pre, [BK, BM], gl.NVMMASharedLayout.get_default_for([BK, BM], dt))
    g_desc = TensorDescriptor.from_tensor(grad_y, [BK, BN], gl.NVMMASharedLayout.get_default_for([BK, BN], dt))
    part = grad_y.new_empty(splits, length, hidden, dtype=torch.float32)
    _silu_wgrad_kernel[(tiles, splits)](p_desc, g_desc, part, rows, per_split, L=length, H=hidden,
                                        BM=BM, BN=BN, BK=BK, STAGES=stages, UNROLL=unroll,
                                        num_warps=8)
    return part[0] if splits == 1 else part.sum(0)
