"""benchmarking.clocks: NVML polls around the timed samples, summarised per sample window."""

from __future__ import annotations

import time
import types

import pytest
import torch

from weathergnn.benchmarking import clocks, timing


def test_without_a_gpu_the_monitor_says_why_and_does_nothing():
    mon = clocks.ClockMonitor(torch.device("cpu"))
    mon.start()
    mon.stop()
    assert mon.summary() == {"unavailable": "device cpu is not a CUDA device"}


def _fake_nvml(script):
    """A pynvml stand-in whose polls return ``script``'s (SM MHz, mW, reasons) rows in turn, then the last."""
    state = {"i": 0}

    def row():
        r = script[min(state["i"], len(script) - 1)]
        return r

    def clock(handle, kind):
        return row()[0]

    def power(handle):
        return row()[1]

    def reasons(handle):
        r = row()[2]
        state["i"] += 1
        return r

    return types.SimpleNamespace(NVML_CLOCK_SM=1, nvmlDeviceGetClockInfo=clock, nvmlDeviceGetPowerUsage=power,
                                 nvmlDeviceGetCurrentClocksEventReasons=reasons)


def test_summary_splits_the_polls_by_sample_window(monkeypatch):
    # first window: 1980 MHz at 500 W, idle bit; second: 1600 MHz at 700 W, software power cap
    fake = _fake_nvml([(1980, 500_000, 0x1)] * 3 + [(1600, 700_000, 0x4)] * 1000)
    monkeypatch.setattr(clocks, "_nvml_handle", lambda device: (fake, "handle"))
    mon = clocks.ClockMonitor(torch.device("cuda"), interval_s=0.001)
    mon.start()
    t0 = time.perf_counter()
    while len(mon._rows) < 3:
        time.sleep(0.0005)
    t1 = time.perf_counter()
    while len(mon._rows) < 8:
        time.sleep(0.0005)
    mon.stop()
    t2 = time.perf_counter()
    first = [r for r in mon._rows if r[0] <= t1]
    assert len(first) >= 3 and all(r[1] == 1980 for r in first[:3])
    s = mon.summary([(t0 - 1.0, t1), (t1, t2)])
    assert s["polls"] == len(mon._rows)
    assert s["sm_MHz"]["min"] == 1600 and s["sm_MHz"]["max"] == 1980
    assert s["power_W"]["max"] == pytest.approx(700.0)
    assert s["sample_sm_MHz"][1] == 1600
    n = len(mon._rows)
    assert s["reasons"]["gpu_idle"] == pytest.approx(round(3 / n, 3))
    assert s["reasons"]["sw_power_cap"] == pytest.approx(round((n - 3) / n, 3))
    # a window with no poll in it
    assert mon.summary([(t2 + 10, t2 + 11)]) == {"polls": 0}


def test_measure_keeps_one_window_per_sample_and_runs_the_monitor_around_them():
    calls = []

    class Monitor:
        def start(self):
            calls.append(("start", time.perf_counter()))

        def stop(self):
            calls.append(("stop", time.perf_counter()))

    m = timing.measure(lambda: sum(range(1000)), device=torch.device("cpu"), warmup=2, repeats=4, monitor=Monitor())
    assert [c[0] for c in calls] == ["start", "stop"]
    assert len(m.windows) == 4
    starts = [a for a, _ in m.windows]
    assert starts == sorted(starts) and all(a < b for a, b in m.windows)
    assert calls[0][1] <= m.windows[0][0] and m.windows[-1][1] <= calls[1][1]


def test_measure_stops_the_monitor_when_a_step_raises():
    calls = []

    class Monitor:
        def start(self):
            calls.append("start")

        def stop(self):
            calls.append("stop")

    n = {"calls": 0}

    def step():
        n["calls"] += 1
        if n["calls"] > 2:  # the second timed call fails (after one warm-up and one sample)
            raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        timing.measure(step, device=torch.device("cpu"), warmup=1, repeats=3, monitor=Monitor())
    assert calls == ["start", "stop"]
