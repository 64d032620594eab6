"""Bytes model of sum aggregation ``out = A h``, forward + backward.

Sum aggregation over a destination-sorted edge set with ``E`` edges from
``Ns`` sender to ``Nd`` receiver nodes, ``F`` features of ``s`` bytes each
(2 for bf16, 4 for fp32), index arrays of 8 bytes (int64)::

    forward   out[i]    = sum_{e: dst[e] = i} h[src[e]]          [Nd, F]
    backward  grad_h[j] = sum_{e: src[e] = j} grad_out[dst[e]]   [Ns, F]

Two counts of the bytes a kernel must move (the definitions of the anchor
measurements, ``../shared/anchors/README.md``):

``ideal``: each input read once and each output written once, plus one int64
index array per pass::

    ideal = (Ns F s + Nd F s + 8 E)          forward: read h, write out, read src
          + (Nd F s + Ns F s + 8 E)          backward: read grad_out, write grad_h, read dst
          = 2 (Ns + Nd) F s + 16 E

``gathered``: one row read per edge (no reuse of a gathered row from cache),
outputs written once::

    gathered = (E F s + Nd F s + 8 E)        forward: E rows of h, write out
             + (E F s + Ns F s + 8 E)        backward: E rows of grad_out, write grad_h
             = 2 E F s + (Ns + Nd) F s + 16 E

Achieved bandwidth = bytes / median time. ``s`` is the element size the
implementation actually moves (4 for the fp32 cuSPARSE baseline, 2 for bf16).

Note on the anchors: their ``ideal_GBps`` equals this ``ideal`` with s = 2 for
every implementation (also for fp32 cuSPARSE); their ``gathered_GBps`` counts
``2 Nd F s`` for the node rows instead of ``(Ns + Nd) F s`` (reconstructed
from the numbers in ``h200_pyg_graphcast025_l6.jsonl``), so it differs from
ours on the bipartite grid2mesh and mesh2grid sets. Compare anchor
milliseconds, not anchor GB/s.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["BYTES_MODEL", "INDEX_BYTES", "SumBytes", "sum_aggregation_bytes"]

#: Bytes per index (int64 ``src`` / ``dst``).
INDEX_BYTES = 8

#: The model as stored in the results header (formulas in the module docstring).
BYTES_MODEL: dict[str, str] = {
    "op": "sum aggregation out = A h, forward + backward (grad_h = A^T grad_out)",
    "ideal": "2 (Ns + Nd) F s + 16 E: each input read once, each output written once, one int64 index array per pass",
    "gathered": "2 E F s + (Ns + Nd) F s + 16 E: one source row read per edge in each pass, outputs written once",
    "units": "bytes; GB/s = bytes / median seconds / 1e9; s = element size moved by the implementation",
    "copy": "device-to-device copy of a large tensor, GB/s = 2 x bytes / seconds (read + write), same run",
}


@dataclass(frozen=True)
class SumBytes:
    """Bytes moved by one forward + backward of sum aggregation (see the module docstring)."""

    ideal: int
    gathered: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def sum_aggregation_bytes(
    num_src: int, num_dst: int, num_edges: int, features: int, elem_bytes: int
) -> SumBytes:
    """Ideal and gathered byte counts of sum aggregation, forward + backward.

    Args:
        num_src: sender nodes ``Ns``.
        num_dst: receiver nodes ``Nd``.
        num_edges: edges ``E``.
        features: feature width ``F`` (the latent, batch 1).
        elem_bytes: bytes per feature element ``s`` (2 for bf16, 4 for fp32).

    Returns:
        :class:`SumBytes` with ``ideal = 2 (Ns + Nd) F s + 16 E`` and
        ``gathered = 2 E F s + (Ns + Nd) F s + 16 E``.

    Raises:
        ValueError: a negative count or a non-positive ``features``/``elem_bytes``.
    """
    for name, v in (("num_src", num_src), ("num_dst", num_dst), ("num_edges", num_edges)):
        if v < 0:
            raise ValueError(f"{name} must be >= 0, got {v}")
    if features <= 0 or elem_bytes <= 0:
        raise ValueError(f"features and elem_bytes must be > 0, got {features}, {elem_bytes}")
    rows = features * elem_bytes  # bytes of one node row
    index = 2 * INDEX_BYTES * num_edges  # one index array per pass
    ideal = 2 * (num_src + num_dst) * rows + index
    gathered = 2 * num_edges * rows + (num_src + num_dst) * rows + index
    return SumBytes(ideal=ideal, gathered=gathered)
