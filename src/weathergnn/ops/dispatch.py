"""Public message-passing entry points; each call selects a backend.

Backends:

* ``"torch"`` -- the plain-torch references (:mod:`weathergnn.ops.reference`);
* ``"triton"`` -- the fused kernels (:mod:`weathergnn.ops.custom_ops`), on CUDA,
  or on CPU tensors under the Triton interpreter (``TRITON_INTERPRET=1``);
* ``"auto"`` -- ``"triton"`` for CUDA tensors when Triton is installed, else
  ``"torch"``; decided per call from the tensor's device.

The backend is an argument, not module-global state: a model checks its
setting once at construction (:func:`resolve_backend`, which fails early for an
unavailable backend) and passes it to every call. Edge index arrays come from
an :class:`~weathergnn.ops.adjacency.Adjacency` or a
``weathergnn.models.processors.EdgeBuffers`` (same attribute names).
"""

from __future__ import annotations

import torch

from weathergnn.ops import reference
from weathergnn.ops import triton as triton_backend

BACKENDS = ("auto", "torch", "triton")


def resolve_backend(backend: str = "auto", device: torch.device | str | None = None) -> str:
    """Check a backend setting and say which backend a call on ``device`` uses.

    Args:
        backend: ``"auto"``, ``"torch"`` or ``"triton"``.
        device: where the tensors live; ``None`` means "a CUDA device, later"
            (used at model construction, before ``.to(device)``).

    Returns:
        ``"torch"`` or ``"triton"``.

    Raises:
        ValueError: unknown name.
        RuntimeError: ``"triton"`` requested where it cannot run (no Triton
            package, no CUDA device, or CPU tensors without ``TRITON_INTERPRET=1``);
            the message says which.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown ops backend {backend!r}; expected one of {BACKENDS}")
    if backend == "torch":
        return "torch"
    if backend == "triton":
        if not triton_backend.available(device):
            raise RuntimeError(f"ops backend 'triton' is unavailable: {triton_backend.unavailable_reason(device)}")
        return "triton"
    dev = torch.device(device) if device is not None else None
    if dev is not None and dev.type == "cuda" and triton_backend.available(dev):
        return "triton"
    return "torch"


def compute_dtype(t: torch.Tensor) -> torch.dtype:
    """The dtype a product on ``t`` runs in: the autocast dtype of ``t``'s device where autocast is on
    (bf16 in training), else ``t``'s own."""
    dev = t.device.type
    return torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else t.dtype


def _pieces(edges) -> tuple:
    """The two-pass piece offsets of an edge set (dst view, then transpose), None where absent."""
    return tuple(getattr(edges, n, None) for n in ("dst_pieces", "dst_groups", "src_pieces", "src_groups"))


def _triton_ops(backend: str, tensor: torch.Tensor):
    """The custom-op module when this call runs on Triton, else None."""
    if resolve_backend(backend, tensor.device) != "triton":
        return None
    from weathergnn.ops import custom_ops  # imports triton; only reached when it is usable

    return custom_ops


def gather(x: torch.Tensor, index: torch.Tensor, *, backend: str = "auto") -> torch.Tensor:
    """``[B, N, F], [E] -> [B, E, F]``: ``out[b, e] = x[b, index[e]]`` (torch on every backend)."""
    resolve_backend(backend, x.device)
    return reference.gather(x, index)


def segment_sum(
    messages: torch.Tensor,
    dst_ptr: torch.Tensor,
    dst: torch.Tensor,
    num_nodes: int | None = None,
    *,
    backend: str = "auto",
    pieces: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """``[B, E, F] -> [B, N, F]``: sum of destination-sorted messages per node.

    ``pieces``: optional ``(dst_pieces, dst_groups)`` for the two-pass sum of
    long segments (Triton only; ``EdgeBuffers`` carries them).

    Nodes without incoming edges get zeros. Triton: one writer per node, float32
    accumulation, no atomics; backward gathers the node gradient per edge.
    See :func:`reference.segment_sum`.

    Raises:
        ValueError: ``num_nodes`` differs from ``len(dst_ptr) - 1``.
    """
    if num_nodes is not None and num_nodes != dst_ptr.shape[0] - 1:
        raise ValueError(f"num_nodes {num_nodes} does not match dst_ptr of length {dst_ptr.shape[0]}")
    ops = _triton_ops(backend, messages)
    if ops is None:
        return reference.segment_sum(messages, dst_ptr, dst, num_nodes)
    p, g = pieces if pieces is not None else (None, None)
    if torch.compiler.is_compiling():
        return ops.segment_sum(messages, dst_ptr, dst, p, g)
    return ops.eager_segment_sum(messages, dst_ptr, dst, p, g)


def neighbour_sum(
    h: torch.Tensor, edges, coeff: torch.Tensor | None = None, *, backend: str = "auto"
) -> torch.Tensor:
    """``[B, Ns, F] -> [B, Nd, F]``: ``out_i = sum_{j -> i} coeff_ij h_j``.

    Args:
        h: [batch, num_src, features] sender features.
        edges: ``Adjacency`` / ``EdgeBuffers`` (``src``, ``dst``, ``dst_ptr``,
            ``src_perm``, ``src_ptr``, ``src_dst``, ``num_dst``).
        coeff: [E] or [batch, E] edge coefficients, or None for all ones.
        backend: see the module docstring.

    Returns:
        [batch, num_dst, features] in the dtype of ``h``. Triton gathers
        straight from ``h`` (no ``[E, F]`` tensor), in float32 registers.
    """
    ops = _triton_ops(backend, h)
    if ops is None:
        c = coeff if coeff is not None else h.new_ones(edges.src.shape[0])
        return reference.neighbour_sum(h, edges.src, edges.dst, edges.dst_ptr, c, edges.num_dst)
    args = (h, coeff, edges.src, edges.dst, edges.dst_ptr, edges.src_perm, edges.src_ptr, edges.src_dst, *_pieces(edges))
    if torch.compiler.is_compiling():
        return ops.neighbour_sum(*args)  # registered operator: traced by torch.compile
    return ops.eager_neighbour_sum(*args)  # same kernels, no torch.library dispatch cost


def gather_add_silu(
    x: torch.Tensor, p_src: torch.Tensor, p_dst: torch.Tensor, edges, *, backend: str = "auto"
) -> torch.Tensor:
    """``silu(x + p_src[:, src] + p_dst[:, dst])``: the split first edge-MLP layer.

    Args:
        x: [E, H] or [B, E, H] edge part (bias included).
        p_src: [B, Ns, H], p_dst: [B, Nd, H] node parts.
        edges: edge index arrays as for :func:`neighbour_sum`.

    Returns:
        [B, E, H]. Triton never stores the pre-activation (recomputed in backward).
    """
    ops = _triton_ops(backend, x)
    if ops is None:
        return reference.gather_add_silu(x, p_src, p_dst, edges.src, edges.dst)
    if x.dim() == 2:
        x = x.unsqueeze(0).expand(p_src.shape[0], -1, -1)
    return ops.gather_add_silu(
        x, p_src, p_dst, edges.src, edges.dst, edges.dst_ptr, edges.src_perm, edges.src_ptr, *_pieces(edges)
    )


def layer_norm_residual(
    y: torch.Tensor, res: torch.Tensor, norm: torch.nn.LayerNorm, *, backend: str = "auto",
    y_bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """``res + norm(y + y_bias)`` over the last dim; ``res`` broadcasts to ``y`` ([..., L]).

    ``y_bias`` [L] (optional): the bias of the product that made ``y``. Triton
    adds it on load, and its gradient is the row sum of ``dL/dy`` that the
    backward kernel forms anyway (no reduction pass of its own).

    Triton: one pass (read ``y`` and ``res``, write the sum); the result has
    the dtype of ``y`` (bf16 under autocast), the torch path that of the sum.
    """
    ops = _triton_ops(backend, y)
    if ops is None:
        return res + norm(y if y_bias is None else y + y_bias)
    length = y.shape[-1]
    res = res.expand_as(y)
    out, _, _ = ops.layer_norm_residual(
        y.reshape(-1, length), res.reshape(-1, length), norm.weight, norm.bias, norm.eps, y_bias
    )
    return out.view(y.shape)


def layer_norm(y: torch.Tensor, norm: torch.nn.LayerNorm, *, backend: str = "auto",
               y_bias: torch.Tensor | None = None) -> torch.Tensor:
    """``norm(y + y_bias)`` over the last dim (``y_bias`` as :func:`layer_norm_residual`).

    Triton: the output keeps the dtype of ``y`` (bf16 under autocast, so the
    activation stream stays bf16 and following Linears need no cast); torch:
    ``norm(y)`` as is (float32 under autocast).
    """
    ops = _triton_ops(backend, y)
    if ops is None:
        return norm(y if y_bias is None else y + y_bias)
    length = y.shape[-1]
    out, _, _ = ops.layer_norm_residual(y.reshape(-1, length), None, norm.weight, norm.bias, norm.eps, y_bias)
    return out.view(y.shape)


def linear_silu(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, *,
                backend: str = "auto") -> torch.Tensor:
    """``silu(x W^T + b)``, an MLP's first layer, in the autocast dtype like ``F.linear``.

    Args:
        x: [..., K] input; weight: [H, K]; bias: [H] or None.

    Returns:
        [..., H]. Triton, for ``K <= 32`` input features
        (:mod:`weathergnn.ops.triton.narrow_linear_silu`): one pass that writes
        the activation, the pre-activation never stored, and a backward that
        reads ``dL/da`` once. Otherwise (wider inputs, or the torch backend)
        ``F.silu(F.linear(x, weight, bias))``.
    """
    ops = _triton_ops(backend, x)
    if ops is None or x.shape[-1] > triton_backend.NARROW_MAX_FEATURES:
        return reference.linear_silu(x, weight, bias)
    dev, dtype = x.device.type, compute_dtype(x)
    with torch.autocast(dev, enabled=False):
        return ops.narrow_linear_silu(x.to(dtype), weight.to(dtype), None if bias is None else bias.to(dtype))


def silu_linear(pre: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, *,
                backend: str = "auto", gemm: str = "auto") -> torch.Tensor:
    """``silu(pre) W^T + b``, an MLP's second layer with its activation, in the autocast dtype like ``F.linear``.

    Args:
        pre: [..., H] pre-activation of the first layer; weight: [N, H]; bias: [N] or None.
        gemm: on the triton backend, ``"triton"``: one GEMM that applies the
            SiLU to each tile of ``pre`` as it loads it, so ``silu(pre)`` is
            never written; its backward forms ``dL/dpre = (dL/dy W) *
            silu'(pre)`` in a GEMM epilogue and the weight gradient with the
            SiLU on load as well (the kernels of the interaction network's
            edge MLP, :mod:`weathergnn.ops.triton.edge_linear`);
            ``"cublas"``: ``F.linear(F.silu(pre), weight, bias)``;
            ``"auto"``: the former where its TMA-fed kernel runs (compute
            capability >= 9, widths that allow it).

    Returns:
        [..., N].

    Raises:
        ValueError: an unknown ``gemm`` setting.
    """
    check_edge_gemm(gemm)
    ops = _triton_ops(backend, pre)
    if ops is None:
        return reference.silu_linear(pre, weight, bias)
    from weathergnn.ops.interaction_edge import use_fused_gemm  # the edge MLP's rule for "auto"

    dev, dtype = pre.device.type, compute_dtype(pre)
    hidden, n_out = pre.shape[-1], weight.shape[0]
    if not use_fused_gemm(gemm, pre, n_out, dtype):
        return reference.silu_linear(pre, weight, bias)
    with torch.autocast(dev, enabled=False):
        y = ops.silu_linear(pre.to(dtype).reshape(1, -1, hidden), weight.to(dtype),
                            None if bias is None else bias.to(dtype))  # one batch of rows: the Gluon kernels' case
    return y.view(*pre.shape[:-1], n_out)


EDGE_GEMMS = ("auto", "cublas", "triton")


def check_edge_gemm(edge_gemm: str) -> str:
    """Validate an ``edge_gemm`` setting (:func:`interaction_edge_update`); returns it.

    Raises:
        ValueError: not one of ``EDGE_GEMMS``.
    """
    if edge_gemm not in EDGE_GEMMS:
        raise ValueError(f"unknown edge_gemm {edge_gemm!r}; expected one of {EDGE_GEMMS}")
    return edge_gemm


def interaction_edge_update(e, p_src, p_dst, edges, lin_edge, lin2, norm, *, backend: str = "auto",
                            edge_gemm: str = "auto", return_edges: bool = True):
    """The interaction network's edge update and its aggregation, ``(e', agg)``.

    ``e' = e + norm(lin2(silu(lin_edge(e) + p_src[:, src] + p_dst[:, dst])))``,
    ``agg = segment_sum(e')``. Triton: one autograd node with a handwritten
    backward (:mod:`weathergnn.ops.interaction_edge`); torch: the references.

    Args:
        e: [E, L] or [B, E, L]; p_src [B, Ns, H]; p_dst [B, Nd, H].
        edges: ``EdgeBuffers`` (with the piece offsets).
        edge_gemm: on the triton backend, the edge MLP's GEMMs on cuBLAS
            (``"cublas"``), as Triton GEMMs with fused epilogues (``"triton"``),
            or the latter where its TMA-fed kernel runs (``"auto"``).
        return_edges: False: ``e'`` is only summed, not returned (Triton: it
            is then no output of the autograd node, so no gradient for it is
            ever formed, not even as zeros by a compiled graph).

    Returns:
        (e' [B, E, L] or None, agg [B, Nd, L]).
    """
    if resolve_backend(backend, p_src.device) == "torch":
        a = reference.gather_add_silu(lin_edge(e), p_src, p_dst, edges.src, edges.dst)
        e_new = e + norm(lin2(a))
        agg = reference.segment_sum(e_new, edges.dst_ptr, edges.dst, edges.num_dst)
        return (e_new if return_edges else None), agg
    from weathergnn.ops.interaction_edge import interaction_edge_update as fused

    return fused(e, p_src, p_dst, edges, lin_edge, lin2, norm, edge_gemm=check_edge_gemm(edge_gemm),
                 return_edges=return_edges)
