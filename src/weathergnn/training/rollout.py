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


def _at_least_fp32(t: torch.Tensor) -> torch.Tensor:
    """``t`` in float32 if it is in a narrower float type (the loss is summed in float32 or wider)."""
    return t.to(torch.promote_types(t.dtype, torch.float32))


def rollout_loss_backward(forecaster, batch: dict, steps: int, lat_weights: torch.Tensor,
                          channel_weights: torch.Tensor, scale: torch.Tensor | None, precision: str,
                          loss_scale: float = 1.0) -> torch.Tensor:
    """Rollout loss and its backward, the last step's decoder run chunk by chunk with its loss.

    The same loss and gradients as ``weighted_mse(rollout_batch(...),
    targets, ...)`` followed by ``(loss * loss_scale).backward()`` (to
    summation order), but the last step goes through
    :meth:`~weathergnn.models.graph_model.EncodeProcessDecode.forward_backward`:
    its decoder and output head run once per chunk of grid nodes, each
    chunk's share of the loss back-propagated right after it, instead of
    being recomputed in backward under activation checkpointing. Earlier
    steps (rollouts longer than one) run as in :func:`rollout_batch`; their
    loss is back-propagated in the same final backward.

    The loss splits over grid nodes because GraphCast's loss
    (:func:`~weathergnn.training.losses.weighted_mse`) is a latitude-weighted
    sum over them: the last step's share of grid nodes ``lo .. hi - 1`` is
    ``weighted_mse`` on those nodes with the whole grid's latitude-weight sum,
    divided by the number of steps.

    Args:
        forecaster: a :class:`~weathergnn.models.forecaster.Forecaster` whose
            network has ``forward_backward`` (else a plain forward and backward run).
        batch: as :func:`rollout_batch`, with ``targets`` [B, >= steps, G, C].
        steps: K, lead steps of the loss.
        lat_weights [G], channel_weights [C], scale [C] or None: as ``weighted_mse``.
        precision: as :func:`autocast`.
        loss_scale: factor on the loss before backward (e.g. 1 / gradient accumulation).

    Returns:
        The loss (0-dim float32, detached, without ``loss_scale``).
    """
    from weathergnn.models.graph_model import ChunkCut
    from weathergnn.training.losses import weighted_mse

    device = batch["inputs"].device
    targets = batch["targets"][:, :steps]  # [B, K, G, C]
    model = forecaster.model
    if not hasattr(model, "forward_backward"):
        with autocast(device, precision):
            pred = rollout_batch(forecaster, batch, steps)
        loss = weighted_mse(_at_least_fp32(pred), targets, lat_weights, channel_weights, scale)
        (loss * loss_scale).backward()
        return loss.detach()
    forcings, static = batch["forcings"], batch["static"]
    history, earlier = batch["inputs"], None
    if steps > 1:  # the first K - 1 steps as in rollout_batch, and their share of the mean over lead times
        with autocast(device, precision):
            preds = forecaster.rollout(history, forcings, static, steps - 1)  # [B, K - 1, G, C]
        history = torch.cat([history, preds], dim=1)[:, -2:]  # [B, 2, G, C]: the last two states
        earlier = weighted_mse(_at_least_fp32(preds), targets[:, :-1], lat_weights, channel_weights,
                               scale) * ((steps - 1) / steps * loss_scale)
    with autocast(device, precision):
        x = forecaster.network_inputs(history, forcings[:, steps - 1 : steps + 2], static)  # [B, G, C_in]
    last_target = targets[:, -1]  # [B, G, C]
    weight_sum = lat_weights.sum()
    # With K > 1 the last step's base state is the previous prediction: each chunk reads its own cut of it,
    # and the gradients collected there join the final backward (one pass through the earlier steps).
    state_cut = ChunkCut(history[:, -1])

    def chunk_loss(r_k: torch.Tensor, lo: int, hi: int) -> torch.Tensor:  # r_k [B, hi - lo, C]
        s_k = state_cut.take(lo, hi)
        nxt_k = s_k + r_k.to(s_k.dtype) * forecaster.diff_std
        share = weighted_mse(_at_least_fp32(nxt_k), last_target[:, lo:hi], lat_weights[lo:hi], channel_weights, scale,
                             lat_weight_sum=weight_sum)
        return share * (loss_scale / steps)

    def extra_roots() -> list:
        roots = [(earlier, None)] if earlier is not None else []
        state_cut.collect()
        if state_cut.grad is not None:
            roots.append((history[:, -1], state_cut.grad))
        return roots

    with autocast(device, precision):
        total = model.forward_backward(x, chunk_loss, extra_roots=extra_roots)
    if earlier is not None:
        total = total + earlier.detach().float()
    return total / loss_scale


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
