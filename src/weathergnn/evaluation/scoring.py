"""Score a trained model over a test period against persistence.

``score_checkpoint`` rolls the model out from every init time of the test split
(or an evenly spaced subset) to ``lead_steps`` steps and reports
latitude-weighted RMSE per channel and lead time, next to persistence (the
init state held fixed).

Averaging order (WeatherBench2): squared error averaged over grid nodes with
latitude (cell-area) weights, square root per init time, then the mean over
init times (and members).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from weathergnn.atomic import atomic_open
from weathergnn.data.windows import WindowDataset
from weathergnn.evaluation.forecast import load_model
from weathergnn.evaluation.metrics import rmse_per_lead
from weathergnn.training.rollout import even_subset, iter_forecasts


@dataclass
class Scores:
    """RMSE tables in physical units.

    Attributes:
        channels: channel names [C].
        lead_hours: lead times in hours [K].
        model: [K, C] model RMSE.
        persistence: [K, C] persistence RMSE.
        n_init: number of (init time, member) forecasts scored.
    """

    channels: list[str]
    lead_hours: list[float]
    model: np.ndarray
    persistence: np.ndarray
    n_init: int

    def rows(self) -> list[dict]:
        out = []
        for k, lead in enumerate(self.lead_hours):
            for c, name in enumerate(self.channels):
                m, p = float(self.model[k, c]), float(self.persistence[k, c])
                out.append({"channel": name, "lead_hours": lead, "rmse_model": m, "rmse_persistence": p,
                            "skill_vs_persistence": 1.0 - m / p if p > 0 else float("nan")})
        return out

    def table(self, channels: list[str] | None = None) -> str:
        """A plain-text table: one row per lead time, model | persistence per channel."""
        chans = [c for c in (channels or self.channels) if c in self.channels]
        head = f"{'lead (h)':>8} " + " ".join(f"{c + ' model':>26} {'persistence':>12}" for c in chans)
        lines = [head]
        for k, lead in enumerate(self.lead_hours):
            cells = []
            for c in chans:
                j = self.channels.index(c)
                cells.append(f"{self.model[k, j]:>26.4g} {self.persistence[k, j]:>12.4g}")
            lines.append(f"{lead:>8.0f} " + " ".join(cells))
        return "\n".join(lines)

    def save(self, out_dir: Path) -> list[Path]:
        """Write ``scores.csv`` and ``scores.json`` atomically; return their paths."""
        out_dir.mkdir(parents=True, exist_ok=True)
        rows = self.rows()
        csv_path, json_path = out_dir / "scores.csv", out_dir / "scores.json"
        with atomic_open(csv_path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        with atomic_open(json_path, "w") as fh:
            json.dump({"n_init": self.n_init, "rows": rows}, fh, indent=2)
        paths = [csv_path, json_path]
        return paths


def score_checkpoint(
    checkpoint: str | Path,
    *,
    cfg_overrides: dict | None = None,
    split: str = "test",
    lead_steps: int | None = None,
    max_init_times: int | None = None,
    batch_size: int | None = None,
    show_progress: bool = True,
) -> Scores:
    """Roll a checkpoint out over a split and score it and persistence.

    Args:
        checkpoint: path of a checkpoint written by ``weathergnn train``.
        cfg_overrides: dotted overrides of the stored configuration, e.g.
            ``{"data.source": "/path/to/other.zarr"}``.
        split: ``test`` or ``val`` (init times and members from the config).
        lead_steps: number of model steps (default: config ``evaluation.lead_steps``).
        max_init_times: score at most this many evenly spaced init times.

    Raises:
        FileNotFoundError / ValueError: unreadable checkpoint, or its graph hash
            does not match the graph the configuration gives.
        DataError: bad input data.
    """
    model = load_model(checkpoint, cfg_overrides, preload=None)
    cfg = model.cfg
    lead_steps = lead_steps or cfg.evaluation.lead_steps
    max_init_times = max_init_times or cfg.evaluation.max_init_times
    sp = getattr(cfg.data, split)
    windows = WindowDataset(model.ds, model.channels, rollout_steps=lead_steps, start=sp.start, end=sp.end,
                            members=sp.members)
    if len(windows) == 0:
        raise ValueError(f"no {split} windows of {lead_steps} lead steps in {cfg.data.source} for split {sp}")
    forecaster, graphs, device = model.forecaster, model.graphs, model.device

    subset = even_subset(windows, max_init_times)
    loader = torch.utils.data.DataLoader(subset, batch_size=batch_size or cfg.data.batch_size, shuffle=False)
    lat_w = graphs.latitude_weights.numpy().astype(np.float64)
    # Per-batch sums of per-init RMSE keep memory bounded however many init times.
    model_sum = pers_sum = None
    n = 0
    forecasts = iter_forecasts(forecaster, loader, device, cfg.training.precision, lead_steps)
    for pred, truth, persistence in tqdm(forecasts, total=len(loader), desc="rollout", disable=not show_progress):
        b = truth.shape[0]
        truth = truth.cpu().numpy()  # [B, K, G, C]
        m = rmse_per_lead(pred.cpu().numpy(), truth, lat_w) * b  # float64 [K, C]
        p = rmse_per_lead(persistence.cpu().numpy(), truth, lat_w) * b
        model_sum = m if model_sum is None else model_sum + m
        pers_sum = p if pers_sum is None else pers_sum + p
        n += b
    step_h = windows.time_step / np.timedelta64(1, "h")
    return Scores(
        channels=list(model.channels),
        lead_hours=[float(step_h * (k + 1)) for k in range(lead_steps)],
        model=model_sum / n,
        persistence=pers_sum / n,
        n_init=n,
    )
