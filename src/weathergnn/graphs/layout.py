"""Memory layout: space-filling-curve renumbering of mesh nodes, CSC edge order.

Orderings of the mesh nodes (``ORDERINGS``):

- ``"natural"``: the icosahedral refinement order (coarse vertices first).
  Neighbours at the finest level are scattered over the whole index range.
- ``"random"``: a seeded random permutation (worst-case baseline for benchmarks).
- ``"hilbert"`` (alias ``"sfc"``, the default): sort nodes by the key of a 3-D
  Hilbert curve on their Cartesian unit-sphere coordinates quantised to
  ``2**16`` cells per axis (Skilling's transpose algorithm, "Programming the
  Hilbert curve", AIP Conf. Proc. 707, 2004; vectorised over nodes).
- ``"morton"``: 3-D Z-order (bit interleaving) key, same quantisation.

Why a 3-D curve: the mesh nodes lie on a 2-D surface embedded in 3-D; a curve
on the 3-D coordinates needs no map projection (a lat-lon Hilbert curve
over-resolves the poles and cuts at the dateline; a cube-sphere curve needs 6
patches stitched together). The Hilbert curve keeps nodes close in index
close on the sphere with no long jumps inside a cell (Morton has jumps at
every power-of-two boundary), which is what a gather over a destination-sorted
edge list wants: the sources of consecutive destinations fall in the same
cache lines. ``tests/test_graph_build.py`` checks that it shortens the mean
|src - dst| index gap of the mesh edges versus ``natural`` and ``random``.

Grid nodes are never renumbered (latitude-major raster order, the data
layout).

CSC: each edge set is sorted by (dst, src) and ``dst_ptr[i]:dst_ptr[i+1]`` are
the incoming edges of receiver ``i``.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "ORDERINGS",
    "hilbert_key_3d",
    "morton_key_3d",
    "mesh_permutation",
    "csc_order",
    "dst_pointer",
]

ORDERINGS = ("hilbert", "sfc", "morton", "natural", "random")

_BITS = 16


def _quantise(xyz: np.ndarray, bits: int) -> np.ndarray:
    """[N, 3] in [-1, 1] -> [N, 3] uint64 in [0, 2**bits)."""
    q = np.floor((np.asarray(xyz, dtype=np.float64) + 1.0) * 0.5 * (1 << bits))
    return np.clip(q, 0, (1 << bits) - 1).astype(np.uint64)


def hilbert_key_3d(xyz: np.ndarray, bits: int = _BITS) -> np.ndarray:
    """Hilbert-curve index of points in ``[-1, 1]^3``.

    Args:
        xyz: [N, 3] coordinates (unit vectors for mesh nodes).
        bits: bits per axis (3 * bits <= 63).
    Returns:
        [N] uint64 keys.
    """
    x = [c.copy() for c in _quantise(xyz, bits).T]  # 3 arrays of [N] uint64
    n = 3
    one = np.uint64(1)
    m = one << np.uint64(bits - 1)
    # Inverse undo (Skilling's AxestoTranspose).
    q = m
    while q > one:
        p = q - one
        for i in range(n):
            hit = (x[i] & q) != 0
            # if bit set: invert low bits of x[0]; else exchange low bits of x[0], x[i]
            t = np.where(hit, np.uint64(0), (x[0] ^ x[i]) & p)
            x[0] = np.where(hit, x[0] ^ p, x[0] ^ t)
            if i != 0:
                x[i] = x[i] ^ t
        q >>= one
    # Gray encode.
    for i in range(1, n):
        x[i] = x[i] ^ x[i - 1]
    t = np.zeros_like(x[0])
    q = m
    while q > one:
        t = np.where((x[n - 1] & q) != 0, t ^ (q - one), t)
        q >>= one
    for i in range(n):
        x[i] = x[i] ^ t
    # Interleave the transposed bits, most significant first.
    key = np.zeros_like(x[0])
    for b in range(bits - 1, -1, -1):
        for i in range(n):
            key = (key << one) | ((x[i] >> np.uint64(b)) & one)
    return key


def morton_key_3d(xyz: np.ndarray, bits: int = _BITS) -> np.ndarray:
    """Z-order (Morton) index of points in ``[-1, 1]^3``: [N] uint64."""
    x = _quantise(xyz, bits).T
    one = np.uint64(1)
    key = np.zeros(x.shape[1], dtype=np.uint64)
    for b in range(bits - 1, -1, -1):
        for i in range(3):
            key = (key << one) | ((x[i] >> np.uint64(b)) & one)
    return key


def mesh_permutation(mesh_xyz: np.ndarray, ordering: str = "hilbert", seed: int = 0) -> np.ndarray:
    """Permutation ``perm`` [M] int64: new node ``i`` is old node ``perm[i]``.

    Args:
        mesh_xyz: [M, 3] unit vectors.
        ordering: one of ``ORDERINGS``.
        seed: seed of the ``"random"`` ordering.
    Raises:
        ValueError: on an unknown ordering.
    """
    m = mesh_xyz.shape[0]
    if ordering == "natural":
        return np.arange(m, dtype=np.int64)
    if ordering == "random":
        return np.random.default_rng(seed).permutation(m).astype(np.int64)
    if ordering in ("hilbert", "sfc"):
        return np.argsort(hilbert_key_3d(mesh_xyz), kind="stable").astype(np.int64)
    if ordering == "morton":
        return np.argsort(morton_key_3d(mesh_xyz), kind="stable").astype(np.int64)
    raise ValueError(f"unknown mesh ordering {ordering!r}; expected one of {ORDERINGS}")


def csc_order(src: np.ndarray, dst: np.ndarray, num_src: int) -> np.ndarray:
    """Permutation [E] that sorts edges by (dst, src)."""
    key = dst.astype(np.int64) * np.int64(num_src) + src.astype(np.int64)
    return np.argsort(key, kind="stable")


def dst_pointer(dst_sorted: np.ndarray, num_dst: int) -> np.ndarray:
    """CSC offsets [num_dst + 1] int64 of destination-sorted ``dst`` [E]."""
    ptr = np.zeros(num_dst + 1, dtype=np.int64)
    np.cumsum(np.bincount(dst_sorted, minlength=num_dst), out=ptr[1:])
    return ptr
