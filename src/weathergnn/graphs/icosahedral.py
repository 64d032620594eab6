"""Icosahedral meshes of the unit sphere and their refinement hierarchy.

A regular icosahedron (12 vertices, 20 faces) is refined ``r`` times; each
refinement splits every triangle into 4 with the edge midpoints projected back
onto the unit sphere. Level ``r`` has ``10 * 4**r + 2`` vertices and
``20 * 4**r`` faces (40,962 and 81,920 at ``r = 6``).

Vertex order is hierarchical: the vertices of level ``r - 1`` are the first
vertices of level ``r`` (new midpoints are appended), so the faces of every
level index into the finest level's vertex array. That is what lets the
multimesh (:mod:`weathergnn.graphs.multimesh`) live on the finest nodes.

Faces are oriented counter-clockwise seen from outside (outward normals:
``det(v0, v1, v2) > 0``), and children keep the orientation of their parent.

Source: GraphCast (Lam et al. 2023, Science), ``graphcast/icosahedral_mesh.py``:
same icosahedron, same rotation about the y axis (so mesh positions, hence
grid2mesh edge counts, match GraphCast's), same child-face layout. Unlike the
reference, the split is vectorised with numpy (no Python loop over faces): the
midpoints are deduplicated through a sorted-edge -> midpoint map built with
``np.unique``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "TriangularMesh",
    "get_icosahedron",
    "split_faces",
    "get_mesh_hierarchy",
    "num_mesh_nodes",
    "num_mesh_faces",
    "face_normals_outward",
]


@dataclass(frozen=True)
class TriangularMesh:
    """A triangulated sphere.

    Attributes:
        vertices: [num_vertices, 3] float64 unit vectors (x, y, z).
        faces: [num_faces, 3] int64 vertex indices, counter-clockwise seen from
            outside the sphere.
    """

    vertices: np.ndarray
    faces: np.ndarray

    @property
    def num_vertices(self) -> int:
        return int(self.vertices.shape[0])

    @property
    def num_faces(self) -> int:
        return int(self.faces.shape[0])


def num_mesh_nodes(refinement: int) -> int:
    """Number of vertices at refinement ``r``: ``10 * 4**r + 2``."""
    return 10 * 4**refinement + 2


def num_mesh_faces(refinement: int) -> int:
    """Number of triangles at refinement ``r``: ``20 * 4**r``."""
    return 20 * 4**refinement


def _rotation_y(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def get_icosahedron() -> TriangularMesh:
    """Regular icosahedron inscribed in the unit sphere.

    Vertices are the cyclic permutations of ``(±1, ±phi, 0)`` normalised, rotated
    about the y axis by ``(pi - dihedral) / 2`` so that a face lies flat at the
    top (GraphCast's orientation).

    Returns:
        TriangularMesh with vertices [12, 3] and faces [20, 3] (outward).
    """
    phi = (1.0 + np.sqrt(5.0)) / 2.0
    verts = []
    for c1 in (1.0, -1.0):
        for c2 in (phi, -phi):
            verts.append((c1, c2, 0.0))
            verts.append((0.0, c1, c2))
            verts.append((c2, 0.0, c1))
    vertices = np.asarray(verts, dtype=np.float64) / np.hypot(1.0, phi)
    faces = np.array(
        [
            (0, 1, 2), (0, 6, 1), (8, 0, 2), (8, 4, 0), (3, 8, 2),
            (3, 2, 7), (7, 2, 1), (0, 4, 6), (4, 11, 6), (6, 11, 5),
            (1, 5, 7), (4, 10, 11), (4, 8, 10), (10, 8, 3), (10, 3, 9),
            (11, 10, 9), (11, 9, 5), (5, 9, 7), (9, 3, 7), (1, 6, 5),
        ],
        dtype=np.int64,
    )
    dihedral = 2.0 * np.arcsin(phi / np.sqrt(3.0))
    vertices = vertices @ _rotation_y((np.pi - dihedral) / 2.0)
    vertices /= np.linalg.norm(vertices, axis=1, keepdims=True)
    # Defensive: make every face counter-clockwise from outside.
    flip = ~face_normals_outward(vertices, faces)
    faces[flip] = faces[flip][:, [0, 2, 1]]
    return TriangularMesh(vertices=vertices, faces=faces)


def face_normals_outward(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """[num_faces] bool: True where ``det(v0, v1, v2) > 0`` (outward normal)."""
    a, b, c = (vertices[faces[:, k]] for k in range(3))
    return np.einsum("ij,ij->i", a, np.cross(b, c)) > 0.0


def split_faces(mesh: TriangularMesh) -> TriangularMesh:
    """Split each triangle into 4, keeping orientation and parent vertex order.

    For a face ``(v1, v2, v3)`` with midpoints ``m12, m23, m31`` (on the unit
    sphere), the children are ``(v1, m12, m31)``, ``(m12, v2, m23)``,
    ``(m31, m23, v3)``, ``(m12, m23, m31)``.

    Args:
        mesh: TriangularMesh with V vertices, F faces.
    Returns:
        TriangularMesh with ``V + F * 3 / 2`` vertices (parents first, then one
        midpoint per undirected edge, in sorted-edge order) and ``4 F`` faces.
    """
    v, f = mesh.vertices, mesh.faces
    nv, nf = v.shape[0], f.shape[0]
    # Directed face edges in the order (v1v2, v2v3, v3v1): [3F, 2]
    e = np.stack([f, np.roll(f, -1, axis=1)], axis=-1).transpose(1, 0, 2).reshape(-1, 2)
    key = np.minimum(e[:, 0], e[:, 1]) * nv + np.maximum(e[:, 0], e[:, 1])
    ukey, inverse = np.unique(key, return_inverse=True)
    a, b = ukey // nv, ukey % nv
    mid = v[a] + v[b]
    mid /= np.linalg.norm(mid, axis=1, keepdims=True)
    mid_idx = (nv + inverse).reshape(3, nf)  # [3, F]: m12, m23, m31
    m12, m23, m31 = mid_idx
    v1, v2, v3 = f[:, 0], f[:, 1], f[:, 2]
    children = np.stack(
        [
            np.stack([v1, m12, m31], 1),
            np.stack([m12, v2, m23], 1),
            np.stack([m31, m23, v3], 1),
            np.stack([m12, m23, m31], 1),
        ],
        axis=1,
    ).reshape(-1, 3)  # the 4 children of face i are rows 4i .. 4i+3
    return TriangularMesh(vertices=np.concatenate([v, mid]), faces=children)


def get_mesh_hierarchy(refinement: int) -> list[TriangularMesh]:
    """Icosahedral meshes of levels ``0 .. refinement`` (``refinement + 1`` meshes).

    Args:
        refinement: finest level r >= 0.
    Returns:
        List where item ``l`` has ``10 * 4**l + 2`` vertices whose first
        ``10 * 4**(l-1) + 2`` are the vertices of level ``l - 1``.
    Raises:
        ValueError: if ``refinement`` is negative or not an integer.
    """
    if int(refinement) != refinement or refinement < 0:
        raise ValueError(f"refinement must be an integer >= 0, got {refinement!r}")
    meshes = [get_icosahedron()]
    for _ in range(int(refinement)):
        meshes.append(split_faces(meshes[-1]))
    return meshes
