"""Grid <-> mesh connectivity: grid2mesh by radius, mesh2grid by containing triangle.

Source: GraphCast (Lam et al. 2023, Science), ``graphcast/grid_mesh_connectivity.py``
(``radius_query_indices``, ``in_mesh_triangle_indices``). Differences: the
containing triangle is found with a KD-tree on face centroids plus a vectorised
containment test on the nearest few faces (GraphCast uses trimesh), and we also
return barycentric weights for mesh2grid.

All positions are unit vectors; distances are chord lengths on the unit sphere.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from .icosahedral import TriangularMesh

__all__ = [
    "longest_edge_length",
    "grid2mesh_edges",
    "containing_faces",
    "barycentric_weights",
    "mesh2grid_edges",
]

# Tolerance on normalised triple products for "inside or on the boundary".
_CONTAIN_TOL = 1e-12


def longest_edge_length(mesh: TriangularMesh) -> float:
    """Longest edge (chord length on the unit sphere) of a triangular mesh."""
    v, f = mesh.vertices, mesh.faces
    d = v[f] - v[np.roll(f, -1, axis=1)]  # [F, 3, 3]
    return float(np.sqrt(np.einsum("fki,fki->fk", d, d)).max())


def grid2mesh_edges(
    grid_xyz: np.ndarray, mesh_xyz: np.ndarray, radius: float, *, grid_desc: str = "grid"
) -> tuple[np.ndarray, np.ndarray]:
    """Every grid node sends to every mesh node within ``radius`` (chord length).

    Args:
        grid_xyz: [G, 3] unit vectors of the grid nodes.
        mesh_xyz: [M, 3] unit vectors of the mesh nodes.
        radius: query radius (chord length on the unit sphere), > 0.
        grid_desc: description of the grid for error messages.
    Returns:
        (src [E] grid indices, dst [E] mesh indices), int64, sorted by src.
    Raises:
        ValueError: if some mesh node receives no edge (radius too small for
            the grid spacing).
    """
    if not radius > 0:
        raise ValueError(f"grid2mesh radius must be > 0, got {radius}")
    tree = cKDTree(mesh_xyz)
    # Counts first (cheap), then a dense k-NN query bounded by the radius: no
    # Python list per grid point, fully vectorised.
    counts = tree.query_ball_point(grid_xyz, r=radius, workers=-1, return_length=True)
    k = int(counts.max()) if counts.size else 0
    if k == 0:
        src = np.zeros(0, np.int64)
        dst = np.zeros(0, np.int64)
    else:
        dist, idx = tree.query(grid_xyz, k=k, distance_upper_bound=radius * (1 + 1e-12), workers=-1)
        dist = dist.reshape(grid_xyz.shape[0], k)
        idx = idx.reshape(grid_xyz.shape[0], k)
        valid = np.isfinite(dist) & (dist <= radius)
        src = np.nonzero(valid)[0].astype(np.int64)
        dst = idx[valid].astype(np.int64)
    received = np.bincount(dst, minlength=mesh_xyz.shape[0])
    missing = int((received == 0).sum())
    if missing:
        raise ValueError(
            f"grid2mesh: {missing} of {mesh_xyz.shape[0]} mesh nodes receive no grid node "
            f"within radius {radius:.6g} (chord on the unit sphere, about "
            f"{np.rad2deg(2 * np.arcsin(min(radius / 2, 1.0))):.4g} deg) for the {grid_desc}. "
            "The grid is too coarse for this mesh: use a larger radius_fraction or a "
            "lower mesh refinement."
        )
    return src, dst


def barycentric_weights(points: np.ndarray, tri: np.ndarray) -> np.ndarray:
    """Barycentric weights of the central projection of points onto triangles.

    The point ``p`` is projected along the ray from the sphere centre onto the
    plane of triangle ``(a, b, c)``: ``p' = lambda p``. Its barycentric
    coordinates are ``w = (det(p,b,c), det(a,p,c), det(a,b,p)) / det(a,b,c)``
    (the ``lambda`` cancels after normalising the sum to 1).

    Args:
        points: [N, 3] unit vectors.
        tri: [N, 3 (vertex), 3 (xyz)] triangle vertices, counter-clockwise
            from outside.
    Returns:
        [N, 3] float64 raw weights summing to 1 (negative outside the triangle).
    """
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    wa = np.einsum("ij,ij->i", points, np.cross(b, c))
    wb = np.einsum("ij,ij->i", points, np.cross(c, a))
    wc = np.einsum("ij,ij->i", points, np.cross(a, b))
    w = np.stack([wa, wb, wc], axis=1)
    return w / w.sum(axis=1, keepdims=True)


def _contains(points: np.ndarray, tri: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(inside [N] bool, weights [N, 3]): inside or on the boundary of the
    spherical triangle (the projection must hit the front of the plane)."""
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    raw = np.stack(
        [
            np.einsum("ij,ij->i", points, np.cross(b, c)),
            np.einsum("ij,ij->i", points, np.cross(c, a)),
            np.einsum("ij,ij->i", points, np.cross(a, b)),
        ],
        axis=1,
    )
    total = raw.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = raw / total[:, None]
    inside = (total > 0) & np.all(w >= -_CONTAIN_TOL, axis=1)
    return inside, w


def containing_faces(
    points: np.ndarray, mesh: TriangularMesh, k: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """Index of a mesh face containing each point, and its barycentric weights.

    The ``k`` faces with the nearest centroids are tested in order (then 32,
    then all faces for any point still unresolved, which should not happen).
    A point on an edge or vertex gets the first candidate containing it.

    Args:
        points: [N, 3] unit vectors.
        mesh: TriangularMesh (outward faces).
        k: candidates tested in the first pass.
    Returns:
        (face [N] int64, weights [N, 3] float64 raw barycentric weights).
    Raises:
        RuntimeError: if some point lies in no face (a broken mesh).
    """
    v, f = mesh.vertices, mesh.faces
    n = points.shape[0]
    face = np.full(n, -1, dtype=np.int64)
    weights = np.zeros((n, 3), dtype=np.float64)
    centroids = v[f].mean(axis=1)
    tree = cKDTree(centroids)
    todo = np.arange(n)
    for kk in (k, 32):
        kk = min(kk, f.shape[0])
        if todo.size == 0:
            break
        _, cand = tree.query(points[todo], k=kk, workers=-1)
        cand = cand.reshape(todo.size, kk)
        for j in range(kk):
            if todo.size == 0:
                break
            fj = cand[:, j]
            ok, w = _contains(points[todo], v[f[fj]])
            face[todo[ok]] = fj[ok]
            weights[todo[ok]] = w[ok]
            todo, cand = todo[~ok], cand[~ok]
    for p in todo:  # brute force, practically never reached
        inside, w = _contains(np.broadcast_to(points[p], (f.shape[0], 3)), v[f])
        good = np.nonzero(inside)[0]
        if good.size == 0:
            raise RuntimeError(f"point {points[p]} lies in no mesh face")
        face[p], weights[p] = good[0], w[good[0]]
    return face, weights


def mesh2grid_edges(
    grid_xyz: np.ndarray, mesh: TriangularMesh
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """3 edges per grid node from the vertices of its containing mesh triangle.

    Args:
        grid_xyz: [G, 3] unit vectors.
        mesh: finest TriangularMesh (vertex indices = mesh node indices).
    Returns:
        (src [3G] mesh indices, dst [3G] grid indices, weight [3G] float64
        barycentric weights, >= 0 and summing to 1 per grid node), ordered by
        grid node.
    """
    g = grid_xyz.shape[0]
    face, w = containing_faces(grid_xyz, mesh)
    w = np.clip(w, 0.0, None)
    w /= w.sum(axis=1, keepdims=True)
    src = mesh.faces[face].reshape(-1).astype(np.int64)
    dst = np.repeat(np.arange(g, dtype=np.int64), 3)
    return src, dst, w.reshape(-1)
