"""Synthetic graphs for model tests: random destination-sorted EdgeSets and tiny
WeatherGraphs (not geometric, only the container contract), independent of
weathergnn.graphs.build. A plain module: pytest puts tests/ on sys.path, so
test files import it as ``from graph_fixtures import ...``.
"""

from __future__ import annotations

import torch

from weathergnn.graphs.types import EdgeSet, WeatherGraphs


def edge_set_from(src, dst, features, num_src, num_dst):
    """Sort edges by destination (stable) and build the CSC EdgeSet; weight = 1/in-degree."""
    order = torch.sort(dst, stable=True).indices
    src, dst, features = src[order], dst[order], features[order]
    deg = torch.bincount(dst, minlength=num_dst)
    dst_ptr = torch.zeros(num_dst + 1, dtype=torch.long)
    dst_ptr[1:] = deg.cumsum(0)
    weight = (1.0 / deg.clamp(min=1).float())[dst]
    return EdgeSet(src, dst, features, weight, dst_ptr, num_src, num_dst)


def random_edge_set(num_src, num_dst, max_degree=4, seed=0, zero_degree=True):
    """Random destination-sorted EdgeSet; some receivers have no incoming edge."""
    g = torch.Generator().manual_seed(seed)
    deg = torch.randint(1, max_degree + 1, (num_dst,), generator=g)
    if zero_degree:
        deg[::5] = 0
    dst = torch.repeat_interleave(torch.arange(num_dst), deg)
    src = torch.randint(0, num_src, dst.shape, generator=g)
    features = torch.randn(dst.shape[0], 4, generator=g)
    return edge_set_from(src, dst, features, num_src, num_dst)


def unit_features(n, g):
    lat = torch.rand(n, generator=g) * 180 - 90
    lon = torch.rand(n, generator=g) * 360
    lr, lo = torch.deg2rad(lat), torch.deg2rad(lon)
    feats = torch.stack([torch.cos(lr), torch.sin(lo), torch.cos(lo)], -1).float()
    pos = torch.stack([torch.cos(lr) * torch.cos(lo), torch.cos(lr) * torch.sin(lo), torch.sin(lr)], -1)
    return lat.double(), lon.double(), feats, pos.double()


def random_graphs(num_grid=24, num_mesh=10, seed=0):
    """A tiny random WeatherGraphs (not geometric, only the container contract)."""
    g = torch.Generator().manual_seed(seed)
    glat, glon, gfeat, _ = unit_features(num_grid, g)
    _, _, mfeat, mpos = unit_features(num_mesh, g)
    return WeatherGraphs(
        grid_lat=glat,
        grid_lon=glon,
        grid_features=gfeat,
        latitude_weights=torch.ones(num_grid),
        mesh_pos=mpos,
        mesh_features=mfeat,
        mesh=random_edge_set(num_mesh, num_mesh, 5, seed + 1),
        grid2mesh=random_edge_set(num_grid, num_mesh, 6, seed + 2),
        mesh2grid=random_edge_set(num_mesh, num_grid, 3, seed + 3, zero_degree=False),
        refinement=0,
        content_hash="synthetic",
    )


def permute_mesh(graphs, perm):
    """Renumber mesh nodes: new node k is old node perm[k]; edges remapped and re-sorted."""
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(perm.shape[0])
    m, g2m, m2g = graphs.mesh, graphs.grid2mesh, graphs.mesh2grid
    return WeatherGraphs(
        grid_lat=graphs.grid_lat,
        grid_lon=graphs.grid_lon,
        grid_features=graphs.grid_features,
        latitude_weights=graphs.latitude_weights,
        mesh_pos=graphs.mesh_pos[perm],
        mesh_features=graphs.mesh_features[perm],
        mesh=edge_set_from(inv[m.src], inv[m.dst], m.features, m.num_src, m.num_dst),
        grid2mesh=edge_set_from(g2m.src, inv[g2m.dst], g2m.features, g2m.num_src, g2m.num_dst),
        mesh2grid=edge_set_from(inv[m2g.src], m2g.dst, m2g.features, m2g.num_src, m2g.num_dst),
        refinement=graphs.refinement,
        content_hash="permuted",
    )
