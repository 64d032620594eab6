"""Activation checkpointing (recomputation in backward), also inside a CUDA-graph capture."""

from __future__ import annotations

from torch.utils.checkpoint import checkpoint

from weathergnn.training.cuda_graph import is_capturing

__all__ = ["recompute"]


def recompute(fn, *args):
    """``fn(*args)`` whose activations are dropped and recomputed in backward (non-reentrant checkpoint).

    The CUDA random-number state is saved and restored around the
    recomputation (``preserve_rng_state``) except while a CUDA graph is being
    captured (:mod:`weathergnn.training.cuda_graph`), where reading it is a
    host operation outside the graph. WeatherGNN's models draw no random
    numbers in forward (no dropout), so the recomputation is identical either
    way.
    """
    return checkpoint(fn, *args, use_reentrant=False, preserve_rng_state=not is_capturing())
