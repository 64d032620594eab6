"""Encoder-processor-decoder GNN on grid and multimesh (GraphCast architecture).

Source: Lam et al. 2023, GraphCast supplement sec. 3 (encoder 3.3, processor
3.4, decoder 3.5); Battaglia et al. 2018 (interaction networks).

Data flow (``B`` batch, ``G`` grid nodes, ``M`` mesh nodes, ``L`` latent)::

    embed   h_g = MLP([x, grid_features])                     [B, G, L]
            h_m = MLP(mesh_features)                          [M, L]  (static)
            e_s = MLP(edge_features_s)   for each edge set s  [E_s, L] (static)
    encode  (h_m, _) = Interaction_g2m(h_g -> h_m, e_g2m)     [B, M, L]
            h_g = h_g + MLP(h_g)                              [B, G, L]
    process h_m = Processor(h_m, e_mesh)                      [B, M, L]
    decode  (h_g, _) = Interaction_m2g(h_m -> h_g, e_m2g)     [B, G, L]
            y = MLP_out(h_g)  (no LayerNorm)                  [B, G, C_out]

With ``processor="fused"`` only the processor changes: the encoder and decoder
stay edge-conditioned interaction networks (the grid2mesh and mesh2grid edges
carry the geometry the mappings need; a barycentric fused mesh2grid would drop
it), and no mesh edge embedder is built (the fused layers read the static mesh
edge features and weights themselves).
"""

from __future__ import annotations

import torch
from torch import nn

from torch.utils.checkpoint import checkpoint as activation_checkpoint

from weathergnn.graphs.types import WeatherGraphs
from weathergnn.models.mlp import MLP
from weathergnn.models.processors import EdgeBuffers, InteractionLayer, Processor
from weathergnn.ops import dispatch


class EncodeProcessDecode(nn.Module):
    """GraphCast-style GNN mapping grid inputs to grid outputs through the mesh.

    Args:
        graphs: the grid, mesh and the three edge sets. Its tensors are copied
            into non-persistent buffers (moved by ``.to(device)``, not saved in
            ``state_dict``: rebuild the model from the cached graph).
        in_channels: input features per grid node (without the 3 grid features).
        out_channels: output features per grid node.
        latent: latent width of all nodes and edges (MLP hidden = latent).
        layers: processor layers.
        processor: ``"interaction"`` or ``"fused"``.
        checkpoint: activation checkpointing of the encoder block, each
            processor layer and the decoder block.
        backend: ops backend (``"auto"``, ``"torch"``, ``"triton"``), resolved
            here so an unavailable backend fails at construction.
    """

    def __init__(
        self,
        graphs: WeatherGraphs,
        in_channels: int,
        out_channels: int,
        latent: int = 64,
        layers: int = 4,
        processor: str = "interaction",
        checkpoint: bool = False,
        backend: str = "auto",
    ):
        super().__init__()
        dispatch.resolve_backend(backend)
        self.checkpoint = checkpoint
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_grid_nodes = graphs.num_grid_nodes
        self.num_mesh_nodes = graphs.num_mesh_nodes
        self.register_buffer("grid_features", graphs.grid_features.clone(), persistent=False)
        self.register_buffer("mesh_features", graphs.mesh_features.clone(), persistent=False)
        self.g2m = EdgeBuffers(graphs.grid2mesh)
        self.m2g = EdgeBuffers(graphs.mesh2grid)
        n_grid_f = graphs.grid_features.shape[-1]
        n_mesh_f = graphs.mesh_features.shape[-1]
        n_edge_f = graphs.grid2mesh.features.shape[-1]

        # Embedders.
        self.grid_embed = MLP(in_channels + n_grid_f, latent, latent)
        self.mesh_embed = MLP(n_mesh_f, latent, latent)
        self.g2m_edge_embed = MLP(n_edge_f, latent, latent)
        self.m2g_edge_embed = MLP(n_edge_f, latent, latent)
        self.mesh_edge_embed = (
            MLP(graphs.mesh.features.shape[-1], latent, latent) if processor == "interaction" else None
        )
        # Encoder, processor, decoder.
        self.encoder = InteractionLayer(latent, backend=backend)
        self.grid_update = MLP(latent, latent, latent)
        self.processor = Processor(
            processor, latent, layers, graphs.mesh, checkpoint=checkpoint, backend=backend
        )
        self.decoder = InteractionLayer(latent, backend=backend)
        self.output = MLP(latent, latent, out_channels, layer_norm=False)

    def _encode(self, h_grid: torch.Tensor, h_mesh: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder block: grid -> mesh interaction, then the grid-node MLP."""
        e_g2m = self.g2m_edge_embed(self.g2m.features)  # [E_g2m, L], static
        h_mesh, _ = self.encoder(h_grid, h_mesh, e_g2m, self.g2m)  # [B, M, L]
        h_grid = h_grid + self.grid_update(h_grid)  # [B, G, L]
        return h_grid, h_mesh

    def _decode(self, h_mesh: torch.Tensor, h_grid: torch.Tensor) -> torch.Tensor:
        """Decoder block: mesh -> grid interaction, then the output head."""
        e_m2g = self.m2g_edge_embed(self.m2g.features)  # [E_m2g, L], static
        h_grid, _ = self.decoder(h_mesh, h_grid, e_m2g, self.m2g)  # [B, G, L]
        return self.output(h_grid)  # [B, G, C_out]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args:
            x: [batch, num_grid_nodes, in_channels].

        Returns:
            [batch, num_grid_nodes, out_channels].

        With ``checkpoint=True`` the encoder block, each processor layer and
        the decoder block are recomputed in backward (only their inputs are
        kept), as in GraphCast-scale training.
        """
        b = x.shape[0]
        grid_f = self.grid_features.to(x.dtype).expand(b, -1, -1)  # [B, G, 3]
        h_grid = self.grid_embed(torch.cat([x, grid_f], dim=-1))  # [B, G, L]
        h_mesh = self.mesh_embed(self.mesh_features).expand(b, -1, -1)  # [B, M, L]
        ckpt = self.checkpoint and torch.is_grad_enabled()

        # Encoder: grid -> mesh interaction, grid nodes updated by an MLP.
        if ckpt:
            h_grid, h_mesh = activation_checkpoint(self._encode, h_grid, h_mesh, use_reentrant=False)
        else:
            h_grid, h_mesh = self._encode(h_grid, h_mesh)

        # Processor on the multimesh.
        e_mesh = None
        if self.mesh_edge_embed is not None:
            e_mesh = self.mesh_edge_embed(self.processor.edges.features)  # [E_mesh, L], static
        h_mesh = self.processor(h_mesh, e_mesh)  # [B, M, L]

        # Decoder: mesh -> grid interaction, then the output head.
        if ckpt:
            return activation_checkpoint(self._decode, h_mesh, h_grid, use_reentrant=False)
        return self._decode(h_mesh, h_grid)
