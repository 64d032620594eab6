"""Geometric properties of the icosahedral hierarchy and the multimesh."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from weathergnn.graphs.icosahedral import (
    face_normals_outward,
    get_icosahedron,
    get_mesh_hierarchy,
    num_mesh_faces,
    num_mesh_nodes,
)
from weathergnn.graphs.multimesh import faces_to_edges, multimesh_edges, num_multimesh_edges


@pytest.fixture(scope="module")
def hierarchy6():
    return get_mesh_hierarchy(6)


def test_icosahedron_regular():
    ico = get_icosahedron()
    assert ico.vertices.shape == (12, 3) and ico.faces.shape == (20, 3)
    np.testing.assert_allclose(np.linalg.norm(ico.vertices, axis=1), 1.0, atol=1e-15)
    snd, rcv = faces_to_edges(ico.faces)
    lengths = np.linalg.norm(ico.vertices[snd] - ico.vertices[rcv], axis=1)
    np.testing.assert_allclose(lengths, lengths[0], rtol=1e-12)  # all edges equal
    assert np.all(np.bincount(rcv) == 5)  # every vertex has degree 5


@pytest.mark.parametrize("r", range(7))
def test_counts_norm_orientation(hierarchy6, r):
    mesh = hierarchy6[r]
    assert mesh.num_vertices == num_mesh_nodes(r) == 10 * 4**r + 2
    assert mesh.num_faces == num_mesh_faces(r) == 20 * 4**r
    np.testing.assert_allclose(np.linalg.norm(mesh.vertices, axis=1), 1.0, atol=1e-14)
    assert face_normals_outward(mesh.vertices, mesh.faces).all()
    # Outward also means the face normal points along the centroid.
    a, b, c = (mesh.vertices[mesh.faces[:, k]] for k in range(3))
    assert np.all(np.einsum("ij,ij->i", np.cross(b - a, c - a), a + b + c) > 0)
    # No duplicated vertices (midpoints shared between neighbouring faces).
    d, _ = cKDTree(mesh.vertices).query(mesh.vertices, k=2)
    assert d[:, 1].min() > 1e-6
    # Closed manifold: every directed edge once, its reverse present.
    snd, rcv = faces_to_edges(mesh.faces)
    key = snd * mesh.num_vertices + rcv
    rev = rcv * mesh.num_vertices + snd
    assert np.unique(key).size == key.size
    assert np.array_equal(np.sort(key), np.sort(rev))
    assert mesh.faces.min() == 0 and mesh.faces.max() == mesh.num_vertices - 1


def test_coarse_vertices_first(hierarchy6):
    for coarse, fine in zip(hierarchy6[:-1], hierarchy6[1:]):
        assert np.array_equal(fine.vertices[: coarse.num_vertices], coarse.vertices)


def test_children_tile_parent(hierarchy6):
    # Each parent's 4 children have the same total spherical-triangle orientation
    # and child vertices are the parent's vertices or midpoints on its edges.
    parent, child = hierarchy6[2], hierarchy6[3]
    kids = child.faces.reshape(parent.num_faces, 4, 3)
    assert np.array_equal(kids[:, 0, 0], parent.faces[:, 0])
    assert np.array_equal(kids[:, 1, 1], parent.faces[:, 1])
    assert np.array_equal(kids[:, 2, 2], parent.faces[:, 2])
    m12 = kids[:, 0, 1]
    expect = child.vertices[parent.faces[:, 0]] + child.vertices[parent.faces[:, 1]]
    expect /= np.linalg.norm(expect, axis=1, keepdims=True)
    np.testing.assert_allclose(child.vertices[m12], expect, atol=1e-15)


@pytest.mark.parametrize("r,expected", [(0, 60), (1, 300), (2, 1260), (3, 5100), (6, 327_660)])
def test_multimesh_counts(hierarchy6, r, expected):
    snd, rcv = multimesh_edges(hierarchy6[: r + 1])
    assert snd.size == expected == num_multimesh_edges(r)
    n = hierarchy6[r].num_vertices
    assert snd.max() < n and rcv.max() < n
    assert np.all(snd != rcv)
    key = snd * n + rcv
    assert np.unique(key).size == key.size  # deduplicated
    assert np.array_equal(np.sort(key), np.sort(rcv * n + snd))  # bidirectional


def test_multimesh_levels_subset(hierarchy6):
    snd, _ = multimesh_edges(hierarchy6[:4], levels=[3])
    assert snd.size == 2 * 30 * 4**3
    with pytest.raises(ValueError):
        multimesh_edges(hierarchy6[:4], levels=[5])


def test_bad_refinement():
    with pytest.raises(ValueError):
        get_mesh_hierarchy(-1)
