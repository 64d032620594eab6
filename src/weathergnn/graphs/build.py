"""Build the WeatherGNN graphs (grid, multimesh, grid2mesh, mesh2grid) for a grid.

Pipeline (``build_graphs``), after GraphCast (Lam et al. 2023, Science):

1. icosahedral hierarchy to ``refinement`` (:mod:`.icosahedral`);
2. multimesh edges over all (or ``mesh_levels``) levels (:mod:`.multimesh`);
3. grid2mesh by radius ``radius_fraction * longest finest-mesh edge`` and
   mesh2grid by containing triangle with barycentric weights
   (:mod:`.connectivity`);
4. mesh nodes renumbered along a space-filling curve, edges sorted by
   (dst, src) with CSC offsets (:mod:`.layout`);
5. node/edge features and latitude weights (:mod:`.features`).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence

import numpy as np
import torch

from .connectivity import grid2mesh_edges, longest_edge_length, mesh2grid_edges
from .features import edge_features, lat_lon_to_xyz, latitude_weights, node_features, xyz_to_lat_lon
from .icosahedral import get_mesh_hierarchy
from .layout import ORDERINGS, csc_order, dst_pointer, mesh_permutation
from .multimesh import multimesh_edges
from .types import EdgeSet, WeatherGraphs

__all__ = ["FORMAT_VERSION", "build_graphs", "content_hash", "validate_grid"]

#: Version of the graph construction and on-disk format; bump on any change
#: that alters the built graphs or the stored layout (invalidates caches).
FORMAT_VERSION = 1


def _canonical_ordering(ordering: str) -> str:
    if ordering not in ORDERINGS:
        raise ValueError(f"unknown mesh ordering {ordering!r}; expected one of {ORDERINGS}")
    return "hilbert" if ordering == "sfc" else ordering


def validate_grid(grid_lat, grid_lon) -> tuple[np.ndarray, np.ndarray]:
    """Check and convert the 1-D grid axes.

    Args:
        grid_lat: [n_lat] latitudes, degrees north, strictly ascending, in [-90, 90].
        grid_lon: [n_lon] longitudes, degrees east, strictly ascending, span < 360.
    Returns:
        (lat [n_lat], lon [n_lon]) contiguous float64.
    Raises:
        ValueError: naming the offending axis.
    """
    lat = np.ascontiguousarray(np.asarray(grid_lat, dtype=np.float64))
    lon = np.ascontiguousarray(np.asarray(grid_lon, dtype=np.float64))
    for name, a in (("grid_lat", lat), ("grid_lon", lon)):
        if a.ndim != 1 or a.size == 0:
            raise ValueError(f"{name} must be a non-empty 1-D array, got shape {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name} contains non-finite values")
        if a.size > 1 and np.any(np.diff(a) <= 0):
            raise ValueError(f"{name} must be strictly ascending")
    if lat[0] < -90.0 or lat[-1] > 90.0:
        raise ValueError(f"grid_lat must lie in [-90, 90], got [{lat[0]}, {lat[-1]}]")
    if lon[-1] - lon[0] >= 360.0:
        raise ValueError(f"grid_lon must span less than 360 degrees, got [{lon[0]}, {lon[-1]}]")
    return lat, lon


def content_hash(
    grid_lat,
    grid_lon,
    refinement: int,
    radius_fraction: float = 0.6,
    ordering: str = "hilbert",
    mesh_levels: Sequence[int] | None = None,
    seed: int = 0,
) -> str:
    """sha256 hex digest identifying a graph build.

    Covers the float64 bytes of ``grid_lat`` and ``grid_lon``, ``refinement``,
    ``radius_fraction``, ``ordering`` (``sfc`` == ``hilbert``), ``mesh_levels``
    (when given), ``seed`` (for ``random`` only) and ``FORMAT_VERSION``.
    """
    lat, lon = validate_grid(grid_lat, grid_lon)
    ordering = _canonical_ordering(ordering)
    h = hashlib.sha256()
    h.update(f"weathergnn-graphs-v{FORMAT_VERSION}\n".encode())
    h.update(lat.astype("<f8").tobytes())
    h.update(b"|")
    h.update(lon.astype("<f8").tobytes())
    h.update(f"|r={int(refinement)}|radius={float(radius_fraction)!r}|ordering={ordering}".encode())
    if mesh_levels is not None:
        h.update(f"|levels={sorted(set(int(x) for x in mesh_levels))}".encode())
    if ordering == "random":
        h.update(f"|seed={int(seed)}".encode())
    return h.hexdigest()


def _edge_set(
    src: np.ndarray,
    dst: np.ndarray,
    src_pos: np.ndarray,
    dst_pos: np.ndarray,
    weight: np.ndarray | None = None,
) -> EdgeSet:
    """CSC-sorted EdgeSet; ``weight`` defaults to 1 / in-degree of the receiver."""
    num_src, num_dst = src_pos.shape[0], dst_pos.shape[0]
    order = csc_order(src, dst, num_src)
    src, dst = src[order], dst[order]
    ptr = dst_pointer(dst, num_dst)
    if weight is None:
        deg = np.diff(ptr)
        w = (1.0 / np.maximum(deg, 1))[dst]
    else:
        w = weight[order]
    feats, _ = edge_features(src_pos, dst_pos, src, dst)
    return EdgeSet(
        src=torch.from_numpy(src.astype(np.int64)),
        dst=torch.from_numpy(dst.astype(np.int64)),
        features=torch.from_numpy(feats),
        weight=torch.from_numpy(w.astype(np.float32)),
        dst_ptr=torch.from_numpy(ptr),
        num_src=int(num_src),
        num_dst=int(num_dst),
    )


def build_graphs(
    grid_lat,
    grid_lon,
    refinement: int,
    radius_fraction: float = 0.6,
    mesh_levels: Sequence[int] | None = None,
    *,
    ordering: str = "hilbert",
    seed: int = 0,
    timings: dict[str, float] | None = None,
) -> WeatherGraphs:
    """Build grid/mesh nodes and the mesh, grid2mesh and mesh2grid edge sets.

    Args:
        grid_lat: [n_lat] latitudes (degrees north, strictly ascending).
        grid_lon: [n_lon] longitudes (degrees east, strictly ascending; stored
            modulo 360). Grid nodes are ``g = i_lat * n_lon + i_lon``,
            ``G = n_lat * n_lon``.
        refinement: finest icosahedral level r (M = 10 * 4**r + 2 mesh nodes).
        radius_fraction: grid2mesh radius as a fraction of the longest edge of
            the finest mesh (GraphCast: 0.6).
        mesh_levels: refinement levels whose edges form the multimesh
            (default: all of ``0..refinement``).
        ordering: mesh node order, see :data:`weathergnn.graphs.layout.ORDERINGS`.
        seed: seed of the ``random`` ordering.
        timings: if given, filled with seconds per stage.
    Returns:
        WeatherGraphs (CPU tensors).
    Raises:
        ValueError: bad grid axes, refinement, ordering, or a radius too small
            for the grid (some mesh node would receive no grid2mesh edge).
    """
    t = {} if timings is None else timings
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        t[name] = now - clock
        clock = now

    lat, lon = validate_grid(grid_lat, grid_lon)
    ordering = _canonical_ordering(ordering)
    if not radius_fraction > 0:
        raise ValueError(f"radius_fraction must be > 0, got {radius_fraction}")
    n_lat, n_lon = lat.size, lon.size
    digest = content_hash(lat, lon, refinement, radius_fraction, ordering, mesh_levels, seed)

    # Grid nodes, latitude-major.
    g_lat = np.repeat(lat, n_lon)
    g_lon = np.tile(np.mod(lon, 360.0), n_lat)
    grid_xyz = lat_lon_to_xyz(g_lat, g_lon)  # [G, 3]
    lap("grid_nodes")

    meshes = get_mesh_hierarchy(refinement)
    finest = meshes[-1]
    lap("icosahedral")
    m_src, m_dst = multimesh_edges(meshes, mesh_levels)
    lap("multimesh")

    radius = radius_fraction * longest_edge_length(finest)
    grid_desc = (
        f"{n_lat}x{n_lon} grid (about {(lat[-1] - lat[0]) / max(n_lat - 1, 1):.4g} x "
        f"{360.0 / n_lon:.4g} deg) "
        f"at mesh refinement {refinement} with radius_fraction={radius_fraction}"
    )
    g2m_src, g2m_dst = grid2mesh_edges(grid_xyz, finest.vertices, radius, grid_desc=grid_desc)
    lap("grid2mesh")
    m2g_src, m2g_dst, m2g_w = mesh2grid_edges(grid_xyz, finest)
    lap("mesh2grid")

    # Renumber mesh nodes along the curve; remap every mesh index.
    perm = mesh_permutation(finest.vertices, ordering, seed)
    inv = np.empty_like(perm)
    inv[perm] = np.arange(perm.size, dtype=np.int64)
    mesh_xyz = finest.vertices[perm]
    m_src, m_dst = inv[m_src], inv[m_dst]
    g2m_dst = inv[g2m_dst]
    m2g_src = inv[m2g_src]
    lap("reorder")

    mesh_es = _edge_set(m_src, m_dst, mesh_xyz, mesh_xyz)
    lap("mesh_edges")
    g2m_es = _edge_set(g2m_src, g2m_dst, grid_xyz, mesh_xyz)
    lap("grid2mesh_edges")
    m2g_es = _edge_set(m2g_src, m2g_dst, mesh_xyz, grid_xyz, weight=m2g_w)
    lap("mesh2grid_edges")

    m_lat, m_lon = xyz_to_lat_lon(mesh_xyz)
    graphs = WeatherGraphs(
        grid_lat=torch.from_numpy(g_lat),
        grid_lon=torch.from_numpy(g_lon),
        grid_features=torch.from_numpy(node_features(g_lat, g_lon)),
        latitude_weights=torch.from_numpy(latitude_weights(lat, n_lon)),
        mesh_pos=torch.from_numpy(np.ascontiguousarray(mesh_xyz)),
        mesh_features=torch.from_numpy(node_features(m_lat, m_lon)),
        mesh=mesh_es,
        grid2mesh=g2m_es,
        mesh2grid=m2g_es,
        refinement=int(refinement),
        content_hash=digest,
        radius_fraction=float(radius_fraction),
        grid2mesh_radius=float(radius),
        ordering=ordering,
    )
    lap("features")
    return graphs
