"""Message-passing primitives (gather, segment sum, neighbour sum) behind a backend switch."""

from weathergnn.ops.dispatch import BACKENDS, gather, neighbour_sum, resolve_backend, segment_sum

__all__ = ["BACKENDS", "gather", "neighbour_sum", "resolve_backend", "segment_sum"]
