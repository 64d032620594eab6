"""Deep500-style region timer (MAELSTROM deliverable, section 3.2).

Mark the start and end of a code region with a key; the timer records one
duration per start/end pair and reports per-key summary statistics::

    tmr = Timer()
    for epoch in range(num_epochs):
        tmr.start(TimeType.EPOCH)
        for batch in loader:
            with tmr.region(TimeType.FORWARD):
                loss = model(batch)
            ...
        tmr.end(TimeType.EPOCH)
    tmr.print_all_time_stats()

Keys are the :class:`TimeType` members or arbitrary strings. ``TimeType``
is a ``StrEnum``, so ``TimeType.EPOCH`` and ``"EPOCH"`` name the same key.
Regions of *different* keys may nest or overlap freely; starting a key that
is already open raises :class:`TimerError`.

Two clocks:

- CPU: ``time.perf_counter_ns`` (monotonic, ns resolution), wall time seen by
  the host thread.
- CUDA: a pair of ``torch.cuda.Event(enable_timing=True)`` recorded on the
  *current* stream at ``start`` and ``end``; the duration is the time the GPU
  stream took between the two marks, i.e. the time of the kernels launched in
  the region (plus any stream idle time between them). Events are resolved
  lazily: ``start``/``end`` only enqueue an event record (no host-device sync
  point per region); the host waits on the end events only when results are
  read (``get_time``, ``get_time_stats``, ``print``/``save``/``log``). Reading
  results inside a training loop therefore *does* synchronise; read them at
  the end of an epoch or run.

All durations are reported in seconds (float). The timer is not thread-safe;
use one timer per thread/process (DataLoader worker processes get copies whose
records are not merged back).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, TextIO

from weathergnn.atomic import atomic_open

__all__ = [
    "TimeType",
    "TimeStats",
    "Timer",
    "TimerError",
    "load_time_stats",
]


class TimeType(StrEnum):
    """Predefined region keys (Deep500 / MAELSTROM D1.4 names)."""

    EPOCH = "EPOCH"  #: one complete pass over a dataset
    BATCH = "BATCH"  #: one mini-batch (training step)
    FORWARD = "FORWARD"  #: forward propagation of one mini-batch
    BACKWARD = "BACKWARD"  #: backward propagation of one mini-batch
    COMM = "COMM"  #: communication during one mini-batch
    IO = "IO"  #: I/O to load data for one mini-batch
    OTHER = "OTHER"  #: catch-all user region


class TimerError(RuntimeError):
    """Misuse of a :class:`Timer` (double start, end without start, ...)."""


@dataclass(frozen=True)
class TimeStats:
    """Summary statistics of the durations recorded for one key (seconds).

    ``stdev`` is the sample standard deviation (``statistics.stdev``, n - 1 in
    the denominator), 0.0 when ``count == 1``. ``median`` is
    ``statistics.median`` (mean of the two middle values for even counts).
    """

    key: str
    count: int
    total: float
    min: float
    mean: float
    median: float
    max: float
    stdev: float

    @classmethod
    def from_times(cls, key: str, times: list[float]) -> TimeStats:
        """Statistics of ``times`` (seconds); raises ``ValueError`` if empty."""
        if not times:
            raise ValueError(f"no times recorded for key {key!r}")
        return cls(
            key=key,
            count=len(times),
            total=math.fsum(times),
            min=min(times),
            mean=statistics.fmean(times),
            median=statistics.median(times),
            max=max(times),
            stdev=statistics.stdev(times) if len(times) > 1 else 0.0,
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_STAT_FIELDS = ("count", "total", "min", "mean", "median", "max", "stdev")


def _key_name(key: str | TimeType) -> str:
    if isinstance(key, TimeType):
        return key.value
    if not isinstance(key, str) or not key:
        raise TypeError(f"timer key must be a TimeType or a non-empty str, got {key!r}")
    return key


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return False
    return bool(torch.cuda.is_available())


class Timer:
    """Deep500-style timer with CPU and CUDA-event clocks.

    Args:
        cuda: clock for regions. ``None`` (default): CUDA events when
            ``torch.cuda.is_available()``, else CPU. ``True``: CUDA events
            (raises ``RuntimeError`` when no CUDA device). ``False``: CPU
            ``perf_counter_ns``. A single region can override this with
            ``start(key, cuda=...)``.

    Raises:
        RuntimeError: ``cuda=True`` without a CUDA device.
    """

    def __init__(self, cuda: bool | None = None) -> None:
        if cuda is None:
            cuda = _cuda_available()
        elif cuda and not _cuda_available():
            raise RuntimeError("Timer(cuda=True) but torch.cuda.is_available() is False")
        self.cuda = bool(cuda)
        # key -> ("cpu", start_ns) or ("cuda", start_event)
        self._open: dict[str, tuple[str, Any]] = {}
        # key -> list of float seconds or (start_event, end_event) still unresolved;
        # insertion order of keys = order of first completed region.
        self._records: dict[str, list[Any]] = {}

    # ------------------------------------------------------------------ regions
    def start(self, key: str | TimeType, *, cuda: bool | None = None) -> None:
        """Open region ``key``.

        Raises:
            TimerError: ``key`` is already open (no ``end`` since its ``start``).
            RuntimeError: ``cuda=True`` without a CUDA device.
        """
        name = _key_name(key)
        if name in self._open:
            raise TimerError(
                f"timer region {name!r} started twice without end(); "
                "regions of the same key cannot nest or overlap"
            )
        use_cuda = self.cuda if cuda is None else bool(cuda)
        if use_cuda:
            import torch

            if not torch.cuda.is_available():
                raise RuntimeError(f"CUDA timing requested for {name!r} but no CUDA device")
            ev = torch.cuda.Event(enable_timing=True)
            ev.record()  # current stream; enqueued, no sync
            self._open[name] = ("cuda", ev)
        else:
            self._open[name] = ("cpu", time.perf_counter_ns())

    def end(self, key: str | TimeType) -> None:
        """Close region ``key`` and record its duration.

        Raises:
            TimerError: ``key`` was not started.
        """
        name = _key_name(key)
        try:
            kind, begin = self._open.pop(name)
        except KeyError:
            raise TimerError(f"timer region {name!r} ended but was never started") from None
        if kind == "cuda":
            import torch

            ev = torch.cuda.Event(enable_timing=True)
            ev.record()  # resolved lazily in _resolve
            self._records.setdefault(name, []).append((begin, ev))
        else:
            stop = time.perf_counter_ns()
            self._records.setdefault(name, []).append((stop - begin) * 1e-9)

    def cancel(self, key: str | TimeType) -> None:
        """Discard the open region ``key`` without recording it (no error if not open)."""
        self._open.pop(_key_name(key), None)

    @contextlib.contextmanager
    def region(self, key: str | TimeType, *, cuda: bool | None = None) -> Iterator[None]:
        """Context manager timing its body under ``key``.

        If the body raises, the region is discarded (not recorded) and the
        exception propagates.
        """
        self.start(key, cuda=cuda)
        try:
            yield
        except BaseException:
            self.cancel(key)
            raise
        self.end(key)

    def is_open(self, key: str | TimeType) -> bool:
        """Whether region ``key`` is started and not yet ended."""
        return _key_name(key) in self._open

    def reset(self, key: str | TimeType | None = None) -> None:
        """Forget records (and open regions) of ``key``, or of all keys."""
        if key is None:
            self._records.clear()
            self._open.clear()
        else:
            name = _key_name(key)
            self._records.pop(name, None)
            self._open.pop(name, None)

    # ------------------------------------------------------------------ results
    def _resolve(self, name: str) -> list[float]:
        recs = self._records.get(name, [])
        for i, rec in enumerate(recs):
            if isinstance(rec, tuple):
                begin, stop = rec
                stop.synchronize()  # host waits here, only when results are read
                recs[i] = begin.elapsed_time(stop) * 1e-3  # ms -> s
        return recs

    def keys(self) -> list[str]:
        """Keys with at least one recorded duration, in order of first record."""
        return [k for k, v in self._records.items() if v]

    def get_time(self, key: str | TimeType) -> list[float]:
        """All durations recorded for ``key``, in seconds, in recording order.

        Returns an empty list for a key never recorded. Synchronises on
        pending CUDA events of this key.
        """
        return list(self._resolve(_key_name(key)))

    def get_time_stats(self, key: str | TimeType) -> TimeStats:
        """Summary statistics for ``key``.

        Raises:
            KeyError: nothing recorded for ``key``.
        """
        name = _key_name(key)
        times = self.get_time(name)
        if not times:
            raise KeyError(f"no times recorded for timer key {name!r} (recorded: {self.keys()})")
        return TimeStats.from_times(name, times)

    def get_all_time_stats(self) -> dict[str, TimeStats]:
        """``{key: TimeStats}`` for every recorded key."""
        return {k: self.get_time_stats(k) for k in self.keys()}

    def format_all_time_stats(self) -> str:
        """Plain-text table of all statistics (times in ms, total in s)."""
        header = ("key", "count", "total s", "mean ms", "median ms", "min ms", "max ms", "stdev ms")
        rows = [header]
        for s in self.get_all_time_stats().values():
            rows.append(
                (
                    s.key,
                    str(s.count),
                    f"{s.total:.3f}",
                    *(f"{v * 1e3:.3f}" for v in (s.mean, s.median, s.min, s.max, s.stdev)),
                )
            )
        if len(rows) == 1:
            return "(no timer records)\n"
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        lines = []
        for j, r in enumerate(rows):
            cells = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:])]
            lines.append("  ".join(cells))
            if j == 0:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(lines) + "\n"

    def print_all_time_stats(self, file: TextIO | None = None) -> None:
        """Print the statistics table of all keys to ``file`` (default stdout)."""
        (file or sys.stdout).write(self.format_all_time_stats())

    def save_all_time_stats(self, path: str | os.PathLike[str], *, include_times: bool = False) -> Path:
        """Write statistics of all keys to ``path``, atomically.

        Format by extension: ``.json`` -> ``{"unit": "s", "stats": {key:
        {count, total, min, mean, median, max, stdev}}}`` (plus ``"times":
        {key: [...]}`` when ``include_times``); ``.csv`` -> one row per key
        with columns ``key,count,total,min,mean,median,max,stdev`` (seconds).
        Written to a temporary file in the same directory, then
        ``os.replace``-d over ``path``. Read back with :func:`load_time_stats`.

        Raises:
            ValueError: extension is neither ``.json`` nor ``.csv``.
        """
        path = Path(path)
        ext = path.suffix.lower()
        stats = self.get_all_time_stats()
        if ext == ".json":
            payload: dict[str, Any] = {
                "unit": "s",
                "stats": {k: {f: getattr(s, f) for f in _STAT_FIELDS} for k, s in stats.items()},
            }
            if include_times:
                payload["times"] = {k: self.get_time(k) for k in stats}
            text = json.dumps(payload, indent=2) + "\n"
        elif ext == ".csv":
            buf = io.StringIO()
            w = csv.writer(buf, lineterminator="\n")
            w.writerow(("key", *_STAT_FIELDS))
            for k, s in stats.items():
                w.writerow((k, *(repr(getattr(s, f)) for f in _STAT_FIELDS)))
            text = buf.getvalue()
        else:
            raise ValueError(f"save_all_time_stats: unknown extension {path.suffix!r} of {path} (use .json or .csv)")
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(path, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        return path

    # ------------------------------------------------------------------ logging
    def _means(self, prefix: str) -> dict[str, float]:
        return {f"{prefix}{k}": s.mean for k, s in self.get_all_time_stats().items()}

    def log_mlflow_all(self, prefix: str = "", step: int | None = None) -> bool:
        """Log the mean time (s) of every key to MLflow as ``prefix + key``.

        Returns ``False`` (and does nothing) when mlflow is not importable or
        no MLflow run is active; ``True`` after logging.
        """
        try:
            import mlflow  # type: ignore[import-not-found]
        except ImportError:
            return False
        if mlflow.active_run() is None:
            return False
        mlflow.log_metrics(self._means(prefix), step=step)
        return True

    def log_wb_all(self, prefix: str = "", step: int | None = None) -> bool:
        """Log the mean time (s) of every key to Weights & Biases as ``prefix + key``.

        Returns ``False`` (and does nothing) when wandb is not importable or
        ``wandb.run`` is ``None``; ``True`` after logging.
        """
        try:
            import wandb  # type: ignore[import-not-found]
        except ImportError:
            return False
        if getattr(wandb, "run", None) is None:
            return False
        if step is None:
            wandb.log(self._means(prefix))
        else:
            wandb.log(self._means(prefix), step=step)
        return True


def load_time_stats(path: str | os.PathLike[str]) -> dict[str, TimeStats]:
    """Read statistics written by :meth:`Timer.save_all_time_stats` (.json or .csv).

    Raises:
        ValueError: unknown extension or malformed content (message names the file).
    """
    path = Path(path)
    ext = path.suffix.lower()
    try:
        if ext == ".json":
            data = json.loads(path.read_text())
            return {
                k: TimeStats(key=k, count=int(v["count"]), **{f: float(v[f]) for f in _STAT_FIELDS[1:]})
                for k, v in data["stats"].items()
            }
        if ext == ".csv":
            with path.open(newline="") as f:
                return {
                    row["key"]: TimeStats(
                        key=row["key"], count=int(row["count"]), **{f: float(row[f]) for f in _STAT_FIELDS[1:]}
                    )
                    for row in csv.DictReader(f)
                }
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"malformed timer statistics file {path}: {exc}") from exc
    raise ValueError(f"load_time_stats: unknown extension {path.suffix!r} of {path} (use .json or .csv)")
