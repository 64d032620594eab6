"""MLPs of the encoder, processor and decoder (GraphCast: Linear, SiLU, Linear, LayerNorm).

Source: Lam et al. 2023, "GraphCast", supplement sec. 3 (all MLPs one hidden
layer, swish activation, LayerNorm on the output except the final decoder MLP).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from weathergnn.ops import dispatch
from weathergnn.ops.triton import NARROW_MAX_FEATURES  # no Triton import


class MLP(nn.Module):
    """``y = LN(W2 silu(W1 x + b1) + b2)`` (LayerNorm optional).

    Args:
        in_features, hidden, out_features: layer widths.
        layer_norm: apply LayerNorm to the output (off for the output head).
        backend: ops backend of the LayerNorm (Triton keeps the input dtype,
            so under bf16 autocast the output stays bf16 instead of float32).
        align: run the two products with ``in_features`` and ``out_features``
            padded with zeros to multiples of ``align`` (the parameters keep
            their shapes; the padded weight is a per-call copy of a few KiB).
            cuBLAS's Hopper kernels need 16-byte aligned rows: with 188 input
            channels (0.25 deg GraphCast config) or 84 outputs it falls back to
            Ampere kernels with 2-element alignment, about 3.7 ms of the
            GraphCast-size step on the H200 (``benchmarks/results/
            profiles_h200_2026-11-21/step_graphcast-config_7f3f8e1.json``).
            The result is the same: zero columns add exact zeros.
        silu_gemm: the second layer with its SiLU on the triton backend:
            ``"triton"`` (SiLU on load), ``"cublas"`` or ``"auto"`` (the former
            where its TMA-fed kernel runs); ``ValueError`` for anything else.

    With at most ``NARROW_MAX_FEATURES`` inputs (the embedders of static
    graph features) and the Triton backend, the first layer and its SiLU are
    :func:`weathergnn.ops.dispatch.linear_silu`: one pass that writes the
    activation, the pre-activation never stored (``narrow``; the padding of
    ``align`` is then not needed).

    On the Triton backend the second layer takes ``pre`` and applies the
    SiLU as it loads each tile (:func:`weathergnn.ops.dispatch.silu_linear`,
    ``silu_gemm``, same settings as the model's ``edge_gemm``): ``silu(pre)``
    is never written, and the backward forms ``dL/dpre`` in the epilogue of
    the ``dL/dy W2`` product instead of a separate SiLU-derivative pass.

    On the Triton backend with a LayerNorm, ``b2`` is added by the
    LayerNorm kernel on load (``bias_in_norm``): its gradient is the row sum
    of ``dL/dy`` that the LayerNorm backward forms anyway, instead of a
    reduction pass over ``[..., out_features]`` of its own.

    Shapes: ``[..., in_features] -> [..., out_features]``; :meth:`forward`
    also takes ``[..., in_features + pad]`` inputs whose last ``pad =
    -in_features % align`` columns are zero (so a caller that concatenates
    the input anyway pads it in the same pass).
    """

    def __init__(
        self, in_features: int, hidden: int, out_features: int, layer_norm: bool = True, backend: str = "auto",
        align: int = 1, silu_gemm: str = "auto",
    ):
        super().__init__()
        self.lin1 = nn.Linear(in_features, hidden)
        self.act = nn.SiLU()
        self.lin2 = nn.Linear(hidden, out_features)
        self.norm = nn.LayerNorm(out_features) if layer_norm else nn.Identity()
        self.backend = backend
        self.in_pad = -in_features % align
        self.out_pad = -out_features % align
        # Few input features (the static graph-feature embedders): on the Triton backend the first layer and
        # its SiLU run as one pass that never stores the pre-activation (ops/triton/narrow_linear_silu.py).
        self.narrow = in_features <= NARROW_MAX_FEATURES
        # On the Triton backend the second layer's bias is added by the LayerNorm kernel, whose backward
        # already sums dL/dy over rows: b2's gradient without a reduction pass of its own.
        self.bias_in_norm = True
        self.silu_gemm = dispatch.check_edge_gemm(silu_gemm)

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` [..., in_features (+ in_pad zero columns)] -> ``residual + MLP(x)`` [..., out_features].

        ``residual`` (optional, broadcast to the output): added in the
        LayerNorm's pass (one read of each input, one write) instead of a
        separate add over the output.

        Raises:
            ValueError: ``x`` is neither ``in_features`` nor ``in_features + in_pad`` wide.
        """
        width, n_in = x.shape[-1], self.lin1.in_features
        if self.narrow and width == n_in and dispatch.resolve_backend(self.backend, x.device) == "triton":
            return self._tail(None, residual, act=dispatch.linear_silu(x, self.lin1.weight, self.lin1.bias,
                                                                       backend=self.backend))
        if not self.in_pad:
            pre = self.lin1(x)
        elif width in (n_in, n_in + self.in_pad):
            x = F.pad(x, (0, self.in_pad)) if width == n_in else x
            pre = F.linear(x, F.pad(self.lin1.weight, (0, self.in_pad)), self.lin1.bias)
        else:
            raise ValueError(f"MLP input has {width} features, expected {n_in} or {n_in + self.in_pad} (zero-padded)")
        return self._tail(pre, residual)

    def forward_concat(self, *parts: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        """``forward(torch.cat(parts, -1), residual)`` without the concatenation.

        ``W1 [x_1; x_2; ...] = sum_k W1[:, cols_k] x_k``: each part meets its
        column block of ``lin1.weight`` (a strided view, no copy), so neither
        the concatenated input nor its gradient is materialised (at 0.25 deg,
        the decoder's ``[B, G, 2 L]`` would be 2 GiB in bf16 each way).

        Raises:
            ValueError: the part widths do not add up to ``lin1.in_features``.
        """
        widths = [p.shape[-1] for p in parts]
        if sum(widths) != self.lin1.in_features:
            raise ValueError(f"part widths {widths} do not add up to in_features {self.lin1.in_features}")
        pre, lo = None, 0
        for k, part in enumerate(parts):
            w = self.lin1.weight[:, lo : lo + widths[k]]
            term = F.linear(part, w, self.lin1.bias if k == 0 else None)
            pre = term if pre is None else pre + term
            lo += widths[k]
        return self._tail(pre, residual)

    def _tail(self, pre: torch.Tensor | None, residual: torch.Tensor | None = None,
              act: torch.Tensor | None = None) -> torch.Tensor:
        """Second layer and LayerNorm on ``act`` (default ``silu(pre)``, formed by the product on Triton)."""
        y_bias = None
        if self.out_pad:  # [..., out + pad] product, then a view of the first out columns
            act = self.act(pre) if act is None else act
            n_out = self.lin2.out_features
            w2 = F.pad(self.lin2.weight, (0, 0, 0, self.out_pad))
            y = F.linear(act, w2, F.pad(self.lin2.bias, (0, self.out_pad)))[..., :n_out]
        else:
            b2 = self.lin2.bias
            if self.bias_in_norm and isinstance(self.norm, nn.LayerNorm) and (
                    dispatch.resolve_backend(self.backend, (pre if act is None else act).device) == "triton"):
                # b2 added in the LayerNorm's load; its gradient is the LayerNorm backward's row sum of dL/dy
                y_bias, b2 = b2, None
            if act is None:
                y = dispatch.silu_linear(pre, self.lin2.weight, b2, backend=self.backend, gemm=self.silu_gemm)
            else:
                y = F.linear(act, self.lin2.weight, b2)
        if isinstance(self.norm, nn.LayerNorm):
            if residual is not None:
                return dispatch.layer_norm_residual(y, residual, self.norm, backend=self.backend, y_bias=y_bias)
            return dispatch.layer_norm(y, self.norm, backend=self.backend, y_bias=y_bias)
        return y if residual is None else residual + y


class EdgeMLP(nn.Module):
    """MLP over ``[e_ij, h_src[j], h_dst[i]]`` with the first layer split in three.

    ``W1 [e; h_j; h_i] = W_e e + W_s h_j + W_d h_i``: ``W_s h`` and ``W_d h`` are
    computed once per node and then gathered per edge, so the per-edge cost of
    the first layer is one ``latent x hidden`` GEMM instead of three. The
    result is identical to :class:`MLP` on the concatenation (test
    ``test_edge_mlp_split_equals_concat``); :meth:`load_from_concat` copies weights.

    Args:
        edge_features, src_features, dst_features: widths of the three parts.
        hidden, out_features: as :class:`MLP`.
        layer_norm: LayerNorm on the output.
        backend: ops backend (``gather_add_silu`` and ``layer_norm``).
    """

    def __init__(
        self,
        edge_features: int,
        src_features: int,
        dst_features: int,
        hidden: int,
        out_features: int,
        layer_norm: bool = True,
        backend: str = "auto",
    ):
        super().__init__()
        self.lin_edge = nn.Linear(edge_features, hidden)  # carries the bias b1
        self.lin_src = nn.Linear(src_features, hidden, bias=False)
        self.lin_dst = nn.Linear(dst_features, hidden, bias=False)
        self.act = nn.SiLU()
        self.lin2 = nn.Linear(hidden, out_features)
        self.norm = nn.LayerNorm(out_features) if layer_norm else nn.Identity()
        self.backend = backend

    def forward(
        self,
        e: torch.Tensor,
        h_src: torch.Tensor,
        h_dst: torch.Tensor,
        edges,
    ) -> torch.Tensor:
        """Args:
            e: [num_edges, edge_features] or [batch, num_edges, edge_features].
            h_src: [batch, num_src_nodes, src_features].
            h_dst: [batch, num_dst_nodes, dst_features].
            edges: edge index arrays (``EdgeBuffers`` / ``ops.Adjacency``).

        Returns:
            [batch, num_edges, out_features]. (``InteractionLayer`` calls
            ``dispatch.interaction_edge_update`` with these layers instead, to
            fuse the residual and the aggregation.)
        """
        p_src = self.lin_src(h_src)  # [B, Ns, hidden], once per node
        p_dst = self.lin_dst(h_dst)  # [B, Nd, hidden], once per node
        x = self.lin_edge(e)  # [(B,) E, hidden]
        a = dispatch.gather_add_silu(x, p_src, p_dst, edges, backend=self.backend)  # [B, E, hidden]
        y = self.lin2(a)  # [B, E, out]
        if isinstance(self.norm, nn.LayerNorm):
            return dispatch.layer_norm(y, self.norm, backend=self.backend)
        return y

    @torch.no_grad()
    def load_from_concat(self, mlp: MLP) -> None:
        """Copy the weights of an :class:`MLP` on ``[e, h_src, h_dst]`` into this split form."""
        ne, ns = self.lin_edge.in_features, self.lin_src.in_features
        w = mlp.lin1.weight  # [hidden, ne + ns + nd]
        self.lin_edge.weight.copy_(w[:, :ne])
        self.lin_src.weight.copy_(w[:, ne : ne + ns])
        self.lin_dst.weight.copy_(w[:, ne + ns :])
        self.lin_edge.bias.copy_(mlp.lin1.bias)
        self.lin2.load_state_dict(mlp.lin2.state_dict())
        self.norm.load_state_dict(mlp.norm.state_dict())
