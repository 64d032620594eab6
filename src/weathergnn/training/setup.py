"""Assemble what a run needs from a configuration: data, statistics, graphs, model.

Shared by ``weathergnn train`` and ``weathergnn evaluate`` so that both build the
same windows, normalisation statistics and graphs from the same configuration.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from weathergnn.config import Config, Split
from weathergnn.data.channels import resolve_channels, split_channel
from weathergnn.data.forcings import FORCING_NAMES
from weathergnn.data.normalization import NormStats, load_or_compute_stats
from weathergnn.data.reader import open_dataset
from weathergnn.data.windows import STATIC_FIELDS, WindowDataset
from weathergnn.graphs.storage import load_or_build
from weathergnn.graphs.types import WeatherGraphs
from weathergnn.models.forecaster import Forecaster
from weathergnn.models.graph_model import EncodeProcessDecode

log = logging.getLogger(__name__)


@dataclass
class RunData:
    """The opened dataset, its channels and the normalisation statistics of the training period."""

    ds: xr.Dataset
    channels: list[str]
    stats: NormStats
    source_key: str


def resolve_device(spec: str) -> torch.device:
    """``auto`` picks CUDA when available, else the CPU."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(spec)


def open_run_data(cfg: Config) -> RunData:
    """Open the configured source, resolve channels and load (or compute) training statistics.

    Statistics cover the training period (and training members) only, so no
    validation or test data leaks into the normalisation.
    """
    ds = open_dataset(cfg.data.source, static_sources=cfg.data.static_sources or None)
    channels = resolve_channels(cfg.data.channels, ds)
    if cfg.data.preload:
        # Small datasets only: one read of the variables the channels use (float32),
        # after which each sample is a numpy slice instead of a chunked read.
        needed = sorted({split_channel(c)[0] for c in channels} | {v for v in STATIC_FIELDS if v in ds})
        log.info("preloading %s into memory", needed)
        ds = ds[needed].load()
    train_ds = ds
    if "member" in ds.dims and cfg.data.train.members is not None:
        train_ds = ds.sel(member=cfg.data.train.members)
    source_key = _source_key(cfg)
    stats = load_or_compute_stats(
        train_ds,
        channels,
        (cfg.data.train.start, cfg.data.train.end),
        cache_dir=cfg.data.cache_dir,
        dataset_key=source_key,
    )
    return RunData(ds=ds, channels=channels, stats=stats, source_key=source_key)


def _source_key(cfg: Config) -> str:
    src = cfg.data.source
    path = Path(src)
    if path.exists():
        src = str(path.resolve())
    return src


def make_windows(data: RunData, split: Split, rollout_steps: int, max_rollout_steps: int | None = None) -> WindowDataset:
    """Input/target windows of one split (init-time range and members)."""
    return WindowDataset(
        data.ds,
        data.channels,
        rollout_steps=rollout_steps,
        start=split.start,
        end=split.end,
        members=split.members,
        max_rollout_steps=max_rollout_steps or rollout_steps,
    )


def build_graphs_for(ds: xr.Dataset, cfg: Config) -> WeatherGraphs:
    """Load the cached graphs for this grid and graph config, building them if absent or stale."""
    return load_or_build(
        np.asarray(ds["latitude"].values, dtype=np.float64),
        np.asarray(ds["longitude"].values, dtype=np.float64),
        refinement=cfg.graph.refinement,
        radius_fraction=cfg.graph.radius_fraction,
        cache_dir=Path(cfg.data.cache_dir) / "graphs",
        ordering=cfg.graph.ordering,
    )


def build_forecaster(cfg: Config, graphs: WeatherGraphs, stats: NormStats, n_static: int) -> Forecaster:
    """The encoder-processor-decoder network wrapped with residual normalisation."""
    n_channels = len(stats.channels)
    n_forcings = len(FORCING_NAMES)
    in_channels = 2 * n_channels + 3 * n_forcings + n_static
    net = EncodeProcessDecode(
        graphs,
        in_channels=in_channels,
        out_channels=n_channels,
        latent=cfg.model.latent,
        layers=cfg.model.layers,
        processor=cfg.model.processor,
        checkpoint=cfg.model.checkpoint,
        backend=cfg.model.backend,
        edge_gemm=cfg.model.edge_gemm,
        mapper_chunks=cfg.model.mapper_chunks,
        checkpoint_processor=cfg.model.checkpoint_processor,
    )
    return Forecaster(
        net,
        mean=torch.as_tensor(stats.mean, dtype=torch.float32),
        std=torch.as_tensor(stats.std, dtype=torch.float32),
        diff_std=torch.as_tensor(stats.diff_std, dtype=torch.float32),
        n_forcings=n_forcings,
        n_static=n_static,
    )
