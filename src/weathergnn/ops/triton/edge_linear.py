"""Edge-MLP GEMMs with their gathers and activations fused into the epilogue.

The interaction network's edge MLP (Lam et al. 2023, supplement sec. 3.3) on
``E`` edges of width ``L`` with hidden width ``H`` is two ``[E, 512] x [512,
512]`` GEMMs on the 0.25 degree graphs, and around them passes over ``[E,
H]`` tensors that only gather, add and activate. One Triton GEMM kernel
(``tl.dot``, float32 accumulation) does the matrix product of an edge block
and finishes it in registers, so the intermediate product is never written:

``MODE_GATHER_SILU`` (forward, first layer split into edge / sender / receiver parts)::

    pre[b, e] = e_lat[e] @ W1^T + b1 + p_src[b, src[e]] + p_dst[b, dst[e]]
    a[b, e]   = silu(pre[b, e])                 -> writes pre (linear_gather_add), and a (linear_gather_add_silu)

``MODE_PLAIN`` with the SiLU on load (forward, second layer; :func:`silu_linear`)::

    y[b, e] = silu(pre[b, e]) @ W2^T + b2       -> silu(pre) is formed per tile in registers, never written

``MODE_DSILU`` (backward through the second layer and the SiLU)::

    dL/dpre[b, e] = (dL/dy[b, e] @ W2) * silu'(pre[b, e])     -> writes dL/dpre

``MODE_RESIDUAL`` (backward to the edge latents, residual included)::

    dL/de[b, e] = dL/dpre[b, e] @ W1 + dL/de'[b, e] + dL/dagg[b, dst[e]]

with ``silu'(z) = s (1 + z (1 - s))``, ``s = sigmoid(z)``. Static edge latents
``[E, L]`` shared by a batch of ``B`` are multiplied once and finished ``B``
times (forward), or summed over the batch in the epilogue (residual). The
second layer's weight gradient, with the SiLU on load as well, is
:mod:`.silu_weight_grad`.

Against cuBLAS plus separate element-wise kernels this saves, on the 3.1 M
mesh2grid edges, the write and re-read of the GEMM output (2 x 3.2 GB) per
fused product, and ``a = silu(pre)`` is never materialised. Launch
parameters come from the H200 sweeps ``benchmarks/kernel_sweep_edge_linear.py``
(``benchmarks/results/kernel_sweeps_h200_2026-11-21/edge_linear_sweep_8af4d24.json``
for this pointer-fed kernel, ``..._84894ed.json`` and ``..._7bf9aa0.json`` for
the persistent TMA-fed one of :mod:`.edge_linear_tma`, which runs instead on
compute capability >= 9 when the widths allow; ``silu_on_load_sweep_98759a2.json``
for the SiLU on load; mesh2grid size, bf16), ms:

=============  ============  ==========  ==========  ================  =================
mode           this kernel   TMA kernel  TMA kernel  what it replaces  cuBLAS GEMM alone
               (84894ed)     (84894ed)   (7bf9aa0)
=============  ============  ==========  ==========  ================  =================
gather-SiLU    6.22          6.29        4.37 [1]_   4.89              2.54 (643 TFLOP/s)
dSiLU          7.15          5.74        4.36 [2]_   7.84              2.61
residual       4.82          4.37        4.34        6.87              2.52
bare GEMM      -             2.61        2.70        -                 2.52-2.93
SiLU on load   -             -           3.68        2.60 + a written  2.60
=============  ============  ==========  ==========  ================  =================

.. [1] writing ``pre`` only (the forward the layer runs); before, ``pre`` and ``a``.
.. [2] writing ``dL/dpre`` only; before, also ``a``.

(The residual's unfused time builds ``dL/de' + dL/dagg[dst]`` with torch
ops, which in the layer the LayerNorm backward writes as a by-product.) The
TMA kernel's GEMM is at cuBLAS speed; what is left is its epilogue, which a
persistent kernel without warp specialisation does not overlap with the
next tile's products. The compiler's warp specialisation (ninth configuration
entry of :mod:`.edge_linear_tma`) was slower on the H200 with Triton 3.6
(``warp_specialize_sweep_fa31242_partial.json``). For the forward gather
product (:func:`linear_gather_add`, one batch) a hand-written Gluon kernel
whose epilogue has warps of its own runs instead where it can
(:mod:`.edge_linear_gluon`, ``GLUON``: 3.33 ms against 4.35 on the
H200), and so do the second layer's product with the SiLU on load and the
backward's SiLU-derivative and residual products. The
interaction layer picks a path with ``edge_gemm``
(:mod:`weathergnn.ops.interaction_edge`).
"""

from __future__ import annotations

import functools
import importlib
import json
import os

import torch
import triton
import triton.language as tl

from weathergnn.ops.triton import cdiv, edge_linear_tma, has_tma, interpreting, next_power_of_2
from weathergnn.ops.triton.activations import silu
from weathergnn.ops.triton.edge_linear_tma import MODE_DSILU, MODE_GATHER_SILU, MODE_PLAIN, MODE_RESIDUAL

KEY_SILU_IN = 4  # configuration key of MODE_PLAIN with SiLU applied to A on load (silu_linear)


@triton.jit
def _ld(ptrs, mask, EVEN: tl.constexpr):
    """Load a tile; unmasked (vectorised, pipelined) when every address is known to be in bounds."""
    if EVEN:
        return tl.load(ptrs)
    return tl.load(ptrs, mask=mask, other=0.0)


@triton.jit
def _edge_linear_kernel(
    a_ptr, w_ptr, bias_ptr, t1_ptr, t2_ptr, src_ptr, dst_ptr, out_ptr, out2_ptr,
    E, N, K, N1, N2, NB, stride_wk, stride_wn,
    MODE: tl.constexpr, A_BATCHED: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_T1: tl.constexpr,
    HAS_T2: tl.constexpr, WRITE2: tl.constexpr, A_SILU: tl.constexpr, IEEE: tl.constexpr, EVEN_K: tl.constexpr,
    EVEN_N: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr,
):
    """One [BM, BN] tile of ``A @ W`` over edges, finished by the MODE's epilogue.

    A rows: ``b0 * E + e`` when A_BATCHED else ``e`` (b0 = program_id(1)); rows
    are ``K`` wide and contiguous. ``W[k, n]`` at ``k * stride_wk + n * stride_wn``.
    t1 / t2: the epilogue's tables (sender / receiver projections, pre-activation,
    output gradients), ``N1`` / ``N2`` rows per batch. NB: batch entries each
    program finishes (the batch size for static edges, else 1). Rows past ``E``
    are clamped to the last edge for loads and masked for stores, so with
    EVEN_K / EVEN_N (``K % BK == 0`` / ``N % BN == 0``) no load needs a mask.
    """
    pid = tl.program_id(0)
    num_n = tl.cdiv(N, BN)
    pid_m = pid // num_n  # n fastest: the programs sharing an A block run together (L2 reuse)
    pid_n = pid % num_n
    b0 = tl.program_id(1).to(tl.int64)
    offs_e = pid_m.to(tl.int64) * BM + tl.arange(0, BM)
    offs_n = pid_n * BN + tl.arange(0, BN)
    emask = offs_e < E
    nmask = offs_n < N
    m = emask[:, None] & nmask[None, :]
    rows_e = tl.minimum(offs_e, E - 1)  # in-bounds row for every load
    a_rows = (b0 * E + rows_e) if A_BATCHED else rows_e
    acc = tl.zeros((BM, BN), dtype=tl.float32)
    for k0 in range(0, K, BK):
        offs_k = k0 + tl.arange(0, BK)
        kmask = offs_k < K
        av = _ld(a_ptr + a_rows[:, None] * K + offs_k[None, :], kmask[None, :], EVEN_K)
        if A_SILU:  # the product's input is silu(A), applied on load (silu(0) = 0 keeps masked columns 0)
            av = silu(av, IEEE).to(av.dtype)
        wv = _ld(w_ptr + offs_k[:, None] * stride_wk + offs_n[None, :] * stride_wn,
                 kmask[:, None] & nmask[None, :], EVEN_K and EVEN_N)
        if IEEE:  # float32 inputs; and under the interpreter, whose bf16 dot is wrong (Triton 3.9)
            acc = tl.dot(av.to(tl.float32), wv.to(tl.float32), acc, input_precision="ieee")
        else:
            acc = tl.dot(av, wv, acc)
    nm = nmask[None, :]
    if MODE == 0:  # pre = acc + b1 + p_src[b, src] + p_dst[b, dst]; a = silu(pre), for NB batch entries
        if HAS_BIAS:
            acc += _ld(bias_ptr + offs_n, nmask, EVEN_N).to(tl.float32)[None, :]
        s = tl.load(src_ptr + rows_e)
        d = tl.load(dst_ptr + rows_e)
        for bb in range(NB):
            b = b0 + bb
            z = acc + _ld(t1_ptr + (b * N1 + s)[:, None] * N + offs_n[None, :], nm, EVEN_N).to(tl.float32)
            z += _ld(t2_ptr + (b * N2 + d)[:, None] * N + offs_n[None, :], nm, EVEN_N).to(tl.float32)
            rows = (b * E + offs_e)[:, None] * N + offs_n[None, :]
            tl.store(out_ptr + rows, z.to(out_ptr.dtype.element_ty), mask=m)
            if WRITE2:
                tl.store(out2_ptr + rows, (z * tl.sigmoid(z)).to(out2_ptr.dtype.element_ty), mask=m)
    elif MODE == 1:  # dL/dpre = acc * silu'(pre); a = silu(pre) with WRITE2
        z = _ld(t1_ptr + (b0 * E + rows_e)[:, None] * N + offs_n[None, :], nm, EVEN_N).to(tl.float32)
        sig = tl.sigmoid(z)
        rows = (b0 * E + offs_e)[:, None] * N + offs_n[None, :]
        tl.store(out_ptr + rows, (acc * sig * (1.0 + z * (1.0 - sig))).to(out_ptr.dtype.element_ty), mask=m)
        if WRITE2:
            tl.store(out2_ptr + rows, (z * sig).to(out2_ptr.dtype.element_ty), mask=m)
    elif MODE == 3:  # the product (+ bias)
        if HAS_BIAS:
            acc += _ld(bias_ptr + offs_n, nmask, EVEN_N).to(tl.float32)[None, :]
        tl.store(out_ptr + (b0 * E + offs_e)[:, None] * N + offs_n[None, :], acc.to(out_ptr.dtype.element_ty), mask=m)
    else:  # dL/de = acc + sum over NB batch entries of dL/de'[b, e] + dL/dagg[b, dst[e]]
        if HAS_T2:
            d = tl.load(dst_ptr + rows_e)
        for bb in range(NB):
            b = b0 + bb
            if HAS_T1:
                acc += _ld(t1_ptr + (b * E + rows_e)[:, None] * N + offs_n[None, :], nm, EVEN_N).to(tl.float32)
            if HAS_T2:
                acc += _ld(t2_ptr + (b * N2 + d)[:, None] * N + offs_n[None, :], nm, EVEN_N).to(tl.float32)
        tl.store(out_ptr + (b0 * E + offs_e)[:, None] * N + offs_n[None, :], acc.to(out_ptr.dtype.element_ty), mask=m)


# Overridable for tuning sweeps: {mode: (BM, BN, BK, warps, stages)}.
TUNE: dict[int, tuple[int, int, int, int, int]] = {}
# H200 defaults (bf16, L = H = 512), from the sweep; see the module docstring.
GPU_CONFIG: dict[int, tuple[int, int, int, int, int]] = {  # kernel_sweeps_h200_2026-11-21/edge_linear_sweep_8af4d24.json
    MODE_GATHER_SILU: (64, 128, 64, 4, 3),
    MODE_DSILU: (64, 64, 64, 4, 4),
    MODE_RESIDUAL: (64, 128, 64, 4, 3),
    MODE_PLAIN: (64, 128, 64, 4, 3),  # these two not swept: on the H200 silu_linear runs on the TMA kernel
    KEY_SILU_IN: (64, 128, 64, 4, 3),
}


# The persistent TMA kernel (:mod:`.edge_linear_tma`): None = on CUDA devices of compute capability >= 9
# when the widths allow; True / False force it on / off (True also under the interpreter, for the tests).
TMA: bool | None = None
# Overridable for tuning sweeps: {mode: (BM, BN, BK, warps, stages, SUB, programs per SM, TMA stores[, WS])}.
TUNE_TMA: dict[int, tuple[int, ...]] = {}
GPU_CONFIG_TMA: dict[int, tuple[int, ...]] = {  # kernel_sweeps_h200_2026-11-21/edge_linear_sweep_84894ed.json
    MODE_GATHER_SILU: (128, 256, 64, 8, 3, 2, 1, 1),
    MODE_DSILU: (128, 128, 64, 8, 3, 2, 2, 0),
    MODE_RESIDUAL: (128, 256, 64, 8, 3, 2, 1, 0),
    MODE_PLAIN: (128, 128, 64, 8, 3, 2, 2, 0),
    KEY_SILU_IN: (128, 256, 64, 8, 3, 2, 1, 1),  # silu_on_load_sweep_98759a2.json: 3.68 ms, 444 TFLOP/s
}


def load_sweep(path: str) -> None:
    """Use the fastest configurations of a sweep file as defaults.

    Reads ``kernel_sweep_edge_linear.py --json`` files (``modes`` with a
    ``best`` configuration for the pointer kernel or ``best_tma`` for the TMA
    kernel) and ``kernel_sweep_warp_specialize.py --json`` files (``uses``
    with a ``best`` TMA configuration).

    Raises:
        ValueError: the file has no such entry.
    """
    with open(path) as fh:
        data = json.load(fh)
    names = {"gather_silu": MODE_GATHER_SILU, "dsilu": MODE_DSILU, "residual": MODE_RESIDUAL, "plain": MODE_PLAIN,
             "silu_in": KEY_SILU_IN}
    found = 0
    for section, key, table in (("modes", "best", GPU_CONFIG), ("modes", "best_tma", GPU_CONFIG_TMA),
                                ("uses", "best", GPU_CONFIG_TMA)):
        entries = data.get(section, {})
        picked = {names[k]: tuple(v[key]["config"]) for k, v in entries.items() if k in names and v.get(key)}
        table.update(picked)
        found += len(picked)
    if not found:
        raise ValueError(f"{path}: no 'modes' with a 'best' or 'best_tma' configuration, nor 'uses' with a 'best'")


if os.environ.get("WEATHERGNN_EDGE_LINEAR_SWEEP"):  # tuning aid: try a fresh sweep's choice without editing
    load_sweep(os.environ["WEATHERGNN_EDGE_LINEAR_SWEEP"])


def _config(mode: int, n: int, k: int) -> tuple[int, int, int, int, int]:
    """Pointer-kernel launch parameters for a configuration key (a mode, or KEY_SILU_IN)."""
    if mode in TUNE:
        return TUNE[mode]
    if interpreting():
        return 16, 16, 16, 1, 1
    bm, bn, bk, warps, stages = GPU_CONFIG[mode]
    return bm, min(bn, max(16, next_power_of_2(n))), min(bk, max(16, next_power_of_2(k))), warps, stages


def tma_kernel_runs(device: torch.device, dtype: torch.dtype, widths) -> bool:
    """Whether products with these K / N ``widths`` on ``device`` go to the TMA kernel (with ``TMA`` = None)."""
    return has_tma(device) and all(edge_linear_tma.supported(w, w, 16, dtype) for w in widths)


def _tma_config(mode: int, a: torch.Tensor, n: int, k: int):
    """(config, programs) for the TMA kernel, or None when the pointer kernel is to run."""
    if not (has_tma(a.device) if TMA is None else TMA):
        return None
    if mode in TUNE_TMA:
        cfg = TUNE_TMA[mode]
    elif interpreting():
        # SUB = 2 where N allows 32-wide tiles; both store kinds, both loop forms (the interpreter ignores WS)
        cfg = (16, 32, 16, 1, 1, 2, 1, mode % 2, int(mode >= 2))
    else:
        cfg = GPU_CONFIG_TMA[mode]
    bm, bn, bk, warps, stages, sub, per_sm, tma_store = cfg[:8]
    while n % bn and bn > 16:  # the widest tile that divides N
        bn //= 2
    cfg = (bm, bn, bk, warps, stages, sub if bn // sub >= 16 else 1, per_sm, tma_store, *cfg[8:])
    if not edge_linear_tma.supported(k, n, bn, a.dtype):
        return None
    sms = 3 if interpreting() else torch.cuda.get_device_properties(a.device).multi_processor_count
    return cfg, sms


def _launch(mode, a, w_t, bias, t1, t2, src, dst, out, out2, n_edges, n1, n2, nb, grid_b, a_batched,
            a_silu: bool = False) -> None:
    """w_t: the [K, N] operand (any strides); a_silu: multiply ``silu(a)`` instead of ``a``."""
    k, n = w_t.shape
    if n_edges == 0:
        return
    key = KEY_SILU_IN if a_silu else mode
    tma = _tma_config(key, a, n, k)
    if tma is not None:
        edge_linear_tma.launch(mode, a, w_t.contiguous(), bias, t1, t2, src, dst, out, out2, n_edges, n1, n2, nb,
                               grid_b, a_batched, tma[0], tma[1], ieee=a.dtype == torch.float32 or interpreting(),
                               a_silu=a_silu)
        return
    bm, bn, bk, warps, stages = _config(key, n, k)
    dummy = out
    _edge_linear_kernel[(cdiv(n_edges, bm) * cdiv(n, bn), grid_b)](
        a, w_t, bias if bias is not None else dummy, t1 if t1 is not None else dummy,
        t2 if t2 is not None else dummy, src if src is not None else dummy, dst if dst is not None else dummy,
        out, out2 if out2 is not None else dummy,
        n_edges, n, k, n1, n2, nb, w_t.stride(0), w_t.stride(1),
        MODE=mode, A_BATCHED=a_batched, HAS_BIAS=bias is not None, HAS_T1=t1 is not None,
        HAS_T2=t2 is not None, WRITE2=out2 is not None, A_SILU=a_silu,
        IEEE=a.dtype == torch.float32 or interpreting(), EVEN_K=k % bk == 0, EVEN_N=n % bn == 0, BM=bm, BN=bn, BK=bk, num_warps=warps, num_stages=stages,
    )


def linear_gather_add_silu(e, w1, b1, p_src, p_dst, src, dst):
    """Forward of the split first edge-MLP layer, GEMM included.

    Args:
        e: [E, L] static edge latents (one product for the whole batch) or [B, E, L].
        w1: [H, L] (``nn.Linear`` weight of the edge part); b1: [H] or None.
        p_src: [B, Ns, H] sender projections; p_dst: [B, Nd, H] receiver projections.
        src, dst: [E] int64 sender / receiver of each edge.

    Returns:
        (pre [B, E, H], a = silu(pre) [B, E, H]) in the dtype of ``e``.
    """
    return _gather_add(e, w1, b1, p_src, p_dst, src, dst, with_act=True)


# The Gluon kernels of :mod:`.edge_linear_gluon` (epilogue in warps of its own) for ``linear_gather_add``,
# ``silu_linear``, ``linear_silu_backward`` and ``linear_residual_backward``, and of
# :mod:`.silu_weight_grad_gluon` for ``silu_weight_grad``, where they run: Hopper, bf16 / fp16, widths that
# fill their tiles, one batch (forward gather 3.33 against 4.35 ms for the TMA kernel on mesh2grid-size
# operands). False: never (the Triton kernels instead).
GLUON = True


@functools.cache
def gluon_module(name: str = "edge_linear_gluon"):
    """The Gluon kernel module ``weathergnn.ops.triton.<name>``, imported once; None for a Triton without
    Gluon's Hopper ops."""
    try:
        return importlib.import_module(f"weathergnn.ops.triton.{name}")
    except ImportError:
        return None


def gluon_enabled(device: torch.device) -> bool:
    """Whether the Gluon kernels may run on ``device`` (``GLUON`` on, CUDA, not under the interpreter)."""
    return GLUON and not interpreting() and device.type == "cuda"


def _gluon(a, k: int, n: int, *tensors):
    """The :mod:`.edge_linear_gluon` module when a one-batch ``[*, k] x [k, n]`` product with operands
    ``a`` and ``tensors`` (None where absent) can run on it, else None."""
    if not gluon_enabled(a.device):
        return None
    if any(t is not None and t.dtype != a.dtype for t in tensors):
        return None
    gl_mod = gluon_module()
    return gl_mod if gl_mod is not None and gl_mod.supported(a.device, a.dtype, k, n) else None


def linear_gather_add(e, w1, b1, p_src, p_dst, src, dst):
    """:func:`linear_gather_add_silu` without writing ``silu(pre)``: returns pre [B, E, H] only."""
    hidden, k = w1.shape
    one_batch = p_src.shape[0] == 1 and (e.dim() == 2 or e.shape[0] == 1)
    gl_mod = _gluon(e, k, hidden, w1, p_src, p_dst) if one_batch else None
    if gl_mod is not None:
        n_edges = src.shape[0]
        pre = e.new_empty(1, n_edges, hidden)
        gl_mod.gather_linear(e.reshape(n_edges, k).contiguous(), w1.t(), pre[0], b1,
                             p_src[0].contiguous(), p_dst[0].contiguous(), src, dst)
        return pre
    return _gather_add(e, w1, b1, p_src, p_dst, src, dst, with_act=False)[0]


def _gather_add(e, w1, b1, p_src, p_dst, src, dst, with_act: bool):
    """(pre, silu(pre) or None): MODE_GATHER_SILU, writing its second output only ``with_act``."""
    bsz, n_edges, hidden = p_src.shape[0], src.shape[0], w1.shape[0]
    static = e.dim() == 2
    e = e.contiguous()
    pre = e.new_empty(bsz, n_edges, hidden)
    a = torch.empty_like(pre) if with_act else None
    _launch(MODE_GATHER_SILU, e, w1.t(), b1, p_src.contiguous(), p_dst.contiguous(), src, dst, pre, a,
            n_edges, p_src.shape[1], p_dst.shape[1], bsz if static else 1, 1 if static else bsz, not static)
    return pre, a


def silu_linear(pre, w2, b2):
    """``y = silu(pre) W2^T + b2`` with the SiLU applied to each tile on load (``silu(pre)`` is never written).

    Args:
        pre: [B, E, H]; w2: [L, H] (``nn.Linear`` weight); b2: [L] or None.

    Returns:
        y [B, E, L] in the dtype of ``pre``.
    """
    bsz, n_edges, hidden = pre.shape
    y = pre.new_empty(bsz, n_edges, w2.shape[0])
    gl_mod = _gluon(pre, hidden, w2.shape[0], w2) if bsz == 1 else None
    if gl_mod is not None:
        gl_mod.silu_linear(pre[0].contiguous(), w2.t(), y[0], b2)
        return y
    _launch(MODE_PLAIN, pre.contiguous(), w2.t(), b2, None, None, None, None, y, None,
            n_edges, 0, 0, 1, bsz, True, a_silu=True)
    return y


def linear_silu_backward(grad_y, w2, pre):
    """``dL/dpre = (dL/dy W2) * silu'(pre)`` through ``y = W2 silu(pre) + b2``.

    ``silu(pre)`` is not written: the weight gradient reads ``pre`` itself
    (:func:`weathergnn.ops.triton.silu_weight_grad.silu_weight_grad`).

    Args:
        grad_y: [B, E, L]; w2: [L, H] (``nn.Linear`` weight); pre: [B, E, H].

    Returns:
        dL/dpre [B, E, H] in the dtype of ``pre``.
    """
    bsz, n_edges, hidden = pre.shape
    g_pre = torch.empty_like(pre)
    gl_mod = _gluon(grad_y, w2.shape[0], hidden, w2, pre) if bsz == 1 else None
    if gl_mod is not None:
        gl_mod.dsilu_linear(grad_y[0].contiguous(), w2, g_pre[0], pre[0].contiguous())
        return g_pre
    _launch(MODE_DSILU, grad_y.contiguous(), w2, None, pre.contiguous(), None, None, None, g_pre, None,
            n_edges, 0, 0, 1, bsz, True)
    return g_pre


def linear_residual_backward(grad_pre, w1, grad_out, grad_agg, dst, batch: int):
    """``dL/de = dL/dpre @ W1 + dL/de' + dL/dagg[:, dst]`` (summed over the batch for static edges).

    Args:
        grad_pre: [B, E, H], or [E, H] already summed over the batch (static edges).
        w1: [H, L]; grad_out: [B, E, L] or None; grad_agg: [B, Nd, L] or None; dst: [E].
        batch: B.

    Returns:
        [B, E, L], or [E, L] when ``grad_pre`` is [E, H].
    """
    static = grad_pre.dim() == 2
    n_edges, length = dst.shape[0], w1.shape[1]
    out = grad_pre.new_empty((n_edges, length) if static else (batch, n_edges, length))
    gl_mod = _gluon(grad_pre, w1.shape[0], length, w1, grad_out, grad_agg) if batch == 1 else None
    if gl_mod is not None:
        gl_mod.residual_linear(grad_pre.reshape(n_edges, -1).contiguous(), w1,
                               out.view(n_edges, length),
                               grad_out.reshape(n_edges, length).contiguous() if grad_out is not None else None,
                               grad_agg[0].contiguous() if grad_agg is not None else None, dst)
        return out
    _launch(MODE_RESIDUAL, grad_pre.contiguous(), w1, None,
            grad_out.contiguous() if grad_out is not None else None,
            grad_agg.contiguous() if grad_agg is not None else None, None, dst, out, None,
            n_edges, 0, grad_agg.shape[1] if grad_agg is not None else 0,
            batch if static else 1, 1 if static else batch, not static)
    return out


def linear_add(x, w_kn, r):
    """``out = x @ w_kn + r``: a product whose full-size addend is read in the epilogue.

    The node side of the interaction layer (:class:`weathergnn.ops.interaction_edge.InteractionUpdate`)
    forms its sums this way instead of a product followed by an add pass over
    ``[R, N]``: the node MLP's pre-activation ``agg W_a^T + (h W_h^T + b)``, and
    the receivers' gradient ``dL/dpre W_h + dL/dh'`` then ``+ dL/dp_dst W_d``.
    On a Hopper GPU with bf16/fp16 operands, ``K % 64 == 0`` and ``N % 256 ==
    0`` it is the Gluon kernel's residual product (:func:`.edge_linear_gluon.residual_linear`);
    elsewhere ``torch.addmm``.

    Args:
        x: [R, K]; w_kn: [K, N]; r: [R, N], same dtype.

    Returns:
        [R, N] in the dtype of ``x``.
    """
    rows, k = x.shape
    n = w_kn.shape[1]
    gl_mod = _gluon(x, k, n, w_kn, r)
    if gl_mod is not None:
        out = x.new_empty(rows, n)
        gl_mod.residual_linear(x.contiguous(), w_kn, out, r.contiguous(), None, None)
        return out
    return torch.addmm(r, x, w_kn)
