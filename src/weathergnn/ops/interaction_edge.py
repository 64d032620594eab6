"""The interaction network's edge update and aggregation as one autograd node.

``e' = e + LN(W2 silu(W_e e + b1 + (W_s h_src)[src] + (W_d h_dst)[dst]) + b2)``,
``agg_i = sum_{e -> i} e'_e`` (GraphCast edge MLP with its first layer split,
Lam et al. 2023, supplement sec. 3; ``weathergnn.models.mlp.EdgeMLP``).

Composing the custom operators one by one (``gather_add_silu``, ``linear``,
``layer_norm_residual``, ``segment_sum``) leaves autograd to glue their
gradients with whole-tensor passes over ``[edges, latent]``: gathering
``dL/dagg`` to the edges, adding it to ``dL/de'``, adding the two gradients of
``e`` (residual and ``W_e``), summing bias gradients over all edges. The
handwritten backward here folds them into the kernels instead:

* the LayerNorm backward kernel adds ``dL/dagg[dst[e]]`` to each row as it
  reads it, writes that total once (the residual's gradient) and accumulates
  the bias gradient of ``W2`` on the way;
* ``dL/de = total + dL/dpre @ W_e`` is one ``addmm``;
* ``dL/db1 = sum_e dL/dpre_e = sum_j dL/dp_src[j]``: a sum over the sender
  nodes, not the edges.

Without ``return_edges`` (the last layer on an edge set) the forward ends in
one kernel for the LayerNorm, the residual and the sum over receivers
(``layer_norm_residual_segment_sum``): ``e'`` is summed in registers and
never written or read back.

Saved for backward: ``e``, the pre-activation's edge part ``x = W_e e + b1``
(or, on the GEMM-fused path, the whole pre-activation), ``y`` (the LayerNorm
input) and the row statistics; ``a = silu(...)`` is not kept (3.2 GB on the
3.1 M mesh2grid edges; keeping it made the GraphCast-size step 54 GiB
instead of 45 GiB for no gain in speed). The cuBLAS path recomputes it (one
gather-add-SiLU pass, ~2 ms there); the GEMM-fused path never writes it: the
second layer's product and weight gradient apply the SiLU to ``pre`` as they
load it (``silu_linear``, ``silu_weight_grad``), which took the mesh2grid
layer's peak from 25.8 to 23.3 GiB
(``benchmarks/results/benchmark_nvidia-h200_2026-11-21_7bf9aa0.md``). In
eager mode without saved-tensor hooks (no activation checkpointing around
it) ``y`` and ``x`` are dropped inside the backward right after their last use (saved tensors would live until it
returns): the mesh2grid layer's peak went from 31.0 to 27.3 GiB on the H200
(``benchmarks/results/benchmark_nvidia-h200_2026-11-21_8af4d24_extra.json``).

Two paths for the edge MLP's GEMMs (``edge_gemm``):

* ``"cublas"``: cuBLAS GEMMs with the gathers, SiLU and residual in
  separate Triton kernels.
* ``"triton"``: Triton GEMMs with those folded into their epilogues
  (:mod:`weathergnn.ops.triton.edge_linear`, fed by TMA on compute
  capability >= 9: :mod:`weathergnn.ops.triton.edge_linear_tma`); the node
  tables are not kept for backward, no ``[E, L]`` residual-gradient
  buffer is written first and ``silu(pre)`` is never written. On the H200
  (7bf9aa0 run) the mesh2grid layer takes 23.3 against 30.2 GiB at 49.7
  against 49.4 ms compiled; the GraphCast-size compiled step 45.5 against
  52.5 GiB at 223.7 against 225.0 ms (84894ed run), 236.1 ms at 45.5 GiB in
  the 98759a2 run (``benchmarks/results/benchmark_nvidia-h200_2026-11-21_*``).
* ``"auto"`` (default): ``"triton"`` where the TMA-fed kernel runs (CUDA,
  compute capability >= 9, widths multiples of 16), ``"cublas"`` elsewhere
  (the pointer-fed Triton GEMM reaches 230-340 TFLOP/s against cuBLAS's 650,
  ``kernel_sweeps_h200_2026-11-21/edge_linear_sweep_8af4d24.json``).

On the GEMM-fused path the whole interaction layer (projections, this
edge update, the node MLP) can run as one autograd node instead,
:class:`InteractionUpdate` (``InteractionLayer`` picks it with
:func:`use_interaction_update`): the gradients that meet at the receivers'
latents are then summed in product epilogues (``linear_add``), not by
autograd in passes over ``[B, Nd, L]``. On the H200 that made the layer
1.6-1.9% and the GraphCast-size step 1.1% faster in the same run
(``benchmarks/results/benchmark_nvidia-h200_2026-11-21_4daec68_one-node-ab.md``,
``..._4daec68_step-one-node-ab.md``).

Shapes: ``B`` batch, ``E`` edges, ``Ns``/``Nd`` nodes, ``L`` latent, ``H`` hidden.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from weathergnn.ops import custom_ops as C
from weathergnn.ops.dispatch import compute_dtype


def use_fused_gemm(edge_gemm: str, e: torch.Tensor, hidden: int, dtype: torch.dtype | None = None) -> bool:
    """Resolve an ``edge_gemm`` setting (module docstring) for edge latents ``e`` [.., L] and hidden width H,
    the products running in ``dtype`` (default ``e.dtype``)."""
    if edge_gemm != "auto":
        return edge_gemm == "triton"
    from weathergnn.ops.triton import edge_linear

    return edge_linear.tma_kernel_runs(e.device, dtype or e.dtype, (e.shape[-1], hidden))


def _saved_tensor_hooks_active() -> bool:
    """True inside ``torch.autograd.graph.saved_tensors_hooks`` (e.g. ``torch.utils.checkpoint``).

    Uses torch's private query of the innermost default hooks; if it is missing,
    answers True (the safe side: save everything through ``save_for_backward``).
    """
    top = getattr(torch._C._autograd, "_top_saved_tensors_default_hooks", None)
    return True if top is None else top(False) is not None


def _edge_forward(ctx, e, p_src, p_dst, w1, b1, w2, b2, gamma, beta, eps, src, dst, dst_ptr, src_perm, src_ptr,
                  dst_pieces, dst_groups, src_pieces, src_groups, fused_gemm, return_edges):
    """The edge update's forward (:class:`InteractionEdgeUpdate`): sets its flags on ``ctx`` and returns
    ``(e' [B, E, L] or None, agg [B, Nd, L], tensors to save)``; the caller passes the latter to
    ``ctx.save_for_backward`` (with its own) and back to :func:`_edge_backward`."""
    ctx.return_edges = return_edges
    bsz, n_e = p_src.shape[0], src.shape[0]
    static = e.dim() == 2
    ctx.fused = fused_gemm
    if ctx.fused:
        pre = C.linear_gather_add(e, w1, b1, p_src, p_dst, src, dst)  # [B, E, H]
        y = C.silu_linear(pre, w2, b2)  # [B, E, L]; silu(pre) is never written
    else:
        pre = F.linear(e, w1, b1)  # x = W_e e + b1: [(B,) E, H]
        pre = pre.unsqueeze(0).expand(bsz, -1, -1).contiguous() if static else pre
        a = C.gather_add_silu(pre, p_src, p_dst, src, dst, dst_ptr, src_perm, src_ptr,
                              dst_pieces, dst_groups, src_pieces, src_groups)  # [B, E, H]
        y = F.linear(a, w2, b2)  # [B, E, L]
        del a  # recomputed in backward: one [B, E, H] tensor less to keep
    length = y.shape[-1]
    e_new = None
    if return_edges:
        res = e.expand(bsz, n_e, length) if static else e
        out, mean, rstd = C.layer_norm_residual(y.reshape(-1, length), res.reshape(-1, length), gamma, beta, eps)
        e_new = out.view(bsz, n_e, length)
        agg = C.segment_sum(e_new, dst_ptr, dst, dst_pieces, dst_groups)  # [B, Nd, L]
    else:  # e' is needed only through agg: summed per receiver in registers, never written
        mean, rstd, agg = C.layer_norm_residual_segment_sum(
            y.view(bsz, n_e, length), e, gamma, beta, eps, dst_ptr, dst_pieces, dst_groups)  # [B*E] x 2, [B, Nd, L]
    ctx.static = static
    ctx.node_dtypes = (p_src.dtype, p_dst.dtype)
    # Eager: y and pre ride on ctx, not in save_for_backward, so the backward can drop each after
    # its last use (saved tensors would live until it returns). Compiled graphs free them by liveness.
    # Under saved-tensor hooks (activation checkpointing, offloading) they must be saved, for the
    # hooks to drop them: on ctx they would stay alive through the whole checkpointed forward
    # (step peak 16.9 -> 34.9 GiB at 5d5f5d1).
    ctx.eager = not torch.compiler.is_compiling() and not _saved_tensor_hooks_active()
    nodes = () if ctx.fused else (p_src, p_dst)  # the fused backward needs no node tables
    big = _stash_big(ctx, "big", [y, pre])
    saved = [e, mean, rstd, w1, w2, gamma, src, dst, dst_ptr,
             src_perm, src_ptr, dst_pieces, dst_groups, src_pieces, src_groups, *nodes, *big]
    return e_new, agg, saved


def _stash_big(ctx, name: str, big: list) -> list:
    """The large activations ``big`` a backward reads once each: in eager mode (``ctx.eager``) kept on
    ``ctx.<name>`` so the backward can drop each after its last use (saved tensors live until it
    returns), and an empty list returned; otherwise returned, for ``save_for_backward``."""
    if ctx.eager:
        setattr(ctx, name, big)
        return []
    return big


def _unstash_big(ctx, name: str, saved: list, count: int) -> list:
    """The ``count`` tensors :func:`_stash_big` kept: from ``ctx.<name>`` (then cleared) or the tail of
    ``saved``, which is shortened in place."""
    if ctx.eager:
        big = getattr(ctx, name)
        setattr(ctx, name, None)
        return big
    n = len(saved) - count
    big = saved[n:]
    del saved[n:]
    return big


def _edge_backward(ctx, saved, g_e_new, g_agg, need_e):
    """The edge update's backward from the tensors :func:`_edge_forward` gave to save (the list is
    emptied, so each tensor can be freed after its last use).

    Returns:
        ``(dL/de, dL/dp_src, dL/dp_dst, dL/dW_e, dL/db1, dL/dW2, dL/db2, dL/dgamma, dL/dbeta)``.
    """
    big = _unstash_big(ctx, "big", saved, 2)
    y, pre = big
    big.clear()
    (e, mean, rstd, w1, w2, gamma, src, dst, dst_ptr,
     src_perm, src_ptr, dst_pieces, dst_groups, src_pieces, src_groups, *nodes) = saved
    saved.clear()
    bsz, n_e, length = y.shape
    hidden = pre.shape[-1]
    ps_dtype, pd_dtype = ctx.node_dtypes
    fused = ctx.fused
    g_rows = g_e_new.reshape(-1, length) if g_e_new is not None else None
    # fused: the residual's gradient dL/de' + dL/dagg[dst] is rebuilt in the last GEMM's epilogue
    gy, sums, g_tot = C.layer_norm_residual_backward(
        g_rows, y.view(-1, length), gamma, mean, rstd, g_agg, dst if g_agg is not None else None,
        need_e and not fused,
    )  # gy [B*E, L]; g_tot [B*E, L] = dL/de' + dL/dagg[dst] when written
    g_gamma, g_beta, g_b2 = sums.unbind(0)
    del y
    if fused:  # silu(pre) is applied on load by both kernels, never written
        gy = gy.view(bsz, n_e, length)
        g_w2 = C.silu_weight_grad(gy, pre)  # [L, H] float32
        g_pre = C.linear_silu_backward(gy, w2, pre)  # [B, E, H]
        del pre, gy
    else:
        p_src, p_dst = nodes
        a = C.gather_add_silu(pre, p_src, p_dst, src, dst, dst_ptr, src_perm, src_ptr,
                              dst_pieces, dst_groups, src_pieces, src_groups)  # recomputed [B, E, H]
        g_w2 = gy.t().mm(a.view(-1, hidden))  # [L, H]
        del a
        g_a = gy.view(bsz, n_e, length).matmul(w2)  # [B, E, H]
        del gy
        g_pre = C.gather_add_silu_backward(g_a, pre, p_src, p_dst, src, dst)  # [B, E, H]
        del g_a, pre
    del nodes
    g_ps = C.csr_sum(g_pre, src_ptr, src_perm, None, None, src_pieces, src_groups).to(ps_dtype)  # [B, Ns, H]
    g_pd = C.csr_sum(g_pre, dst_ptr, None, None, None, dst_pieces, dst_groups).to(pd_dtype)  # [B, Nd, H]
    g_b1 = g_ps.float().sum((0, 1))  # = sum over edges of dL/dpre
    if ctx.static:
        g_pre_e = g_pre.sum(0) if bsz > 1 else g_pre[0]  # [E, H]
        g_w1 = g_pre_e.t().mm(e)  # [H, L_e]
    else:
        g_pre_e = g_pre
        g_w1 = g_pre.view(-1, hidden).t().mm(e.reshape(-1, e.shape[-1]))
    g_e = None
    if need_e and fused:
        g_out = g_e_new.reshape(bsz, n_e, length) if g_e_new is not None else None
        g_e = C.linear_residual_backward(g_pre_e, w1, g_out, g_agg, dst, bsz)  # [E, L] or [B, E, L]
    elif need_e:
        # residual + W_e path, accumulated into g_tot in place (out-of-place addmm copies C first)
        g_e = g_tot.addmm_(g_pre.view(-1, hidden), w1).view(bsz, n_e, -1)
        if ctx.static:
            g_e = g_e.sum(0)
    return (g_e, g_ps, g_pd, g_w1.to(w1.dtype), g_b1, g_w2.to(w2.dtype), g_b2, g_gamma, g_beta)


class InteractionEdgeUpdate(torch.autograd.Function):
    """``(e [E, L] | [B, E, L], p_src [B, Ns, H], p_dst [B, Nd, H], weights..., indices...) -> (e' [B, E, L], agg [B, Nd, L])``.

    With ``return_edges`` False the outputs are ``(agg,)``: ``e'`` is formed
    and summed but is no output, so no gradient of it enters the backward
    (a compiled graph would otherwise pass zeros for an unused one).
    """

    @staticmethod
    def forward(ctx, e, p_src, p_dst, w1, b1, w2, b2, gamma, beta, eps, src, dst, dst_ptr, src_perm, src_ptr,
                dst_pieces, dst_groups, src_pieces, src_groups, fused_gemm, return_edges=True):
        ctx.set_materialize_grads(False)
        e_new, agg, saved = _edge_forward(ctx, e, p_src, p_dst, w1, b1, w2, b2, gamma, beta, eps, src, dst,
                                          dst_ptr, src_perm, src_ptr, dst_pieces, dst_groups, src_pieces,
                                          src_groups, fused_gemm, return_edges)
        ctx.save_for_backward(*saved)
        return (e_new, agg) if return_edges else agg

    @staticmethod
    def backward(ctx, *grads):
        g_e_new, g_agg = grads if ctx.return_edges else (None, grads[0])
        grads = _edge_backward(ctx, list(ctx.saved_tensors), g_e_new, g_agg, ctx.needs_input_grad[0])
        return (*grads, None, None, None, None, None, None, None, None, None, None, None, None)


class InteractionUpdate(torch.autograd.Function):
    """A whole interaction layer as one autograd node: the sender and receiver projections, the edge update
    (:func:`_edge_forward`) and the node update.

    ``p_dst = h_dst W_d^T``, ``p_src = h_src W_s^T`` (or given), ``(e', agg)`` as
    :class:`InteractionEdgeUpdate`, then
    ``h' = h_dst + LN(W_n2 silu(agg W_a^T + h_dst W_h^T + b_n1) + b_n2)``
    (Lam et al. 2023, supplement sec. 3.3: the node MLP on ``[h_i, agg_i]``
    with its first layer split by input block).

    Why one node: ``h_dst`` meets three products (``W_d``, ``W_h`` and the
    residual) and, on the processor's mesh, ``W_s`` as well. Separate autograd
    nodes leave autograd to add their gradients in a pass over ``[Nd, L]``
    reading three or four tensors, and the node MLP's two first-layer products
    to be added in another. Here the sums run in product epilogues
    (``linear_add``): ``pre_n = agg W_a^T + (h_dst W_h^T + b_n1)``, and in the
    backward ``dL/dh_dst = ((dL/dh' + dL/dpre_n W_h) + dL/dp_dst W_d) (+ dL/dp_src W_s)``,
    each bracket the addend read by the next product.

    ``src_mode``: ``"given"`` (``x_src`` is ``p_src`` [B, Ns, H], the mappers'
    senders projected once for all receiver chunks), ``"same"`` (senders are
    the receivers, ``x_src`` None: the processor), ``"nodes"`` (``x_src`` is
    ``h_src`` [B, Ns, L]). Outputs: ``(h' [B, Nd, L], e' [B, E, L])``, or
    ``h'`` alone without ``return_edges``. Only the GEMM-fused edge path
    (``fused_gemm``) with the SiLU-on-load node MLP runs here
    (:func:`use_interaction_update`).
    """

    @staticmethod
    def forward(ctx, e, x_src, h_dst, w_s, w_d, w1, b1, w2, b2, gamma, beta, eps, w_h, w_a, b_n1, w_n2, b_n2,
                gamma_n, beta_n, eps_n, src, dst, dst_ptr, src_perm, src_ptr, dst_pieces, dst_groups, src_pieces,
                src_groups, src_mode, return_edges=True):
        ctx.set_materialize_grads(False)
        bsz, n_dst, length = h_dst.shape
        hidden = w_d.shape[0]
        h2 = h_dst.reshape(-1, length)
        p_dst = h2.mm(w_d.t()).view(bsz, n_dst, hidden)
        if src_mode == "given":
            p_src = x_src
        elif src_mode == "same":
            p_src = h2.mm(w_s.t()).view(bsz, n_dst, hidden)
        else:
            p_src = x_src.reshape(-1, x_src.shape[-1]).mm(w_s.t()).view(bsz, -1, hidden)
        e_new, agg, edge_saved = _edge_forward(ctx, e, p_src, p_dst, w1, b1, w2, b2, gamma, beta, eps, src, dst,
                                               dst_ptr, src_perm, src_ptr, dst_pieces, dst_groups, src_pieces,
                                               src_groups, True, return_edges)
        del p_src, p_dst
        agg2 = agg.view(-1, agg.shape[-1])
        pre_n = C.linear_add(agg2, w_a.t(), torch.addmm(b_n1, h2, w_h.t()))  # [B*Nd, Hn], no add pass
        y_n = C.silu_linear(pre_n.unsqueeze(0), w_n2, None)[0]  # [B*Nd, L]; b_n2 is added by the LayerNorm
        h_new, mean_n, rstd_n = C.layer_norm_residual(y_n, h2, gamma_n, beta_n, eps_n, b_n2)
        big = _stash_big(ctx, "node_big", [pre_n, y_n])  # as in _edge_forward
        ctx.n_edge_saved = len(edge_saved)
        ctx.src_mode = src_mode
        ctx.node_shape = (bsz, n_dst, length)
        ctx.save_for_backward(*edge_saved, h2, agg2, mean_n, rstd_n, w_h, w_a, w_n2, gamma_n, b_n2, w_d, w_s,
                              x_src if src_mode == "nodes" else None, *big)
        h_new = h_new.view(bsz, n_dst, length)
        return (h_new, e_new) if return_edges else h_new

    @staticmethod
    def backward(ctx, *grads):
        g_h, g_e_new = grads if ctx.return_edges else (grads[0], None)
        saved = list(ctx.saved_tensors)
        edge_saved, node_saved = saved[:ctx.n_edge_saved], saved[ctx.n_edge_saved:]
        del saved
        big = _unstash_big(ctx, "node_big", node_saved, 2)
        pre_n, y_n = big
        big.clear()
        h2, agg2, mean_n, rstd_n, w_h, w_a, w_n2, gamma_n, b_n2, w_d, w_s, x_src = node_saved
        del node_saved
        bsz, n_dst, length = ctx.node_shape
        rows, hidden_n = pre_n.shape
        g_h2 = g_h.reshape(rows, length) if g_h is not None else h2.new_zeros(rows, length)
        # node MLP, the second layer and the SiLU as in silu_linear's backward
        gy_n, sums_n, _ = C.layer_norm_residual_backward(g_h2, y_n, gamma_n, mean_n, rstd_n, None, None, False,
                                                         b_n2)
        del y_n
        g_gamma_n, g_beta_n, g_bn2 = sums_n.unbind(0)
        gy_n = gy_n.view(1, rows, length)
        g_wn2 = C.silu_weight_grad(gy_n, pre_n.unsqueeze(0))  # [L, Hn] float32
        g_pre_n = C.linear_silu_backward(gy_n, w_n2, pre_n.unsqueeze(0))[0]  # [B*Nd, Hn]
        del gy_n, pre_n
        g_agg = g_pre_n.mm(w_a).view(bsz, n_dst, -1)  # [B, Nd, L]
        g_wa = g_pre_n.t().mm(agg2)
        g_wh = g_pre_n.t().mm(h2)
        g_bn1 = g_pre_n.sum(0, dtype=torch.float32)
        del agg2
        g_hd = C.linear_add(g_pre_n, w_h, g_h2)  # dL/dh' (the residual) + dL/dpre_n W_h
        del g_pre_n, g_h2
        g_e, g_ps, g_pd, g_w1, g_b1, g_w2, g_b2, g_gamma, g_beta = _edge_backward(
            ctx, edge_saved, g_e_new, g_agg, ctx.needs_input_grad[0])
        del g_agg
        hidden = g_pd.shape[-1]
        g_pd = g_pd.reshape(rows, hidden)
        g_hd = C.linear_add(g_pd, w_d, g_hd)  # + dL/dp_dst W_d
        g_wd = g_pd.t().mm(h2)
        g_xs = g_ws = None
        if ctx.src_mode == "same":
            g_ps = g_ps.reshape(rows, hidden)
            g_hd = C.linear_add(g_ps, w_s, g_hd)  # + dL/dp_src W_s: senders are the receivers
            g_ws = g_ps.t().mm(h2)
        elif ctx.src_mode == "nodes":
            g_ps2 = g_ps.reshape(-1, hidden)
            g_xs = g_ps2.mm(w_s).view(x_src.shape)
            g_ws = g_ps2.t().mm(x_src.reshape(-1, x_src.shape[-1]))
        else:
            g_xs = g_ps
        g_hd = g_hd.view(bsz, n_dst, length)
        return (g_e, g_xs, g_hd, g_ws, g_wd, g_w1, g_b1, g_w2, g_b2, g_gamma, g_beta, None,
                g_wh, g_wa, g_bn1.to(w_h.dtype), g_wn2.to(w_n2.dtype), g_bn2.to(b_n2.dtype),
                g_gamma_n.to(gamma_n.dtype), g_beta_n.to(gamma_n.dtype), None,
                None, None, None, None, None, None, None, None, None, None, None)


#: Run :class:`InteractionUpdate` where it applies; off: the split layer (the benchmarks' same-run comparison).
ONE_NODE = True


def use_interaction_update(e, h_dst, edge_gemm: str, node_mlp) -> bool:
    """Whether :class:`InteractionUpdate` runs for an interaction layer (Triton backend resolved by the caller):
    the edge MLP on the GEMM-fused path and a node MLP whose second layer applies the SiLU on load with
    ``b2`` in its LayerNorm (``MLP.silu_gemm``, ``MLP.bias_in_norm``), no padding, hidden widths equal."""
    from torch import nn

    dtype = compute_dtype(h_dst)
    lin1, lin2 = node_mlp.lin1, node_mlp.lin2
    return (ONE_NODE and use_fused_gemm(edge_gemm, e, lin1.out_features, dtype)
            and use_fused_gemm(node_mlp.silu_gemm, e, lin2.out_features, dtype)
            and node_mlp.bias_in_norm and isinstance(node_mlp.norm, nn.LayerNorm)
            and not node_mlp.in_pad and not node_mlp.out_pad and lin2.out_features == h_dst.shape[-1])


def interaction_update(e, h_src, p_src, h_dst, edges, edge_mlp, node_mlp, return_edges: bool = True):
    """Run :class:`InteractionUpdate` in the autocast dtype (bf16 under autocast).

    Args:
        e: [E, L] or [B, E, L]; h_src: [B, Ns, L] or None (then ``p_src``
            [B, Ns, H] is given); h_dst: [B, Nd, L]. ``h_src is h_dst``: the
            senders are the receivers (the processor).
        edges: ``EdgeBuffers`` / ``Adjacency``.
        edge_mlp: ``weathergnn.models.mlp.EdgeMLP``; node_mlp: ``MLP`` on ``[h, agg]``
            (``lin1`` [Hn, 2 L]: its first ``L`` columns meet ``h_dst``, the rest ``agg``).
        return_edges: as :func:`interaction_edge_update`.

    Returns:
        (h' [B, Nd, L], e' [B, E, L] or None).

    Raises:
        ValueError: neither ``h_src`` nor ``p_src`` given.
    """
    if h_src is None and p_src is None:
        raise ValueError("interaction_update: give the senders' latents h_src or their projections p_src")
    dtype = compute_dtype(h_dst)
    length = h_dst.shape[-1]
    src_mode = "given" if h_src is None else "same" if h_src is h_dst else "nodes"
    x_src = p_src if h_src is None else None if src_mode == "same" else h_src
    w_s = None if src_mode == "given" else edge_mlp.lin_src.weight  # given projections: W_s is not used here
    with torch.autocast(h_dst.device.type, enabled=False):
        cast = [None if t is None else t.to(dtype) for t in (
            e, x_src, h_dst, w_s, edge_mlp.lin_dst.weight, edge_mlp.lin_edge.weight,
            edge_mlp.lin_edge.bias, edge_mlp.lin2.weight, edge_mlp.lin2.bias,
            node_mlp.lin1.weight[:, :length], node_mlp.lin1.weight[:, length:], node_mlp.lin1.bias,
            node_mlp.lin2.weight, node_mlp.lin2.bias)]
        e_c, xs, hd, w_s, w_d, w1, b1, w2, b2, w_h, w_a, b_n1, w_n2, b_n2 = cast
        out = InteractionUpdate.apply(
            e_c, xs, hd, w_s, w_d, w1, b1, w2, b2, edge_mlp.norm.weight, edge_mlp.norm.bias, edge_mlp.norm.eps,
            w_h, w_a, b_n1, w_n2, b_n2, node_mlp.norm.weight, node_mlp.norm.bias, node_mlp.norm.eps,
            edges.src, edges.dst, edges.dst_ptr, edges.src_perm, edges.src_ptr,
            edges.dst_pieces, edges.dst_groups, edges.src_pieces, edges.src_groups, src_mode, return_edges,
        )
        return out if return_edges else (out, None)


def interaction_edge_update(e, p_src, p_dst, edges, lin_edge, lin2, norm, edge_gemm: str = "auto",
                            return_edges: bool = True):
    """Run :class:`InteractionEdgeUpdate` in the autocast dtype (bf16 under autocast).

    Args:
        e: [E, L] or [B, E, L] edge latents.
        p_src: [B, Ns, H] = ``W_s h_src``; p_dst: [B, Nd, H] = ``W_d h_dst``.
        edges: ``EdgeBuffers`` / ``Adjacency`` (with the piece offsets).
        lin_edge, lin2: the ``nn.Linear`` layers (edge part of layer 1, layer 2);
            norm: the ``nn.LayerNorm``.
        edge_gemm: ``"auto"``, ``"cublas"`` or ``"triton"`` (module docstring).
        return_edges: False: ``e'`` is not returned (``None`` in its place)
            and is no output of the autograd node (:class:`InteractionEdgeUpdate`).

    Returns:
        (e' [B, E, L] or None, agg [B, Nd, L]).
    """
    dev, dtype = p_src.device.type, compute_dtype(p_src)
    with torch.autocast(dev, enabled=False):
        cast = [t.to(dtype) for t in (e, p_src, p_dst, lin_edge.weight, lin_edge.bias, lin2.weight, lin2.bias)]
        e_c, ps, pd, w1, b1, w2, b2 = cast
        out = InteractionEdgeUpdate.apply(
            e_c, ps, pd, w1, b1, w2, b2, norm.weight, norm.bias, norm.eps,
            edges.src, edges.dst, edges.dst_ptr, edges.src_perm, edges.src_ptr,
            edges.dst_pieces, edges.dst_groups, edges.src_pieces, edges.src_groups,
            use_fused_gemm(edge_gemm, e_c, w1.shape[0]), return_edges,
        )
        return out if return_edges else (None, out)
