"""Spike: a Hopper GEMM whose epilogue runs in its own warps, for the edge MLP's gather epilogue.

Why: the Triton edge-MLP kernels (:mod:`weathergnn.ops.triton.edge_linear_tma`)
run the bare ``[E, 512] x [512, 512]`` product at cuBLAS speed with 128 x 256
tiles and two warpgroups, but with their epilogues (gathers, SiLU, residual
sums) they are 1.6-1.7x slower: the same warps do the products and then the
memory-bound epilogue, so the tensor cores idle during it. The ping-pong
schedule (``gluon_pingpong_spike.py``) hid the epilogue but its 128 x 128 tiles
ran the main loop at 420-457 TFLOP/s against cuBLAS's 673.

This schedule keeps cuBLAS's tile and moves the epilogue out of the MMA warps:

* the MMA partition (two warpgroups, 8 warps, the 128 x 256 fp32 accumulator
  in registers, 64 rows each) issues the TMA loads of A ``[128, 64]`` and W
  ``[64, 256]`` tiles into a ring of shared-memory stages, ``STAGES - 1`` K
  steps ahead across tiles, runs ``warpgroup_mma`` over them, then writes the
  accumulator to a bf16 ``[128, 256]`` shared-memory buffer and goes on to
  its next tile;
* the epilogue partition (one warpgroup) reads that buffer in row slices,
  adds ``b1 + p_src[src] + p_dst[dst]`` (the forward's first edge-MLP layer,
  ``weathergnn.ops.triton.edge_linear.linear_gather_add``) and stores the
  rows, then releases the buffer. Its memory traffic overlaps the next tile's
  products.

The accumulator is rounded to bf16 before the gathered terms are added (the
unfused cuBLAS path rounds there too); the error is checked against float32.

Timed on mesh2grid-like edges (3,114,720 edges, 40,962 senders, 1,038,240
receivers, width 512, bf16) against cuBLAS and the Triton kernel in use, in one
run. GPU only (Gluon has no interpreter); each variant's error and time, or
its compile error, is written to the JSON after every row.

    python benchmarks/gluon_epilogue_partition_spike.py --json $OUT/gluon_epilogue_partition_spike.json

Results (H200, Triton 3.6, ``benchmarks/results/kernel_sweeps_h200_2026-11-21/
gluon_epilogue_partition_spike_*.json``, discussed in ``benchmarks/README.md``):
the bare product within 2-6% of cuBLAS; the gather epilogue 3.74-3.84 ms
against 4.35-4.44 ms for the Triton kernel in use, bound by the epilogue
warpgroup. Staging the gathers in shared memory with ``cp.async`` (PIPE 2,
run 7c9997c) was slower (3.99-5.40 ms): it needs K steps of 32 for room,
which slow the products, and four warps stay too few
(``epilogue_warps_probe.py``). Not used by the model.
"""

from __future__ import annotations

import torch
import triton
from triton.experimental import gluon
from triton.experimental.gluon import language as gl
from triton.experimental.gluon.language.nvidia.hopper import (
    mbarrier,
    tma,
    warpgroup_mma,
    warpgroup_mma_wait,
)
from triton.experimental.gluon.language.nvidia.ampere import async_copy
from triton.experimental.gluon.nvidia.hopper import TensorDescriptor

# TMA load into shared memory: ``async_copy_global_to_shared`` up to Triton 3.6, ``async_load`` after it
tma_load = tma.async_load if hasattr(tma, "async_load") else tma.async_copy_global_to_shared


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
                BM: gl.constexpr, BN: gl.constexpr, BK: gl.constexpr, KSTEPS: gl.constexpr, STAGES: gl.constexpr):
    """TMA loads of global K step ``p`` (tile ``p // KSTEPS``) into stage ``p % STAGES``; none past ``n_steps``."""
    idx = p % STAGES
    off_m, off_n = _tile(p // KSTEPS, NUM_PROGS, NUM_N, BM, BN)
    k = (p % KSTEPS) * BK
    pred = p < n_steps
    bar = ready.index(idx)
    mbarrier.expect(bar, a_desc.block_type.nbytes + w_desc.block_type.nbytes, pred=pred)
    tma_load(a_desc, [off_m, k], bar, a_bufs.index(idx), pred)
    tma_load(w_desc, [k, off_n], bar, w_bufs.index(idx), pred)


@gluon.jit
def _mma(a_desc, w_desc, a_bufs, w_bufs, c_smem, ready, acc_ready, acc_empty, E, NUM_PROGS,
         out_ptr, bias_ptr, ps_ptr, pd_ptr, src_ptr, dst_ptr,
         BM: gl.constexpr, BN: gl.constexpr, BK: gl.constexpr, K: gl.constexpr, N: gl.constexpr,
         STAGES: gl.constexpr, SUB_M: gl.constexpr, GATHER: gl.constexpr, MMA_N: gl.constexpr):
    """Two warpgroups: the loads (STAGES - 1 K steps ahead, across tiles) and products of each tile, then the
    accumulator into ``c_smem`` (bf16) for the epilogue partition.

    (A separate loader warp would make 13 warps, launched as 16: at the 154
    registers the products need, more than an SM has.)
    """
    KSTEPS: gl.constexpr = K // BK
    NUM_N: gl.constexpr = N // BN
    mma_layout: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[8, 1],
                                                         instr_shape=[16, MMA_N, 16])
    n_tiles = _my_tiles(E, NUM_PROGS, NUM_N, BM)
    n_steps = n_tiles * KSTEPS
    for p in gl.static_range(STAGES - 1):
        _issue_load(p, n_steps, a_desc, w_desc, a_bufs, w_bufs, ready, NUM_PROGS, NUM_N, BM, BN, BK, KSTEPS, STAGES)
    for i in range(n_tiles):
        acc = gl.zeros((BM, BN), dtype=gl.float32, layout=mma_layout)
        for kk in gl.static_range(KSTEPS):
            s = i * KSTEPS + kk
            idx = s % STAGES
            mbarrier.wait(ready.index(idx), (s // STAGES) & 1)
            acc = warpgroup_mma(a_bufs.index(idx), w_bufs.index(idx), acc, use_acc=kk > 0, is_async=True)
            acc = warpgroup_mma_wait(num_outstanding=1, deps=(acc,))
            # step s - 1's product is done in both warpgroups: its stage takes step s + STAGES - 1
            gl.thread_barrier()
            _issue_load(s + STAGES - 1, n_steps, a_desc, w_desc, a_bufs, w_bufs, ready, NUM_PROGS, NUM_N,
                        BM, BN, BK, KSTEPS, STAGES)
        acc = warpgroup_mma_wait(num_outstanding=0, deps=(acc,))
        mbarrier.wait(acc_empty.index(0), (i & 1) ^ 1)  # the epilogue is through the previous tile
        c_smem.store(acc.to(gl.bfloat16))
        gl.thread_barrier()  # both warpgroups' rows are in c_smem
        mbarrier.arrive(acc_ready.index(0), count=1)


@gluon.jit
def _epilogue(a_desc, w_desc, a_bufs, w_bufs, c_smem, ready, acc_ready, acc_empty, E, NUM_PROGS,
              out_ptr, bias_ptr, ps_ptr, pd_ptr, src_ptr, dst_ptr, stage_s, stage_d,
              BM: gl.constexpr, BN: gl.constexpr, BK: gl.constexpr, K: gl.constexpr, N: gl.constexpr,
              STAGES: gl.constexpr, SUB_M: gl.constexpr, GATHER: gl.constexpr, EPI_WARPS: gl.constexpr):
    """One warpgroup: ``out = c (+ b1 + p_src[src] + p_dst[dst])`` for each tile, SUB_M rows at a time."""
    NUM_N: gl.constexpr = N // BN
    # each warp a row of 256 columns, 8 contiguous bf16 (16 bytes) per thread
    layout: gl.constexpr = gl.BlockedLayout(size_per_thread=[1, 8], threads_per_warp=[1, 32],
                                            warps_per_cta=[EPI_WARPS, 1], order=[1, 0])
    rows_layout: gl.constexpr = gl.SliceLayout(1, layout)
    cols_layout: gl.constexpr = gl.SliceLayout(0, layout)
    for i in range(_my_tiles(E, NUM_PROGS, NUM_N, BM)):
        off_m, off_n = _tile(i, NUM_PROGS, NUM_N, BM, BN)
        cols = off_n + gl.arange(0, BN, layout=cols_layout)
        if GATHER:
            bias = gl.load(bias_ptr + cols).to(gl.float32)
        mbarrier.wait(acc_ready.index(0), i & 1)
        for j in gl.static_range(BM // SUB_M):
            rows = off_m + j * SUB_M + gl.arange(0, SUB_M, layout=rows_layout)
            live = rows < E
            rows_c = gl.minimum(rows, E - 1).to(gl.int64)
            x = c_smem.slice(j * SUB_M, SUB_M).load(layout).to(gl.float32)
            if GATHER:
                s_idx = gl.load(src_ptr + rows_c).to(gl.int64)
                d_idx = gl.load(dst_ptr + rows_c).to(gl.int64)
                x += bias[None, :]
                x += gl.load(ps_ptr + s_idx[:, None] * N + cols[None, :]).to(gl.float32)
                x += gl.load(pd_ptr + d_idx[:, None] * N + cols[None, :]).to(gl.float32)
            gl.store(out_ptr + rows_c[:, None] * N + cols[None, :], x.to(gl.bfloat16), mask=live[:, None])
        gl.thread_barrier()  # every warp is through c_smem
        mbarrier.arrive(acc_empty.index(0), count=1)


@gluon.jit
def _chunk(i, jj: gl.constexpr, E, NUM_PROGS, NUM_N: gl.constexpr, BM: gl.constexpr, BN: gl.constexpr,
           SUB_M: gl.constexpr, rows_layout: gl.constexpr, cols_layout: gl.constexpr):
    """Rows (clamped to E - 1, int64) and columns of row slice ``jj`` of this program's tile ``i``."""
    off_m, off_n = _tile(i, NUM_PROGS, NUM_N, BM, BN)
    rows = off_m + jj * SUB_M + gl.arange(0, SUB_M, layout=rows_layout)
    return gl.minimum(rows, E - 1).to(gl.int64), off_n + gl.arange(0, BN, layout=cols_layout)


@gluon.jit
def _epilogue_pipelined(a_desc, w_desc, a_bufs, w_bufs, c_smem, ready, acc_ready, acc_empty, E, NUM_PROGS,
                        out_ptr, bias_ptr, ps_ptr, pd_ptr, src_ptr, dst_ptr, stage_s, stage_d,
                        BM: gl.constexpr, BN: gl.constexpr, BK: gl.constexpr, K: gl.constexpr, N: gl.constexpr,
                        STAGES: gl.constexpr, SUB_M: gl.constexpr, GATHER: gl.constexpr, EPI_WARPS: gl.constexpr):
    """As :func:`_epilogue` with ``GATHER``, software-pipelined over row slices (across tiles): the gathered
    rows of the next slice and the edge indices of the one after are in flight while a slice is summed and
    stored, and the first slice's gathers of a tile are issued before its accumulator is waited for."""
    NUM_N: gl.constexpr = N // BN
    NCH: gl.constexpr = BM // SUB_M
    layout: gl.constexpr = gl.BlockedLayout(size_per_thread=[1, 8], threads_per_warp=[1, 32],
                                            warps_per_cta=[EPI_WARPS, 1], order=[1, 0])
    rl: gl.constexpr = gl.SliceLayout(1, layout)
    cl: gl.constexpr = gl.SliceLayout(0, layout)
    r0, c0 = _chunk(0, 0, E, NUM_PROGS, NUM_N, BM, BN, SUB_M, rl, cl)
    s_i = gl.load(src_ptr + r0).to(gl.int64)
    d_i = gl.load(dst_ptr + r0).to(gl.int64)
    ps_cur = gl.load(ps_ptr + s_i[:, None] * N + c0[None, :])
    pd_cur = gl.load(pd_ptr + d_i[:, None] * N + c0[None, :])
    r1, _c1 = _chunk(0, 1, E, NUM_PROGS, NUM_N, BM, BN, SUB_M, rl, cl)
    s_i = gl.load(src_ptr + r1).to(gl.int64)  # indices of the next slice
    d_i = gl.load(dst_ptr + r1).to(gl.int64)
    for i in range(_my_tiles(E, NUM_PROGS, NUM_N, BM)):
        off_m, off_n = _tile(i, NUM_PROGS, NUM_N, BM, BN)
        cols = off_n + gl.arange(0, BN, layout=cl)
        bias = gl.load(bias_ptr + cols).to(gl.float32)
        for j in gl.static_range(NCH):
            # the next slice's gathers (its indices arrived during this one's predecessor)
            if j + 1 < NCH:
                _rn, cn = _chunk(i, j + 1, E, NUM_PROGS, NUM_N, BM, BN, SUB_M, rl, cl)
            else:
                _rn, cn = _chunk(i + 1, 0, E, NUM_PROGS, NUM_N, BM, BN, SUB_M, rl, cl)
            ps_next = gl.load(ps_ptr + s_i[:, None] * N + cn[None, :])
            pd_next = gl.load(pd_ptr + d_i[:, None] * N + cn[None, :])
            # the indices of the slice after it
            if j + 2 < NCH:
                rnn, _cnn = _chunk(i, j + 2, E, NUM_PROGS, NUM_N, BM, BN, SUB_M, rl, cl)
            else:
                rnn, _cnn = _chunk(i + 1, j + 2 - NCH, E, NUM_PROGS, NUM_N, BM, BN, SUB_M, rl, cl)
            s_i = gl.load(src_ptr + rnn).to(gl.int64)
            d_i = gl.load(dst_ptr + rnn).to(gl.int64)
            if j == 0:
                mbarrier.wait(acc_ready.index(0), i & 1)
            rows = off_m + j * SUB_M + gl.arange(0, SUB_M, layout=rl)
            x = c_smem.slice(j * SUB_M, SUB_M).load(layout).to(gl.float32) + bias[None, :]
            x += ps_cur.to(gl.float32) + pd_cur.to(gl.float32)
            gl.store(out_ptr + rows.to(gl.int64)[:, None] * N + cols[None, :], x.to(gl.bfloat16),
                     mask=(rows < E)[:, None])
            ps_cur = ps_next
            pd_cur = pd_next
        gl.thread_barrier()  # every warp is through c_smem
        mbarrier.arrive(acc_empty.index(0), count=1)


@gluon.jit
def _slice_rows(q, E, NUM_PROGS, NUM_N: gl.constexpr, NCH: gl.constexpr, BM: gl.constexpr, BN: gl.constexpr,
                SUB_M: gl.constexpr, rows_layout: gl.constexpr):
    """Rows (clamped to E - 1, int64) of this program's slice ``q`` (tile ``q // NCH``, row slice ``q % NCH``)."""
    off_m, _off_n = _tile(q // NCH, NUM_PROGS, NUM_N, BM, BN)
    rows = off_m + (q % NCH) * SUB_M + gl.arange(0, SUB_M, layout=rows_layout)
    return gl.minimum(rows, E - 1).to(gl.int64)


@gluon.jit
def _issue_gathers_ptrs(q, s_i, d_i, ps_ptr, pd_ptr, stage_s, stage_d, NUM_PROGS, NUM_N: gl.constexpr,
                        NCH: gl.constexpr, BM: gl.constexpr, BN: gl.constexpr, N: gl.constexpr, NBUF: gl.constexpr,
                        layout: gl.constexpr):
    """cp.async of the gathered rows ``p_src[s_i]``, ``p_dst[d_i]`` of slice ``q`` into stage buffer ``q % NBUF``."""
    _off_m, off_n = _tile(q // NCH, NUM_PROGS, NUM_N, BM, BN)
    cols = off_n + gl.arange(0, BN, layout=gl.SliceLayout(0, layout))
    buf = q % NBUF
    async_copy.async_copy_global_to_shared(stage_s.index(buf), ps_ptr + s_i[:, None] * N + cols[None, :])
    async_copy.async_copy_global_to_shared(stage_d.index(buf), pd_ptr + d_i[:, None] * N + cols[None, :])
    async_copy.commit_group()


@gluon.jit
def _epilogue_async(a_desc, w_desc, a_bufs, w_bufs, c_smem, ready, acc_ready, acc_empty, E, NUM_PROGS,
                    out_ptr, bias_ptr, ps_ptr, pd_ptr, src_ptr, dst_ptr, stage_s, stage_d,
                    BM: gl.constexpr, BN: gl.constexpr, BK: gl.constexpr, K: gl.constexpr, N: gl.constexpr,
                    STAGES: gl.constexpr, SUB_M: gl.constexpr, GATHER: gl.constexpr, EPI_WARPS: gl.constexpr):
    """As :func:`_epilogue` with ``GATHER``, the gathered rows staged in shared memory by ``cp.async``.

    Slices are numbered across this program's tiles (``q = tile * NCH + slice``). While slice ``q`` is summed
    and stored, the gathers of slices ``q + 1 .. q + NBUF - 1`` are in flight in shared memory (no registers
    held for them) and the indices of slice ``q + NBUF - 1`` are loaded (used one iteration later). Each
    thread reads back exactly the elements it copied (same layout), so no barrier is needed between them.
    """
    NUM_N: gl.constexpr = N // BN
    NCH: gl.constexpr = BM // SUB_M
    NBUF: gl.constexpr = stage_s.shape[0]
    layout: gl.constexpr = gl.BlockedLayout(size_per_thread=[1, 8], threads_per_warp=[1, 32],
                                            warps_per_cta=[EPI_WARPS, 1], order=[1, 0])
    rl: gl.constexpr = gl.SliceLayout(1, layout)
    cl: gl.constexpr = gl.SliceLayout(0, layout)
    n_tiles = _my_tiles(E, NUM_PROGS, NUM_N, BM)
    for q0 in gl.static_range(NBUF - 1):  # the first NBUF - 1 slices in flight
        r0 = _slice_rows(q0, E, NUM_PROGS, NUM_N, NCH, BM, BN, SUB_M, rl)
        _issue_gathers_ptrs(q0, gl.load(src_ptr + r0).to(gl.int64), gl.load(dst_ptr + r0).to(gl.int64), ps_ptr,
                            pd_ptr, stage_s, stage_d, NUM_PROGS, NUM_N, NCH, BM, BN, N, NBUF, layout)
    rn = _slice_rows(NBUF - 1, E, NUM_PROGS, NUM_N, NCH, BM, BN, SUB_M, rl)
    s_i = gl.load(src_ptr + rn).to(gl.int64)  # indices of slice NBUF - 1
    d_i = gl.load(dst_ptr + rn).to(gl.int64)
    for i in range(n_tiles):
        off_m, off_n = _tile(i, NUM_PROGS, NUM_N, BM, BN)
        cols = off_n + gl.arange(0, BN, layout=cl)
        bias = gl.load(bias_ptr + cols).to(gl.float32)
        for j in gl.static_range(NCH):
            q = i * NCH + j
            _issue_gathers_ptrs(q + NBUF - 1, s_i, d_i, ps_ptr, pd_ptr, stage_s, stage_d, NUM_PROGS, NUM_N, NCH,
                                BM, BN, N, NBUF, layout)
            rn = _slice_rows(q + NBUF, E, NUM_PROGS, NUM_N, NCH, BM, BN, SUB_M, rl)  # used next iteration
            s_i = gl.load(src_ptr + rn).to(gl.int64)
            d_i = gl.load(dst_ptr + rn).to(gl.int64)
            async_copy.wait_group(NBUF - 1)  # slice q's copies have landed
            if j == 0:
                mbarrier.wait(acc_ready.index(0), i & 1)
            rows = off_m + j * SUB_M + gl.arange(0, SUB_M, layout=rl)
            buf = q % NBUF
            x = c_smem.slice(j * SUB_M, SUB_M).load(layout).to(gl.float32) + bias[None, :]
            x += stage_s.index(buf).load(layout).to(gl.float32) + stage_d.index(buf).load(layout).to(gl.float32)
            gl.store(out_ptr + rows.to(gl.int64)[:, None] * N + cols[None, :], x.to(gl.bfloat16),
                     mask=(rows < E)[:, None])
        gl.thread_barrier()  # every warp is through c_smem
        mbarrier.arrive(acc_empty.index(0), count=1)
    async_copy.wait_group(0)  # the copies past the last slice (clamped rows) before the buffers go away


@gluon.jit
def _epilogue_variant(a_desc, w_desc, a_bufs, w_bufs, c_smem, ready, acc_ready, acc_empty, E, NUM_PROGS,
                      out_ptr, bias_ptr, ps_ptr, pd_ptr, src_ptr, dst_ptr, stage_s, stage_d,
                      BM: gl.constexpr, BN: gl.constexpr, BK: gl.constexpr, K: gl.constexpr, N: gl.constexpr,
                      STAGES: gl.constexpr, SUB_M: gl.constexpr, GATHER: gl.constexpr, PIPE: gl.constexpr,
                      EPI_WARPS: gl.constexpr):
    """The epilogue partition: :func:`_epilogue` (PIPE 0), :func:`_epilogue_pipelined` (PIPE 1) or
    :func:`_epilogue_async` (PIPE 2).

    (Gathering two slices ahead was slower: 4.06-5.17 ms against 3.84 in one run, commit 145a6c7.)
    """
    if PIPE == 2:
        epilogue: gl.constexpr = _epilogue_async
    elif PIPE == 1:
        epilogue: gl.constexpr = _epilogue_pipelined
    else:
        epilogue: gl.constexpr = _epilogue
    epilogue(a_desc, w_desc, a_bufs, w_bufs, c_smem, ready, acc_ready, acc_empty, E, NUM_PROGS, out_ptr, bias_ptr,
             ps_ptr, pd_ptr, src_ptr, dst_ptr, stage_s, stage_d, BM, BN, BK, K, N, STAGES, SUB_M, GATHER, EPI_WARPS)


@gluon.jit
def _epilogue_partition_kernel(a_desc, w_desc, E, NUM_PROGS, out_ptr, bias_ptr, ps_ptr, pd_ptr, src_ptr, dst_ptr,
                               BM: gl.constexpr, BN: gl.constexpr, BK: gl.constexpr, K: gl.constexpr,
                               N: gl.constexpr, STAGES: gl.constexpr, SUB_M: gl.constexpr, GATHER: gl.constexpr,
                               EPI_REGS: gl.constexpr, PIPE: gl.constexpr, EPI_WARPS: gl.constexpr,
                               NBUF: gl.constexpr, STAGE_M: gl.constexpr, MMA_N: gl.constexpr, num_warps: gl.constexpr):
    a_bufs = gl.allocate_shared_memory(a_desc.dtype, [STAGES, BM, BK], a_desc.layout)
    w_bufs = gl.allocate_shared_memory(w_desc.dtype, [STAGES, BK, BN], w_desc.layout)
    c_layout: gl.constexpr = gl.NVMMASharedLayout.get_default_for([BM, BN], gl.bfloat16)
    c_smem = gl.allocate_shared_memory(gl.bfloat16, [BM, BN], c_layout)
    stage_layout: gl.constexpr = gl.SwizzledSharedLayout(1, 1, 1, order=[1, 0])  # cp.async staging (PIPE 2)
    stage_s = gl.allocate_shared_memory(gl.bfloat16, [NBUF, STAGE_M, BN], stage_layout)
    stage_d = gl.allocate_shared_memory(gl.bfloat16, [NBUF, STAGE_M, BN], stage_layout)
    ready = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    acc_ready = gl.allocate_shared_memory(gl.int64, [1, 1], mbarrier.MBarrierLayout())
    acc_empty = gl.allocate_shared_memory(gl.int64, [1, 1], mbarrier.MBarrierLayout())
    for j in gl.static_range(STAGES):
        mbarrier.init(ready.index(j), count=1)
    mbarrier.init(acc_ready.index(0), count=1)
    mbarrier.init(acc_empty.index(0), count=1)
    gl.warp_specialize([
        (_mma, (a_desc, w_desc, a_bufs, w_bufs, c_smem, ready, acc_ready, acc_empty, E, NUM_PROGS,
                out_ptr, bias_ptr, ps_ptr, pd_ptr, src_ptr, dst_ptr, BM, BN, BK, K, N, STAGES, SUB_M, GATHER, MMA_N)),
        (_epilogue_variant, (a_desc, w_desc, a_bufs, w_bufs, c_smem, ready, acc_ready, acc_empty, E, NUM_PROGS,
                             out_ptr, bias_ptr, ps_ptr, pd_ptr, src_ptr, dst_ptr, stage_s, stage_d, BM, BN, BK, K, N,
                             STAGES, SUB_M,
                             GATHER, PIPE, EPI_WARPS)),
    ], [EPI_WARPS], [EPI_REGS])  # the MMA partition (default, 8 warps) gets the registers left


def linear_epilogue_partition(e, w_kn, out, bias=None, p_src=None, p_dst=None, src=None, dst=None, *, bk=64,
                              stages=3, sub_m=8, epi_regs=96, maxnreg=168, programs=None, pipe=0,
                              epi_warps=4, nbuf=4, mma_n=256):
    """``out = e @ w_kn (+ bias + p_src[src] + p_dst[dst])``; e [E, K], w_kn [K, N], out [E, N], bf16; N % 256 == 0."""
    n_e, k = e.shape
    n = w_kn.shape[1]
    bm, bn = 128, 256
    a_layout = gl.NVMMASharedLayout.get_default_for([bm, bk], gl.bfloat16)
    w_layout = gl.NVMMASharedLayout.get_default_for([bk, bn], gl.bfloat16)
    a_desc = TensorDescriptor.from_tensor(e, [bm, bk], a_layout)
    w_desc = TensorDescriptor.from_tensor(w_kn, [bk, bn], w_layout)
    tiles = triton.cdiv(n_e, bm) * (n // bn)
    progs = min(programs or torch.cuda.get_device_properties(e.device).multi_processor_count, tiles)
    gather = p_src is not None
    d = out  # placeholder pointer where there is no gather
    _epilogue_partition_kernel[(progs,)](
        a_desc, w_desc, n_e, progs, out, bias if gather else d, p_src if gather else d, p_dst if gather else d,
        src if gather else d, dst if gather else d,
        BM=bm, BN=bn, BK=bk, K=k, N=n, STAGES=stages, SUB_M=sub_m, GATHER=gather, EPI_REGS=epi_regs,
        PIPE=pipe if gather else 0, EPI_WARPS=epi_warps,
        NBUF=nbuf if gather and pipe == 2 else 1, STAGE_M=sub_m if gather and pipe == 2 else 1, MMA_N=mma_n, num_warps=8,
        **({} if maxnreg is None else {"maxnreg": maxnreg}),
    )
    return out


VARIANTS = [  # keyword arguments of linear_epilogue_partition; pipe 1: gathers one row slice ahead in registers,
    # pipe 2: nbuf - 1 slices ahead in shared memory (cp.async; slower in the 7c9997c run, 3.99-5.40 ms).
    # mma_n: columns per wgmma instruction. 256 needs 154 registers in one instruction, more than the 128 a
    # 16-warp kernel starts with (ptxas then fails); with 128 or 64 the products keep their 168 registers through
    # setmaxnreg and the epilogue can have 8 warps (epi_warps=8, maxnreg=None: the launch gets 128 a thread)
    dict(stages=3, sub_m=16, epi_regs=112, pipe=1),  # best in the 98ad067, 145a6c7 and 7c9997c runs
    dict(stages=3, sub_m=16, epi_regs=112, pipe=1, mma_n=128),
    dict(stages=3, sub_m=16, epi_regs=88, pipe=1, mma_n=128, epi_warps=8, maxnreg=None),
    dict(stages=3, sub_m=16, epi_regs=96, pipe=1, mma_n=128, epi_warps=8, maxnreg=None),  # products at 160
    dict(stages=3, sub_m=32, epi_regs=88, pipe=0, mma_n=128, epi_warps=8, maxnreg=None),
    dict(stages=3, sub_m=8, epi_regs=88, pipe=1, mma_n=128, epi_warps=8, maxnreg=None),
    dict(stages=3, sub_m=16, epi_regs=88, pipe=1, mma_n=64, epi_warps=8, maxnreg=None),
]


def main() -> None:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from kernel_sweep_edge_linear import gather_gemm_spike

    gather_gemm_spike(__doc__.splitlines()[0], "epilogue-partition", linear_epilogue_partition, VARIANTS)


if __name__ == "__main__":
    main()
