"""Message-passing layers and the processor (a stack of them on the multimesh).

Two realisations, chosen by name in :class:`Processor`:

``"interaction"`` -- :class:`InteractionLayer`, the GraphCast interaction network
(Battaglia et al. 2018, "Relational inductive biases...", eqs. 1-3 with sum
aggregation; Lam et al. 2023, GraphCast supplement sec. 3.3-3.5)::

    e'_ij = e_ij + MLP_e([e_ij, h_j, h_i])           edge j -> i
    h'_i  = h_i  + MLP_n([h_i, sum_{j in N(i)} e'_ij])

``"fused"`` -- :class:`FusedLayer`, a fused weighted neighbour sum (no per-edge
latents, no per-edge MLP; the per-edge work is one scalar multiply-add per
feature, so it maps onto the fused CSC kernel of ``ops.neighbour_sum``)::

    alpha_ij = 1 + MLP_alpha(f_ij)                    [E, heads], f_ij static edge features
    m_i      = sum_{j in N(i)} alpha_ij A_ij h_j      per head (head k: channels k*D:(k+1)*D)
    z_i      = h_i + LN(silu(W h_i + V m_i + b))     (= Linear on [h_i, m_i])
    h'_i     = z_i + MLP_n(z_i)

where ``A_ij`` is the static graph weight (``EdgeSet.weight``: 1 / in-degree on
the mesh, so with alpha = 1 the sum is a neighbour mean). ``V`` is applied after
aggregation: ``sum_j a_ij V h_j = V sum_j a_ij h_j``, one node-level GEMM instead
of one per edge. ``alpha`` depends only on static features, so it is computed
once per layer per forward (no batch dim). Residuals and LayerNorm keep deep
stacks trainable, as in the poster form ``h'_i = sigma(W h_i + sum_j alpha_ij
A_ij h_j)`` extended with a residual, a LayerNorm and a node MLP.
"""

from __future__ import annotations

import torch
from torch import nn

from weathergnn.graphs.types import EdgeSet
from weathergnn.models.mlp import MLP, EdgeMLP
from weathergnn.models.recompute import recompute
from weathergnn.ops import dispatch
from weathergnn.ops.adjacency import split_segments, transpose_indices


class EdgeBuffers(nn.Module):
    """The tensors of one :class:`EdgeSet` as non-persistent buffers.

    Non-persistent: ``.to(device)`` moves them, but checkpoints do not store
    them (the graph is rebuilt from the graph cache). Float tensors follow
    ``.double()`` etc. with the module.

    Buffers: ``src``, ``dst`` [E] int64, ``dst_ptr`` [num_dst + 1] int64,
    ``features`` [E, 4], ``weight`` [E], and the source-sorted transpose the
    backward kernels walk (``weathergnn.ops.adjacency``): ``src_perm`` [E],
    ``src_ptr`` [num_src + 1], ``src_dst`` [E] int64; and the long segments of
    both views cut into pieces for two-pass sums (``dst_pieces``,
    ``dst_groups``, ``src_pieces``, ``src_groups``; ``ops.adjacency.split_segments``).
    """

    def __init__(self, edge_set: EdgeSet):
        super().__init__()
        for name in ("src", "dst", "dst_ptr", "features", "weight"):
            self.register_buffer(name, getattr(edge_set, name).clone(), persistent=False)
        src_perm, src_ptr, src_dst = transpose_indices(edge_set.src, edge_set.dst, int(edge_set.num_src))
        self.register_buffer("src_perm", src_perm, persistent=False)
        self.register_buffer("src_ptr", src_ptr, persistent=False)
        self.register_buffer("src_dst", src_dst, persistent=False)
        for side, ptr in (("dst", self.dst_ptr), ("src", src_ptr)):
            pieces, groups = split_segments(ptr)
            self.register_buffer(f"{side}_pieces", pieces, persistent=False)
            self.register_buffer(f"{side}_groups", groups, persistent=False)
        self.num_src = int(edge_set.num_src)
        self.num_dst = int(edge_set.num_dst)

    @property
    def num_edges(self) -> int:
        return int(self.src.shape[0])


class InteractionLayer(nn.Module):
    """One GraphCast interaction-network step from a sender to a receiver node set.

    ``e'_ij = e_ij + MLP_e([e_ij, h_j, h_i])``, ``h'_i = h_i + MLP_n([h_i, sum_j e'_ij])``
    (sum over the incoming edges of ``i``). ``MLP_e`` has its first layer split
    into edge, sender and receiver parts (:class:`EdgeMLP`).

    On the Triton backend with the GEMM-fused edge MLP and the SiLU-on-load
    node MLP (``edge_gemm="triton"``, or ``"auto"`` where the TMA-fed kernels
    run: Hopper, bf16/fp16) the whole layer is one autograd node
    (:class:`weathergnn.ops.interaction_edge.InteractionUpdate`); elsewhere
    the edge update is one node and the projections and node MLP are modules.

    Args:
        latent: width of node and edge latents.
        hidden: MLP hidden width (default ``latent``).
        backend: ops backend.
        edge_gemm: the edge MLP's GEMMs on the triton backend, ``"auto"``,
            ``"cublas"`` or ``"triton"`` (:func:`weathergnn.ops.dispatch.interaction_edge_update`),
            and the node MLP's second layer (``MLP.silu_gemm``).
    """

    def __init__(self, latent: int, hidden: int | None = None, backend: str = "auto", edge_gemm: str = "auto"):
        super().__init__()
        hidden = hidden or latent
        self.edge_mlp = EdgeMLP(latent, latent, latent, hidden, latent, backend=backend)
        self.edge_gemm = dispatch.check_edge_gemm(edge_gemm)
        self.node_mlp = MLP(2 * latent, hidden, latent, backend=backend, silu_gemm=edge_gemm)
        self.backend = backend

    def forward(
        self,
        h_src: torch.Tensor,
        h_dst: torch.Tensor,
        e: torch.Tensor,
        edges: EdgeBuffers,
        p_src: torch.Tensor | None = None,
        return_edges: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Args:
            h_src: [batch, num_src_nodes, latent] sender latents.
            h_dst: [batch, num_dst_nodes, latent] receiver latents.
            e: [num_edges, latent] (static, broadcast over batch) or
                [batch, num_edges, latent] edge latents.
            edges: the edge set (destination-sorted).
            p_src: [batch, num_src_nodes, hidden] = ``edge_mlp.lin_src(h_src)``
                when the caller has it already (a mapper run over receiver
                chunks projects its senders once, not once per chunk);
                ``h_src`` is then not read.
            return_edges: return ``e'``; False for the last layer on an edge
                set (the mappers, the processor's last layer): ``e'`` is then
                no output of the edge update's autograd node, so no gradient
                of it is formed (AOTAutograd fills the gradient of an unused
                output with zeros, ``[B, E, L]`` per call, for the backward
                to read).

        Returns:
            (h_dst' [batch, num_dst_nodes, latent], e' [batch, num_edges, latent] or None).
        """
        mlp = self.edge_mlp
        if dispatch.resolve_backend(self.backend, h_dst.device) == "triton":
            from weathergnn.ops import interaction_edge

            if interaction_edge.use_interaction_update(e, h_dst, self.edge_gemm, self.node_mlp):
                # the whole layer as one autograd node: its sums over [Nd, L] in product epilogues
                return interaction_edge.interaction_update(
                    e, None if p_src is not None else h_src, p_src, h_dst, edges, mlp, self.node_mlp,
                    return_edges)
        if p_src is None:
            p_src = mlp.lin_src(h_src)  # [B, Ns, hidden], once per node
        p_dst = mlp.lin_dst(h_dst)  # [B, Nd, hidden], once per node
        # e' = e + MLP_e([e, h_j, h_i]) and agg_i = sum_j e'_ij, one fused node on Triton.
        e_new, agg = dispatch.interaction_edge_update(
            e, p_src, p_dst, edges, mlp.lin_edge, mlp.lin2, mlp.norm, backend=self.backend, edge_gemm=self.edge_gemm,
            return_edges=return_edges,
        )  # [B, E, L] (None without return_edges), [B, Nd, L]
        # MLP_n([h_i, agg_i]) with lin1 split by input block: no [B, Nd, 2 L] concatenation (or its gradient).
        # The residual h_dst is added in the LayerNorm's pass (no separate [B, Nd, L] add).
        h_new = self.node_mlp.forward_concat(h_dst, agg, residual=h_dst)
        return h_new, e_new  # [B, Nd, L], [B, E, L] or None


class FusedLayer(nn.Module):
    """Fused weighted neighbour sum on one node set (see the module docstring).

    ``alpha = 1 + MLP_alpha(f)`` [E, heads]; ``m_i = sum_j alpha_ij A_ij h_j``;
    ``z_i = h_i + LN(silu(W h_i + V m_i + b))``; ``h'_i = z_i + MLP_n(z_i)``.

    Args:
        latent: node latent width (divisible by ``heads``).
        hidden: node-MLP hidden width (default ``latent``).
        edge_features: width of the static edge features (4).
        alpha_hidden: hidden width of ``MLP_alpha``.
        heads: number of scalar coefficients per edge; head ``k`` scales
            channels ``k * latent / heads`` to ``(k + 1) * latent / heads``.
        backend: ops backend.
    """

    def __init__(
        self,
        latent: int,
        hidden: int | None = None,
        edge_features: int = 4,
        alpha_hidden: int = 16,
        heads: int = 1,
        backend: str = "auto",
    ):
        super().__init__()
        if latent % heads:
            raise ValueError(f"latent {latent} is not divisible by heads {heads}")
        hidden = hidden or latent
        self.heads = heads
        self.alpha_mlp = MLP(edge_features, alpha_hidden, heads, layer_norm=False, backend=backend)
        self.lin = nn.Linear(2 * latent, latent)  # [W V] on [h_i, m_i], bias b
        self.act = nn.SiLU()
        self.norm = nn.LayerNorm(latent)
        self.node_mlp = MLP(latent, hidden, latent, backend=backend)
        self.backend = backend

    def edge_coefficients(self, edges: EdgeBuffers) -> torch.Tensor:
        """``alpha_ij A_ij``: [num_edges, heads], no batch dim (static edges)."""
        alpha = 1.0 + self.alpha_mlp(edges.features)  # [E, H]
        return alpha * edges.weight.unsqueeze(-1).to(alpha.dtype)  # [E, H]

    def aggregate(self, h: torch.Tensor, coeff: torch.Tensor, edges: EdgeBuffers) -> torch.Tensor:
        """``m_i = sum_j coeff_ij h_j`` per head. h: [B, Ns, L], coeff: [E, H] -> [B, Nd, L]."""
        b, n, latent = h.shape
        heads = self.heads
        if heads == 1:
            return dispatch.neighbour_sum(h, edges, coeff[:, 0], backend=self.backend)  # [B, Nd, L]
        d = latent // heads
        h_heads = h.view(b, n, heads, d).transpose(1, 2).reshape(b * heads, n, d)  # [B*H, Ns, D]
        c = coeff.t().unsqueeze(0).expand(b, -1, -1).reshape(b * heads, -1)  # [B*H, E]
        m = dispatch.neighbour_sum(h_heads, edges, c, backend=self.backend)  # [B*H, Nd, D]
        return m.view(b, heads, edges.num_dst, d).transpose(1, 2).reshape(b, edges.num_dst, latent)

    def forward(self, h: torch.Tensor, edges: EdgeBuffers, h_dst: torch.Tensor | None = None) -> torch.Tensor:
        """Args:
            h: [batch, num_src_nodes, latent] senders.
            edges: the edge set (destination-sorted).
            h_dst: [batch, num_dst_nodes, latent] receivers; defaults to ``h``
                (mesh -> mesh). Given for grid2mesh / mesh2grid edge sets.

        Returns:
            [batch, num_dst_nodes, latent] updated receivers.
        """
        h_dst = h if h_dst is None else h_dst
        coeff = self.edge_coefficients(edges)  # [E, H]
        m = self.aggregate(h, coeff, edges)  # [B, Nd, L]
        u = self.act(self.lin(torch.cat([h_dst, m.to(h_dst.dtype)], dim=-1)))  # [B, Nd, L]
        z = dispatch.layer_norm_residual(u, h_dst, self.norm, backend=self.backend)  # h_dst + LN(u)
        return self.node_mlp(z, residual=z)  # z + MLP_n(z): [B, Nd, L]


def checkpointed_layers(checkpoint: bool | int, layers: int) -> int:
    """How many of ``layers`` processor layers (the first ones) a ``checkpoint`` setting recomputes.

    Raises:
        ValueError: an integer outside ``0 .. layers``.
    """
    if isinstance(checkpoint, bool):
        return layers if checkpoint else 0
    if not 0 <= checkpoint <= layers:
        raise ValueError(f"checkpoint: {checkpoint} processor layers to recompute, but there are {layers}")
    return int(checkpoint)


class Processor(nn.Module):
    """``layers`` message-passing layers (no weight sharing) on one edge set.

    Args:
        kind: ``"interaction"`` (:class:`InteractionLayer`, needs edge latents)
            or ``"fused"`` (:class:`FusedLayer`, uses the static edge features
            and weights of ``edge_set``).
        latent: latent width.
        layers: number of layers.
        edge_set: the (multi)mesh edges, sender and receiver set the same.
        checkpoint: recompute layers in backward (``torch.utils.checkpoint``,
            ``use_reentrant=False``): ``True`` every layer, ``False`` none, an
            integer ``n`` the first ``n`` layers (the others keep their
            activations: 0.8 GiB more per layer of the refinement-6 mesh at
            latent 512 for about 1.4 ms less in the GraphCast-size step on the
            H200, ``benchmarks/results/benchmark_nvidia-h200_2026-11-21_7d48ff1_step-ckpt.md``).
        hidden: MLP hidden width (default ``latent``).
        heads: coefficients per edge for ``"fused"``.
        backend: ops backend.
        edge_gemm: the interaction layers' edge GEMMs (:class:`InteractionLayer`).
    """

    KINDS = ("interaction", "fused")

    def __init__(
        self,
        kind: str,
        latent: int,
        layers: int,
        edge_set: EdgeSet,
        checkpoint: bool | int = False,
        hidden: int | None = None,
        heads: int = 1,
        backend: str = "auto",
        edge_gemm: str = "auto",
    ):
        super().__init__()
        if kind not in self.KINDS:
            raise ValueError(f"unknown processor kind {kind!r}; expected one of {self.KINDS}")
        if edge_set.num_src != edge_set.num_dst:
            raise ValueError("processor edges must connect one node set to itself")
        self.kind = kind
        self.checkpointed_layers = checkpointed_layers(checkpoint, layers)
        self.edges = EdgeBuffers(edge_set)
        if kind == "interaction":
            self.layers = nn.ModuleList(
                InteractionLayer(latent, hidden, backend, edge_gemm) for _ in range(layers)
            )
        else:
            self.layers = nn.ModuleList(
                FusedLayer(latent, hidden, edge_set.features.shape[-1], heads=heads, backend=backend)
                for _ in range(layers)
            )

    def _interaction(self, layer: InteractionLayer, h: torch.Tensor, e: torch.Tensor, return_edges: bool = True):
        return layer(h, h, e, self.edges, return_edges=return_edges)

    def _fused(self, layer: FusedLayer, h: torch.Tensor):
        return layer(h, self.edges)

    def forward(self, h: torch.Tensor, e: torch.Tensor | None = None) -> torch.Tensor:
        """Args:
            h: [batch, num_nodes, latent] node latents.
            e: edge latents [num_edges, latent] or [batch, num_edges, latent];
                required for ``"interaction"``, ignored for ``"fused"``.

        Returns:
            [batch, num_nodes, latent].
        """
        grad = torch.is_grad_enabled()
        for index, layer in enumerate(self.layers):
            use_ckpt = grad and index < self.checkpointed_layers
            if self.kind == "interaction":
                if e is None:
                    raise ValueError("the interaction processor needs edge latents e")
                more = index + 1 < len(self.layers)  # the last layer's e' is not used
                if use_ckpt:
                    h, e = recompute(self._interaction, layer, h, e, more)
                else:
                    h, e = self._interaction(layer, h, e, more)
            elif use_ckpt:
                h = recompute(self._fused, layer, h)
            else:
                h = self._fused(layer, h)
        return h
