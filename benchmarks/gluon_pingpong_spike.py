"""Spike: a warp-specialised "ping-pong" Hopper GEMM in Gluon, with the edge MLP's gather epilogue.

Why: the Triton edge-MLP kernels (:mod:`weathergnn.ops.triton.edge_linear_tma`)
run the bare ``[E, 512] x [512, 512]`` product at cuBLAS speed, but with their
epilogues (gathers, SiLU, residual sums) they are 1.6-1.7x slower, because the
same warps do the products and then the epilogue (``tl.range(...,
warp_specialize=True)`` did not help: ``kernel_sweeps_h200_2026-11-21/
warp_specialize_sweep_fa31242_partial.json``). CUTLASS's answer on Hopper is the
"ping-pong" schedule: one producer warp issues the TMA loads into a ring of
shared-memory stages, and two consumer warpgroups take alternate output tiles,
so one consumer's epilogue runs while the other's matrix products do.

This script writes that schedule with Triton's Gluon dialect (explicit
layouts, ``gl.warp_specialize``, ``warpgroup_mma``, mbarriers, TMA) for

    pre[e] = e_lat[e] @ W1^T + b1 + p_src[src[e]] + p_dst[dst[e]]     (the forward's first edge-MLP layer)

and for the bare product, and times them in one run against the Triton kernel
in use (``edge_linear.linear_gather_add``) and cuBLAS, on mesh2grid-like
edges (3,114,720 edges, 40,962 senders, 1,038,240 receivers, width 512,
bf16). Each variant's result is checked against a float32 reference. A
variant that does not compile is recorded with its error. GPU only (Gluon
has no interpreter).

    python benchmarks/gluon_pingpong_spike.py --json $OUT/gluon_pingpong_spike.json
"""

from __future__ import annotations

import torch
import triton
from kernel_sweep_edge_linear import gather_gemm_spike
from triton.experimental import gluon
from triton.experimental.gluon import language as gl
from triton.experimental.gluon.language.nvidia.hopper import (
    mbarrier,
    tma,
    warpgroup_mma,
    warpgroup_mma_wait,
)
from triton.experimental.gluon.nvidia.hopper import TensorDescriptor


# TMA load into shared memory: ``async_copy_global_to_shared`` up to Triton 3.6, ``async_load`` after it
tma_load = tma.async_load if hasattr(tma, "async_load") else tma.async_copy_global_to_shared


@gluon.jit
def _my_tiles(E, NUM_PROGS, BM: gl.constexpr, BN: gl.constexpr, N: gl.constexpr, RES_W: gl.constexpr):
    """How many output tiles this program computes."""
    pid = gl.program_id(0)
    num_n: gl.constexpr = N // BN
    if RES_W:  # programs pid = q * num_n + n own column block n and row blocks q, q + Q, ...
        q = pid // num_n
        return gl.cdiv(gl.cdiv(E, BM) - q, NUM_PROGS // num_n)
    else:
        return gl.cdiv(gl.cdiv(E, BM) * num_n - pid, NUM_PROGS)


@gluon.jit
def _tile_offsets(i, NUM_PROGS, BM: gl.constexpr, BN: gl.constexpr, N: gl.constexpr, RES_W: gl.constexpr):
    """(row, column) offsets of this program's i-th tile."""
    pid = gl.program_id(0)
    num_n: gl.constexpr = N // BN
    if RES_W:
        return (pid // num_n + i * (NUM_PROGS // num_n)) * BM, (pid % num_n) * BN
    else:
        t = pid + i * NUM_PROGS
        return (t // num_n) * BM, (t % num_n) * BN


@gluon.jit
def _loader(descs, bufs, bars, scal, ROLE: gl.constexpr, BM: gl.constexpr, BN: gl.constexpr, BK: gl.constexpr,
            K: gl.constexpr, N: gl.constexpr, STAGES: gl.constexpr, GATHER: gl.constexpr, RES_W: gl.constexpr):
    """One warp: for each of this program's tiles, the K steps' A (and W) tiles into the stage ring.

    RES_W: the program's [K, BN] column block of W is loaded once, into
    ``w_bufs`` (K / BK tiles), and stays; only A tiles stream.
    """
    a_desc, w_desc = descs
    a_bufs, w_bufs = bufs
    ready, empty, order, wbar = bars
    E, NUM_PROGS, out_ptr, bias_ptr, t1_ptr, t2_ptr, src_ptr, dst_ptr = scal
    KSTEPS: gl.constexpr = K // BK
    my_tiles = _my_tiles(E, NUM_PROGS, BM, BN, N, RES_W)
    if RES_W:
        col = (gl.program_id(0) % (N // BN)) * BN
        mbarrier.expect(wbar.index(0), KSTEPS * w_desc.block_type.nbytes)
        for kk in gl.static_range(KSTEPS):
            tma_load(w_desc, [kk * BK, col], wbar.index(0), w_bufs.index(kk))
    for i in range(my_tiles):
        off_m, off_n = _tile_offsets(i, NUM_PROGS, BM, BN, N, RES_W)
        for kk in gl.static_range(KSTEPS):
            s = i * KSTEPS + kk
            idx = s % STAGES
            phase = (s // STAGES) & 1
            mbarrier.wait(empty.index(idx), phase ^ 1)  # barriers start "phase 1 complete": the first pass waits not
            bar = ready.index(idx)
            if RES_W:
                mbarrier.expect(bar, a_desc.block_type.nbytes)
            else:
                mbarrier.expect(bar, a_desc.block_type.nbytes + w_desc.block_type.nbytes)
                tma_load(w_desc, [kk * BK, off_n], bar, w_bufs.index(idx))
            tma_load(a_desc, [off_m, kk * BK], bar, a_bufs.index(idx))


@gluon.jit
def _consumer(descs, bufs, bars, scal, ROLE: gl.constexpr, BM: gl.constexpr, BN: gl.constexpr, BK: gl.constexpr,
              K: gl.constexpr, N: gl.constexpr, STAGES: gl.constexpr, GATHER: gl.constexpr, RES_W: gl.constexpr):
    """One warpgroup: the products and the epilogue of this program's tiles ``ROLE, ROLE + 2, ...``.

    The two consumers' main loops take turns (``order`` barriers): consumer 1
    waits on the stages of its j-th tile only after consumer 0 has waited on
    all of its j-th tile's, and consumer 0 on its (j+1)-th after consumer 1 on
    its j-th. Without the turns a consumer would test the parity of a stage's
    "ready" barrier two rounds ahead and take the other tile's operands for its
    own. The epilogue of one consumer then runs while the other's products do.
    """
    a_bufs, w_bufs = bufs
    ready, empty, order, wbar = bars
    E, NUM_PROGS, out_ptr, bias_ptr, t1_ptr, t2_ptr, src_ptr, dst_ptr = scal
    KSTEPS: gl.constexpr = K // BK
    my_tiles = _my_tiles(E, NUM_PROGS, BM, BN, N, RES_W)
    if RES_W:
        mbarrier.wait(wbar.index(0), 0)
    mma_layout: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, BN, 16])
    rows_layout: gl.constexpr = gl.SliceLayout(1, mma_layout)
    cols_layout: gl.constexpr = gl.SliceLayout(0, mma_layout)
    for i in range(ROLE, my_tiles, 2):
        j = i // 2
        if ROLE == 1:
            mbarrier.wait(order.index(1), j & 1)  # consumer 0 is through the stages of its j-th tile
        else:
            mbarrier.wait(order.index(0), (j - 1) & 1, pred=j > 0)  # consumer 1 through its (j-1)-th
        off_m, off_n = _tile_offsets(i, NUM_PROGS, BM, BN, N, RES_W)
        acc = gl.zeros((BM, BN), dtype=gl.float32, layout=mma_layout)
        for kk in gl.static_range(KSTEPS):
            s = i * KSTEPS + kk
            idx = s % STAGES
            mbarrier.wait(ready.index(idx), (s // STAGES) & 1)
            w_tile = w_bufs.index(kk) if RES_W else w_bufs.index(idx)
            acc = warpgroup_mma(a_bufs.index(idx), w_tile, acc, use_acc=kk > 0, is_async=True)
            acc = warpgroup_mma_wait(num_outstanding=1, deps=(acc,))
            if kk > 0:  # the previous step's product is done: its stage may be refilled
                mbarrier.arrive(empty.index((s - 1) % STAGES), count=1)
        mbarrier.arrive(order.index(1 - ROLE), count=1)  # the other consumer's turn
        acc = warpgroup_mma_wait(num_outstanding=0, deps=(acc,))
        mbarrier.arrive(empty.index((i * KSTEPS + KSTEPS - 1) % STAGES), count=1)
        # epilogue, straight from the accumulator's registers
        rows = off_m + gl.arange(0, BM, layout=rows_layout)
        cols = off_n + gl.arange(0, BN, layout=cols_layout)
        live = rows < E
        rows_c = gl.minimum(rows, E - 1).to(gl.int64)
        if GATHER:
            acc += gl.load(bias_ptr + cols).to(gl.float32)[None, :]
            s_idx = gl.load(src_ptr + rows_c)
            d_idx = gl.load(dst_ptr + rows_c)
            acc += gl.load(t1_ptr + s_idx[:, None] * N + cols[None, :]).to(gl.float32)
            acc += gl.load(t2_ptr + d_idx[:, None] * N + cols[None, :]).to(gl.float32)
        gl.store(out_ptr + rows_c[:, None] * N + cols[None, :], acc.to(gl.bfloat16), mask=live[:, None])


@gluon.jit
def _pingpong_kernel(a_desc, w_desc, E, NUM_PROGS, out_ptr, bias_ptr, t1_ptr, t2_ptr, src_ptr, dst_ptr,
                     BM: gl.constexpr, BN: gl.constexpr, BK: gl.constexpr, K: gl.constexpr, N: gl.constexpr,
                     STAGES: gl.constexpr, GATHER: gl.constexpr, RES_W: gl.constexpr, CONSUMER_REGS: gl.constexpr,
                     LOADER_REGS: gl.constexpr, num_warps: gl.constexpr):
    a_bufs = gl.allocate_shared_memory(a_desc.dtype, [STAGES, BM, BK], a_desc.layout)
    W_TILES: gl.constexpr = K // BK if RES_W else STAGES
    w_bufs = gl.allocate_shared_memory(w_desc.dtype, [W_TILES, BK, BN], w_desc.layout)
    wbar = gl.allocate_shared_memory(gl.int64, [1, 1], mbarrier.MBarrierLayout())
    mbarrier.init(wbar.index(0), count=1)
    ready = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    empty = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    order = gl.allocate_shared_memory(gl.int64, [2, 1], mbarrier.MBarrierLayout())
    for j in gl.static_range(STAGES):
        mbarrier.init(ready.index(j), count=1)
        mbarrier.init(empty.index(j), count=1)
    for j in gl.static_range(2):
        mbarrier.init(order.index(j), count=1)
    descs = (a_desc, w_desc)
    bufs = (a_bufs, w_bufs)
    bars = (ready, empty, order, wbar)
    scal = (E, NUM_PROGS, out_ptr, bias_ptr, t1_ptr, t2_ptr, src_ptr, dst_ptr)
    gl.warp_specialize([
        (_consumer, (descs, bufs, bars, scal, 0, BM, BN, BK, K, N, STAGES, GATHER, RES_W)),
        (_consumer, (descs, bufs, bars, scal, 1, BM, BN, BK, K, N, STAGES, GATHER, RES_W)),
        (_loader, (descs, bufs, bars, scal, 2, BM, BN, BK, K, N, STAGES, GATHER, RES_W)),
    ], [4, 1], [CONSUMER_REGS, LOADER_REGS])


def pingpong(e, w_kn, out, bias=None, p_src=None, p_dst=None, src=None, dst=None, *, bm=128, bn=128, bk=64,
             stages=4, consumer_regs=232, loader_regs=40, maxnreg=168, res_w=False):
    """``out = e @ w_kn (+ bias + p_src[src] + p_dst[dst])``; e [E, K], w_kn [K, N], out [E, N], bf16."""
    n_e, k = e.shape
    n = w_kn.shape[1]
    a_layout = gl.NVMMASharedLayout.get_default_for([bm, bk], gl.bfloat16)
    w_layout = gl.NVMMASharedLayout.get_default_for([bk, bn], gl.bfloat16)
    a_desc = TensorDescriptor.from_tensor(e, [bm, bk], a_layout)
    w_desc = TensorDescriptor.from_tensor(w_kn, [bk, bn], w_layout)
    sms = torch.cuda.get_device_properties(e.device).multi_processor_count
    progs = min(sms, triton.cdiv(n_e, bm) * (n // bn))
    if res_w:  # a whole number of programs per column block
        progs = max(n // bn, progs // (n // bn) * (n // bn))
    gather = p_src is not None
    dummy = out
    launch = {"maxnreg": maxnreg} if maxnreg else {}
    _pingpong_kernel[(progs,)](
        a_desc, w_desc, n_e, progs, out, bias if gather else dummy, p_src if gather else dummy,
        p_dst if gather else dummy, src if gather else dummy, dst if gather else dummy,
        BM=bm, BN=bn, BK=bk, K=k, N=n, STAGES=stages, GATHER=gather, RES_W=res_w, CONSUMER_REGS=consumer_regs,
        LOADER_REGS=loader_regs, num_warps=4, **launch,
    )
    return out


VARIANTS = [  # keyword arguments of pingpong
    dict(bm=128, bn=128, bk=64, stages=4, res_w=True),
    dict(bm=128, bn=128, bk=64, stages=5, res_w=True),
    dict(bm=128, bn=128, bk=64, stages=4, consumer_regs=240, loader_regs=24, maxnreg=168, res_w=True),
    dict(bm=64, bn=128, bk=64, stages=6, res_w=True),
    dict(bm=128, bn=128, bk=64, stages=4),
    dict(bm=128, bn=128, bk=64, stages=5),
    dict(bm=128, bn=128, bk=64, stages=3),
    dict(bm=64, bn=256, bk=64, stages=4),
    dict(bm=128, bn=128, bk=64, stages=4, consumer_regs=240, loader_regs=24, maxnreg=168),
]


def main() -> None:
    gather_gemm_spike(__doc__.splitlines()[0], "gluon pingpong", pingpong, VARIANTS)


if __name__ == "__main__":
    main()
