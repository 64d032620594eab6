"""Edge-MLP GEMMs with their epilogue in warps of its own (Gluon, Hopper).

Four products of the interaction layer's edge MLP (:mod:`.edge_linear`),
each ``out = a @ w_kn`` finished per tile:

* forward, the split first layer (``linear_gather_add``), :func:`gather_linear`:
  ``pre[e] = e_lat[e] @ W1^T + b1 + p_src[src[e]] + p_dst[dst[e]]``;
* forward, the second layer with the SiLU on load (``silu_linear``),
  :func:`silu_linear`: ``y[e] = silu(pre[e]) @ W2^T + b2``;
* backward through the second layer's SiLU (``linear_silu_backward``),
  :func:`dsilu_linear`: ``dL/dpre[e] = (dL/dy[e] @ W2) * silu'(pre[e])``
  (the sigmoid in ``silu'`` from the packed float16 tanh, as the SiLU on load);
* backward to the edge latents (``linear_residual_backward``),
  :func:`residual_linear`: ``dL/de[e] = dL/dpre[e] @ W1 + dL/de'[e] + dL/dagg[dst[e]]``.

Shapes: ``a`` [E, K], ``w_kn`` [K, N], ``out`` [E, N], node tables [N*, N],
indices [E]; bf16 or fp16, fp32 accumulation. ``w_kn`` may be an
``nn.Linear`` weight ``[N, K]`` seen through ``.t()``, or a slice of a wider
one: the kernels read it in place (:func:`weight_operand`), in ``[BN, BK]``
tiles that ``wgmma`` takes transposed, instead of copying it each call.

The Triton kernels of :mod:`.edge_linear_tma` run the bare product at cuBLAS
speed but do the gathers after it in the same warps, so the tensor cores
idle during the epilogue. Here one persistent program per SM splits the
work (warp specialisation, written in Triton's Gluon dialect):

* two warpgroups (the default partition) issue the TMA loads of ``[128, 64]``
  edge and ``[64, 256]`` weight tiles into a ring of shared-memory stages,
  ``STAGES - 1`` K steps ahead across tiles, run the ``warpgroup_mma``\\ s,
  and hand the ``[128, 256]`` accumulator over through a shared-memory
  buffer (rounded to the output dtype, as a cuBLAS product then an add would
  be); then they start the next tile;
* an epilogue partition of ``EPI_WARPS`` warps reads that buffer in row
  slices, finishes them (bias, gathered or contiguous rows, or the SiLU
  derivative) and stores; the next slice's operands, and the gather
  indices of the one after, are in flight meanwhile.

With ``wgmma`` instructions of 128 columns (``MMA_N``) no single instruction
needs more than the 128 registers a thread of a 16-warp kernel starts with,
so the epilogue can have 8 warps while ``setmaxnreg`` gives the products 160.
On the H200 (Triton 3.6, mesh2grid-size operands 3,114,720 x 512 x 512, bf16;
``benchmarks/results/kernel_sweeps_h200_2026-11-21/gluon_epilogue_partition_spike_d853f3f.json``):
3.33 ms against 4.35 ms for :mod:`.edge_linear_tma`'s kernel and 2.46 ms for
cuBLAS's bare product; 3.77 ms with a 4-warp epilogue. How the design was
found: ``benchmarks/gluon_epilogue_partition_spike.py``,
``benchmarks/epilogue_warps_probe.py`` and ``benchmarks/README.md``.

GPU only: Gluon has no interpreter, so CI cannot run it; the GPU tests
compare each product with its float64 reference and with the TMA kernel
(``tests/test_triton_kernels.py``).
"""

from __future__ import annotations

import torch
from triton.experimental import gluon
from triton.experimental.gluon import language as gl
from triton.experimental.gluon.language.nvidia.hopper import (
    mbarrier,
    tma,
    warpgroup_mma,
    warpgroup_mma_wait,
)
from triton.experimental.gluon.nvidia.hopper import TensorDescriptor

from weathergnn.ops.triton import cdiv

__all__ = ["dsilu_linear", "gather_linear", "residual_linear", "silu_linear", "supported", "weight_operand"]

# TMA load into shared memory: ``async_copy_global_to_shared`` up to Triton 3.6, ``async_load`` after it
_tma_load = tma.async_load if hasattr(tma, "async_load") else tma.async_copy_global_to_shared

BM, BN, BK, STAGES = 128, 256, 64, 3

#: Read ``nn.Linear`` weights (``[N, K]`` seen as ``[K, N]``) in place (:func:`weight_operand`); off: copy
#: each to a contiguous ``[K, N]`` per call, as before (the benchmarks' ``-wcopy`` same-run comparison).
WEIGHT_IN_PLACE = True


def supported(device: torch.device, dtype: torch.dtype, k: int, n: int) -> bool:
    """Whether :func:`gather_linear` runs for ``[*, k] x [k, n]`` products in ``dtype`` on ``device``.

    Needs a Hopper GPU (compute capability 9.x: ``wgmma`` and ``setmaxnreg``),
    bf16 or fp16, ``k`` a multiple of 64 and ``n`` of 256.
    """
    return hopper_16bit(device, dtype) and k % BK == 0 and n % BN == 0


def hopper_16bit(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether the Gluon kernels' hardware and dtype needs hold: a Hopper GPU (compute capability 9.x:
    ``wgmma`` and ``setmaxnreg``) and bf16 or fp16 operands."""
    return (device.type == "cuda" and torch.cuda.get_device_capability(device)[0] == 9
            and dtype in (torch.bfloat16, torch.float16))


@gluon.jit
def _tile(i, NUM_PROGS, NUM_N: gl.constexpr, BM: gl.constexpr, BN: gl.constexpr):
    """(row, column) offsets of this program's i-th tile: consecutive tiles share their rows of A."""
    t = gl.program_id(0) + i * NUM_PROGS
    return (t // NUM_N) * BM, (t % NUM_N) * BN


@gluon.jit
def _my_tiles(E, NUM_PROGS, NUM_N: gl.constexpr, BM: gl.constexpr):
    return gl.cdiv(gl.cdiv(E, BM) * NUM_N - gl.program_id(0), NUM_PROGS)


@gluon.jit
def _issue_load(p, n_steps, a_desc, w_desc, a_bufs, w_bufs, ready, NUM_PROGS, NUM_N: gl.constexpr,
                BM: gl.constexpr, BN: gl.constexpr, BK: gl.constexpr, KSTEPS: gl.constexpr, STAGES: gl.constexpr,
                W_NK: gl.constexpr):
    """TMA loads of global K step ``p`` (tile ``p // KSTEPS``) into stage ``p % STAGES``; none past ``n_steps``.
    ``W_NK``: the weight is stored ``[N, K]`` (``nn.Linear``'s layout), its tiles ``[BN, BK]``."""
    idx = p % STAGES
    off_m, off_n = _tile(p // KSTEPS, NUM_PROGS, NUM_N, BM, BN)
    k = (p % KSTEPS) * BK
    pred = p < n_steps
    bar = ready.index(idx)
    mbarrier.expect(bar, a_desc.block_type.nbytes + w_desc.block_type.nbytes, pred=pred)
    _tma_load(a_desc, [off_m, k], bar, a_bufs.index(idx), pred)
    if W_NK:
        _tma_load(w_desc, [off_n, k], bar, w_bufs.index(idx), pred)
    else:
        _tma_load(w_desc, [k, off_n], bar, w_bufs.index(idx), pred)


@gluon.jit
def _w_tile(w_bufs, idx, W_NK: gl.constexpr):
    """Stage ``idx`` of the weight ring as the ``[BK, BN]`` operand: ``[BN, BK]`` tiles seen transposed
    (``wgmma`` reads a 16-bit B operand either way round)."""
    if W_NK:
        return w_bufs.index(idx).permute((1, 0))
    else:
        return w_bufs.index(idx)


@gluon.jit
def _tanh_f16x2(x):
    """``tanh(x)`` in float32 via packed ``tanh.approx.f16x2`` (one special-function operation per two
    elements; the input rounded to float16, where +-inf past 65504 gives +-1)."""
    t = gl.inline_asm_elementwise("tanh.approx.f16x2 $0, $1;", "=r,r", [x.to(gl.float16)], dtype=gl.float16,
                                  is_pure=True, pack=2)
    return t.to(gl.float32)


@gluon.jit
def _fast_silu(x):
    """``x sigmoid(x) = x/2 (1 + tanh(x/2))`` in float32 via :func:`_tanh_f16x2`, instead of an ``exp``
    and a reciprocal per element (the form and its error bound: :mod:`weathergnn.ops.triton.activations`)."""
    half = 0.5 * x.to(gl.float32)
    return half + half * _tanh_f16x2(half)


@gluon.jit
def _mma(a_desc, w_desc, a_bufs, w_bufs, c_smem, ready, acc_ready, acc_empty, E, NUM_PROGS,
         BM: gl.constexpr, BN: gl.constexpr, BK: gl.constexpr, K: gl.constexpr, N: gl.constexpr,
         STAGES: gl.constexpr, MMA_N: gl.constexpr, A_SILU: gl.constexpr, W_NK: gl.constexpr):
    """Two warpgroups: the loads and products of each tile, then the accumulator into ``c_smem``.

    They issue their own loads (a separate loader warp would leave too few
    registers); before a stage is refilled both warpgroups' products on it
    must be done, hence the barrier after each ``warpgroup_mma_wait``.
    """
    KSTEPS: gl.constexpr = K // BK
    NUM_N: gl.constexpr = N // BN
    mma_layout: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[8, 1],
                                                         instr_shape=[16, MMA_N, 16])
    a_layout: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=mma_layout, k_width=2)
    n_tiles = _my_tiles(E, NUM_PROGS, NUM_N, BM)
    n_steps = n_tiles * KSTEPS
    for p in gl.static_range(STAGES - 1):
        _issue_load(p, n_steps, a_desc, w_desc, a_bufs, w_bufs, ready, NUM_PROGS, NUM_N, BM, BN, BK, KSTEPS, STAGES,
                    W_NK)
    for i in range(n_tiles):
        acc = gl.zeros((BM, BN), dtype=gl.float32, layout=mma_layout)
        for kk in gl.static_range(KSTEPS):
            s = i * KSTEPS + kk
            idx = s % STAGES
            mbarrier.wait(ready.index(idx), (s // STAGES) & 1)
            if A_SILU:  # the product's input is silu(A): the tile goes through registers
                a = _fast_silu(a_bufs.index(idx).load(a_layout)).to(a_desc.dtype)
                acc = warpgroup_mma(a, _w_tile(w_bufs, idx, W_NK), acc, use_acc=kk > 0, is_async=True)
            else:
                acc = warpgroup_mma(a_bufs.index(idx), _w_tile(w_bufs, idx, W_NK), acc, use_acc=kk > 0,
                                    is_async=True)
            acc = warpgroup_mma_wait(num_outstanding=1, deps=(acc,))
            gl.thread_barrier()  # step s - 1 is done in both warpgroups: its stage takes step s + STAGES - 1
            _issue_load(s + STAGES - 1, n_steps, a_desc, w_desc, a_bufs, w_bufs, ready, NUM_PROGS, NUM_N,
                        BM, BN, BK, KSTEPS, STAGES, W_NK)
        acc = warpgroup_mma_wait(num_outstanding=0, deps=(acc,))
        mbarrier.wait(acc_empty.index(0), (i & 1) ^ 1)  # the epilogue is through the previous tile
        c_smem.store(acc.to(c_smem.dtype))
        gl.thread_barrier()  # both warpgroups' rows are in c_smem
        mbarrier.arrive(acc_ready.index(0), count=1)


@gluon.jit
def _chunk(i, jj, E, NUM_PROGS, NUM_N: gl.constexpr, BM: gl.constexpr, BN: gl.constexpr,
           SUB_M: gl.constexpr, rows_layout: gl.constexpr, cols_layout: gl.constexpr):
    """Rows (clamped to E - 1, int64) and columns of row slice ``jj`` of this program's tile ``i``."""
    off_m, off_n = _tile(i, NUM_PROGS, NUM_N, BM, BN)
    rows = off_m + jj * SUB_M + gl.arange(0, SUB_M, layout=rows_layout)
    return gl.minimum(rows, E - 1).to(gl.int64), off_n + gl.arange(0, BN, layout=cols_layout)


@gluon.jit
def _operand_rows(rows, idx_ptr, MODE: gl.constexpr):
    """Rows of an epilogue operand for output ``rows``: ``idx[rows]`` (MODE 1), ``rows`` (2), none (0)."""
    if MODE == 1:
        return gl.load(idx_ptr + rows).to(gl.int64)
    elif MODE == 2:
        return rows
    else:
        return 0


@gluon.jit
def _operand(t_ptr, orow, cols, N: gl.constexpr, MODE: gl.constexpr):
    """The operand's ``[rows, cols]`` block at operand rows ``orow``; 0 where absent (MODE 0)."""
    if MODE == 0:
        return 0
    else:
        return gl.load(t_ptr + orow[:, None] * N + cols[None, :])


@gluon.jit
def _epilogue(c_smem, acc_ready, acc_empty, E, NUM_PROGS, out_ptr, bias_ptr, t1_ptr, t2_ptr, idx1_ptr, idx2_ptr,
              BM: gl.constexpr, BN: gl.constexpr, N: gl.constexpr, SUB_M: gl.constexpr, EPI_WARPS: gl.constexpr,
              HAS_BIAS: gl.constexpr, T1_MODE: gl.constexpr, T2_MODE: gl.constexpr, DSILU: gl.constexpr):
    """Finish each tile ``SUB_M`` rows at a time and store it:
    ``out = c (+ bias) (+ t1[idx1 or row]) (+ t2[idx2])``, or with ``DSILU`` ``out = c * silu'(t1[row])``.

    Software-pipelined over row slices across tiles: the next slice's
    operands are loaded while a slice is finished and stored (a tile's first
    ones before its accumulator is waited for).
    """
    NUM_N: gl.constexpr = N // BN
    NCH: gl.constexpr = BM // SUB_M
    layout: gl.constexpr = gl.BlockedLayout(size_per_thread=[1, 8], threads_per_warp=[1, 32],
                                            warps_per_cta=[EPI_WARPS, 1], order=[1, 0])
    rl: gl.constexpr = gl.SliceLayout(1, layout)
    cl: gl.constexpr = gl.SliceLayout(0, layout)
    r0, c0 = _chunk(0, 0, E, NUM_PROGS, NUM_N, BM, BN, SUB_M, rl, cl)
    t1_cur = _operand(t1_ptr, _operand_rows(r0, idx1_ptr, T1_MODE), c0, N, T1_MODE)
    t2_cur = _operand(t2_ptr, _operand_rows(r0, idx2_ptr, T2_MODE), c0, N, T2_MODE)
    r1, _c1 = _chunk(0, 1 % NCH, E, NUM_PROGS, NUM_N, BM, BN, SUB_M, rl, cl)
    o1 = _operand_rows(r1, idx1_ptr, T1_MODE)  # operand rows of the next slice
    o2 = _operand_rows(r1, idx2_ptr, T2_MODE)
    for i in range(_my_tiles(E, NUM_PROGS, NUM_N, BM)):
        off_m, off_n = _tile(i, NUM_PROGS, NUM_N, BM, BN)
        cols = off_n + gl.arange(0, BN, layout=cl)
        if HAS_BIAS:
            bias = gl.load(bias_ptr + cols).to(gl.float32)
        for j in gl.static_range(NCH):
            # the next slice's operands, at rows found one slice earlier; then the rows of the slice after it
            _rn, cn = _chunk(i + (j + 1) // NCH, (j + 1) % NCH, E, NUM_PROGS, NUM_N, BM, BN, SUB_M, rl, cl)
            t1_next = _operand(t1_ptr, o1, cn, N, T1_MODE)
            t2_next = _operand(t2_ptr, o2, cn, N, T2_MODE)
            rnn, _cnn = _chunk(i + (j + 2) // NCH, (j + 2) % NCH, E, NUM_PROGS, NUM_N, BM, BN, SUB_M, rl, cl)
            o1 = _operand_rows(rnn, idx1_ptr, T1_MODE)
            o2 = _operand_rows(rnn, idx2_ptr, T2_MODE)
            if j == 0:
                mbarrier.wait(acc_ready.index(0), i & 1)
            rows = off_m + j * SUB_M + gl.arange(0, SUB_M, layout=rl)
            x = c_smem.slice(j * SUB_M, SUB_M).load(layout).to(gl.float32)
            if HAS_BIAS:
                x += bias[None, :]
            if DSILU:  # silu'(z) = s (1 + z (1 - s)), s = sigmoid(z) = (1 + tanh(z / 2)) / 2
                z = t1_cur.to(gl.float32)
                sig = 0.5 + 0.5 * _tanh_f16x2(0.5 * z)
                x = x * (sig * (1.0 + z * (1.0 - sig)))
            else:
                if T1_MODE != 0:
                    x += t1_cur.to(gl.float32)
                if T2_MODE != 0:
                    x += t2_cur.to(gl.float32)
            gl.store(out_ptr + rows.to(gl.int64)[:, None] * N + cols[None, :], x.to(out_ptr.dtype.element_ty),
                     mask=(rows < E)[:, None])
            t1_cur = t1_next
            t2_cur = t2_next
        gl.thread_barrier()  # every warp is through c_smem
        mbarrier.arrive(acc_empty.index(0), count=1)


@gluon.jit
def _epilogue_linear_kernel(a_desc, w_desc, E, NUM_PROGS, out_ptr, bias_ptr, t1_ptr, t2_ptr, idx1_ptr, idx2_ptr,
                            BM: gl.constexpr, BN: gl.constexpr, BK: gl.constexpr, K: gl.constexpr, N: gl.constexpr,
                            STAGES: gl.constexpr, SUB_M: gl.constexpr, EPI_WARPS: gl.constexpr,
                            EPI_REGS: gl.constexpr, MMA_N: gl.constexpr, HAS_BIAS: gl.constexpr,
                            T1_MODE: gl.constexpr, T2_MODE: gl.constexpr, DSILU: gl.constexpr,
                            A_SILU: gl.constexpr, W_NK: gl.constexpr, num_warps: gl.constexpr):
    a_bufs = gl.allocate_shared_memory(a_desc.dtype, [STAGES, BM, BK], a_desc.layout)
    if W_NK:
        w_bufs = gl.allocate_shared_memory(w_desc.dtype, [STAGES, BN, BK], w_desc.layout)
    else:
        w_bufs = gl.allocate_shared_memory(w_desc.dtype, [STAGES, BK, BN], w_desc.layout)
    c_layout: gl.constexpr = gl.NVMMASharedLayout.get_default_for([BM, BN], a_desc.dtype)
    c_smem = gl.allocate_shared_memory(a_desc.dtype, [BM, BN], c_layout)
    ready = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    acc_ready = gl.allocate_shared_memory(gl.int64, [1, 1], mbarrier.MBarrierLayout())
    acc_empty = gl.allocate_shared_memory(gl.int64, [1, 1], mbarrier.MBarrierLayout())
    for j in gl.static_range(STAGES):
        mbarrier.init(ready.index(j), count=1)
    mbarrier.init(acc_ready.index(0), count=1)
    mbarrier.init(acc_empty.index(0), count=1)
    gl.warp_specialize([
        (_mma, (a_desc, w_desc, a_bufs, w_bufs, c_smem, ready, acc_ready, acc_empty, E, NUM_PROGS,
                BM, BN, BK, K, N, STAGES, MMA_N, A_SILU, W_NK)),
        (_epilogue, (c_smem, acc_ready, acc_empty, E, NUM_PROGS, out_ptr, bias_ptr, t1_ptr, t2_ptr, idx1_ptr,
                     idx2_ptr, BM, BN, N, SUB_M, EPI_WARPS, HAS_BIAS, T1_MODE, T2_MODE, DSILU)),
    ], [EPI_WARPS], [EPI_REGS])  # the products (default partition, 8 warps) get the registers left


def gather_linear(e: torch.Tensor, w_kn: torch.Tensor, out: torch.Tensor, bias: torch.Tensor | None = None,
                  p_src: torch.Tensor | None = None, p_dst: torch.Tensor | None = None,
                  src: torch.Tensor | None = None, dst: torch.Tensor | None = None, **variant) -> torch.Tensor:
    """Forward: ``out = e @ w_kn (+ bias) (+ p_src[src] + p_dst[dst])`` (module docstring).

    Args:
        e: [E, K]; w_kn: [K, N]; out: [E, N], written; bias: [N] or None.
        p_src [Ns, N], p_dst [Nd, N], src, dst [E] int32 / int64: all four, or
            none (the bare product, for benchmarks).
        variant: launch options of :func:`_launch`.

    Returns:
        ``out``.

    Raises:
        ValueError: shapes, dtypes or a device that :func:`supported` rejects.
    """
    gather = p_src is not None
    return _launch(e, w_kn, out, bias, p_src, p_dst, src, dst, 1 if gather else 0, 1 if gather else 0, False,
                   **variant)


def residual_linear(g_pre: torch.Tensor, w_kn: torch.Tensor, out: torch.Tensor, g_out: torch.Tensor | None,
                    g_agg: torch.Tensor | None, dst: torch.Tensor, **variant) -> torch.Tensor:
    """Backward to the edge latents: ``out = g_pre @ w_kn (+ g_out) (+ g_agg[dst])``.

    Args:
        g_pre: [E, K] = dL/dpre; w_kn: [K, N] = W1; out: [E, N], written;
            g_out: [E, N] = dL/de' or None; g_agg: [Nd, N] = dL/dagg or None; dst: [E].
        variant: launch options of :func:`_launch`.

    Returns:
        ``out`` = dL/de. Raises as :func:`gather_linear`.
    """
    return _launch(g_pre, w_kn, out, None, g_out, g_agg, None, dst, 2 if g_out is not None else 0,
                   1 if g_agg is not None else 0, False, **variant)


def dsilu_linear(g_y: torch.Tensor, w_kn: torch.Tensor, out: torch.Tensor, pre: torch.Tensor,
                 **variant) -> torch.Tensor:
    """Backward through ``y = silu(pre) W2^T``: ``out = (g_y @ w_kn) * silu'(pre)``.

    Args:
        g_y: [E, K] = dL/dy; w_kn: [K, N] = W2; out: [E, N], written; pre: [E, N].
        variant: launch options of :func:`_launch`.

    Returns:
        ``out`` = dL/dpre. Raises as :func:`gather_linear`.
    """
    return _launch(g_y, w_kn, out, None, pre, None, None, None, 2, 0, True, **variant)


def silu_linear(pre: torch.Tensor, w_kn: torch.Tensor, out: torch.Tensor, bias: torch.Tensor | None = None,
                **variant) -> torch.Tensor:
    """The second layer's product with the SiLU on load: ``out = silu(pre) @ w_kn (+ bias)``.

    Each ``pre`` tile goes from shared memory through registers, where the
    SiLU is applied (:func:`_fast_silu`), into the ``wgmma``; the epilogue
    only adds the bias. Defaults: a 4-warp epilogue (it has no gathers) in
    32-row slices and 256-column ``wgmma`` (a 12-warp launch starts at 168
    registers a thread), so the products can have 232 registers for the
    SiLU'd tiles. On the H200 (``benchmarks/results/kernel_sweeps_h200_2026-11-21/
    gluon_variants_sweep_b68a72a.json``, bf16, 512 x 512): 0.446 ms on 389,340
    rows and 3.05 ms on 3,114,720, against 0.335 and 2.58 ms for cuBLAS on a
    materialised ``silu(pre)``; with the exact SiLU (an ``exp`` and a division
    per element) 0.574 and 3.96 ms (``silu_on_load_gluon_probe_4fbad6d.json``).

    Args:
        pre: [E, K]; w_kn: [K, N] = W2^T; out: [E, N], written; bias: [N] or None.
        variant: launch options of :func:`_launch`.

    Returns:
        ``out``. Raises as :func:`gather_linear`.
    """
    opts = dict(epi_warps=4, epi_regs=40, mma_n=256, maxnreg=168, sub_m=32)
    opts.update(variant)
    return _launch(pre, w_kn, out, bias, None, None, None, None, 0, 0, False, a_silu=True, **opts)


def _launch(a, w_kn, out, bias, t1, t2, idx1, idx2, t1_mode: int, t2_mode: int, dsilu: bool, *, sub_m: int = 16,
            epi_warps: int = 8, epi_regs: int = 96, mma_n: int = 128, maxnreg: int | None = None,
            programs: int | None = None, a_silu: bool = False) -> torch.Tensor:
    """Run the kernel. ``sub_m``, ``epi_warps``, ``epi_regs``, ``mma_n``: rows per epilogue slice, epilogue
    warps and registers, columns per ``wgmma`` (defaults from the d853f3f run); ``maxnreg``: the launch's
    register cap (None: Triton's, 128 a thread at 16 warps); ``programs``: persistent programs (one per SM)."""
    n_e, k = a.shape
    n = w_kn.shape[1]
    if not supported(a.device, a.dtype, k, n) or w_kn.shape[0] != k or out.shape != (n_e, n):
        raise ValueError(f"edge_linear_gluon: unsupported product [{n_e}, {k}] x {list(w_kn.shape)} -> "
                         f"{list(out.shape)} in {a.dtype} on {a.device} (Hopper, bf16/fp16, K % {BK}, N % {BN})")
    if n_e == 0:
        return out
    w_op, w_nk = weight_operand(w_kn)
    w_block = [BN, BK] if w_nk else [BK, BN]
    layout_a = gl.NVMMASharedLayout.get_default_for([BM, BK], _gl_dtype(a.dtype))
    layout_w = gl.NVMMASharedLayout.get_default_for(w_block, _gl_dtype(a.dtype))
    a_desc = TensorDescriptor.from_tensor(a, [BM, BK], layout_a)
    w_desc = TensorDescriptor.from_tensor(w_op, w_block, layout_w)
    tiles = cdiv(n_e, BM) * (n // BN)
    progs = min(programs or torch.cuda.get_device_properties(a.device).multi_processor_count, tiles)
    d = out  # placeholder pointer where an operand is absent
    _epilogue_linear_kernel[(progs,)](
        a_desc, w_desc, n_e, progs, out, bias if bias is not None else d, t1 if t1 is not None else d,
        t2 if t2 is not None else d, idx1 if idx1 is not None else d, idx2 if idx2 is not None else d,
        BM=BM, BN=BN, BK=BK, K=k, N=n, STAGES=STAGES, SUB_M=sub_m, EPI_WARPS=epi_warps, EPI_REGS=epi_regs,
        MMA_N=mma_n, HAS_BIAS=bias is not None, T1_MODE=t1_mode, T2_MODE=t2_mode, DSILU=dsilu, A_SILU=a_silu,
        W_NK=w_nk, num_warps=8,
        **({} if maxnreg is None else {"maxnreg": maxnreg}),
    )
    return out


def weight_operand(w_kn: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """The tensor a TMA descriptor of the ``[K, N]`` weight operand reads, and whether it is ``[N, K]``.

    ``w_kn`` with unit column stride is read as it is (``[BK, BN]`` tiles),
    one with unit row stride (``nn.Linear``'s ``[N, K]`` weight seen through
    ``.t()``, also a column slice of a wider weight) through its transpose
    (``[BN, BK]`` tiles): neither is copied. Other strides, or a start or
    row stride TMA cannot address (16-byte multiples), get a contiguous copy;
    so does every non-contiguous one with ``WEIGHT_IN_PLACE`` off.

    Args:
        w_kn: [K, N].

    Returns:
        (``w_kn``, False), (``w_kn.t()`` [N, K], True) or (``w_kn.contiguous()``, False).
    """
    for view, nk in ((w_kn, False), (w_kn.t(), True)):
        if view.stride(1) == 1 and _tma_addressable(view) and (WEIGHT_IN_PLACE or view.is_contiguous()):
            return view, nk
    return w_kn.contiguous(), False


def _tma_addressable(t: torch.Tensor) -> bool:
    """A 2-D view with unit last stride whose start and row stride are multiples of 16 bytes."""
    size = t.element_size()
    return t.data_ptr() % 16 == 0 and (t.stride(0) * size) % 16 == 0 and t.stride(0) >= t.shape[1]


def _gl_dtype(dtype: torch.dtype):
    return gl.bfloat16 if dtype == torch.bfloat16 else gl.float16

