"""Roll a trained checkpoint out from chosen init times and write a WeatherBench2 forecast store.

``forecast_checkpoint`` loads a checkpoint (model, configuration, normalisation
statistics), picks init times from the truth source (a date range and a
stride, or an explicit list), rolls the model out autoregressively to a lead
of N hours in steps of the data's time step (GraphCast-style rollout, Lam et
al. 2023: two input states ``t - dt, t``, forcings at ``t - dt ... t + K dt``)
and writes the forecasts in physical units into a WeatherBench2-layout zarr
store (see :mod:`weathergnn.evaluation.forecast_store`): dims ``(time = init
time, [number], prediction_timedelta, level, latitude, longitude)``, one init
time per chunk, lead times ``dt, 2 dt, ..., K dt`` (lead 0, the analysis, is
not stored). Init times are streamed in small groups (``batch_size`` (init,
member) pairs per batch), so memory stays bounded however many init times; the
store is written to a temporary path and renamed at the end.

Forecasts only need the two input states of each init time: the lead may run
past the end of the source (forcings are computed from dates).
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from tqdm.auto import tqdm

from weathergnn import __version__
from weathergnn.config import Config, set_dotted
from weathergnn.data.channels import dataset_source, read_channels, resolve_channels, split_channel
from weathergnn.data.errors import DataError
from weathergnn.data.forcings import forcing_features
from weathergnn.data.normalization import NormStats
from weathergnn.data.reader import open_dataset
from weathergnn.data.windows import STATIC_FIELDS, regular_time_step, static_features
from weathergnn.evaluation.forecast_store import ForecastStoreWriter
from weathergnn.graphs.types import WeatherGraphs
from weathergnn.models.forecaster import Forecaster
from weathergnn.training.checkpoint import load_checkpoint
from weathergnn.training.rollout import autocast
from weathergnn.training.setup import build_forecaster, build_graphs_for, resolve_device

__all__ = ["LoadedModel", "ForecastRun", "load_model", "select_init_times", "forecast_checkpoint"]

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    """A checkpoint ready to forecast.

    Attributes:
        cfg: the stored configuration with overrides applied.
        forecaster: the model (eval mode, on ``device``), physical units in and out.
        stats: the normalisation statistics it was trained with.
        graphs: the grid/mesh graphs (hash checked against the checkpoint).
        device: torch device.
        ds: the configured source, canonical layout (lazy).
        channels: the model's channels [C] (``variable_level`` / ``variable``).
        time_step: the source's time step (one model step).
    """

    cfg: Config
    forecaster: Forecaster
    stats: NormStats
    graphs: WeatherGraphs
    device: torch.device
    ds: xr.Dataset
    channels: list[str]
    time_step: np.timedelta64


def load_model(checkpoint: str | Path, cfg_overrides: dict | None = None, preload: bool | None = False) -> LoadedModel:
    """Load a checkpoint, its configuration (with dotted overrides), source and graphs.

    The normalisation statistics come from the checkpoint (nothing is recomputed).

    Args:
        checkpoint: path of a checkpoint written by ``weathergnn train``.
        cfg_overrides: dotted overrides, e.g. ``{"data.source": "/x.zarr", "training.device": "cpu"}``.
        preload: load the variables of the model's channels into memory (small
            sources scored at many init times); None: as the config's ``data.preload``.

    Raises:
        FileNotFoundError / CheckpointError: unreadable checkpoint.
        ValueError: the graph hash or the static fields differ from the checkpoint's.
        DataError: the source lacks a channel of the model, or is unreadable.
    """
    state = load_checkpoint(checkpoint, map_location="cpu")
    raw = state["config"]
    for key, value in (cfg_overrides or {}).items():
        set_dotted(raw, key, value)
    cfg = Config.model_validate(raw)
    device = resolve_device(cfg.training.device)
    stats = NormStats.from_json(json.dumps(state["norm_stats"]))
    ds = open_dataset(cfg.data.source, static_sources=cfg.data.static_sources or None)
    channels = resolve_channels(list(stats.channels), ds)
    if preload or (preload is None and cfg.data.preload):
        needed = sorted({split_channel(c)[0] for c in channels} | {v for v in STATIC_FIELDS if v in ds})
        attrs = dict(ds.attrs)
        ds = ds[needed].load()
        ds.attrs = attrs
    graphs = build_graphs_for(ds, cfg)
    if graphs.content_hash != state["graph_hash"]:
        raise ValueError(f"{checkpoint}: trained on graph {state['graph_hash'][:12]}, "
                         f"data gives {graphs.content_hash[:12]}")
    n_static = int(state["extra"]["n_static"])
    names, _ = static_features(ds)
    if len(names) != n_static:
        raise ValueError(f"{checkpoint}: trained with {n_static} static fields, {dataset_source(ds)} has {names}")
    forecaster = build_forecaster(cfg, graphs, stats, n_static).to(device)
    forecaster.load_state_dict(state["model"])
    forecaster.eval()
    return LoadedModel(cfg, forecaster, stats, graphs, device, ds, channels, regular_time_step(ds))


def select_init_times(
    times: np.ndarray,
    start: str | np.datetime64 | None = None,
    end: str | np.datetime64 | None = None,
    stride_hours: float | None = None,
    init_times: Sequence | None = None,
    source: str = "<dataset>",
) -> np.ndarray:
    """Init times: every ``stride_hours`` from ``start`` to ``end`` (inclusive), or an explicit list.

    Each init time must be a time of the source with one earlier time (the
    model's second input state ``t - dt``).

    Args:
        times: ``[T]`` datetime64 times of the source, regular.
        start, end: ISO dates; default the first usable / last time.
        stride_hours: spacing of init times (default: the source's time step);
            a multiple of the time step.
        init_times: explicit list instead of start/end/stride.

    Returns:
        ``[N]`` datetime64[ns] init times, ascending.

    Raises:
        DataError: an init time not in the source or without a previous time, a
            stride that is not a positive multiple of the time step, an empty range.
    """
    times = np.asarray(times, dtype="datetime64[ns]")
    if times.size < 2:
        raise DataError("need at least 2 times (two input states)", file=source, option="init times")
    dt = times[1] - times[0]
    if init_times is not None:
        chosen = np.asarray([np.datetime64(t, "ns") for t in init_times], dtype="datetime64[ns]")
    else:
        lo = np.datetime64(start, "ns") if start is not None else times[1]
        hi = np.datetime64(end, "ns") if end is not None else times[-1]
        stride = dt if stride_hours is None else np.timedelta64(int(round(stride_hours * 3600)), "s").astype(
            "timedelta64[ns]")
        if stride <= np.timedelta64(0) or stride % dt != np.timedelta64(0):
            raise DataError(f"init stride {stride_hours} h is not a positive multiple of the time step "
                            f"{dt / np.timedelta64(1, 'h'):g} h", file=source, option="stride")
        if hi < lo:
            raise DataError(f"init range {lo} .. {hi} is empty", file=source, option="init times")
        chosen = np.arange(lo, hi + np.timedelta64(1, "ns"), stride).astype("datetime64[ns]")
    if chosen.size == 0:
        raise DataError("no init time selected", file=source, option="init times")
    pos = np.searchsorted(times, chosen)
    for t, p in zip(chosen, pos):
        if p >= times.size or times[p] != t:
            raise DataError(f"init time not in the source (covers {times[0]} .. {times[-1]} every "
                            f"{dt / np.timedelta64(1, 'h'):g} h)", file=source, time=t, option="init times")
        if p == 0:
            raise DataError("init time has no previous time for the model's t - dt input state", file=source,
                            time=t, option="init times")
    return np.unique(chosen)


@dataclass
class ForecastRun:
    """What ``forecast_checkpoint`` wrote.

    Attributes:
        path: the forecast store.
        init_times: ``[N]`` datetime64 init times.
        lead_times: ``[K]`` timedelta64 lead times.
        members: member numbers or None.
        channels: channels written.
        seconds: wall time of the rollouts and writes.
    """

    path: Path
    init_times: np.ndarray
    lead_times: np.ndarray
    members: list[int] | None
    channels: list[str]
    seconds: float


def _variables(channels: Sequence[str]) -> dict[str, list[int] | None]:
    out: dict[str, list[int] | None] = {}
    for c in channels:
        var, level = split_channel(c)
        if level is None:
            out[var] = None
        else:
            out.setdefault(var, []).append(level)
    levels = {tuple(sorted(v)) for v in out.values() if v is not None}
    if len(levels) > 1:
        raise DataError(f"pressure-level variables of the model have different level sets {sorted(levels)}; "
                        "a WeatherBench2 store holds one level axis", option="channels")
    return {k: (sorted(v) if v is not None else None) for k, v in out.items()}


@torch.no_grad()
def forecast_checkpoint(
    checkpoint: str | Path,
    out: str | Path,
    *,
    lead_hours: float,
    start: str | None = None,
    end: str | None = None,
    stride_hours: float | None = None,
    init_times: Sequence | None = None,
    members: Sequence[int] | None = None,
    cfg_overrides: dict | None = None,
    batch_size: int = 8,
    overwrite: bool = False,
    show_progress: bool = True,
    model: LoadedModel | None = None,
) -> ForecastRun:
    """Forecast from every chosen init time (and member) to ``lead_hours``; write a WB2 forecast store.

    Args:
        checkpoint: checkpoint written by ``weathergnn train``.
        out: target zarr store (directory, e.g. ``forecasts.zarr``).
        lead_hours: longest lead; a multiple of the source's time step (one model step).
        start, end, stride_hours, init_times: see :func:`select_init_times`.
        members: ensemble members of the source to start from (default: all;
            ensemble sources only); stored as the ``number`` dim.
        cfg_overrides: dotted config overrides (``data.source`` points the
            model at another source on the same grid).
        batch_size: (init time, member) pairs rolled out together; all members of
            an init time are in one group (a batch of ``batch_size // members``
            init times, at least one), written once rolled out.
        overwrite: replace an existing store.
        model: an already loaded model (skips loading ``checkpoint``).

    Returns:
        :class:`ForecastRun`.

    Raises:
        FileExistsError: ``out`` exists and not ``overwrite``.
        DataError: bad init times / lead / members, a NaN in an input state
            (names channel and time), a source lacking a model channel.
        ValueError / FileNotFoundError: see :func:`load_model`.
    """
    import time

    m = model or load_model(checkpoint, cfg_overrides)
    ds, channels = m.ds, m.channels
    source = dataset_source(ds)
    dt = np.timedelta64(m.time_step, "ns")
    steps = lead_hours * 3600e9 / float(dt.astype(np.int64))
    if lead_hours <= 0 or abs(steps - round(steps)) > 1e-9:
        raise DataError(f"lead {lead_hours} h is not a positive multiple of the model time step "
                        f"{dt / np.timedelta64(1, 'h'):g} h", file=source, option="lead")
    steps = int(round(steps))
    times = ds["time"].values.astype("datetime64[ns]")
    inits = select_init_times(times, start, end, stride_hours, init_times, source)
    index = np.searchsorted(times, inits)
    member_pos: list[int | None] = [None]
    member_values = None
    if "member" in ds.dims:
        all_members = [int(x) for x in ds["member"].values]
        member_values = all_members if members is None else [int(x) for x in members]
        missing = [x for x in member_values if x not in all_members]
        if missing:
            raise DataError(f"member {missing[0]} not in source (has {all_members})", file=source, option="members")
        member_pos = [all_members.index(x) for x in member_values]
    elif members is not None:
        raise DataError("members given but the source has no member dim", file=source, option="members")

    n_lat, n_lon = ds.sizes["latitude"], ds.sizes["longitude"]
    lat = ds["latitude"].values.astype(np.float64)
    lon = ds["longitude"].values.astype(np.float64)
    grid_lat, grid_lon = np.repeat(lat, n_lon), np.tile(lon, n_lat)
    static = torch.from_numpy(static_features(ds)[1]).to(m.device)
    variables = _variables(channels)
    chan_index = {c: i for i, c in enumerate(channels)}
    leads = dt * np.arange(1, steps + 1)
    attrs = {
        "title": "WeatherGNN forecasts (WeatherBench2 forecast layout)",
        "source": f"weathergnn {__version__} forecast",
        "checkpoint": str(Path(checkpoint).resolve()) if checkpoint else "<in memory>",
        "config_name": m.cfg.name,
        "processor": m.cfg.model.processor,
        "initial_conditions": source,
        "time_step_hours": float(dt / np.timedelta64(1, "h")),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "conventions": "time = init time, prediction_timedelta = lead time, valid time = time + "
                       "prediction_timedelta; physical units; lead 0 not stored",
    }
    t0 = time.perf_counter()
    writer = ForecastStoreWriter(out, inits, leads, variables, lat, lon, members=member_values, attrs=attrs,
                                 overwrite=overwrite)
    n_mem = len(member_pos)
    per_group = max(1, batch_size // n_mem)  # init times per group: (init, member) pairs share a batch
    with writer, tqdm(total=len(index), desc="forecast", disable=not show_progress, unit="init") as bar:
        for g0 in range(0, len(index), per_group):
            group = list(range(g0, min(g0 + per_group, len(index))))
            jobs = [(n, mp) for n in group for mp in member_pos]  # (init position, member position)
            preds = []
            for b0 in range(0, len(jobs), batch_size):
                batch = jobs[b0: b0 + batch_size]
                x = np.stack([_input_states(ds, channels, int(index[n]), mp, times) for n, mp in batch])
                forc = np.stack([forcing_features(np.concatenate([times[index[n] - 1: index[n] + 1],
                                                                  times[index[n]] + leads]), grid_lat, grid_lon)
                                 for n, _ in batch])  # [B, 2 + K, G, F] at t - dt, t, t + dt .. t + K dt
                inputs = torch.from_numpy(x).to(m.device)  # [B, 2, G, C]
                with autocast(m.device, m.cfg.training.precision):
                    pred = m.forecaster.rollout(inputs, torch.from_numpy(forc).to(m.device), static, steps)
                preds.append(pred.float().cpu().numpy())  # [B, K, G, C]
            pred = np.concatenate(preds).reshape(len(group), n_mem, steps, n_lat, n_lon, len(channels))
            pred = pred.transpose(0, 1, 2, 5, 3, 4)  # [init, M, K, C, lat, lon]
            for j, n in enumerate(group):
                fields = {}
                pj = pred[j]  # [M, K, C, lat, lon]
                for var, levels in variables.items():
                    if levels is None:
                        arr = pj[:, :, chan_index[var]]
                    else:
                        arr = pj[:, :, [chan_index[f"{var}_{lv}"] for lv in levels]]
                    fields[var] = arr if member_values is not None else arr[0]
                writer.write(n, fields)
                bar.update(1)
    return ForecastRun(Path(out), inits, leads, member_values, list(channels), time.perf_counter() - t0)


def _input_states(ds, channels, i: int, member_pos, times) -> np.ndarray:
    """The two input states ``[2, G, C]`` (float32) at times ``i - 1, i``; DataError on NaN/inf."""
    x = read_channels(ds, channels, slice(i - 1, i + 1), member_pos)  # [2, C, lat, lon]
    finite = np.isfinite(x)
    if not finite.all():
        t, c = np.argwhere(~finite.all(axis=(2, 3)))[0]
        member = "" if member_pos is None else f", member {int(ds['member'].values[member_pos])}"
        raise DataError(f"non-finite value (NaN/inf) in input state of channel {channels[c]!r}{member}",
                        variable=channels[c], time=times[i - 1 + t], file=dataset_source(ds))
    return np.ascontiguousarray(x.reshape(2, x.shape[1], -1).transpose(0, 2, 1))
