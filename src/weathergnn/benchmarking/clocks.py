"""GPU clock, power and clock-event samples taken while a benchmark case is timed (NVML).

Timed samples of the same CUDA graph spread by 10-15% within one run
(``benchmarks/README.md``), and machines differ by 3-5% on the same step. A
GPU under load lowers its SM clock when it reaches its power or thermal
limit, so a sample's time is only half a measurement without the clock it
ran at. :class:`ClockMonitor` polls NVML (``nvidia-ml-py``, an optional
benchmark dependency) in a background thread while the samples are taken;
:meth:`ClockMonitor.summary` gives, per timed sample (host time window that
encloses its GPU work), the median SM clock, and over all samples the SM
clock and board power ranges and how often each clock-event reason (NVML's
"throttle reasons": software power cap, thermal slowdown, ...) was active.

Without NVML, or on CPU, the monitor does nothing and the summary says why.
"""

from __future__ import annotations

import statistics
import threading
import time

import torch

__all__ = ["ClockMonitor"]

#: NVML clock-event reason bits (nvmlClocksEventReason*), named as NVML names them.
REASONS = {
    0x1: "gpu_idle",
    0x2: "applications_clocks_setting",
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}


def _nvml_handle(device: torch.device):
    """(pynvml module, handle of ``device``) or (None, reason it cannot be monitored)."""
    if device.type != "cuda":
        return None, f"device {device} is not a CUDA device"
    try:
        import pynvml
    except ImportError:
        return None, "nvidia-ml-py (module pynvml) is not installed"
    try:
        pynvml.nvmlInit()
        uuid = str(torch.cuda.get_device_properties(device).uuid)
        handle = pynvml.nvmlDeviceGetHandleByUUID(uuid if uuid.startswith("GPU-") else f"GPU-{uuid}")
    except Exception as err:  # noqa: BLE001 - NVML missing from the driver, no permission, unknown UUID
        return None, f"NVML unavailable: {type(err).__name__}: {err}"
    return pynvml, handle


class ClockMonitor:
    """Poll SM clock (MHz), board power (W) and clock-event reasons every ``interval_s`` while started.

    Args:
        device: the GPU the timed work runs on.
        interval_s: polling interval, seconds (NVML answers in tens of microseconds; its power
            reading is itself averaged over a short window by the driver).

    Use :meth:`start` and :meth:`stop` around the timed samples (several start/stop pairs
    accumulate), then :meth:`summary` with each sample's host window.
    """

    def __init__(self, device: torch.device, interval_s: float = 0.002):
        self.interval_s = interval_s
        self._nvml, self._handle = _nvml_handle(device)
        self.unavailable = None if self._nvml is not None else self._handle
        self._rows: list[tuple[float, int, float, int]] = []  # (t, SM MHz, W, reasons)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _poll(self) -> None:
        nv, h = self._nvml, self._handle
        reasons_of = getattr(nv, "nvmlDeviceGetCurrentClocksEventReasons", None) or \
            nv.nvmlDeviceGetCurrentClocksThrottleReasons
        while not self._stop.is_set():
            try:
                row = (time.perf_counter(), nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM),
                       nv.nvmlDeviceGetPowerUsage(h) / 1e3, int(reasons_of(h)))
            except Exception:  # noqa: BLE001 - a failed poll is skipped, the timing goes on
                row = None
            if row is not None:
                self._rows.append(row)
            self._stop.wait(self.interval_s)

    def start(self) -> None:
        """Start polling (no-op without NVML)."""
        if self._nvml is None or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll, name="weathergnn-clock-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop polling."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None

    def summary(self, windows: list[tuple[float, float]] | None = None) -> dict:
        """What the polls saw.

        Args:
            windows: host ``time.perf_counter`` intervals (start, end) of the timed samples,
                in sample order; each encloses its sample's GPU work.

        Returns:
            ``{"unavailable": reason}`` without NVML; otherwise ``polls``, ``sm_MHz`` and
            ``power_W`` (min / median / max over the polls inside the windows, or over all
            polls without windows), ``reasons`` (fraction of those polls each active
            clock-event reason was set) and, with windows, ``sample_sm_MHz`` (each sample's
            median SM clock, None where no poll fell inside it).
        """
        if self._nvml is None:
            return {"unavailable": self.unavailable}
        rows = self._rows
        per_sample = None
        if windows:
            per_sample = [[r for r in rows if a <= r[0] <= b] for a, b in windows]
            rows = [r for sample in per_sample for r in sample]
        if not rows:
            return {"polls": 0}

        def spread(values: list[float]) -> dict:
            return {"min": round(min(values), 1), "median": round(statistics.median(values), 1),
                    "max": round(max(values), 1)}

        out = {"polls": len(rows), "interval_s": self.interval_s, "sm_MHz": spread([r[1] for r in rows]),
               "power_W": spread([r[2] for r in rows]),
               "reasons": {name: round(sum(1 for r in rows if r[3] & bit) / len(rows), 3)
                           for bit, name in REASONS.items() if any(r[3] & bit for r in rows)}}
        if per_sample is not None:
            out["sample_sm_MHz"] = [statistics.median([r[1] for r in s]) if s else None for s in per_sample]
        return out
