"""The tools users would otherwise pick: plain-torch and PyG sum aggregation, a PyG
interaction layer and a GraphCast-size PyG model.

Sum aggregation ``out[b, i] = sum_{e: dst[e] = i} h[b, src[e]]``, h [B, Ns, F] ->
out [B, Nd, F], edges destination-sorted:

- :func:`index_add_sum`: gather rows, ``Tensor.index_add`` (atomics on CUDA);
- :func:`segment_reduce_sum`: gather rows, ``torch.segment_reduce`` over the
  CSC segment lengths (sorted, no atomics);
- :func:`pyg_scatter_sum`: gather rows, ``torch_geometric.utils.scatter(reduce="sum")``;
- :func:`pyg_sum_layer`: a ``MessagePassing(aggr="sum")`` whose message is ``x_j``;
- :func:`csr_adjacency` + ``torch.sparse.mm``: cuSPARSE SpMM on a CSR matrix of
  ones (fp32, as the anchors; on CPU the native/MKL kernel). Its backward
  transposes ``A`` on every call (with a host-device synchronisation);
  :func:`csr_spmm_sum` takes ``A^T`` built once, so both directions are
  plain SpMMs: the strongest cuSPARSE baseline.

PyG (torch_geometric) is an optional benchmark dependency (``pip install
'weathergnn[bench]'``), imported only inside the functions that need it;
:func:`pyg_unavailable_reason` says why it cannot be used.

The PyG interaction layer (:func:`pyg_interaction_layer`) is the GraphCast
interaction network as a PyG user writes it (Battaglia et al. 2018 eqs. 1-3;
Lam et al. 2023 supplement 3.3-3.5)::

    e'_ij = e_ij + MLP_e(cat[e_ij, x_j, x_i])      edge_update, one 3L x L GEMM per edge
    h'_i  = h_i  + MLP_n(cat[h_i, sum_j e'_ij])    propagate(aggr="sum"), node MLP

with MLP = Linear, SiLU, Linear, LayerNorm (:class:`weathergnn.models.mlp.MLP`).
Sizes are passed to ``propagate`` so ``torch.compile`` sees no data-dependent
shapes (no graph breaks).
"""

from __future__ import annotations

import functools
import importlib.util
import warnings

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint as activation_checkpoint

from weathergnn.models.mlp import MLP

__all__ = [
    "csr_adjacency",
    "csr_spmm_sum",
    "index_add_sum",
    "pyg_graphcast_model",
    "pyg_interaction_layer",
    "pyg_scatter_sum",
    "pyg_sum_layer",
    "pyg_unavailable_reason",
    "pyg_version",
    "segment_reduce_sum",
]


# ------------------------------------------------------------------ plain torch


def index_add_sum(h: torch.Tensor, src: torch.Tensor, dst: torch.Tensor, num_dst: int) -> torch.Tensor:
    """[B, Ns, F] -> [B, Nd, F] with ``index_select`` + ``index_add`` (any edge order)."""
    msg = h.index_select(1, src)  # [B, E, F]
    return h.new_zeros(h.shape[0], num_dst, h.shape[2]).index_add(1, dst, msg)


def segment_reduce_sum(h: torch.Tensor, src: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """[B, Ns, F] -> [B, Nd, F] with ``index_select`` + ``torch.segment_reduce`` (destination-sorted).

    ``lengths``: [B, Nd] int64 incoming-edge counts per receiver (``diff(dst_ptr)`` expanded).
    """
    msg = h.index_select(1, src)  # [B, E, F]
    return torch.segment_reduce(msg, "sum", lengths=lengths, axis=1, unsafe=True)


def csr_adjacency(
    src: torch.Tensor, dst: torch.Tensor, num_src: int, num_dst: int, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Sparse CSR matrix ``A`` [Nd, Ns] with ``A[dst[e], src[e]] = 1`` (duplicates summed)."""
    values = torch.ones(src.shape[0], dtype=dtype, device=src.device)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        coo = torch.sparse_coo_tensor(torch.stack([dst, src]), values, (num_dst, num_src), check_invariants=False)
        return coo.coalesce().to_sparse_csr()


class _CsrSpmm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, a, a_t):
        ctx.a_t = a_t
        return torch.sparse.mm(a, h)

    @staticmethod
    def backward(ctx, g):
        return torch.sparse.mm(ctx.a_t, g), None, None


def csr_spmm_sum(h: torch.Tensor, a: torch.Tensor, a_t: torch.Tensor) -> torch.Tensor:
    """``A @ h`` [Nd, F] for h [Ns, F], with the gradient ``A^T @ g`` from the prebuilt ``a_t`` (both CSR SpMMs).

    ``a``: :func:`csr_adjacency` ``(src, dst, Ns, Nd)``; ``a_t``: ``csr_adjacency(dst, src, Nd, Ns)``.
    """
    return _CsrSpmm.apply(h, a, a_t)


# ------------------------------------------------------------------ PyG


def pyg_unavailable_reason() -> str:
    """Empty when torch_geometric is importable, else why not."""
    if importlib.util.find_spec("torch_geometric") is None:
        return "torch_geometric is not installed (pip install 'weathergnn[bench]')"
    try:
        import torch_geometric  # noqa: F401
    except Exception as err:  # a broken install should be reported, not crash the suite
        return f"torch_geometric fails to import: {type(err).__name__}: {err}"
    return ""


def pyg_version() -> str | None:
    """torch_geometric's version, or None when it is not usable."""
    if pyg_unavailable_reason():
        return None
    import torch_geometric

    return torch_geometric.__version__


def pyg_scatter_sum(h: torch.Tensor, src: torch.Tensor, dst: torch.Tensor, num_dst: int) -> torch.Tensor:
    """[B, Ns, F] -> [B, Nd, F] with ``index_select`` + ``torch_geometric.utils.scatter``."""
    from torch_geometric.utils import scatter

    return scatter(h.index_select(1, src), dst, dim=1, dim_size=num_dst, reduce="sum")


@functools.cache
def _pyg_classes():
    """Define the MessagePassing subclasses on first use (PyG imported lazily)."""
    from torch_geometric.nn import MessagePassing

    class SumLayer(MessagePassing):
        """``out_i = sum_{j -> i} x_j``; x [B, Ns, F] -> [B, Nd, F]."""

        def __init__(self):
            super().__init__(aggr="sum", node_dim=-2)

        def forward(self, x: torch.Tensor, edge_index: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
            return self.propagate(edge_index, x=(x, None), size=size)

        def message(self, x_j: torch.Tensor) -> torch.Tensor:
            return x_j

    class InteractionLayer(MessagePassing):
        """GraphCast interaction network in PyG (see the module docstring)."""

        def __init__(self, latent: int):
            super().__init__(aggr="sum", node_dim=-2)
            self.edge_mlp = MLP(3 * latent, latent, latent)
            self.node_mlp = MLP(2 * latent, latent, latent)

        def forward(
            self,
            h_src: torch.Tensor,
            h_dst: torch.Tensor,
            e: torch.Tensor,
            edge_index: torch.Tensor,
            size: tuple[int, int],
        ) -> tuple[torch.Tensor, torch.Tensor]:
            """h_src [B, Ns, L], h_dst [B, Nd, L], e [B, E, L] or [E, L] -> ([B, Nd, L], [B, E, L])."""
            e_new = self.edge_updater(edge_index, x=(h_src, h_dst), e=e, size=size)  # [B, E, L]
            agg = self.propagate(edge_index, e=e_new, size=size)  # [B, Nd, L]
            h_new = h_dst + self.node_mlp(torch.cat([h_dst, agg.to(h_dst.dtype)], dim=-1))
            return h_new, e_new

        def edge_update(self, x_j: torch.Tensor, x_i: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
            e = e.expand(x_j.shape[0], -1, -1) if e.dim() == 2 else e  # [B, E, L]
            return e + self.edge_mlp(torch.cat([e, x_j, x_i], dim=-1))

        def message(self, e: torch.Tensor) -> torch.Tensor:
            return e

    return SumLayer, InteractionLayer


def pyg_sum_layer() -> nn.Module:
    """A ``MessagePassing(aggr="sum")`` module: ``forward(x [B,Ns,F], edge_index [2,E], (Ns, Nd)) -> [B,Nd,F]``."""
    return _pyg_classes()[0]()


def pyg_interaction_layer(latent: int) -> nn.Module:
    """PyG interaction layer: ``forward(h_src, h_dst, e, edge_index [2, E], (Ns, Nd)) -> (h_dst', e')``."""
    return _pyg_classes()[1](latent)


class PygGraphCast(nn.Module):
    """GraphCast-size encoder-processor-decoder built from PyG interaction layers.

    Same embedders as :class:`weathergnn.models.graph_model.EncodeProcessDecode`
    (grid MLP on [x, grid features], mesh MLP, one edge MLP per edge set, output
    MLP without LayerNorm); encoder = grid2mesh interaction + grid MLP update,
    ``layers`` mesh interaction layers, decoder = mesh2grid interaction + output
    head. Activation checkpointing (``use_reentrant=False``) of the encoder
    block, each processor layer and the decoder block, as the anchor
    measurement (without it the 0.25 deg model does not fit on one H200).

    Args:
        graphs: :class:`weathergnn.graphs.types.WeatherGraphs` (CPU; copied into buffers).
        in_channels, out_channels, latent, layers: model size.

    Shapes: ``forward(x [B, G, in_channels]) -> [B, G, out_channels]``.
    """

    def __init__(self, graphs, in_channels: int, out_channels: int, latent: int, layers: int):
        super().__init__()
        self.register_buffer("grid_features", graphs.grid_features.clone(), persistent=False)
        self.register_buffer("mesh_features", graphs.mesh_features.clone(), persistent=False)
        self.sizes = {}
        for name in ("grid2mesh", "mesh", "mesh2grid"):
            es = getattr(graphs, name)
            self.register_buffer(f"{name}_index", torch.stack([es.src, es.dst]), persistent=False)
            self.register_buffer(f"{name}_edge_features", es.features.clone(), persistent=False)
            self.sizes[name] = (int(es.num_src), int(es.num_dst))
        n_edge_f = graphs.grid2mesh.features.shape[-1]
        self.grid_embed = MLP(in_channels + graphs.grid_features.shape[-1], latent, latent)
        self.mesh_embed = MLP(graphs.mesh_features.shape[-1], latent, latent)
        self.edge_embed = nn.ModuleDict({n: MLP(n_edge_f, latent, latent) for n in self.sizes})
        self.encoder = pyg_interaction_layer(latent)
        self.grid_update = MLP(latent, latent, latent)
        self.processor = nn.ModuleList(pyg_interaction_layer(latent) for _ in range(layers))
        self.decoder = pyg_interaction_layer(latent)
        self.output = MLP(latent, latent, out_channels, layer_norm=False)

    def _edges(self, name: str):
        index = getattr(self, f"{name}_index")
        e = self.edge_embed[name](getattr(self, f"{name}_edge_features"))  # [E, L], static
        return index, e, self.sizes[name]

    def _encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b = x.shape[0]
        grid_f = self.grid_features.to(x.dtype).expand(b, -1, -1)  # [B, G, 3]
        h_grid = self.grid_embed(torch.cat([x, grid_f], dim=-1))  # [B, G, L]
        h_mesh = self.mesh_embed(self.mesh_features).expand(b, -1, -1)  # [B, M, L]
        index, e, size = self._edges("grid2mesh")
        h_mesh, _ = self.encoder(h_grid, h_mesh, e, index, size)  # [B, M, L]
        return h_grid + self.grid_update(h_grid), h_mesh

    def _process(self, layer: nn.Module, h: torch.Tensor, e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return layer(h, h, e, self.mesh_index, self.sizes["mesh"])

    def _decode(self, h_mesh: torch.Tensor, h_grid: torch.Tensor) -> torch.Tensor:
        index, e, size = self._edges("mesh2grid")
        h_grid, _ = self.decoder(h_mesh, h_grid, e, index, size)  # [B, G, L]
        return self.output(h_grid)  # [B, G, C_out]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ckpt = torch.is_grad_enabled()

        def run(fn, *args):
            return activation_checkpoint(fn, *args, use_reentrant=False) if ckpt else fn(*args)

        h_grid, h_mesh = run(self._encode, x)  # [B, G, L], [B, M, L]
        _, e, _ = self._edges("mesh")  # [E_mesh, L]
        for layer in self.processor:
            h_mesh, e = run(self._process, layer, h_mesh, e)
        return run(self._decode, h_mesh, h_grid)  # [B, G, C_out]


def pyg_graphcast_model(graphs, in_channels: int, out_channels: int, latent: int, layers: int) -> nn.Module:
    """:class:`PygGraphCast` (needs torch_geometric)."""
    return PygGraphCast(graphs, in_channels, out_channels, latent, layers)
