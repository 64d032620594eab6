"""The training loop: multi-step autoregressive rollout loss, AdamW, warm-up + cosine.

Reads straight through: ``train(cfg)`` opens the data, builds graphs and model,
then loops over epochs of batches. Each batch is rolled out for the current
curriculum length, the latitude-weighted MSE of the normalised error is
back-propagated through the whole rollout, and the optimiser steps every
``grad_accumulation`` batches. Validation scores latitude-weighted RMSE per lead
time in physical units, next to persistence, after every epoch. Checkpoints are
written atomically after every epoch; ``resume=True`` continues from the last.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from weathergnn.atomic import atomic_open
from weathergnn.config import Config, ConfigError, dump_config
from weathergnn.data.loader import make_loader, timed
from weathergnn.timing import Timer, TimeType
from weathergnn.training.checkpoint import load_checkpoint, restore_rng_state, save_checkpoint
from weathergnn.training.cuda_graph import CapturedStep
from weathergnn.training.losses import channel_loss_weights, latitude_weighted_rmse, weighted_mse
from weathergnn.training.rollout import (
    autocast,
    even_subset,
    iter_forecasts,
    rollout_batch,
    rollout_loss_backward,
    to_device,
)
from weathergnn.training.schedule import RolloutCurriculum, warmup_cosine
from weathergnn.training.setup import (
    build_forecaster,
    build_graphs_for,
    make_windows,
    open_run_data,
    resolve_device,
)
from weathergnn.training.tracking import MetricsLogger

log = logging.getLogger(__name__)

#: the batch tensors a training step reads (copied into a captured step's static inputs)
_STEP_INPUTS = ("inputs", "forcings", "static", "targets")


@dataclass
class TrainResult:
    """What a finished run reports."""

    out_dir: Path
    steps: int
    epochs: int
    final_train_loss: float
    first_train_loss: float
    validation: dict[str, list[float]]
    timer: Timer


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def validate(forecaster, loader, lat_weights: torch.Tensor, device, precision) -> dict:
    """Latitude-weighted RMSE per channel and lead time, model and persistence.

    Averaging order (WeatherBench2): squared error averaged over grid nodes with
    latitude weights, square root per init time, then mean over init times.

    Returns:
        ``{"model": ndarray [K, C], "persistence": ndarray [K, C]}`` in physical units.
    """
    model_sum = pers_sum = None
    n = 0
    for pred, truth, persistence in iter_forecasts(forecaster, loader, device, precision):
        b = truth.shape[0]
        m = latitude_weighted_rmse(pred, truth, lat_weights) * b  # [K, C], summed over inits
        p = latitude_weighted_rmse(persistence, truth, lat_weights) * b
        model_sum = m if model_sum is None else model_sum + m
        pers_sum = p if pers_sum is None else pers_sum + p
        n += b
    return {"model": (model_sum / n).cpu().numpy(), "persistence": (pers_sum / n).cpu().numpy()}


def train(cfg: Config, *, resume: bool = False, show_progress: bool = True) -> TrainResult:
    """Train a model as configured; write checkpoints, metrics and the timer table to ``out_dir``.

    Raises:
        DataError: bad input data (names the file, variable and time).
        ConfigError: inconsistent configuration.
        FileNotFoundError / ValueError: ``resume`` without a usable checkpoint.
    """
    tcfg = cfg.training
    device = resolve_device(tcfg.device)
    if tcfg.cuda_graph and device.type != "cuda":
        raise ConfigError(f"training.cuda_graph needs a CUDA device; training.device {tcfg.device!r} "
                          f"resolved to {str(device)!r}")
    out_dir = Path(tcfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = out_dir / "checkpoint.pt"
    _seed_everything(tcfg.seed)
    timer = Timer(cuda=device.type == "cuda")

    # ---- data, statistics, graphs, model ---------------------------------
    data = open_run_data(cfg)
    curriculum = RolloutCurriculum.from_ramp(tcfg.rollout.start, tcfg.rollout.end, tcfg.rollout.ramp_steps)
    train_set = make_windows(data, cfg.data.train, tcfg.rollout.start, max_rollout_steps=tcfg.rollout.end)
    val_set = make_windows(data, cfg.data.val, tcfg.val_rollout_steps)
    if len(train_set) == 0:
        raise ValueError(f"no training windows in {cfg.data.train} for source {cfg.data.source}")
    graphs = build_graphs_for(data.ds, cfg)
    n_static = int(train_set[0]["static"].shape[-1])
    forecaster = build_forecaster(cfg, graphs, data.stats, n_static).to(device)
    if cfg.model.compile:
        forecaster.model.compile_blocks()  # regional: checkpointing and chunking stay eager
    lat_weights = graphs.latitude_weights.to(device)
    n_params = sum(p.numel() for p in forecaster.parameters())
    log.info("model: %s processor, %d parameters", cfg.model.processor, n_params)

    loss_w = channel_loss_weights(
        data.channels,
        variable_weights=tcfg.loss.variable_weights or None,
        level_weighting=tcfg.loss.level_weighting,
    ).to(device)
    scale = torch.as_tensor(data.stats.diff_std, dtype=torch.float32, device=device)

    # A captured step reads the learning rate from a device tensor (the scheduler fills it in place) and
    # keeps AdamW's step count on the GPU (capturable).
    optimizer = torch.optim.AdamW(
        forecaster.parameters(), lr=torch.tensor(tcfg.lr, device=device) if tcfg.cuda_graph else tcfg.lr,
        betas=tcfg.betas, weight_decay=tcfg.weight_decay, fused=device.type == "cuda", capturable=tcfg.cuda_graph,
    )
    batches_per_epoch = math.ceil(len(train_set) / cfg.data.batch_size)
    total_steps = tcfg.max_steps or max(1, tcfg.epochs * batches_per_epoch // tcfg.grad_accumulation)
    scheduler = warmup_cosine(optimizer, min(tcfg.warmup_steps, total_steps // 2), total_steps, tcfg.min_lr_ratio)

    step, start_epoch = 0, 0
    if resume:
        state = load_checkpoint(ckpt_path, map_location=device)
        if state["graph_hash"] != graphs.content_hash:
            raise ValueError(
                f"{ckpt_path}: checkpoint was trained on graph {state['graph_hash'][:12]}, "
                f"configuration gives graph {graphs.content_hash[:12]}"
            )
        forecaster.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])  # also restores the saved run's param-group flags
        for group in optimizer.param_groups:
            group["capturable"] = tcfg.cuda_graph
            if tcfg.cuda_graph:  # an eager run's checkpoint holds a float lr: a capture would bake it in
                group["lr"] = torch.as_tensor(group["lr"], dtype=torch.float32, device=device)
        scheduler.load_state_dict(state["scheduler"])
        step, start_epoch = int(state["step"]), int(state["epoch"]) + 1
        restore_rng_state(state["rng"])
        log.info("resumed from %s at step %d, epoch %d", ckpt_path, step, start_epoch)

    metrics = MetricsLogger(out_dir)
    with atomic_open(out_dir / "config.json", "w") as fh:
        json.dump(dump_config(cfg), fh, indent=2)
    val_loader = make_loader(even_subset(val_set, tcfg.val_max_samples), batch_size=cfg.data.batch_size,
                             shuffle=False, workers=0)
    key_idx = [data.channels.index(c) for c in cfg.evaluation.key_channels if c in data.channels]
    first_loss = last_loss = float("nan")
    history: dict[str, list[float]] = {}
    t_start = time.perf_counter()
    stop = False
    epochs_done = start_epoch

    def optimizer_step() -> torch.Tensor:
        """Clip (when configured), step AdamW; the gradient norm before clipping (0-dim, on ``device``)."""
        grad_norm = (torch.nn.utils.clip_grad_norm_(forecaster.parameters(), tcfg.grad_clip)
                     if tcfg.grad_clip else torch.zeros((), device=device))
        optimizer.step()
        return grad_norm

    def loss_backward(batch: dict, regions: Timer | None) -> torch.Tensor:
        """Rollout loss over the batch's K targets and its backward, scaled by 1 / grad_accumulation (added
        to the gradients); returns the loss (0-dim, detached). ``regions``: the timer that records FORWARD
        and BACKWARD (one BACKWARD region under decoder_loss_backward, where the two interleave)."""
        def region(key: TimeType):
            return regions.region(key) if regions is not None else nullcontext()

        k = batch["targets"].shape[1]
        if tcfg.decoder_loss_backward:
            with region(TimeType.BACKWARD):
                return rollout_loss_backward(forecaster, batch, k, lat_weights, loss_w, scale, tcfg.precision,
                                             loss_scale=1.0 / tcfg.grad_accumulation)
        with region(TimeType.FORWARD):
            with autocast(device, tcfg.precision):
                pred = rollout_batch(forecaster, batch, k)  # [B, K, G, C]
            loss = weighted_mse(pred.float(), batch["targets"], lat_weights, loss_w, scale)
        with region(TimeType.BACKWARD):
            (loss / tcfg.grad_accumulation).backward()
        return loss.detach()

    def captured_step(batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Gradients reset, rollout loss, backward, optimiser step: (loss, grad norm), no host sync."""
        optimizer.zero_grad(set_to_none=True)
        loss = loss_backward(batch, None)
        return loss, optimizer_step()

    graph = CapturedStep(captured_step, device) if tcfg.cuda_graph else None
    graph_k = None

    # ---- epochs ------------------------------------------------------------
    for epoch in range(start_epoch, tcfg.epochs):
        if stop or (tcfg.max_steps and step >= tcfg.max_steps):
            break
        train_set.set_rollout_steps(curriculum.rollout_at(step))
        loader = make_loader(train_set, batch_size=cfg.data.batch_size, shuffle=True,
                             workers=cfg.data.workers, prefetch_factor=cfg.data.prefetch_factor,
                             seed=tcfg.seed + epoch)
        bar = tqdm(total=len(loader), desc=f"epoch {epoch + 1}/{tcfg.epochs}", disable=not show_progress,
                   dynamic_ncols=True)
        timer.start(TimeType.EPOCH)
        epoch_losses = []
        optimizer.zero_grad(set_to_none=True)
        for i, batch in enumerate(timed(loader, timer)):
            timer.start(TimeType.BATCH)
            t0 = time.perf_counter()
            batch = to_device(batch, device)
            k = batch["targets"].shape[1]
            if graph is not None:  # the whole step is one graph launch: one BACKWARD region
                if k != graph_k:  # a new rollout length: warm up and capture anew
                    graph.reset()
                    graph_k = k
                with timer.region(TimeType.BACKWARD):
                    loss, grad_norm = graph({name: batch[name] for name in _STEP_INPUTS})
            else:
                loss = loss_backward(batch, timer)
            if graph is not None or (i + 1) % tcfg.grad_accumulation == 0 or i + 1 == len(loader):
                if graph is None:
                    grad_norm = optimizer_step()
                    optimizer.zero_grad(set_to_none=True)
                scheduler.step()
                step += 1
                if cfg.data.workers == 0:
                    train_set.set_rollout_steps(curriculum.rollout_at(step))
                if step % tcfg.log_every == 0:
                    # .item() is a CPU-GPU sync point: only on logging steps.
                    metrics.log(step, train_loss=float(loss.item()), grad_norm=float(grad_norm),
                                lr=float(scheduler.get_last_lr()[0]), rollout=k)
            timer.end(TimeType.BATCH)
            loss_value = float(loss.detach())
            epoch_losses.append(loss_value)
            if math.isnan(first_loss):
                first_loss = loss_value
            bar.set_postfix(loss=f"{loss_value:.4f}", k=k, step_s=f"{time.perf_counter() - t0:.3f}")
            bar.update(1)
            if tcfg.max_steps and step >= tcfg.max_steps:
                break
            if tcfg.time_limit_minutes and time.perf_counter() - t_start > 60 * tcfg.time_limit_minutes:
                stop = True
                break
        bar.close()
        timer.end(TimeType.EPOCH)
        epochs_done = epoch + 1
        last_loss = float(np.mean(epoch_losses[-max(1, len(epoch_losses) // 4):]))

        # ---- validation and checkpoint ------------------------------------
        scores = validate(forecaster, val_loader, lat_weights, device, tcfg.precision) \
            if len(val_set) else None
        record = {"epoch": epoch + 1, "train_loss": float(np.mean(epoch_losses))}
        if scores is not None:
            for j in key_idx:
                name = data.channels[j]
                for lead in range(scores["model"].shape[0]):
                    record[f"val_rmse/{name}/lead{lead + 1}"] = float(scores["model"][lead, j])
                history.setdefault(name, []).append(float(scores["model"][-1, j]))
            line = ", ".join(
                f"{data.channels[j]} {scores['model'][-1, j]:.4g} (persistence {scores['persistence'][-1, j]:.4g})"
                for j in key_idx
            )
            tqdm.write(f"epoch {epoch + 1}: train loss {record['train_loss']:.4f}; "
                       f"val RMSE at lead {scores['model'].shape[0]} steps: {line}")
        metrics.log(step, **record)
        save_checkpoint(
            ckpt_path, model=forecaster, optimizer=optimizer, scheduler=scheduler, step=step, epoch=epoch,
            config=dump_config(cfg), norm_stats=json.loads(data.stats.to_json()), graph_hash=graphs.content_hash,
            extra={"channels": data.channels, "n_static": n_static, "source": data.source_key},
        )

    metrics.close()
    timer.save_all_time_stats(out_dir / "timing.json")
    return TrainResult(out_dir=out_dir, steps=step, epochs=epochs_done, final_train_loss=last_loss,
                       first_train_loss=first_loss, validation=history, timer=timer)
