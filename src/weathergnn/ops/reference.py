"""Plain-torch references of the message-passing primitives.

Every fast kernel added later (``ops/triton/``) must match these, output and
gradients, and is dispatched through :mod:`weathergnn.ops.dispatch`.

Edges are sorted by destination (CSC, see :class:`weathergnn.graphs.types.EdgeSet`):
the incoming edges of destination node ``i`` are ``dst_ptr[i]:dst_ptr[i + 1]``.
Shapes: ``B`` batch, ``N`` / ``Ns`` / ``Nd`` nodes (sender / receiver set),
``E`` edges, ``F`` features.
"""

from __future__ import annotations

import torch


def gather(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Select node rows per edge: ``out[b, e] = x[b, index[e]]``.

    Args:
        x: [batch, num_nodes, features] node features.
        index: [num_edges] int64 node index per edge (``src`` or ``dst``).

    Returns:
        [batch, num_edges, features]. Backward is a scatter-add into ``x``.
    """
    return x.index_select(1, index)  # [B, E, F]


def segment_sum_index_add(
    messages: torch.Tensor, dst: torch.Tensor, num_nodes: int
) -> torch.Tensor:
    """Sum messages per destination with ``index_add`` (any edge order).

    Args:
        messages: [batch, num_edges, features].
        dst: [num_edges] int64 destination per edge.
        num_nodes: number of destination nodes ``N``.

    Returns:
        [batch, num_nodes, features], zeros for nodes without incoming edges.
        The result has the dtype of ``messages`` (no mixed-dtype index_add).
    """
    b, _, f = messages.shape
    out = messages.new_zeros(b, num_nodes, f)  # [B, N, F], dtype of messages
    return out.index_add(1, dst, messages)


def segment_sum_segment_reduce(messages: torch.Tensor, dst_ptr: torch.Tensor) -> torch.Tensor:
    """Sum messages over contiguous destination segments (``torch.segment_reduce``).

    Needs destination-sorted edges; no atomics, so deterministic.

    Args:
        messages: [batch, num_edges, features], destination-sorted.
        dst_ptr: [num_nodes + 1] int64 CSC offsets, ``dst_ptr[-1] == num_edges``.

    Returns:
        [batch, num_nodes, features], zeros for empty segments.
    """
    b = messages.shape[0]
    lengths = (dst_ptr[1:] - dst_ptr[:-1]).expand(b, -1).contiguous()  # [B, N]
    # unsafe=True skips a validation pass (a host sync on GPU); lengths sum to E by construction.
    return torch.segment_reduce(messages, "sum", lengths=lengths, axis=1, unsafe=True)


def segment_sum(
    messages: torch.Tensor,
    dst_ptr: torch.Tensor,
    dst: torch.Tensor,
    num_nodes: int | None = None,
) -> torch.Tensor:
    """Sum destination-sorted edge messages into their destination nodes.

    ``out[b, i] = sum_{e in dst_ptr[i]:dst_ptr[i+1]} messages[b, e]``.

    Implemented with ``torch.segment_reduce`` over the CSC lengths on every
    device: deterministic (no atomics) and measured faster than ``index_add``:
    CPU (2 cores, 300 k edges x 64 float32) forward 17 vs 38 ms, forward +
    backward 64 vs 76 ms; H200 (bf16, latent 512, batch 1) forward + backward
    0.91 vs 1.82 ms on 327,660 mesh edges and 14.4 vs 17.8 ms on 3.11 M
    mesh2grid edges (forward alone 0.24 vs 1.39 and 4.5 vs 13.7 ms).
    :func:`segment_sum_index_add` stays as a second reference (any edge order).

    Args:
        messages: [batch, num_edges, features].
        dst_ptr: [num_nodes + 1] int64 CSC offsets.
        dst: [num_edges] int64 destinations (non-decreasing); unused by this
            implementation, kept so kernels that want it get it.
        num_nodes: defaults to ``len(dst_ptr) - 1``; must equal it.

    Returns:
        [batch, num_nodes, features] in the dtype of ``messages``.
    """
    if num_nodes is not None and num_nodes != dst_ptr.shape[0] - 1:
        raise ValueError(f"num_nodes {num_nodes} does not match dst_ptr of length {dst_ptr.shape[0]}")
    return segment_sum_segment_reduce(messages, dst_ptr)


def neighbour_sum(
    h: torch.Tensor,
    src: torch.Tensor,
    dst: torch.Tensor,
    dst_ptr: torch.Tensor,
    coeff: torch.Tensor,
    num_dst: int | None = None,
) -> torch.Tensor:
    """Weighted neighbour sum ``out[b, i] = sum_j coeff[b, ij] * h[b, j]``.

    Reference of the fused aggregation: gather the senders, scale, segment-sum.

    Args:
        h: [batch, num_src_nodes, features] sender features.
        src, dst: [num_edges] int64, destination-sorted.
        dst_ptr: [num_dst + 1] int64 CSC offsets.
        coeff: [num_edges] or [batch, num_edges] edge coefficients. Cast to the
            dtype of ``h`` (under autocast ``h`` may be bf16, ``coeff`` float32).
        num_dst: defaults to ``len(dst_ptr) - 1``.

    Returns:
        [batch, num_dst, features] in the dtype of ``h``.
    """
    coeff = coeff.to(h.dtype)
    messages = gather(h, src) * coeff.unsqueeze(-1)  # [B, E, F]
    return segment_sum(messages, dst_ptr, dst, num_dst)


def gather_add_silu(
    x: torch.Tensor, p_src: torch.Tensor, p_dst: torch.Tensor, src: torch.Tensor, dst: torch.Tensor
) -> torch.Tensor:
    """``silu(x + p_src[:, src] + p_dst[:, dst])``, the split first edge-MLP layer.

    Args:
        x: [E, H] or [B, E, H] edge part (bias included).
        p_src: [B, Ns, H] sender part; p_dst: [B, Nd, H] receiver part.
        src, dst: [E] int64.

    Returns:
        [B, E, H].
    """
    z = x + gather(p_src, src)  # [B, E, H]
    z = z + gather(p_dst, dst)  # [B, E, H]
    return torch.nn.functional.silu(z)


def linear_gather_add_silu(e, w1, b1, p_src, p_dst, src, dst) -> tuple[torch.Tensor, torch.Tensor]:
    """``pre = e W1^T + b1 + p_src[:, src] + p_dst[:, dst]`` and ``silu(pre)``, both [B, E, H].

    Reference of :func:`weathergnn.ops.triton.edge_linear.linear_gather_add_silu`;
    e: [E, L] (static) or [B, E, L]; w1: [H, L]; b1: [H] or None.
    """
    x = torch.nn.functional.linear(e, w1, b1)
    pre = x + gather(p_src, src) + gather(p_dst, dst)  # [B, E, H]
    return pre, torch.nn.functional.silu(pre)


def linear_gather_add(e, w1, b1, p_src, p_dst, src, dst) -> torch.Tensor:
    """``pre`` of :func:`linear_gather_add_silu` alone: [B, E, H]."""
    return linear_gather_add_silu(e, w1, b1, p_src, p_dst, src, dst)[0]


def linear_silu(x, w, b) -> torch.Tensor:
    """``silu(x W^T + b)``: x [..., K], w [H, K], b [H] or None -> [..., H] (an MLP's first layer)."""
    return torch.nn.functional.silu(torch.nn.functional.linear(x, w, b))


def linear_silu_input_grad(grad, x, w, b) -> torch.Tensor:
    """``dL/dx = (dL/da * silu'(x W^T + b)) W`` for ``a = silu(x W^T + b)``: [..., K], computed in float32
    (float64 stays float64), returned in the dtype of ``x``."""
    ct = torch.float64 if x.dtype == torch.float64 else torch.float32
    pre = torch.nn.functional.linear(x.to(ct), w.to(ct), None if b is None else b.to(ct))
    s = torch.sigmoid(pre)
    return ((grad.to(ct) * s * (1 + pre * (1 - s))) @ w.to(ct)).to(x.dtype)


def silu_linear(pre, w2, b2) -> torch.Tensor:
    """``silu(pre) W2^T + b2``: pre [..., H], w2 [L, H], b2 [L] or None -> [..., L] (an MLP's second layer)."""
    return torch.nn.functional.linear(torch.nn.functional.silu(pre), w2, b2)


def linear_silu_backward(grad_y, w2, pre) -> torch.Tensor:
    """``(dL/dy W2) * silu'(pre)`` for ``y = W2 silu(pre)``; grad_y [B, E, L], w2 [L, H], pre [B, E, H]."""
    s = torch.sigmoid(pre)
    return grad_y.matmul(w2) * s * (1 + pre * (1 - s))


def silu_weight_grad(grad_y, pre) -> torch.Tensor:
    """``sum over rows of dL/dy^T silu(pre)``: grad_y [..., L], pre [..., H] -> [L, H] float32."""
    a = torch.nn.functional.silu(pre.float() if pre.dtype != torch.float64 else pre)
    g = grad_y.to(a.dtype)
    return g.reshape(-1, g.shape[-1]).t().mm(a.reshape(-1, a.shape[-1]))


def linear_residual_backward(grad_pre, w1, grad_out, grad_agg, dst, batch: int) -> torch.Tensor:
    """``dL/dpre W1 + dL/de' + dL/dagg[:, dst]``: [B, E, L], or [E, L] summed over the batch for [E, H] input."""
    out = grad_pre.matmul(w1)
    for term in (grad_out, None if grad_agg is None else gather(grad_agg, dst)):  # [B, E, L] each
        if term is not None:
            out = out + (term.sum(0) if grad_pre.dim() == 2 else term)
    return out


def layer_norm_residual_segment_sum(y, res, weight, bias, eps: float, ptr):
    """Statistics of ``LayerNorm(y)`` and the segment sums of ``out = res + LayerNorm(y)`` (float32 or wider).

    y: [B, E, L] destination-sorted rows; res: [E, L], [B, E, L] or None;
    ptr: [N + 1] offsets. Returns ``(mean [B * E], rstd [B * E], agg [B, N, L]
    dtype of y)``; ``agg`` sums ``out`` rounded to the dtype of ``y``.
    """
    acc = torch.float64 if y.dtype == torch.float64 else torch.float32
    x = y.to(acc)
    mean = x.mean(-1)
    rstd = (x.var(-1, unbiased=False) + eps).rsqrt()
    out = (x - mean[..., None]) * rstd[..., None] * weight.to(acc) + bias.to(acc)
    if res is not None:
        out = out + res.to(acc)
    agg = segment_sum(out.to(y.dtype).to(acc), ptr, None).to(y.dtype)
    return mean.reshape(-1), rstd.reshape(-1), agg
