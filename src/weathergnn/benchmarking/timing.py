"""Time one benchmark step: warm-up, CUDA-event (or wall-clock) samples, peak memory.

Protocol of :func:`measure` (after ``triton.testing.do_bench`` and the
torch-harmonics benchmarks):

1. the caller has built the case (module, inputs) *after* :func:`memory_baseline`
   was taken, so the peak counts the case's own tensors, not what earlier
   cases or the shared graph left allocated;
2. ``warmup`` untimed calls of ``step`` (``torch.compile`` compiles and Triton
   JIT-compiles here), each followed by ``reset``; the wall time of the first
   call is kept as ``first_call_s`` (compile time + one run);
3. ``repeats`` timed calls. On CUDA each sample is the time between two CUDA
   events recorded on the current stream around ``step`` (kernel time plus
   launch gaps, no host-device sync inside), started from an idle device:
   ``torch.cuda.synchronize()`` and an L2 flush (writing a 256 MiB buffer)
   happen before each sample, outside the timed region. On CPU each sample
   is ``time.perf_counter`` around ``step``. ``reset`` (free gradients) runs
   after each sample, outside the timed region;
4. the result is the median of the samples (all samples are kept); the peak
   memory is ``torch.cuda.max_memory_allocated() - baseline`` (CUDA only).
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

__all__ = [
    "Measurement",
    "copy_bandwidth",
    "free_memory",
    "is_out_of_memory",
    "measure",
    "memory_baseline",
    "synchronize",
]

_L2_FLUSH_BYTES = 256 * 2**20
_flush_buffers: dict[torch.device, torch.Tensor] = {}


@dataclass
class Measurement:
    """Timing of one step.

    Attributes:
        samples_ms: [repeats] timed samples, milliseconds.
        median_ms: median of ``samples_ms``.
        first_call_s: wall time of the first warm-up call, seconds (includes
            ``torch.compile`` / Triton JIT compilation).
        warmup_s: wall time of all warm-up calls, seconds.
        peak_bytes: peak allocated device memory above the baseline (CUDA),
            ``None`` on CPU.
    """

    samples_ms: list[float] = field(default_factory=list)
    median_ms: float = float("nan")
    first_call_s: float = float("nan")
    warmup_s: float = float("nan")
    peak_bytes: int | None = None


def synchronize(device: torch.device) -> None:
    """Wait for all work queued on ``device`` (no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def free_memory(device: torch.device, collect: bool = True) -> None:
    """Return cached device blocks to the driver; ``collect`` first runs the garbage collector.

    The collector (0.1-0.3 s with torch loaded) is only needed for reference
    cycles, e.g. after an exception or ``torch.compile``; plain cases free
    their tensors when the last reference goes.
    """
    if collect:
        gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()


def release_case(device: torch.device, compiled: bool, baseline_bytes: int | None = None, failed: bool = False) -> None:
    """Tear down a measured case whose tensors the caller has dropped.

    Resets dynamo after a compiled case, then frees the allocator cache. The
    garbage collector runs only where something may still hold device memory
    through reference cycles (tracebacks, compiled graphs): after a failure,
    a compiled case, more allocated than ``baseline_bytes``, or when no
    baseline is given.
    """
    if compiled:
        torch._dynamo.reset()
    leaked = device.type == "cuda" and (
        compiled or baseline_bytes is None or torch.cuda.memory_allocated(device) > baseline_bytes
    )
    free_memory(device, collect=failed or leaked)


def memory_baseline(device: torch.device) -> int:
    """Empty the allocator cache, reset the peak counter, return the bytes still allocated.

    Call before building a case; :func:`measure` reports the peak above it.
    Returns 0 on CPU.
    """
    if device.type != "cuda":
        return 0
    _flush_l2(device)  # the L2 flush buffer is allocated once, before any baseline
    free_memory(device, collect=False)
    torch.cuda.reset_peak_memory_stats(device)
    return torch.cuda.memory_allocated(device)


def is_out_of_memory(err: BaseException) -> bool:
    """True for ``torch.cuda.OutOfMemoryError`` and errors wrapping one (e.g. raised inside torch.compile)."""
    return isinstance(err, torch.cuda.OutOfMemoryError) or "out of memory" in str(err).lower()


def _flush_l2(device: torch.device) -> None:
    buf = _flush_buffers.get(device)
    if buf is None:
        buf = _flush_buffers[device] = torch.empty(_L2_FLUSH_BYTES, dtype=torch.uint8, device=device)
    buf.zero_()


def measure(
    step: Callable[[], object],
    *,
    device: torch.device,
    warmup: int,
    repeats: int,
    reset: Callable[[], object] | None = None,
    baseline_bytes: int = 0,
) -> Measurement:
    """Warm up, then time ``repeats`` calls of ``step`` (see the module docstring).

    Args:
        step: one iteration (e.g. forward + backward); its return value is dropped.
        device: where the work runs (CUDA: event timing and peak memory).
        warmup: untimed calls first (>= 1 recommended: compilation happens there).
        repeats: timed calls (>= 1).
        reset: called after every call, untimed (e.g. set gradients to None).
        baseline_bytes: :func:`memory_baseline` taken before the case was built.

    Returns:
        :class:`Measurement`.

    Raises:
        ValueError: ``repeats < 1`` or ``warmup < 0``.
        Whatever ``step`` raises (e.g. ``torch.cuda.OutOfMemoryError``).
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got repeats={repeats}, warmup={warmup}")
    reset = reset or (lambda: None)
    cuda = device.type == "cuda"
    out = Measurement()
    synchronize(device)
    t_start = time.perf_counter()
    for i in range(warmup):
        t0 = time.perf_counter()
        step()
        synchronize(device)
        if i == 0:
            out.first_call_s = time.perf_counter() - t0
        reset()
    out.warmup_s = time.perf_counter() - t_start

    samples: list[float] = []
    for _ in range(repeats):
        if cuda:
            _flush_l2(device)
            torch.cuda.synchronize(device)
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            step()
            end.record()
            end.synchronize()
            samples.append(start.elapsed_time(end))  # ms
        else:
            t0 = time.perf_counter()
            step()
            samples.append((time.perf_counter() - t0) * 1e3)
        if warmup == 0 and len(samples) == 1:
            out.first_call_s = samples[0] / 1e3
        reset()
    out.samples_ms = samples
    out.median_ms = statistics.median(samples)
    if cuda:
        out.peak_bytes = int(torch.cuda.max_memory_allocated(device)) - int(baseline_bytes)
    return out


def copy_bandwidth(device: torch.device, nbytes: int | None = None, repeats: int = 10) -> float:
    """Device-to-device copy bandwidth in GB/s (read + write): ``2 * nbytes / median time``.

    Args:
        device: the device to measure.
        nbytes: bytes copied per call (default 2 GiB on CUDA, 64 MiB on CPU).
        repeats: timed copies (after 3 warm-up copies).

    Returns:
        GB/s (1e9 bytes per second), the ceiling the achieved bandwidths are compared with.
    """
    if nbytes is None:
        nbytes = 2 * 2**30 if device.type == "cuda" else 64 * 2**20
    median_ms = _time_copy(device, nbytes, repeats)
    free_memory(device)
    return 2 * nbytes / (median_ms * 1e-3) / 1e9


def _time_copy(device: torch.device, nbytes: int, repeats: int) -> float:
    src = torch.empty(nbytes, dtype=torch.uint8, device=device).fill_(1)
    dst = torch.empty_like(src)
    return measure(lambda: dst.copy_(src), device=device, warmup=3, repeats=repeats).median_ms
