"""Fused Triton kernels for message passing (one kernel concept per module).

Each kernel has a plain-torch reference in :mod:`weathergnn.ops.reference`; the
tests compare forward and every gradient. On a machine without a GPU the
kernels run under the Triton interpreter (``TRITON_INTERPRET=1``), which is how
CI checks them. Import this package freely: Triton itself is imported lazily by
the kernel modules, and :func:`available` says whether they can run.
"""

from __future__ import annotations

import importlib.util
import os

import torch


#: The widest input of an MLP first layer that runs as ``narrow_linear_silu`` (one pass, ``pre`` never stored);
#: wider ones are a real GEMM, cuBLAS's job. Here, not in that module, so models can read it without Triton.
NARROW_MAX_FEATURES = 32


def cdiv(a: int, b: int) -> int:
    """``ceil(a / b)`` for launch grids, in plain Python.

    ``triton.cdiv`` and ``triton.next_power_of_2`` are ``constexpr_function``
    wrappers (Triton >= 3.6): each host call unwraps its arguments, a few
    microseconds that add up in the launch path of small graphs.
    """
    return -(-a // b)


def next_power_of_2(n: int) -> int:
    """The smallest power of two >= ``n`` (0 for ``n <= 0``, as ``triton.next_power_of_2``), in plain Python
    (see :func:`cdiv`)."""
    return 0 if n <= 0 else 1 << (n - 1).bit_length()


def row_splits(rows: int, block: int, wanted: int) -> tuple[int, int]:
    """Split ``rows >= 1`` into at most ``wanted`` slices of whole ``block``-row steps (split-K reductions).

    Returns:
        (splits, rows per split): rows per split is a multiple of ``block``,
        every split has rows (the last may be partial), ``1 <= splits <=
        max(1, wanted)``.
    """
    splits = max(1, min(cdiv(rows, block), wanted))
    per_split = cdiv(cdiv(rows, splits), block) * block
    return cdiv(rows, per_split), per_split


def interpreting() -> bool:
    """True when ``TRITON_INTERPRET=1`` (kernels run on CPU tensors, slowly)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


_HAS_TRITON = importlib.util.find_spec("triton") is not None  # once: find_spec is not traceable by dynamo


def has_triton() -> bool:
    """True when the ``triton`` package is importable."""
    return _HAS_TRITON


def available(device: torch.device | str | None = None) -> bool:
    """Whether the Triton kernels can run on ``device``.

    CUDA devices need Triton; CPU tensors need Triton *and* the interpreter.
    ``device=None`` asks whether there is any device they can run on (a CUDA
    device, or the interpreter).
    """
    if not has_triton():
        return False
    if device is None:
        return torch.cuda.is_available() or interpreting()
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.is_available()
    return dev.type == "cpu" and interpreting()


def has_tma(device: torch.device) -> bool:
    """A CUDA device of compute capability >= 9: TMA descriptors can feed the kernels (constant under dynamo)."""
    return device.type == "cuda" and torch.cuda.get_device_properties(device).major >= 9


def unavailable_reason(device: torch.device | str | None = None) -> str:
    """Human-readable reason why :func:`available` is False (empty when it is True)."""
    if available(device):
        return ""
    if not has_triton():
        return "the triton package is not installed (pip install 'weathergnn[gpu]')"
    dev = torch.device(device) if device is not None else torch.device("cuda")
    if dev.type == "cuda":
        return "no CUDA device is available (TRITON_INTERPRET=1 runs the kernels on CPU tensors)"
    return f"Triton kernels need a CUDA device, or TRITON_INTERPRET=1 for CPU tensors (got {dev})"
