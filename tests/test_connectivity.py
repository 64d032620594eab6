"""grid2mesh radius edges and mesh2grid containing-triangle edges vs brute force."""

from __future__ import annotations

import numpy as np
import pytest

from weathergnn.graphs.connectivity import (
    barycentric_weights,
    grid2mesh_edges,
    longest_edge_length,
    mesh2grid_edges,
)
from weathergnn.graphs.features import lat_lon_to_xyz
from weathergnn.graphs.icosahedral import get_mesh_hierarchy


def _grid_xyz(lat, lon):
    return lat_lon_to_xyz(np.repeat(lat, lon.size), np.tile(lon, lat.size))


@pytest.fixture(scope="module")
def small():
    """3 deg grid with poles (61 x 120) and a refinement-3 mesh."""
    lat = np.linspace(-90, 90, 61)
    lon = np.arange(120) * 3.0
    return _grid_xyz(lat, lon), get_mesh_hierarchy(3)[-1]


def test_grid2mesh_matches_brute_force(small):
    grid, mesh = small
    radius = 0.6 * longest_edge_length(mesh)
    src, dst = grid2mesh_edges(grid, mesh.vertices, radius)
    dist = np.linalg.norm(grid[:, None, :] - mesh.vertices[None, :, :], axis=-1)  # [G, M]
    bs, bd = np.nonzero(dist <= radius)
    got = np.sort(src * mesh.num_vertices + dst)
    want = np.sort(bs * mesh.num_vertices + bd)
    assert np.array_equal(got, want)
    assert np.all(np.bincount(dst, minlength=mesh.num_vertices) > 0)


def test_grid2mesh_radius_too_small_raises():
    lat = np.linspace(-87.1875, 87.1875, 32)
    lon = np.arange(64) * 5.625
    mesh = get_mesh_hierarchy(5)[-1]
    with pytest.raises(ValueError, match="radius_fraction|refinement"):
        grid2mesh_edges(_grid_xyz(lat, lon), mesh.vertices, 0.6 * longest_edge_length(mesh),
                        grid_desc="32x64 grid")


def _brute_contains(p, a, b, c):
    """Cone coefficients of p in (a, b, c) by a 3x3 solve (independent of the code)."""
    m = np.stack([a, b, c], axis=-1)  # [..., 3 (xyz), 3 (vertex)]
    return np.linalg.solve(m, p[..., None])[..., 0]


def test_mesh2grid_containing_triangle_and_weights(small):
    grid, mesh = small
    src, dst, w = mesh2grid_edges(grid, mesh)
    g = grid.shape[0]
    assert src.shape == dst.shape == w.shape == (3 * g,)
    assert np.array_equal(dst, np.repeat(np.arange(g), 3))
    w3 = w.reshape(g, 3)
    assert np.all(w3 >= 0)
    np.testing.assert_allclose(w3.sum(1), 1.0, atol=1e-12)
    tri = mesh.vertices[src.reshape(g, 3)]  # [G, 3, 3]
    # The weights reconstruct the point's central projection onto the plane.
    proj = np.einsum("gk,gki->gi", w3, tri)
    np.testing.assert_allclose(proj / np.linalg.norm(proj, axis=1, keepdims=True), grid, atol=1e-12)
    # The triple is one of the mesh's faces (in its orientation).
    face_keys = {tuple(np.roll(f, s)) for f in mesh.faces.tolist() for s in range(3)}
    assert all(tuple(t) in face_keys for t in src.reshape(g, 3).tolist())
    # Independent containment: cone coefficients >= 0 and equal to the weights.
    coef = _brute_contains(grid, tri[:, 0], tri[:, 1], tri[:, 2])
    assert np.all(coef >= -1e-12)
    np.testing.assert_allclose(coef / coef.sum(1, keepdims=True), w3, atol=1e-10)


def test_mesh2grid_every_point_in_some_face_brute_force(small):
    # For a sample of points, the brute-force set of containing faces is
    # non-empty and includes the chosen one.
    grid, mesh = small
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(50, 3))
    pts /= np.linalg.norm(pts, axis=1, keepdims=True)
    pts = np.concatenate([pts, grid[:: 97]])
    src, _, _ = mesh2grid_edges(pts, mesh)
    a, b, c = (mesh.vertices[mesh.faces[:, k]] for k in range(3))
    for i, p in enumerate(pts):
        coef = _brute_contains(np.broadcast_to(p, a.shape), a, b, c)
        inside = np.nonzero(np.all(coef >= -1e-12, axis=1))[0]
        assert inside.size >= 1
        chosen = set(src[3 * i : 3 * i + 3].tolist())
        assert any(set(mesh.faces[f].tolist()) == chosen for f in inside)


def test_barycentric_at_vertices_and_centroid():
    mesh = get_mesh_hierarchy(1)[-1]
    tri = mesh.vertices[mesh.faces[:5]]  # [5, 3, 3]
    for k in range(3):
        w = barycentric_weights(tri[:, k], tri)
        np.testing.assert_allclose(w, np.eye(3)[np.full(5, k)], atol=1e-12)
    cen = tri.mean(axis=1)
    cen /= np.linalg.norm(cen, axis=1, keepdims=True)
    np.testing.assert_allclose(barycentric_weights(cen, tri), 1 / 3, atol=1e-12)
