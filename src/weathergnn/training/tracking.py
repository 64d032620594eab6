"""Metrics logging to local files, TensorBoard and MLflow.

Every ``MetricsLogger.log(step, **metrics)`` call goes to:

- ``<run_dir>/metrics.jsonl``: one JSON object per call,
  ``{"step": int, "time": unix seconds, "<name>": value, ...}``.
- ``<run_dir>/metrics.csv``: long format, one row per metric,
  ``step,name,value,time`` (header written once). Long format keeps a fixed
  column set whatever metrics each call carries (training and validation
  metrics arrive at different steps); pivot with
  ``pandas.read_csv(...).pivot_table(index="step", columns="name", values="value")``.
- TensorBoard (``<run_dir>/tensorboard``) via ``torch.utils.tensorboard.SummaryWriter``
  when ``use_tensorboard`` and the ``tensorboard`` package is importable.
- MLflow (``mlflow.log_metrics``) when enabled and importable; a run is started
  if none is active and ended at ``close()`` only if this logger started it.

Files are appended to (a resumed run continues the same files) and flushed
after every call. Metric values may be Python numbers, numpy scalars or 0-dim
tensors; converting a CUDA tensor with ``float()`` is a host-device sync
point, so pass already-reduced values at logging intervals, not every step.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

__all__ = ["MetricsLogger"]


def _to_float(name: str, value: Any) -> float:
    try:
        if hasattr(value, "item"):
            value = value.item()
        return float(value)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise TypeError(f"metric {name!r}: expected a number or 0-dim tensor, got {value!r}") from exc


def _json_number(x: float) -> float | str | None:
    # JSON has no NaN/inf; keep them readable and round-trippable as strings
    return x if math.isfinite(x) else str(x)


class MetricsLogger:
    """Log scalar metrics per step to JSONL, CSV, TensorBoard and MLflow.

    Args:
        run_dir: directory of the run (created).
        use_tensorboard: write TensorBoard events; if ``tensorboard`` is not
            installed a warning is issued and TensorBoard is skipped.
        use_mlflow: ``"auto"`` (use if importable), ``True`` (required:
            ``ImportError`` if mlflow is missing), ``False``.
        run_name: MLflow run name when this logger starts the run.

    Raises:
        ImportError: ``use_mlflow=True`` and mlflow is not installed.
    """

    def __init__(
        self,
        run_dir: str | os.PathLike[str],
        use_tensorboard: bool = True,
        use_mlflow: bool | Literal["auto"] = "auto",
        run_name: str | None = None,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.jsonl_path = self.run_dir / "metrics.jsonl"
        self.csv_path = self.run_dir / "metrics.csv"
        new_csv = not self.csv_path.exists() or self.csv_path.stat().st_size == 0
        self._jsonl = self.jsonl_path.open("a", encoding="utf-8")
        self._csv_file = self.csv_path.open("a", encoding="utf-8", newline="")
        self._csv = csv.writer(self._csv_file, lineterminator="\n")
        if new_csv:
            self._csv.writerow(("step", "name", "value", "time"))
            self._csv_file.flush()
        self._closed = False

        self._tb = None
        if use_tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as exc:  # tensorboard package missing
                warnings.warn(f"TensorBoard logging disabled: {exc}", stacklevel=2)
            else:
                self._tb = SummaryWriter(log_dir=str(self.run_dir / "tensorboard"))

        self._mlflow = None
        self._mlflow_owns_run = False
        if use_mlflow not in (True, False, "auto"):
            raise ValueError(f"use_mlflow must be True, False or 'auto', got {use_mlflow!r}")
        if use_mlflow:
            try:
                import mlflow  # type: ignore[import-not-found]
            except ImportError:
                if use_mlflow is True:
                    raise ImportError("use_mlflow=True but mlflow is not installed (pip install mlflow)") from None
            else:
                self._mlflow = mlflow
                if mlflow.active_run() is None:
                    mlflow.start_run(run_name=run_name)
                    self._mlflow_owns_run = True

    @property
    def tensorboard_enabled(self) -> bool:
        return self._tb is not None

    @property
    def mlflow_enabled(self) -> bool:
        return self._mlflow is not None

    def log(self, step: int, **metrics: Any) -> None:
        """Record ``metrics`` (name -> scalar) at training step ``step``.

        Raises:
            RuntimeError: logger closed. TypeError: a non-scalar value.
        """
        if self._closed:
            raise RuntimeError(f"MetricsLogger for {self.run_dir} is closed")
        step = int(step)
        values = {name: _to_float(name, v) for name, v in metrics.items()}
        now = time.time()
        record: dict[str, Any] = {"step": step, "time": now}
        record.update({k: _json_number(v) for k, v in values.items()})
        self._jsonl.write(json.dumps(record) + "\n")
        self._jsonl.flush()
        for name, v in values.items():
            self._csv.writerow((step, name, repr(v), f"{now:.3f}"))
        self._csv_file.flush()
        if self._tb is not None:
            for name, v in values.items():
                self._tb.add_scalar(name, v, global_step=step, walltime=now)
        if self._mlflow is not None and values:
            self._mlflow.log_metrics(values, step=step)

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record run parameters (e.g. the flattened config) in ``params.json`` and MLflow."""
        path = self.run_dir / "params.json"
        path.write_text(json.dumps(dict(params), indent=2, default=str) + "\n", encoding="utf-8")
        if self._mlflow is not None:
            self._mlflow.log_params({k: str(v)[:500] for k, v in params.items()})

    def flush(self) -> None:
        self._jsonl.flush()
        self._csv_file.flush()
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        """Flush and close all sinks; ends the MLflow run if this logger started it. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._jsonl.close()
        self._csv_file.close()
        if self._tb is not None:
            self._tb.close()
        if self._mlflow is not None and self._mlflow_owns_run:
            self._mlflow.end_run()

    def __enter__(self) -> MetricsLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
