"""Containers for the three edge sets and the node sets of a WeatherGNN graph.

Edges are stored sorted by destination (CSC): the incoming edges of destination
node ``i`` are ``src[dst_ptr[i]:dst_ptr[i + 1]]``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch


@dataclass(frozen=True)
class EdgeSet:
    """One directed edge set (mesh, grid2mesh or mesh2grid), destination-sorted.

    Attributes:
        src: [E] int64 sender node index (in the sender node set).
        dst: [E] int64 receiver node index, non-decreasing.
        features: [E, 4] float32 edge features: displacement from sender to
            receiver in the receiver's local (east, north, up) frame and its
            length, all divided by the longest edge length of the set.
        weight: [E] float32 static edge weight A_ij (barycentric weights for
            mesh2grid, 1 / in-degree of the receiver otherwise).
        dst_ptr: [num_dst + 1] int64 CSC offsets.
        num_src: number of sender nodes.
        num_dst: number of receiver nodes.
    """

    src: torch.Tensor
    dst: torch.Tensor
    features: torch.Tensor
    weight: torch.Tensor
    dst_ptr: torch.Tensor
    num_src: int
    num_dst: int

    @property
    def num_edges(self) -> int:
        return int(self.src.shape[0])

    def to(self, device: torch.device | str) -> "EdgeSet":
        return replace(
            self,
            **{
                f.name: getattr(self, f.name).to(device)
                for f in fields(self)
                if isinstance(getattr(self, f.name), torch.Tensor)
            },
        )


@dataclass(frozen=True)
class WeatherGraphs:
    """Grid nodes, mesh nodes and the grid2mesh, mesh and mesh2grid edge sets.

    Attributes:
        grid_lat: [G] float64 grid latitudes (degrees north), latitude-major order.
        grid_lon: [G] float64 grid longitudes (degrees east, [0, 360)).
        grid_features: [G, 3] float32 (cos lat, sin lon, cos lon).
        latitude_weights: [G] float32 cell-area weights normalised to mean 1.
        mesh_pos: [M, 3] float64 unit vectors of the mesh nodes (space-filling
            curve order).
        mesh_features: [M, 3] float32 (cos lat, sin lon, cos lon).
        mesh: EdgeSet mesh -> mesh (multimesh, all refinement levels).
        grid2mesh: EdgeSet grid -> mesh.
        mesh2grid: EdgeSet mesh -> grid.
        refinement: finest icosahedral refinement level.
        content_hash: hex digest of (grid, refinement, radius, format version).
        radius_fraction: grid2mesh radius as a fraction of the longest edge of
            the finest mesh.
        grid2mesh_radius: the grid2mesh radius itself (chord length on the unit
            sphere; multiply by the Earth radius for metres).
        ordering: mesh node ordering (``hilbert``, ``morton``, ``natural``,
            ``random``; see ``weathergnn.graphs.layout``).
    """

    grid_lat: torch.Tensor
    grid_lon: torch.Tensor
    grid_features: torch.Tensor
    latitude_weights: torch.Tensor
    mesh_pos: torch.Tensor
    mesh_features: torch.Tensor
    mesh: EdgeSet
    grid2mesh: EdgeSet
    mesh2grid: EdgeSet
    refinement: int
    content_hash: str
    radius_fraction: float = 0.6
    grid2mesh_radius: float = 0.0
    ordering: str = "hilbert"

    @property
    def num_grid_nodes(self) -> int:
        return int(self.grid_lat.shape[0])

    @property
    def num_mesh_nodes(self) -> int:
        return int(self.mesh_pos.shape[0])

    def to(self, device: torch.device | str) -> "WeatherGraphs":
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = v.to(device) if isinstance(v, (torch.Tensor, EdgeSet)) else v
        return replace(self, **out)
