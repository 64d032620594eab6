"""The JSON file of a kernel sweep (``kernel_sweep_*.py``): a header and one row per timed configuration.

The header is the suite's (:func:`weathergnn.benchmarking.report.environment`:
GPU, library versions, date, commit) plus the sweep's own settings. The file
is rewritten after every row, atomically, so a sweep cut short keeps the
rows it finished and never leaves a half-written file.
"""

from __future__ import annotations

import json

import torch

from weathergnn.atomic import atomic_open
from weathergnn.benchmarking import report, timing


class SweepFile:
    """``{**environment, **settings, "rows": [...]}`` at ``path``.

    Args:
        path: the JSON file to (re)write.
        device: the device the sweep runs on (for the header).
        settings: the sweep's own header fields (width, dtype, graph, ...).
    """

    def __init__(self, path: str, device: torch.device, **settings):
        self.path = path
        self.record = {**report.environment(device), **settings, "rows": []}

    def add(self, row: dict) -> None:
        """Append ``row``, print it and rewrite the file."""
        self.record["rows"].append(row)
        print(row, flush=True)
        self.write()

    def add_config(self, row: dict, fill) -> None:
        """Run ``fill(row)``, which measures one configuration into ``row``, then :meth:`add` the row. A
        configuration that fails (one may not compile: registers, shared memory) gets its error in
        ``row["error"]`` instead, and the sweep goes on."""
        try:
            fill(row)
        except Exception as err:  # noqa: BLE001 - any failure of one configuration is recorded, not raised
            row["error"] = f"{type(err).__name__}: {str(err)[:200]}"
        self.add(row)

    def write(self) -> None:
        """Rewrite the file atomically."""
        with atomic_open(self.path, "w", encoding="utf-8") as f:
            json.dump(self.record, f, indent=1)


def measure(fn, repeats: int, queued: bool = False) -> timing.Measurement:
    """``fn`` timed by the suite's protocol (:func:`weathergnn.benchmarking.timing.measure`: 3 warm-up
    calls, L2 flushed before each CUDA-event sample), on the current CUDA device."""
    return timing.measure(fn, device=torch.device("cuda"), warmup=3, repeats=repeats, queued=queued)
