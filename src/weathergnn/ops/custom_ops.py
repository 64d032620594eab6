"""The Triton kernels as ``torch.library`` custom operators with autograd.

Each operator is registered with :func:`torch.library.custom_op`, a fake
(meta) implementation (``register_fake``) so ``torch.compile`` traces through
it without graph breaks, and an autograd formula (``register_autograd``) whose
backward is itself made of custom operators. Operators (namespace
``weathergnn``), shapes with ``B`` batch, ``E`` edges, ``N``/``Ns``/``Nd``
nodes, ``F``/``H``/``L`` features:

``segment_sum(messages [B,E,F], dst_ptr, dst) -> [B,Nd,F]``
    CSC sum of destination-sorted edge messages; backward gathers
    ``grad[:, dst]``.
``neighbour_sum(h [B,Ns,F], coeff [E]|[B,E]|None, src, dst, dst_ptr, src_perm, src_ptr, src_dst) -> [B,Nd,F]``
    ``out_i = sum_j coeff_ij h_j`` gathered straight from the node table;
    backward for ``h`` runs the same kernel over the source-sorted transpose
    (no atomics), for ``coeff`` an edge-wise dot product.
``gather_add_silu(x [B,E,H], p_src [B,Ns,H], p_dst [B,Nd,H], src, dst, dst_ptr, src_perm, src_ptr) -> [B,E,H]``
    ``silu(x + p_src[src] + p_dst[dst])``; backward recomputes the
    pre-activation and sums over edges per sender / receiver.
``layer_norm_residual(y [R,L], res [R,L] | None, weight [L], bias [L], eps, y_bias [L] | None) -> (out, mean, rstd)``
    ``res + LayerNorm(y + y_bias)``, or without ``res``, in the dtype of
    ``y``; the gradient of ``y_bias`` is the backward's row sum of ``dL/dy``.
``layer_norm_residual_segment_sum(y [B,E,L], res [E,L]|[B,E,L]|None, weight, bias, eps, dst_ptr, pieces, groups) -> (mean, rstd, agg [B,Nd,L])``
    the sums per receiver of ``res + LayerNorm(y)`` over destination-sorted
    edges, which are not written (:mod:`weathergnn.ops.triton.layer_norm_segment_sum`);
    no autograd formula (the edge update's backward covers it).
``linear_gather_add``, ``silu_linear``, ``linear_silu_backward``, ``linear_residual_backward``, ``linear_add``
    the edge-MLP GEMMs with fused epilogues or SiLU on load
    (:mod:`weathergnn.ops.triton.edge_linear`), and ``silu_weight_grad``, the
    second layer's weight gradient with the SiLU on load
    (:mod:`weathergnn.ops.triton.silu_weight_grad`); no autograd formula: only
    :mod:`weathergnn.ops.interaction_edge` calls them (``linear_add(x [R,K], w_kn [K,N], r [R,N])
    = x w_kn + r`` forms the node side's sums).
``narrow_linear_silu(x [..., K], w [H, K], b [H] | None) -> [..., H]``
    ``silu(x W^T + b)`` for ``K <= 32`` (embedder MLPs over static graph
    features), ``pre`` never stored; backward ``narrow_linear_silu_backward``
    reads ``dL/da`` once and returns ``dL/dW``, ``dL/db`` (float32).

Importing this module needs Triton; :mod:`weathergnn.ops.dispatch` imports it
only when the Triton backend is selected.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from weathergnn.ops import reference
from weathergnn.ops.triton import edge_linear as _el
from weathergnn.ops.triton.csr_sum import csr_sum as _csr_sum
from weathergnn.ops.triton.edge_dot import edge_dot as _edge_dot
from weathergnn.ops.triton.gather_add_silu import gather_add_silu as _gas
from weathergnn.ops.triton.gather_add_silu import gather_add_silu_backward as _gas_bwd
from weathergnn.ops.triton.layer_norm_residual import layer_norm_residual as _lnr
from weathergnn.ops.triton.layer_norm_residual import layer_norm_residual_backward as _lnr_bwd
from weathergnn.ops.triton.layer_norm_segment_sum import layer_norm_residual_segment_sum as _lnr_segsum
from weathergnn.ops.triton.narrow_linear_silu import narrow_linear_silu as _nls
from weathergnn.ops.triton.narrow_linear_silu import narrow_linear_silu_backward as _nls_bwd
from weathergnn.ops.triton.silu_weight_grad import silu_weight_grad as _swg

# --------------------------------------------------------------------------- primitives


@torch.library.custom_op("weathergnn::csr_sum", mutates_args=())
def csr_sum(
    x: Tensor, ptr: Tensor, col: Optional[Tensor], eid: Optional[Tensor], weight: Optional[Tensor],
    pieces: Optional[Tensor] = None, groups: Optional[Tensor] = None,
) -> Tensor:
    """``out[b, i] = sum_{k in ptr[i]:ptr[i+1]} weight[b, eid[k]] * x[b, col[k]]`` -> [B, N, F]."""
    return _csr_sum(x, ptr, col, eid, weight, pieces=pieces, groups=groups)


@csr_sum.register_fake
def _(x, ptr, col, eid, weight, pieces=None, groups=None):
    return x.new_empty(x.shape[0], ptr.shape[0] - 1, x.shape[2])


@torch.library.custom_op("weathergnn::edge_dot", mutates_args=())
def edge_dot(a: Tensor, c: Tensor, src: Tensor, dst: Tensor) -> Tensor:
    """``out[b, e] = <a[b, dst[e]], c[b, src[e]]>`` -> [B, E] float32."""
    return _edge_dot(a, c, src, dst)


@edge_dot.register_fake
def _(a, c, src, dst):
    return a.new_empty(a.shape[0], src.shape[0], dtype=torch.float32)


@torch.library.custom_op("weathergnn::gather_add_silu_backward", mutates_args=())
def gather_add_silu_backward(
    grad: Tensor, x: Tensor, p_src: Tensor, p_dst: Tensor, src: Tensor, dst: Tensor
) -> Tensor:
    """``dL/dpre`` [B, E, H] of :func:`gather_add_silu` (pre-activation recomputed)."""
    return _gas_bwd(grad, x, p_src, p_dst, src, dst)


@gather_add_silu_backward.register_fake
def _(grad, x, p_src, p_dst, src, dst):
    return torch.empty_like(x)


@torch.library.custom_op("weathergnn::layer_norm_residual_backward", mutates_args=())
def layer_norm_residual_backward(
    grad: Optional[Tensor], y: Tensor, weight: Tensor, mean: Tensor, rstd: Tensor,
    grad_agg: Optional[Tensor], dst: Optional[Tensor], write_total: bool, y_bias: Optional[Tensor] = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """(dL/dy; [3, L] float32 rows dL/dgamma, dL/dbeta, sum_rows dL/dy; total row grad or an empty tensor);
    see the kernel module."""
    gy, sums, total = _lnr_bwd(grad, y, weight, mean, rstd, grad_agg, dst, write_total, y_bias)
    return gy, sums, total if total is not None else y.new_empty(0)


@layer_norm_residual_backward.register_fake
def _(grad, y, weight, mean, rstd, grad_agg, dst, write_total, y_bias=None):
    length = y.shape[1]
    f32 = dict(dtype=torch.float32)
    total = torch.empty_like(grad if grad is not None else y) if write_total else y.new_empty(0)
    return torch.empty_like(y), y.new_empty(3, length, **f32), total


@torch.library.custom_op("weathergnn::layer_norm_residual_segment_sum", mutates_args=())
def layer_norm_residual_segment_sum(
    y: Tensor, res: Optional[Tensor], weight: Tensor, bias: Tensor, eps: float, dst_ptr: Tensor,
    dst_pieces: Optional[Tensor] = None, dst_groups: Optional[Tensor] = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """``(mean [B*E], rstd [B*E], agg [B, Nd, L])``: agg the segment sums of ``res + LayerNorm(y)``."""
    return _lnr_segsum(y, res, weight, bias, eps, dst_ptr, dst_pieces, dst_groups)


@layer_norm_residual_segment_sum.register_fake
def _(y, res, weight, bias, eps, dst_ptr, dst_pieces=None, dst_groups=None):
    stats = y.new_empty(y.shape[0] * y.shape[1], dtype=torch.float32)
    return stats, torch.empty_like(stats), y.new_empty(y.shape[0], dst_ptr.shape[0] - 1, y.shape[2])


# --------------------------------------------------------------------------- edge-MLP GEMMs


@torch.library.custom_op("weathergnn::linear_gather_add", mutates_args=())
def linear_gather_add(
    e: Tensor, w1: Tensor, b1: Optional[Tensor], p_src: Tensor, p_dst: Tensor, src: Tensor, dst: Tensor
) -> Tensor:
    """``pre = e W1^T + b1 + p_src[:, src] + p_dst[:, dst]``: [B, E, H]."""
    return _el.linear_gather_add(e, w1, b1, p_src, p_dst, src, dst)


@linear_gather_add.register_fake
def _(e, w1, b1, p_src, p_dst, src, dst):
    return e.new_empty(p_src.shape[0], src.shape[0], w1.shape[0])


@torch.library.custom_op("weathergnn::silu_linear", mutates_args=())
def silu_linear(pre: Tensor, w2: Tensor, b2: Optional[Tensor]) -> Tensor:
    """``silu(pre) W2^T + b2`` with the SiLU applied on load: [B, E, L]."""
    return _el.silu_linear(pre, w2, b2)


@silu_linear.register_fake
def _(pre, w2, b2):
    return pre.new_empty(*pre.shape[:-1], w2.shape[0])


def _silu_linear_setup(ctx, inputs, output):
    pre, w2, b2 = inputs
    ctx.has_b2 = b2 is not None
    ctx.save_for_backward(pre, w2)


def _silu_linear_backward(ctx, grad_y):
    """``dL/dpre = (dL/dy W2) * silu'(pre)`` and ``dL/dW2 = dL/dy^T silu(pre)``, both with the SiLU formed in
    the kernel (``silu(pre)`` is never written); ``dL/db2`` a float32 row sum."""
    pre, w2 = ctx.saved_tensors
    g_pre = g_w2 = g_b2 = None
    if ctx.needs_input_grad[0]:
        g_pre = linear_silu_backward(grad_y, w2, pre)
    if ctx.needs_input_grad[1]:
        g_w2 = silu_weight_grad(grad_y, pre).to(w2.dtype)
    if ctx.has_b2 and ctx.needs_input_grad[2]:
        g_b2 = grad_y.reshape(-1, grad_y.shape[-1]).sum(0, dtype=torch.float32).to(w2.dtype)
    return g_pre, g_w2, g_b2


@torch.library.custom_op("weathergnn::linear_silu_backward", mutates_args=())
def linear_silu_backward(grad_y: Tensor, w2: Tensor, pre: Tensor) -> Tensor:
    """``(dL/dy W2) * silu'(pre)``: [B, E, H]."""
    return _el.linear_silu_backward(grad_y, w2, pre)


@linear_silu_backward.register_fake
def _(grad_y, w2, pre):
    return torch.empty_like(pre)


@torch.library.custom_op("weathergnn::silu_weight_grad", mutates_args=())
def silu_weight_grad(grad_y: Tensor, pre: Tensor) -> Tensor:
    """``sum over rows of dL/dy^T silu(pre)``: [L, H] float32, ``silu(pre)`` never written."""
    return _swg(grad_y, pre)


@silu_weight_grad.register_fake
def _(grad_y, pre):
    return grad_y.new_empty(grad_y.shape[-1], pre.shape[-1], dtype=torch.float32)


silu_linear.register_autograd(_silu_linear_backward, setup_context=_silu_linear_setup)


@torch.library.custom_op("weathergnn::linear_residual_backward", mutates_args=())
def linear_residual_backward(
    grad_pre: Tensor, w1: Tensor, grad_out: Optional[Tensor], grad_agg: Optional[Tensor], dst: Tensor, batch: int
) -> Tensor:
    """``dL/dpre W1 + dL/de' + dL/dagg[:, dst]`` -> [B, E, L] (or [E, L] for a batch-summed [E, H] input)."""
    return _el.linear_residual_backward(grad_pre, w1, grad_out, grad_agg, dst, batch)


@linear_residual_backward.register_fake
def _(grad_pre, w1, grad_out, grad_agg, dst, batch):
    lead = (dst.shape[0],) if grad_pre.dim() == 2 else (batch, dst.shape[0])
    return grad_pre.new_empty(*lead, w1.shape[1])


@torch.library.custom_op("weathergnn::linear_add", mutates_args=())
def linear_add(x: Tensor, w_kn: Tensor, r: Tensor) -> Tensor:
    """``x @ w_kn + r`` with ``r`` read in the product's epilogue: [R, N]."""
    return _el.linear_add(x, w_kn, r)


@linear_add.register_fake
def _(x, w_kn, r):
    return x.new_empty(x.shape[0], w_kn.shape[1])


# --------------------------------------------------------------------------- segment_sum


@torch.library.custom_op("weathergnn::segment_sum", mutates_args=())
def segment_sum(
    messages: Tensor, dst_ptr: Tensor, dst: Tensor,
    dst_pieces: Optional[Tensor] = None, dst_groups: Optional[Tensor] = None,
) -> Tensor:
    """CSC sum of destination-sorted messages [B, E, F] -> [B, Nd, F]."""
    return _csr_sum(messages, dst_ptr, pieces=dst_pieces, groups=dst_groups)


@segment_sum.register_fake
def _(messages, dst_ptr, dst, dst_pieces=None, dst_groups=None):
    return messages.new_empty(messages.shape[0], dst_ptr.shape[0] - 1, messages.shape[2])


def _segment_sum_setup(ctx, inputs, output):
    ctx.save_for_backward(inputs[2])


def _segment_sum_backward(ctx, grad):
    """Shared by the operator and the eager Function: each edge gets its receiver's gradient."""
    (dst,) = ctx.saved_tensors
    return grad.index_select(1, dst), None, None, None, None  # [B, E, F]


segment_sum.register_autograd(_segment_sum_backward, setup_context=_segment_sum_setup)

# --------------------------------------------------------------------------- neighbour_sum


@torch.library.custom_op("weathergnn::neighbour_sum", mutates_args=())
def neighbour_sum(
    h: Tensor, coeff: Optional[Tensor], src: Tensor, dst: Tensor, dst_ptr: Tensor,
    src_perm: Tensor, src_ptr: Tensor, src_dst: Tensor,
    dst_pieces: Optional[Tensor] = None, dst_groups: Optional[Tensor] = None,
    src_pieces: Optional[Tensor] = None, src_groups: Optional[Tensor] = None,
) -> Tensor:
    """``out[b, i] = sum_{j -> i} coeff[b, ij] h[b, j]`` -> [B, Nd, F] (dtype of h)."""
    return _csr_sum(h, dst_ptr, src, None, coeff, pieces=dst_pieces, groups=dst_groups)


@neighbour_sum.register_fake
def _(h, coeff, src, dst, dst_ptr, src_perm, src_ptr, src_dst, *pieces):
    return h.new_empty(h.shape[0], dst_ptr.shape[0] - 1, h.shape[2])


def _neighbour_sum_save(ctx, h, coeff, src, dst, src_perm, src_ptr, src_dst, src_pieces, src_groups):
    ctx.coeff_shape = tuple(coeff.shape) if coeff is not None else None
    ctx.coeff_dtype = coeff.dtype if coeff is not None else None
    ctx.save_for_backward(h, coeff, src, dst, src_perm, src_ptr, src_dst, src_pieces, src_groups)


def _neighbour_sum_grads(ctx, grad, csr, dot):
    """Gradients of ``neighbour_sum`` (operator and eager Function; ``csr``/``dot`` are the kernels to call)."""
    h, coeff, src, dst, src_perm, src_ptr, src_dst, src_pieces, src_groups = ctx.saved_tensors
    grad_h = grad_coeff = None
    if ctx.needs_input_grad[0]:
        # dL/dh_j = sum_{i <- j} coeff_ij dL/dout_i: the transpose, walked source-sorted.
        grad_h = csr(grad, src_ptr, src_dst, src_perm, coeff, pieces=src_pieces, groups=src_groups)  # [B, Ns, F]
    if coeff is not None and ctx.needs_input_grad[1]:
        g = dot(grad, h, src, dst)  # [B, E] float32
        grad_coeff = (g.sum(0) if len(ctx.coeff_shape) == 1 else g).to(ctx.coeff_dtype)
    return (grad_h, grad_coeff) + (None,) * 10


def _neighbour_sum_setup(ctx, inputs, output):
    h, coeff, src, dst, dst_ptr, src_perm, src_ptr, src_dst, _, _, src_pieces, src_groups = inputs
    _neighbour_sum_save(ctx, h, coeff, src, dst, src_perm, src_ptr, src_dst, src_pieces, src_groups)


def _neighbour_sum_backward(ctx, grad):
    return _neighbour_sum_grads(ctx, grad, csr_sum, edge_dot)


neighbour_sum.register_autograd(_neighbour_sum_backward, setup_context=_neighbour_sum_setup)

# --------------------------------------------------------------------------- gather_add_silu


@torch.library.custom_op("weathergnn::gather_add_silu", mutates_args=())
def gather_add_silu(
    x: Tensor, p_src: Tensor, p_dst: Tensor, src: Tensor, dst: Tensor, dst_ptr: Tensor,
    src_perm: Tensor, src_ptr: Tensor,
    dst_pieces: Optional[Tensor] = None, dst_groups: Optional[Tensor] = None,
    src_pieces: Optional[Tensor] = None, src_groups: Optional[Tensor] = None,
) -> Tensor:
    """``silu(x + p_src[:, src] + p_dst[:, dst])`` -> [B, E, H] (dtype of x)."""
    return _gas(x, p_src, p_dst, src, dst)


@gather_add_silu.register_fake
def _(x, p_src, p_dst, src, dst, dst_ptr, src_perm, src_ptr, *pieces):
    return torch.empty_like(x)


def _gas_setup(ctx, inputs, output):
    x, p_src, p_dst, src, dst, dst_ptr, src_perm, src_ptr, *pieces = inputs
    ctx.dtypes = (p_src.dtype, p_dst.dtype)
    ctx.save_for_backward(x, p_src, p_dst, src, dst, dst_ptr, src_perm, src_ptr, *pieces)


def _gas_backward(ctx, grad):
    x, p_src, p_dst, src, dst, dst_ptr, src_perm, src_ptr, dst_pieces, dst_groups, src_pieces, src_groups = (
        ctx.saved_tensors
    )
    g_pre = gather_add_silu_backward(grad, x, p_src, p_dst, src, dst)  # [B, E, H]
    g_src = g_dst = None
    if ctx.needs_input_grad[1]:
        g_src = csr_sum(g_pre, src_ptr, src_perm, None, None, src_pieces, src_groups).to(ctx.dtypes[0])  # [B, Ns, H]
    if ctx.needs_input_grad[2]:
        g_dst = csr_sum(g_pre, dst_ptr, None, None, None, dst_pieces, dst_groups).to(ctx.dtypes[1])  # [B, Nd, H]
    return (g_pre, g_src, g_dst) + (None,) * 9


gather_add_silu.register_autograd(_gas_backward, setup_context=_gas_setup)

# --------------------------------------------------------------------------- layer_norm_residual


@torch.library.custom_op("weathergnn::layer_norm_residual", mutates_args=())
def layer_norm_residual(
    y: Tensor, res: Optional[Tensor], weight: Tensor, bias: Tensor, eps: float, y_bias: Optional[Tensor] = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """``(res + LayerNorm(y + y_bias) [R, L], mean [R], rstd [R])`` (``res``, ``y_bias`` may be None); statistics
    float32."""
    return _lnr(y, res, weight, bias, eps, y_bias)


@layer_norm_residual.register_fake
def _(y, res, weight, bias, eps, y_bias=None):
    r = y.shape[0]
    return torch.empty_like(y), y.new_empty(r, dtype=torch.float32), y.new_empty(r, dtype=torch.float32)


def _lnr_setup(ctx, inputs, output):
    y, res, weight, bias, eps, y_bias = inputs
    _, mean, rstd = output
    ctx.dtypes = (res.dtype if res is not None else None, weight.dtype, bias.dtype)
    ctx.save_for_backward(y, weight, mean, rstd, y_bias)


def _lnr_backward(ctx, grad_out, grad_mean, grad_rstd):
    y, weight, mean, rstd, y_bias = ctx.saved_tensors
    gy, sums, _ = layer_norm_residual_backward(grad_out, y, weight, mean, rstd, None, None, False, y_bias)
    gw, gb, gyb = sums.unbind(0)
    g_res = grad_out.to(ctx.dtypes[0]) if ctx.dtypes[0] is not None else None
    g_yb = gyb.to(y_bias.dtype) if y_bias is not None else None  # sum over rows of dL/dy: no pass of its own
    return gy, g_res, gw.to(ctx.dtypes[1]), gb.to(ctx.dtypes[2]), None, g_yb


layer_norm_residual.register_autograd(_lnr_backward, setup_context=_lnr_setup)

# --------------------------------------------------------------------------- narrow_linear_silu


@torch.library.custom_op("weathergnn::narrow_linear_silu", mutates_args=())
def narrow_linear_silu(x: Tensor, w: Tensor, b: Optional[Tensor]) -> Tensor:
    """``silu(x W^T + b)`` for ``x`` [..., K <= 32] -> [..., H]; the pre-activation is not stored."""
    return _nls(x, w, b)


@narrow_linear_silu.register_fake
def _(x, w, b):
    return x.new_empty(*x.shape[:-1], w.shape[0])


@torch.library.custom_op("weathergnn::narrow_linear_silu_backward", mutates_args=())
def narrow_linear_silu_backward(grad: Tensor, x: Tensor, w: Tensor, b: Optional[Tensor]) -> tuple[Tensor, Tensor]:
    """``(dL/dW [H, K], dL/db [H])`` float32 of :func:`narrow_linear_silu`; ``dL/dpre`` never written."""
    return _nls_bwd(grad, x, w, b)


@narrow_linear_silu_backward.register_fake
def _(grad, x, w, b):
    h, k = w.shape
    return w.new_empty(h, k, dtype=torch.float32), w.new_empty(h, dtype=torch.float32)


def _nls_setup(ctx, inputs, output):
    ctx.save_for_backward(*inputs)


def _nls_backward(ctx, grad):
    x, w, b = ctx.saved_tensors
    g_w, g_b = narrow_linear_silu_backward(grad.to(x.dtype).contiguous(), x, w, b)
    g_x = reference.linear_silu_input_grad(grad, x, w, b) if ctx.needs_input_grad[0] else None
    return g_x, g_w.to(w.dtype), None if b is None else g_b.to(b.dtype)


narrow_linear_silu.register_autograd(_nls_backward, setup_context=_nls_setup)

# --------------------------------------------------------------------------- eager fast paths
#
# The same kernels and formulas as the custom operators above, wrapped in plain
# autograd Functions that launch the kernels directly. torch.library dispatch
# costs tens of microseconds per call on the host, which is most of the time of
# a sum over the 327,660 mesh edges (GPU time ~0.12 ms each way). dispatch.py
# takes these outside torch.compile and the registered operators inside it.


class _SegmentSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx, messages, dst_ptr, dst, dst_pieces, dst_groups):
        ctx.save_for_backward(dst)
        return _csr_sum(messages, dst_ptr, pieces=dst_pieces, groups=dst_groups)

    backward = staticmethod(_segment_sum_backward)


class _NeighbourSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, coeff, src, dst, dst_ptr, src_perm, src_ptr, src_dst, dst_pieces, dst_groups,
                src_pieces, src_groups):
        _neighbour_sum_save(ctx, h, coeff, src, dst, src_perm, src_ptr, src_dst, src_pieces, src_groups)
        return _csr_sum(h, dst_ptr, src, None, coeff, pieces=dst_pieces, groups=dst_groups)

    @staticmethod
    def backward(ctx, grad):
        return _neighbour_sum_grads(ctx, grad, _csr_sum, _edge_dot)


def eager_segment_sum(messages, dst_ptr, dst, dst_pieces=None, dst_groups=None) -> Tensor:
    """:func:`segment_sum` without torch.library dispatch (eager mode only)."""
    return _SegmentSum.apply(messages, dst_ptr, dst, dst_pieces, dst_groups)


def eager_neighbour_sum(h, coeff, src, dst, dst_ptr, src_perm, src_ptr, src_dst, dst_pieces=None, dst_groups=None,
                        src_pieces=None, src_groups=None) -> Tensor:
    """:func:`neighbour_sum` without torch.library dispatch (eager mode only)."""
    return _NeighbourSum.apply(h, coeff, src, dst, dst_ptr, src_perm, src_ptr, src_dst, dst_pieces, dst_groups,
                               src_pieces, src_groups)
