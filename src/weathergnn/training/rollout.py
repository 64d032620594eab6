"""Autoregressive rollout of batches, shared by training, validation and scoring.

``rollout_batch`` rolls a batch out for the loss; ``iter_forecasts`` rolls out
every batch of a loader without gradients and yields forecast, truth and
persistence (the init state held fixed), so validation and
``weathergnn evaluate`` score the same forecasts the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext

import numpy as np
import torch
from torch.utils.data import Subset


def autocast(device: torch.device, precision: str):
    """bf16 autocast on CUDA when ``precision == "bf16"``; fp32 (no autocast) elsewhere."""
    if device.type == "cuda" and precision == "bf16":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def to_device(batch: dict, device: torch.device) -> dict:
    """Move the tensors of a batch to ``device`` (non-blocking from pinned memory on CUDA)."""
    non_blocking = device.type == "cuda"
    return {
        k: (v.to(device, non_blocking=non_blocking) if torch.is_tensor(v) else v)
        for k, v in batch.items()
    }


def rollout_batch(forecaster, batch: dict, steps: int) -> torch.Tensor:
    """Autoregressive rollout of a batch: predictions [B, steps, G, C] in physical units."""
    return forecaster.rollout(
        batch["inputs"], batch["forcings"][:, : 2 + steps], batch["static"], steps
    )


def even_subset(dataset, max_samples: int | None):
    """At most ``max_samples`` samples, evenly spaced over the dataset (all when None)."""
    if max_samples is None or len(dataset) <= max_samples:
        return dataset
    idx = np.linspace(0, len(dataset) - 1, max_samples).round().astype(int)
    return Subset(dataset, sorted(set(idx.tolist())))


@torch.no_grad()
def iter_forecasts(
    forecaster, loader, device: torch.device, precision: str, steps: int | None = None
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Roll out every batch of ``loader``; the forecaster is in eval mode meanwhile.

    Args:
        steps: lead steps (default: as many as the batch has targets).

    Yields:
        (forecast [B, K, G, C] float32, truth [B, K, G, C], persistence
        [B, K, G, C] = the state at init time repeated), on ``device``,
        physical units.
    """
    was_training = forecaster.training
    forecaster.eval()
    try:
        for batch in loader:
            batch = to_device(batch, device)
            k = steps or batch["targets"].shape[1]
            with autocast(device, precision):
                pred = rollout_batch(forecaster, batch, k)
            truth = batch["targets"][:, :k]
            yield pred.float(), truth, batch["inputs"][:, -1:].expand_as(truth)
    finally:
        forecaster.train(was_training)
