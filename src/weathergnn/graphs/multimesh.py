"""GraphCast multimesh: the union of the edges of all refinement levels.

Because the vertices of level ``l`` are the first vertices of level ``l + 1``
(:mod:`weathergnn.graphs.icosahedral`), the faces of every level index into
the finest mesh's vertices; the multimesh is the set of directed edges of all
those faces. On a closed, consistently oriented triangulation every undirected
edge belongs to two faces of opposite orientation, so taking the 3 directed
edges ``v0->v1, v1->v2, v2->v0`` of every face yields each edge in both
directions exactly once. Edges of different levels are distinct (a level-l edge
is split at level l+1), and we deduplicate anyway.

Count: ``sum_{l<=r} 2 * 30 * 4**l`` directed edges, 327,660 at r = 6.

Source: GraphCast (Lam et al. 2023), ``graphcast/icosahedral_mesh.py``
(``merge_meshes``, ``faces_to_edges``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .icosahedral import TriangularMesh

__all__ = ["faces_to_edges", "multimesh_edges", "num_multimesh_edges"]


def num_multimesh_edges(refinement: int) -> int:
    """Directed multimesh edges over levels 0..r: ``60 * (4**(r+1) - 1) / 3``."""
    return sum(60 * 4**level for level in range(refinement + 1))


def faces_to_edges(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Directed edges ``v0->v1, v1->v2, v2->v0`` of each face.

    Args:
        faces: [F, 3] int vertex indices.
    Returns:
        (senders [3F], receivers [3F]) int64.
    """
    faces = np.asarray(faces, dtype=np.int64)
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"faces must be [F, 3], got shape {faces.shape}")
    return faces.T.reshape(-1).copy(), np.roll(faces, -1, axis=1).T.reshape(-1).copy()


def multimesh_edges(
    meshes: Sequence[TriangularMesh], levels: Sequence[int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Deduplicated directed edges of the union of the given refinement levels.

    Args:
        meshes: hierarchy from :func:`get_mesh_hierarchy` (item l = level l).
        levels: which levels to include (default all).
    Returns:
        (senders [E], receivers [E]) int64 indices into the finest mesh's
        vertices (``meshes[-1]``), sorted by (receiver, sender); no self loops,
        every edge present in both directions.
    Raises:
        ValueError: on an unknown level.
    """
    if levels is None:
        levels = range(len(meshes))
    levels = sorted(set(int(level) for level in levels))
    if not levels or levels[0] < 0 or levels[-1] >= len(meshes):
        raise ValueError(f"mesh levels {levels} out of range 0..{len(meshes) - 1}")
    faces = np.concatenate([meshes[level].faces for level in levels])
    snd, rcv = faces_to_edges(faces)
    n = meshes[-1].num_vertices
    key = np.unique(rcv * n + snd)
    return key % n, key // n
