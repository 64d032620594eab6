"""Tests for weathergnn.timing.timer (Deep500-style Timer)."""

from __future__ import annotations

import io
import json
import statistics
import sys
import time
import types

import pytest
import torch

from weathergnn.timing import TimeStats, TimeType, Timer, TimerError, load_time_stats


class FakeClock:
    """Replacement for time.perf_counter_ns: returns a settable integer (ns)."""

    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += round(seconds * 1e9)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    c = FakeClock()
    monkeypatch.setattr(time, "perf_counter_ns", c)
    return c


def test_exact_times_with_fake_clock(clock: FakeClock) -> None:
    t = Timer(cuda=False)
    for dur in (0.5, 1.25, 2.0):
        t.start(TimeType.BATCH)
        clock.advance(dur)
        t.end(TimeType.BATCH)
        clock.advance(10.0)  # time between regions is not counted
    assert t.get_time(TimeType.BATCH) == pytest.approx([0.5, 1.25, 2.0], abs=1e-12)
    # StrEnum: the enum member and its string value are the same key
    assert t.get_time("BATCH") == t.get_time(TimeType.BATCH)
    assert t.keys() == ["BATCH"]


def test_region_context_manager_and_user_keys(clock: FakeClock) -> None:
    t = Timer(cuda=False)
    with t.region("my/custom region"):
        clock.advance(0.003)
    assert t.get_time("my/custom region") == pytest.approx([0.003], abs=1e-12)
    assert t.get_time("never") == []


def test_region_discarded_on_exception(clock: FakeClock) -> None:
    t = Timer(cuda=False)
    with pytest.raises(ZeroDivisionError):
        with t.region(TimeType.FORWARD):
            clock.advance(1.0)
            1 / 0
    assert t.get_time(TimeType.FORWARD) == []
    assert not t.is_open(TimeType.FORWARD)
    with t.region(TimeType.FORWARD):  # usable again
        clock.advance(2.0)
    assert t.get_time(TimeType.FORWARD) == pytest.approx([2.0])


def test_nested_and_overlapping_regions(clock: FakeClock) -> None:
    t = Timer(cuda=False)
    t.start(TimeType.EPOCH)  # t=0
    clock.advance(1)
    t.start(TimeType.BATCH)  # t=1
    clock.advance(1)
    t.start(TimeType.FORWARD)  # t=2, nested in batch
    clock.advance(2)
    t.start(TimeType.IO)  # t=4, overlaps forward's end
    clock.advance(1)
    t.end(TimeType.FORWARD)  # t=5 -> forward 3
    clock.advance(1)
    t.end(TimeType.IO)  # t=6 -> io 2
    t.end(TimeType.BATCH)  # t=6 -> batch 5
    clock.advance(4)
    t.end(TimeType.EPOCH)  # t=10 -> epoch 10
    assert t.get_time(TimeType.FORWARD) == pytest.approx([3.0])
    assert t.get_time(TimeType.IO) == pytest.approx([2.0])
    assert t.get_time(TimeType.BATCH) == pytest.approx([5.0])
    assert t.get_time(TimeType.EPOCH) == pytest.approx([10.0])


def test_misuse_errors(clock: FakeClock) -> None:
    t = Timer(cuda=False)
    t.start("x")
    with pytest.raises(TimerError, match="'x' started twice"):
        t.start("x")
    t.end("x")
    with pytest.raises(TimerError, match="never started"):
        t.end("x")
    with pytest.raises(TypeError):
        t.start("")
    with pytest.raises(KeyError, match="no times recorded"):
        t.get_time_stats("nothing")


def test_stats_match_statistics_module(clock: FakeClock) -> None:
    durs = [0.1, 0.4, 0.2, 0.9, 0.35, 0.35]
    t = Timer(cuda=False)
    for d in durs:
        with t.region(TimeType.BACKWARD):
            clock.advance(d)
    s = t.get_time_stats(TimeType.BACKWARD)
    assert isinstance(s, TimeStats)
    assert s.key == "BACKWARD"
    assert s.count == len(durs)
    assert s.total == pytest.approx(sum(durs))
    assert s.min == pytest.approx(min(durs))
    assert s.max == pytest.approx(max(durs))
    assert s.mean == pytest.approx(statistics.mean(durs))
    assert s.median == pytest.approx(statistics.median(durs))
    assert s.stdev == pytest.approx(statistics.stdev(durs))  # sample stdev (n - 1)


def test_single_sample_stdev_zero(clock: FakeClock) -> None:
    t = Timer(cuda=False)
    with t.region("one"):
        clock.advance(0.25)
    s = t.get_time_stats("one")
    assert (s.count, s.stdev, s.median, s.mean) == (1, 0.0, pytest.approx(0.25), pytest.approx(0.25))


def _filled_timer(clock: FakeClock) -> Timer:
    t = Timer(cuda=False)
    for d in (0.001, 0.002, 0.004):
        with t.region(TimeType.BATCH):
            clock.advance(d)
    with t.region("custom,key with comma"):
        clock.advance(1.5)
    return t


@pytest.mark.parametrize("ext", [".json", ".csv"])
def test_save_load_round_trip(clock: FakeClock, tmp_path, ext: str) -> None:
    t = _filled_timer(clock)
    path = tmp_path / "sub" / f"timing{ext}"
    t.save_all_time_stats(path)
    loaded = load_time_stats(path)
    expected = t.get_all_time_stats()
    assert list(loaded) == list(expected)
    for k in expected:
        assert loaded[k] == expected[k]  # exact: floats written with repr / json
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp files left


def test_save_json_include_times_and_bad_extension(clock: FakeClock, tmp_path) -> None:
    t = _filled_timer(clock)
    p = t.save_all_time_stats(tmp_path / "t.json", include_times=True)
    data = json.loads(p.read_text())
    assert data["unit"] == "s"
    assert data["times"]["BATCH"] == pytest.approx([0.001, 0.002, 0.004])
    with pytest.raises(ValueError, match="unknown extension"):
        t.save_all_time_stats(tmp_path / "t.txt")


def test_print_all_time_stats(clock: FakeClock) -> None:
    t = _filled_timer(clock)
    buf = io.StringIO()
    t.print_all_time_stats(file=buf)
    out = buf.getvalue()
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["key", "count"]
    assert any(line.startswith("BATCH") and " 3 " in line for line in lines)
    assert "2.333" in out  # mean of batch in ms
    empty = io.StringIO()
    Timer(cuda=False).print_all_time_stats(file=empty)
    assert "no timer records" in empty.getvalue()


def test_logging_without_backends_returns_false(clock: FakeClock, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import raises ImportError
    monkeypatch.setitem(sys.modules, "wandb", None)
    t = _filled_timer(clock)
    assert t.log_mlflow_all() is False
    assert t.log_wb_all() is False


def test_logging_with_fake_backends(clock: FakeClock, monkeypatch) -> None:
    logged: dict[str, list] = {"mlflow": [], "wandb": []}
    mlflow = types.ModuleType("mlflow")
    mlflow.active_run = lambda: None
    mlflow.log_metrics = lambda metrics, step=None: logged["mlflow"].append((metrics, step))
    wandb = types.ModuleType("wandb")
    wandb.run = None
    wandb.log = lambda metrics, **kw: logged["wandb"].append(metrics)
    monkeypatch.setitem(sys.modules, "mlflow", mlflow)
    monkeypatch.setitem(sys.modules, "wandb", wandb)
    t = _filled_timer(clock)
    # no active run -> nothing logged
    assert t.log_mlflow_all() is False and t.log_wb_all() is False
    assert logged == {"mlflow": [], "wandb": []}
    mlflow.active_run = lambda: object()
    wandb.run = object()
    assert t.log_mlflow_all(prefix="time/", step=7) is True
    assert t.log_wb_all(prefix="time/") is True
    metrics, step = logged["mlflow"][0]
    assert step == 7
    assert metrics == pytest.approx({"time/BATCH": 0.007 / 3, "time/custom,key with comma": 1.5})
    assert logged["wandb"][0] == metrics


def test_cuda_true_without_gpu_raises() -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="cuda"):
        Timer(cuda=True)
    assert Timer().cuda is False


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_event_timer() -> None:
    t = Timer(cuda=True)
    a = torch.randn(2048, 2048, device="cuda")
    torch.cuda.synchronize()
    for _ in range(3):
        with t.region(TimeType.FORWARD):
            for _ in range(10):
                a = (a @ a).tanh_()
        with t.region(TimeType.IO, cuda=False):  # per-region CPU override
            pass
    times = t.get_time(TimeType.FORWARD)  # synchronises here
    assert len(times) == 3 and all(x > 0 for x in times)
    assert all(isinstance(x, float) for x in t._records["FORWARD"])  # resolved in place
    # CUDA time of 10 matmuls >= a wall-clock-free lower bound: positive and < 10 s
    assert max(times) < 10.0
    s = t.get_time_stats(TimeType.FORWARD)
    assert s.count == 3
