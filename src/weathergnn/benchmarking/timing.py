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
   The host time of each ``step`` call (until it returns, i.e. until its
   kernels are queued) is kept too: where it is close to the sample, the
   case is bound by launches, not by the GPU.

With ``queued=True`` (CUDA) a second set of ``repeats`` samples follows, with
the launches queued ahead: before the start event a spin kernel
(``torch.cuda._sleep``) holds the stream for twice the host time of a call
(plus 0.2 ms) while ``step`` queues its kernels behind it, so the interval
between the events is the GPU's own time for the step, without launch gaps
or host stalls (the "blocking kernel" of NVIDIA's nvbench). A sample whose
host call outlasted the spin is dropped; ``queued_median_ms`` is ``None``
when fewer than half are left, or when the spin would exceed
``max_spin_ms``. The timed samples above stay the headline figure (they
include what a user's Python loop pays); the queued ones show how much of a
short case is launch overhead and jitter.
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
    "spin_cycles_per_ms",
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
        host_ms: median host time of one timed ``step`` call, milliseconds
            (until it returns: kernel launches, not their completion).
        queued_samples_ms: the samples with launches queued ahead (``queued``),
            milliseconds; those whose host call outlasted the spin are left out.
        queued_median_ms: their median; ``None`` without ``queued``, on CPU,
            or when they could not be taken (``queued_note`` says why).
        windows: [repeats] host ``time.perf_counter`` intervals (start, end)
            of the timed samples, each enclosing its sample's GPU work (for a
            :class:`weathergnn.benchmarking.clocks.ClockMonitor`).
        queued_windows: the same for the kept queued samples.
    """

    samples_ms: list[float] = field(default_factory=list)
    median_ms: float = float("nan")
    first_call_s: float = float("nan")
    warmup_s: float = float("nan")
    peak_bytes: int | None = None
    host_ms: float = float("nan")
    queued_samples_ms: list[float] = field(default_factory=list)
    queued_median_ms: float | None = None
    queued_note: str | None = None
    windows: list[tuple[float, float]] = field(default_factory=list)
    queued_windows: list[tuple[float, float]] = field(default_factory=list)


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
    queued: bool = False,
    max_spin_ms: float = 50.0,
    monitor=None,
) -> Measurement:
    """Warm up, then time ``repeats`` calls of ``step`` (see the module docstring).

    Args:
        step: one iteration (e.g. forward + backward); its return value is dropped.
        device: where the work runs (CUDA: event timing and peak memory).
        warmup: untimed calls first (>= 1 recommended: compilation happens there).
        repeats: timed calls (>= 1).
        reset: called after every call, untimed (e.g. set gradients to None).
        baseline_bytes: :func:`memory_baseline` taken before the case was built.
        queued: also take ``repeats`` samples with the launches queued ahead
            (CUDA; module docstring).
        max_spin_ms: the longest spin allowed for them, milliseconds.
        monitor: an object with ``start()`` and ``stop()`` (e.g. a
            :class:`weathergnn.benchmarking.clocks.ClockMonitor`), started
            around the timed samples only (not the warm-up).

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
    host: list[float] = []
    if monitor is not None:
        monitor.start()
    try:
        for _ in range(repeats):
            t_window = time.perf_counter()
            if cuda:
                sample, host_ms = _cuda_sample(step, device)
            else:
                t0 = time.perf_counter()
                step()
                sample = host_ms = (time.perf_counter() - t0) * 1e3
            out.windows.append((t_window, time.perf_counter()))
            samples.append(sample)
            host.append(host_ms)
            if warmup == 0 and len(samples) == 1:
                out.first_call_s = samples[0] / 1e3
            reset()
        out.samples_ms = samples
        out.median_ms = statistics.median(samples)
        out.host_ms = statistics.median(host)
        if cuda and queued:
            _queued_samples(out, step, reset, device, repeats, max_spin_ms)
    finally:  # a step that raises (out of memory, say) must not leave the monitor polling
        if monitor is not None:
            monitor.stop()
    if cuda:
        out.peak_bytes = int(torch.cuda.max_memory_allocated(device)) - int(baseline_bytes)
    return out


def _cuda_sample(step: Callable[[], object], device: torch.device, spin_cycles: int = 0) -> tuple[float, float]:
    """One CUDA-event sample from an idle device with a flushed L2: (event ms, host ms of the ``step`` call).

    ``spin_cycles`` > 0: a spin kernel of that many clock cycles is queued before the start event.
    """
    _flush_l2(device)
    torch.cuda.synchronize(device)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    if spin_cycles:
        torch.cuda._sleep(spin_cycles)
    start.record()
    t0 = time.perf_counter()
    step()
    host_ms = (time.perf_counter() - t0) * 1e3
    end.record()
    end.synchronize()
    return start.elapsed_time(end), host_ms


_cycles_per_ms: dict[torch.device, float] = {}


def spin_cycles_per_ms(device: torch.device) -> float:
    """Clock cycles per millisecond of ``torch.cuda._sleep`` on ``device``, measured once (CUDA events)."""
    if device not in _cycles_per_ms:
        cycles = 20_000_000
        torch.cuda._sleep(cycles // 10)  # warm-up: clocks up, module loaded
        times = []
        for _ in range(3):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            torch.cuda._sleep(cycles)
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        _cycles_per_ms[device] = cycles / statistics.median(times)
    return _cycles_per_ms[device]


def _queued_samples(out: Measurement, step, reset, device: torch.device, repeats: int, max_spin_ms: float) -> None:
    """Fill ``out.queued_*``: ``repeats`` samples with a spin of ``2 * host_ms + 0.2`` ms ahead of the launches."""
    spin_ms = 2.0 * out.host_ms + 0.2
    if spin_ms > max_spin_ms:
        out.queued_note = f"not taken: a spin of {spin_ms:.1f} ms would exceed {max_spin_ms:g} ms"
        return
    cycles = int(spin_ms * spin_cycles_per_ms(device))
    kept, late = [], 0
    for _ in range(repeats):
        t_window = time.perf_counter()
        sample, host_ms = _cuda_sample(step, device, cycles)
        if host_ms < spin_ms:
            kept.append(sample)
            out.queued_windows.append((t_window, time.perf_counter()))
        else:  # the host was still launching when the spin ended: gaps may be inside
            late += 1
        reset()
    out.queued_samples_ms = kept
    if late:
        out.queued_note = f"{late} of {repeats} samples left out: the host call outlasted the {spin_ms:.2f} ms spin"
    if 2 * len(kept) >= repeats:
        out.queued_median_ms = statistics.median(kept)


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
