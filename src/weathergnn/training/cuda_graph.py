"""A whole training step captured once as a CUDA graph, then replayed.

A GraphCast-size step launches a few thousand kernels (16 processor layers,
chunked encoder and decoder, recomputation, AdamW). Launched one by one from
Python, the host needs about as long as the GPU to issue them (the
``host_ms`` of the step benchmark, ``benchmarks/results/``), so the step waits
on launches and jitter. Captured as one CUDA graph, the step is one launch.

:class:`CapturedStep` follows the whole-network capture recipe of the PyTorch
CUDA-graphs notes ("CUDA Graphs", torch.cuda.graph; Nguyen et al., "Accelerating
PyTorch with CUDA Graphs", 2021): a few eager warm-up calls on a side stream
(``torch.compile`` and Triton compile, cuBLAS and the allocator settle), then
one capture into a private memory pool, then replays. Its inputs are copied
into static tensors before each replay; its outputs are static tensors
overwritten by each replay.

What the step function must do (checked where it can be):

* no host-device synchronisation (``.item()``, ``.cpu()``, printing a CUDA
  tensor, data-dependent shapes): the capture raises ``RuntimeError`` at the
  first one;
* set the gradients to ``None`` before its backward
  (``optimizer.zero_grad(set_to_none=True)``), so that the captured backward
  writes them instead of accumulating into buffers of an earlier call;
* step an optimiser built with ``capturable=True`` (its step count lives on
  the GPU) and, when a scheduler changes the learning rate, a tensor ``lr``
  (``torch.optim.lr_scheduler`` then updates it in place);
* have no randomness, or draw it from the CUDA generator only (recorded by
  the capture and advanced on replay).

Warm-up calls and the capture run on one side stream per device, shared by
every :class:`CapturedStep` (:func:`side_stream`): libraries initialise per
stream on first use (cuBLAS allocates a 32 MiB workspace for each new stream
on Hopper, held until the process ends), so warming up on the stream that is
then captured settles them before the capture, and one stream costs one
workspace, not one per warm-up call and another for the capture.

Each call is one real step: warm-up calls run the function eagerly; the
capturing call records the step and then replays it on that call's inputs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
from torch.utils._pytree import tree_flatten, tree_unflatten

__all__ = ["CapturedStep", "is_capturing", "side_stream"]


def is_capturing() -> bool:
    """True while the current CUDA stream is being captured into a CUDA graph (False without CUDA)."""
    return torch.cuda.is_available() and torch.cuda.is_current_stream_capturing()


_side_streams: dict[int, torch.cuda.Stream] = {}


def side_stream(device: torch.device | str) -> torch.cuda.Stream:
    """The side stream that warm-up calls and captures run on for ``device`` (one per device, created once).

    Raises:
        ValueError: ``device`` is not a CUDA device.
    """
    device = torch.device(device)
    if device.type != "cuda":
        raise ValueError(f"side streams are CUDA streams; device {str(device)!r} is not a CUDA device")
    index = device.index if device.index is not None else torch.cuda.current_device()
    if index not in _side_streams:
        _side_streams[index] = torch.cuda.Stream(index)
    return _side_streams[index]


def _signature(leaves: list[Any]) -> tuple:
    """What a capture depends on: each tensor's shape, dtype and device; any other leaf's value."""
    return tuple(
        (tuple(x.shape), x.dtype, x.device) if torch.is_tensor(x) else ("value", x) for x in leaves
    )


def _pool_bytes(pool: tuple[int, int], device: torch.device) -> int:
    """Bytes of the allocator segments that belong to memory pool ``pool`` on ``device``."""
    index = device.index if device.index is not None else torch.cuda.current_device()
    return sum(int(seg["total_size"]) for seg in torch.cuda.memory_snapshot()
               if seg.get("device", index) == index and tuple(seg.get("segment_pool_id", ())) == tuple(pool))


class CapturedStep:
    """``fn(*args)`` run eagerly ``warmup`` times, then captured as a CUDA graph and replayed.

    Args:
        fn: the step, ``fn(*args) -> outputs``; ``args`` and ``outputs`` are
            (nested tuples, lists or dicts of) tensors and plain values. See
            the module docstring for what it must do.
        device: the CUDA device the step runs on.
        warmup: eager calls before the capture (at least 1: ``torch.compile``,
            Triton autotuning and lazy cuBLAS initialisation must not happen
            during the capture).

    Warm-up calls are counted per argument signature (structure, shapes,
    dtypes, devices, plain values); the first signature to reach ``warmup``
    calls is captured at its next call. Calls with another signature than the
    captured one run eagerly (``eager_calls`` counts them), so a last partial
    batch does not cost a new capture; :meth:`reset` drops the graph
    (e.g. when the rollout length changes) and the next calls warm up and
    capture anew.

    Attributes:
        replays: calls served by the graph (the capturing call included).
        eager_calls: calls run eagerly (warm-up and mismatched arguments).
        capture_s: wall time of the capture, seconds (None before it).
        pool_bytes: device memory held by the graph's private memory pool,
            bytes (its segments in ``torch.cuda.memory_snapshot``: what the
            step's tensors need at their peak, held between replays; None
            before the capture).

    Raises:
        ValueError: ``warmup < 1``, or ``device`` is not a CUDA device.
        RuntimeError: CUDA is not available.
    """

    def __init__(self, fn: Callable[..., Any], device: torch.device | str, warmup: int = 3):
        device = torch.device(device)
        if device.type != "cuda":
            raise ValueError(f"CUDA graphs need a CUDA device, got device {str(device)!r}")
        if not torch.cuda.is_available():
            raise RuntimeError("CUDA graphs need CUDA, and torch.cuda.is_available() is False")
        if warmup < 1:
            raise ValueError(f"warmup must be >= 1 (compilation must not happen during the capture), got {warmup}")
        self.fn, self.device, self.warmup = fn, device, warmup
        self.replays = self.eager_calls = 0
        self.capture_s: float | None = None
        self.pool_bytes: int | None = None
        self.reset()

    def reset(self) -> None:
        """Drop the captured graph, its memory pool and static tensors; the next calls warm up again."""
        self._graph: torch.cuda.CUDAGraph | None = None
        self._static_in: list[Any] | None = None
        self._static_out: Any = None
        self._signature: tuple | None = None
        self._warm: dict[tuple, int] = {}

    @property
    def captured(self) -> bool:
        """Whether a graph is captured (the next matching call replays it)."""
        return self._graph is not None

    def __call__(self, *args: Any) -> Any:
        leaves, spec = tree_flatten(args)
        signature = (spec, _signature(leaves))
        if self._graph is not None:
            if signature != self._signature:
                return self._eager(args)
            for static, x in zip(self._static_in, leaves):
                if torch.is_tensor(static):
                    static.copy_(x, non_blocking=True)
            self._graph.replay()
            self.replays += 1
            return self._static_out
        # warm-up counts per argument signature: the first to have had ``warmup`` eager calls is captured
        # (alternating full and partial batches capture the full one: it comes first)
        if self._warm.get(signature, 0) < self.warmup:
            self._warm[signature] = self._warm.get(signature, 0) + 1
            return self._eager(args, on_side_stream=True)
        return self._capture(leaves, spec, signature)

    def _eager(self, args: tuple, on_side_stream: bool = False) -> Any:
        self.eager_calls += 1
        if not on_side_stream:
            return self.fn(*args)
        stream = side_stream(self.device)
        stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(stream):
            out = self.fn(*args)
        torch.cuda.current_stream(self.device).wait_stream(stream)
        return out

    def _capture(self, leaves: list[Any], spec, signature: tuple) -> Any:
        # static inputs: fresh copies the graph reads; later calls copy their arguments into them
        static_in = [x.detach().clone() if torch.is_tensor(x) else x for x in leaves]
        torch.cuda.synchronize(self.device)
        graph = torch.cuda.CUDAGraph()
        t0 = time.perf_counter()
        with torch.cuda.graph(graph, stream=side_stream(self.device)):  # the stream the warm-up ran on
            out = self.fn(*tree_unflatten(static_in, spec))
        torch.cuda.synchronize(self.device)
        self.capture_s = time.perf_counter() - t0
        self.pool_bytes = _pool_bytes(graph.pool(), self.device)
        self._graph, self._static_in, self._static_out, self._signature = graph, static_in, out, signature
        graph.replay()  # the capture recorded the step without running it: this call's step runs now
        self.replays += 1
        return out
