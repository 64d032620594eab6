"""Public message-passing entry points; each call selects a backend.

Backends: ``"torch"`` (:mod:`weathergnn.ops.reference`), ``"triton"`` (fused
kernels, not implemented yet) and ``"auto"`` (the fastest available; today
always ``"torch"``). The backend is an argument, not module-global state: a
model resolves its setting once (:func:`resolve_backend`, which fails early for
an unavailable backend) and passes it to every call.
"""

from __future__ import annotations

import torch

from weathergnn.ops import reference

BACKENDS = ("auto", "torch", "triton")


def resolve_backend(backend: str = "auto") -> str:
    """Map a backend setting to a concrete backend name.

    Args:
        backend: ``"auto"``, ``"torch"`` or ``"triton"``.

    Returns:
        ``"torch"`` (the only backend implemented today).

    Raises:
        ValueError: unknown name.
        NotImplementedError: ``"triton"`` (kernels come in a later issue).
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown ops backend {backend!r}; expected one of {BACKENDS}")
    if backend == "triton":
        raise NotImplementedError(
            "ops backend 'triton' is not implemented yet; use backend='torch' or 'auto'"
        )
    return "torch"


def gather(x: torch.Tensor, index: torch.Tensor, *, backend: str = "auto") -> torch.Tensor:
    """``[B, N, F], [E] -> [B, E, F]``: ``out[b, e] = x[b, index[e]]``."""
    resolve_backend(backend)
    return reference.gather(x, index)


def segment_sum(
    messages: torch.Tensor,
    dst_ptr: torch.Tensor,
    dst: torch.Tensor,
    num_nodes: int | None = None,
    *,
    backend: str = "auto",
) -> torch.Tensor:
    """``[B, E, F] -> [B, N, F]``: sum of destination-sorted messages per node.

    Nodes without incoming edges get zeros. See :func:`reference.segment_sum`.
    """
    resolve_backend(backend)
    return reference.segment_sum(messages, dst_ptr, dst, num_nodes)


def neighbour_sum(
    h: torch.Tensor,
    src: torch.Tensor,
    dst: torch.Tensor,
    dst_ptr: torch.Tensor,
    coeff: torch.Tensor,
    num_dst: int | None = None,
    *,
    backend: str = "auto",
) -> torch.Tensor:
    """``[B, Ns, F] -> [B, Nd, F]``: ``out_i = sum_j coeff_ij h_j`` over incoming edges.

    ``coeff`` is [E] or [B, E]. See :func:`reference.neighbour_sum`.
    """
    resolve_backend(backend)
    return reference.neighbour_sum(h, src, dst, dst_ptr, coeff, num_dst)
