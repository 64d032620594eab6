"""Deep500-style timing of training regions (CPU clock and CUDA events)."""

from weathergnn.timing.timer import TimeStats, TimeType, Timer, TimerError, load_time_stats

__all__ = ["TimeStats", "TimeType", "Timer", "TimerError", "load_time_stats"]
