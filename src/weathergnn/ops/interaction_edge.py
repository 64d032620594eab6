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

Shapes: ``B`` batch, ``E`` edges, ``Ns``/``Nd`` nodes, ``L`` latent, ``H`` hidden.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from weathergnn.ops import custom_ops as C


def use_fused_gemm(edge_gemm: str, e: torch.Tensor, hidden: int) -> bool:
    """Resolve an ``edge_gemm`` setting (module docstring) for edge latents ``e`` [.., L] and hidden width H."""
    if edge_gemm != "auto":
        return edge_gemm == "triton"
    from weathergnn.ops.triton import edge_linear

    return edge_linear.tma_kernel_runs(e.device, e.dtype, (e.shape[-1], hidden))


def _saved_tensor_hooks_active() -> bool:
    """True inside ``torch.autograd.graph.saved_tensors_hooks`` (e.g. ``torch.utils.checkpoint``).

    Uses torch's private query of the innermost default hooks; if it is missing,
    answers True (the safe side: save everything through ``save_for_backward``).
    """
    top = getattr(torch._C._autograd, "_top_saved_tensors_default_hooks", None)
    return True if top is None else top(False) is not None


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
        # its last use (saved tensors live until it returns). Compiled graphs free them by liveness.
        # Under saved-tensor hooks (activation checkpointing, offloading) they must be saved, for the
        # hooks to drop them: on ctx they would stay alive through the whole checkpointed forward
        # (step peak 16.9 -> 34.9 GiB at 5d5f5d1).
        ctx.eager = not torch.compiler.is_compiling() and not _saved_tensor_hooks_active()
        nodes = () if ctx.fused else (p_src, p_dst)  # the fused backward needs no node tables
        big = [y, pre]
        if ctx.eager:
            ctx.big, big = big, []
        ctx.save_for_backward(e, mean, rstd, w1, w2, gamma, src, dst, dst_ptr,
                              src_perm, src_ptr, dst_pieces, dst_groups, src_pieces, src_groups, *nodes, *big)
        return (e_new, agg) if return_edges else agg

    @staticmethod
    def backward(ctx, *grads):
        g_e_new, g_agg = grads if ctx.return_edges else (None, grads[0])
        saved = list(ctx.saved_tensors)
        if ctx.eager:
            big, ctx.big = ctx.big, None
        else:
            big, saved = saved[-2:], saved[:-2]
        y, pre = big
        big.clear()
        (e, mean, rstd, w1, w2, gamma, src, dst, dst_ptr,
         src_perm, src_ptr, dst_pieces, dst_groups, src_pieces, src_groups, *nodes) = saved
        del saved
        bsz, n_e, length = y.shape
        hidden = pre.shape[-1]
        ps_dtype, pd_dtype = ctx.node_dtypes
        need_e = ctx.needs_input_grad[0]
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
        return (g_e, g_ps, g_pd, g_w1.to(w1.dtype), g_b1, g_w2.to(w2.dtype), g_b2, g_gamma, g_beta,
                None, None, None, None, None, None, None, None, None, None, None, None)


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
    dev = p_src.device.type
    dtype = torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else p_src.dtype
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
