"""Persistent, TMA-fed variant of the GEMM-fused edge-MLP kernel (:mod:`.edge_linear`).

Same three modes and the same results as :mod:`.edge_linear` (whose docstring
gives the equations), plus ``MODE_PLAIN`` (the bare product, to measure what
the epilogues cost). What changes is how the GEMM is fed, following the
persistent matmul of the Triton tutorials (``09-persistent-matmul``):

* operand tiles arrive through tensor (TMA) descriptors, asynchronously and
  without address arithmetic or masks; the descriptors also clip the stores
  of the last, partial edge block;
* a fixed grid of about one program per SM walks the ``[edges / BM] x [N /
  BN]`` tiles (``N`` fastest, so programs running together share an edge
  block in L2), and the tile loop is flattened into the K loop so the next
  tile's loads are issued while the current tile's epilogue runs;
* the epilogue works on ``BN / SUB`` wide column slices of the accumulator
  (``SUB = 2`` halves its registers; Triton's "epilogue subtiling") and
  stores them through TMA or straight from registers;
* one or two programs per SM (two let one program's epilogue overlap the
  other's matrix products, where shared memory allows);
* optionally (``WS``, the ninth configuration entry) the tile loop is
  warp-specialised by the compiler (``tl.range(..., warp_specialize=True)``,
  Triton >= 3.5 on Hopper): producer warps issue the TMA loads of later
  tiles while consumer warps run the products and the epilogue. That loop
  cannot also be flattened, so the tile and K loops stay nested.

TMA needs 16-byte aligned rows: ``K`` and ``N`` multiples of 8 (bf16) and
``N`` a multiple of the tile width; :func:`supported` says when the
launcher in :mod:`.edge_linear` may use this kernel instead of the
pointer-based one.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from triton.tools.tensor_descriptor import TensorDescriptor

from weathergnn.ops.triton import cdiv
from weathergnn.ops.triton.activations import silu

MODE_GATHER_SILU, MODE_DSILU, MODE_RESIDUAL, MODE_PLAIN = 0, 1, 2, 3


@triton.jit
def _put(desc, ptr, b, off_m, off_n, val, E, N: tl.constexpr, BM: tl.constexpr, BNS: tl.constexpr,
         TMA_STORE: tl.constexpr):
    """Store a [BM, BNS] tile at rows ``off_m..`` of batch entry ``b``, columns ``off_n..`` of a [B, E, N] output."""
    if TMA_STORE:  # through shared memory; the descriptor clips rows past E
        desc.store([b, off_m, off_n], val.to(desc.dtype).reshape(1, BM, BNS))
    else:  # straight from registers, rows past E masked
        rows = off_m + tl.arange(0, BM)
        cols = off_n + tl.arange(0, BNS)
        tl.store(ptr + (b.to(tl.int64) * E + rows)[:, None] * N + cols[None, :], val.to(ptr.dtype.element_ty),
                 mask=(rows < E)[:, None])


@triton.jit
def _finish(acc, b0, off_m, off_n, o_desc, o2_desc, t_desc, out_ptr, out2_ptr, bias_ptr, t1_ptr, t2_ptr, src_ptr,
            dst_ptr, E, N1, N2, NB, N: tl.constexpr, MODE: tl.constexpr, HAS_BIAS: tl.constexpr,
            HAS_T1: tl.constexpr, HAS_T2: tl.constexpr, WRITE2: tl.constexpr, BM: tl.constexpr, BNS: tl.constexpr,
            TMA_STORE: tl.constexpr):
    """The MODE's epilogue on one [BM, BNS] slice of the accumulator (float32)."""
    cols = off_n + tl.arange(0, BNS)
    rows_e = tl.minimum(off_m + tl.arange(0, BM), E - 1).to(tl.int64)  # in-bounds rows for gathers
    if MODE == 0:  # pre = acc + b1 + p_src[b, src] + p_dst[b, dst]; a = silu(pre), for NB batch entries
        if HAS_BIAS:
            acc += tl.load(bias_ptr + cols).to(tl.float32)[None, :]
        s = tl.load(src_ptr + rows_e)
        d = tl.load(dst_ptr + rows_e)
        for bb in range(NB):
            b = b0 + bb
            z = acc + tl.load(t1_ptr + (b * N1 + s)[:, None] * N + cols[None, :]).to(tl.float32)
            z += tl.load(t2_ptr + (b * N2 + d)[:, None] * N + cols[None, :]).to(tl.float32)
            _put(o_desc, out_ptr, b, off_m, off_n, z, E, N, BM, BNS, TMA_STORE)
            if WRITE2:
                _put(o2_desc, out2_ptr, b, off_m, off_n, z * tl.sigmoid(z), E, N, BM, BNS, TMA_STORE)
    elif MODE == 1:  # dL/dpre = acc * silu'(pre); a = silu(pre) with WRITE2
        z = t_desc.load([b0, off_m, off_n]).reshape(BM, BNS).to(tl.float32)
        sig = tl.sigmoid(z)
        _put(o_desc, out_ptr, b0, off_m, off_n, acc * sig * (1.0 + z * (1.0 - sig)), E, N, BM, BNS, TMA_STORE)
        if WRITE2:
            _put(o2_desc, out2_ptr, b0, off_m, off_n, z * sig, E, N, BM, BNS, TMA_STORE)
    elif MODE == 2:  # dL/de = acc + sum over NB batch entries of dL/de'[b, e] + dL/dagg[b, dst[e]]
        if HAS_T2:
            d = tl.load(dst_ptr + rows_e)
        for bb in range(NB):
            b = b0 + bb
            if HAS_T1:
                acc += t_desc.load([b, off_m, off_n]).reshape(BM, BNS).to(tl.float32)
            if HAS_T2:
                acc += tl.load(t2_ptr + (b * N2 + d)[:, None] * N + cols[None, :]).to(tl.float32)
        _put(o_desc, out_ptr, b0, off_m, off_n, acc, E, N, BM, BNS, TMA_STORE)
    else:  # the product (+ bias)
        if HAS_BIAS:
            acc += tl.load(bias_ptr + cols).to(tl.float32)[None, :]
        _put(o_desc, out_ptr, b0, off_m, off_n, acc, E, N, BM, BNS, TMA_STORE)


@triton.jit
def _edge_linear_tma_kernel(
    a_desc, w_desc, o_desc, o2_desc, t_desc, out_ptr, out2_ptr, bias_ptr, t1_ptr, t2_ptr, src_ptr, dst_ptr,
    E, N1, N2, NB, GB, NUM_PROGS,
    N: tl.constexpr, K: tl.constexpr, MODE: tl.constexpr, A_BATCHED: tl.constexpr, HAS_BIAS: tl.constexpr,
    HAS_T1: tl.constexpr, HAS_T2: tl.constexpr, WRITE2: tl.constexpr, A_SILU: tl.constexpr, IEEE: tl.constexpr,
    BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr, SUB: tl.constexpr, TMA_STORE: tl.constexpr,
    WS: tl.constexpr,
):
    """Programs walk tiles ``start, start + NUM_PROGS, ...`` of ``GB`` batch entries x edge blocks x N blocks.

    a_desc: [B_a, E, K] blocks [1, BM, BK] (B_a = 1 for static edges);
    w_desc: [K, N] blocks [BK, BN]; o_desc / o2_desc / t_desc: [B, E, N]
    blocks [1, BM, BN // SUB]. Pointer tables t1 / t2 are row-major ``N``
    wide with ``N1`` / ``N2`` rows per batch entry.
    """
    start = tl.program_id(0)
    num_m = tl.cdiv(E, BM)
    num_n: tl.constexpr = N // BN
    per_b = num_m * num_n
    for tile in tl.range(start, per_b * GB, NUM_PROGS, flatten=not WS, warp_specialize=WS):
        b0 = tile // per_b
        t = tile % per_b
        off_m = (t // num_n) * BM
        off_n = (t % num_n) * BN
        ab = b0 if A_BATCHED else 0
        acc = tl.zeros((BM, BN), dtype=tl.float32)
        for k0 in range(0, K, BK):
            a = a_desc.load([ab, off_m, k0]).reshape(BM, BK)
            if A_SILU:  # the product's input is silu(A), applied in registers (TMA's zero fill stays 0)
                a = silu(a, IEEE).to(a.dtype)
            w = w_desc.load([k0, off_n])
            if IEEE:  # float32 inputs; and under the interpreter, whose bf16 dot is wrong (Triton 3.9)
                acc = tl.dot(a.to(tl.float32), w.to(tl.float32), acc, input_precision="ieee")
            else:
                acc = tl.dot(a, w, acc)
        if SUB == 2:
            acc0, acc1 = tl.split(tl.permute(tl.reshape(acc, (BM, 2, BN // 2)), (0, 2, 1)))
            _finish(acc0, b0, off_m, off_n, o_desc, o2_desc, t_desc, out_ptr, out2_ptr, bias_ptr, t1_ptr, t2_ptr,
                    src_ptr, dst_ptr, E, N1, N2, NB, N, MODE, HAS_BIAS, HAS_T1, HAS_T2, WRITE2, BM, BN // 2, TMA_STORE)
            _finish(acc1, b0, off_m, off_n + BN // 2, o_desc, o2_desc, t_desc, out_ptr, out2_ptr, bias_ptr, t1_ptr,
                    t2_ptr, src_ptr, dst_ptr, E, N1, N2, NB, N, MODE, HAS_BIAS, HAS_T1, HAS_T2, WRITE2, BM, BN // 2, TMA_STORE)
        else:
            _finish(acc, b0, off_m, off_n, o_desc, o2_desc, t_desc, out_ptr, out2_ptr, bias_ptr, t1_ptr, t2_ptr,
                    src_ptr, dst_ptr, E, N1, N2, NB, N, MODE, HAS_BIAS, HAS_T1, HAS_T2, WRITE2, BM, BN, TMA_STORE)


def supported(k: int, n: int, bn: int, dtype: torch.dtype) -> bool:
    """Whether TMA can feed a ``[*, K] x [K, N]`` product in ``dtype`` with ``BN``-wide tiles."""
    per16 = 16 // dtype.itemsize
    return k % per16 == 0 and n % per16 == 0 and n % bn == 0


def _as3d(t: torch.Tensor) -> torch.Tensor:
    return t if t.dim() == 3 else t.unsqueeze(0)


def launch(mode, a, w_kn, bias, t1, t2, src, dst, out, out2, n_edges, n1, n2, nb, grid_b, a_batched,
           config: tuple[int, ...], num_sms: int, ieee: bool,
           a_silu: bool = False) -> None:
    """Run one mode (arguments as :func:`weathergnn.ops.triton.edge_linear._launch`).

    ``w_kn``: the contiguous [K, N] operand. ``t1`` is a [B, E, N] tile operand
    (pre-activation, dL/de') for MODE_DSILU / MODE_RESIDUAL and a gathered table
    otherwise. ``config``: (BM, BN, BK, warps, stages, SUB, programs per SM, TMA
    stores (1) or stores from registers (0)[, warp-specialised tile loop (1) or
    flattened loops (0, the default)]); ``num_sms``: the device's SMs.
    """
    bm, bn, bk, warps, stages, sub, per_sm, tma_store = config[:8]
    ws = bool(config[8]) if len(config) > 8 else False
    k, n = w_kn.shape
    bns = bn // sub
    a_desc = TensorDescriptor.from_tensor(_as3d(a), [1, bm, bk])
    w_desc = TensorDescriptor.from_tensor(w_kn, [bk, bn])
    o_desc = TensorDescriptor.from_tensor(_as3d(out), [1, bm, bns])
    o2_desc = TensorDescriptor.from_tensor(_as3d(out2), [1, bm, bns]) if out2 is not None else o_desc
    tile_operand = mode in (MODE_DSILU, MODE_RESIDUAL) and t1 is not None
    t_desc = TensorDescriptor.from_tensor(_as3d(t1), [1, bm, bns]) if tile_operand else o_desc
    dummy = out
    tiles = cdiv(n_edges, bm) * (n // bn) * grid_b
    progs = max(1, min(num_sms * per_sm, tiles))
    _edge_linear_tma_kernel[(progs,)](
        a_desc, w_desc, o_desc, o2_desc, t_desc, out, out2 if out2 is not None else dummy,
        bias if bias is not None else dummy,
        t1 if t1 is not None else dummy, t2 if t2 is not None else dummy,
        src if src is not None else dummy, dst if dst is not None else dummy,
        n_edges, n1, n2, nb, grid_b, progs,
        N=n, K=k, MODE=mode, A_BATCHED=a_batched, HAS_BIAS=bias is not None, HAS_T1=t1 is not None,
        HAS_T2=t2 is not None, WRITE2=out2 is not None, A_SILU=a_silu, IEEE=ieee, BM=bm, BN=bn, BK=bk, SUB=sub, TMA_STORE=bool(tma_store),
        WS=ws,
        num_warps=warps, num_stages=stages,
    )
