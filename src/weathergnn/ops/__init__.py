"""Message-passing primitives behind a backend switch (plain torch or fused Triton kernels)."""

from weathergnn.ops.adjacency import Adjacency
from weathergnn.ops.dispatch import (
    BACKENDS,
    gather,
    gather_add_silu,
    layer_norm,
    layer_norm_residual,
    neighbour_sum,
    resolve_backend,
    segment_sum,
)

__all__ = [
    "Adjacency",
    "BACKENDS",
    "gather",
    "gather_add_silu",
    "layer_norm",
    "layer_norm_residual",
    "neighbour_sum",
    "resolve_backend",
    "segment_sum",
]
