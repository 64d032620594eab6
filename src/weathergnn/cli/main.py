"""The ``weathergnn`` command line: thin subcommands over the library.

    weathergnn train [--config quickstart] [--data PATH] [--out DIR] [--resume]
    weathergnn evaluate --checkpoint runs/x/checkpoint.pt [--data PATH]
    weathergnn data inspect PATH
    weathergnn data stats PATH --channels PRESET
    weathergnn graph build --data PATH --refinement 6
    weathergnn graph inspect PATH
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(
    help="WeatherGNN: train graph-neural-network emulators of the global atmosphere and score them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Inspect data sources and compute normalisation statistics.", no_args_is_help=True)
graph_app = typer.Typer(help="Build and inspect the spherical graphs (grid2mesh, multimesh, mesh2grid).",
                        no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(graph_app, name="graph")

ConfigOpt = Annotated[
    str,
    typer.Option(
        "--config", "-c",
        help="Named config (quickstart, heldsuarez-5.625deg, era5-eda-3deg, era5-0.25deg-graphcast) or a YAML file.",
    ),
]
SetOpt = Annotated[
    Optional[list[str]],
    typer.Option("--set", help="Override a config field, dotted: --set training.lr=3e-4 (repeatable; YAML values)."),
]


def _fail(err: Exception) -> None:
    typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


def _overrides(sets: list[str] | None) -> dict:
    import yaml

    out = {}
    for item in sets or []:
        if "=" not in item:
            raise typer.BadParameter(f"--set {item!r}: expected key=value")
        key, value = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(value)
    return out


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


@app.command()
def train(
    config: ConfigOpt = "quickstart",
    data: Annotated[Optional[str], typer.Option("--data", help="Data source overriding the config: zarr store, NetCDF/GRIB file or glob, or 'demo'.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Run directory for checkpoints, metrics and timings (default: the config's training.out_dir).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from <out>/checkpoint.pt (model, optimiser, scheduler, step, RNG).")] = False,
    epochs: Annotated[Optional[int], typer.Option("--epochs", help="Number of epochs (overrides training.epochs).")] = None,
    max_steps: Annotated[Optional[int], typer.Option("--max-steps", help="Stop after this many optimiser steps.")] = None,
    processor: Annotated[Optional[str], typer.Option("--processor", help="Processor realisation: interaction or fused.")] = None,
    device: Annotated[Optional[str], typer.Option("--device", help="auto, cpu, cuda or cuda:N.")] = None,
    set_: SetOpt = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="Hide the progress bar.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log setup steps.")] = False,
) -> None:
    """Train a model: builds windows, statistics and graphs, trains, validates, checkpoints, prints timings."""
    from weathergnn.config import ConfigError, load_config

    _setup_logging(verbose)
    ov = _overrides(set_)
    for key, value in (("data.source", data), ("training.out_dir", str(out) if out else None),
                       ("training.epochs", epochs), ("training.max_steps", max_steps),
                       ("model.processor", processor), ("training.device", device)):
        if value is not None:
            ov[key] = value
    try:
        cfg = load_config(config, ov)
    except ConfigError as err:
        _fail(err)
    from weathergnn.data.errors import DataError
    from weathergnn.training.trainer import train as run_train

    typer.echo(f"weathergnn train: config {cfg.name}, data {cfg.data.source}, processor {cfg.model.processor}, "
               f"out {cfg.training.out_dir}")
    t0 = time.perf_counter()
    try:
        result = run_train(cfg, resume=resume, show_progress=not no_progress)
    except (DataError, ValueError, FileNotFoundError) as err:
        _fail(err)
    typer.echo(f"\ntrained {result.steps} steps in {result.epochs} epochs, {time.perf_counter() - t0:.1f} s; "
               f"train loss {result.first_train_loss:.4f} -> {result.final_train_loss:.4f}")
    typer.echo(f"checkpoint: {result.out_dir / 'checkpoint.pt'}")
    typer.echo("\nTimer (seconds):")
    result.timer.print_all_time_stats()


@app.command()
def evaluate(
    checkpoint: Annotated[Path, typer.Option("--checkpoint", help="Checkpoint written by 'weathergnn train'.")],
    data: Annotated[Optional[str], typer.Option("--data", help="Truth source overriding the checkpoint's config.")] = None,
    split: Annotated[str, typer.Option("--split", help="Which split of the config to score: test or val.")] = "test",
    lead_steps: Annotated[Optional[int], typer.Option("--lead-steps", help="Model steps to roll out (default: evaluation.lead_steps).")] = None,
    max_init_times: Annotated[Optional[int], typer.Option("--max-init-times", help="Score at most this many evenly spaced init times.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Where to write scores.csv and scores.json (default: beside the checkpoint).")] = None,
    channels: Annotated[Optional[str], typer.Option("--channels", help="Comma-separated channels to print (default: the config's key channels; all are saved).")] = None,
    device: Annotated[Optional[str], typer.Option("--device", help="auto, cpu, cuda or cuda:N.")] = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="Hide the progress bar.")] = False,
) -> None:
    """Roll a checkpoint out over the test period; print and save latitude-weighted RMSE vs persistence."""
    from weathergnn.data.errors import DataError
    from weathergnn.evaluation.scoring import score_checkpoint

    ov = {}
    if data:
        ov["data.source"] = data
    if device:
        ov["training.device"] = device
    if split not in ("test", "val"):
        _fail(ValueError(f"--split {split!r}: expected test or val"))
    try:
        scores = score_checkpoint(checkpoint, cfg_overrides=ov, split=split, lead_steps=lead_steps,
                                  max_init_times=max_init_times, show_progress=not no_progress)
    except (DataError, ValueError, FileNotFoundError, KeyError) as err:
        _fail(err)
    show = channels.split(",") if channels else None
    if show is None:
        show = [c for c in ("geopotential_500", "temperature_850") if c in scores.channels] or scores.channels[:4]
    typer.echo(f"latitude-weighted RMSE over {scores.n_init} forecasts ({split} split), model vs persistence:")
    typer.echo(scores.table(show))
    paths = scores.save(out or checkpoint.parent / f"scores-{split}")
    typer.echo("saved: " + ", ".join(str(p) for p in paths))


@data_app.command("inspect")
def data_inspect(
    source: Annotated[str, typer.Argument(help="zarr store, NetCDF/GRIB file, glob, .npy static field, or 'demo'.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the description as JSON.")] = False,
    name: Annotated[Optional[str], typer.Option("--name", help="Variable name for a plain .npy static field (default: geopotential_at_surface if the file name says geopotential/orography/topography, else the file stem).")] = None,
) -> None:
    """Print a source's variables, levels, grid and times in WeatherGNN's canonical names."""
    from weathergnn.data.describe import describe_dataset, format_description
    from weathergnn.data.errors import DataError
    from weathergnn.data.reader import open_dataset

    try:
        if source.endswith(".npy"):
            stem = Path(source).stem
            if name is None:
                orography = any(w in stem.lower() for w in ("geopotential", "orography", "topography"))
                name = "geopotential_at_surface" if orography else stem
            ds = open_dataset(None, static_sources={name: source})
        else:
            ds = open_dataset(source)
        desc = describe_dataset(ds, source)
    except (DataError, ValueError, FileNotFoundError) as err:
        _fail(err)
    typer.echo(json.dumps(desc, indent=2, default=str) if as_json else format_description(desc))


@data_app.command("stats")
def data_stats(
    source: Annotated[str, typer.Argument(help="Data source (zarr, NetCDF, GRIB, glob, or 'demo').")],
    channels: Annotated[str, typer.Option("--channels", help="Channel preset (seed84, heldsuarez, era5-eda-zt, demo) or comma-separated list.")] = "demo",
    start: Annotated[Optional[str], typer.Option("--start", help="First time of the period (ISO date).")] = None,
    end: Annotated[Optional[str], typer.Option("--end", help="Last time of the period (ISO date).")] = None,
    cache_dir: Annotated[Path, typer.Option("--cache-dir", help="Where the statistics JSON is cached.")] = Path("cache"),
) -> None:
    """Compute (or load from cache) per-channel mean, std and 6-hourly-difference std in one streaming pass."""
    import numpy as np

    from weathergnn.data.channels import resolve_channels
    from weathergnn.data.errors import DataError
    from weathergnn.data.normalization import load_or_compute_stats
    from weathergnn.data.reader import open_dataset

    try:
        ds = open_dataset(source)
        spec = channels.split(",") if "," in channels else channels
        chans = resolve_channels(spec, ds)
        times = ds["time"].values
        lo = np.datetime64(start) if start else times[0]
        hi = np.datetime64(end) if end else times[-1]
        times = times[(times >= lo) & (times <= hi)]
        stats = load_or_compute_stats(ds.sel(time=times), chans, times, cache_dir=cache_dir, dataset_key=source)
    except (DataError, ValueError, FileNotFoundError) as err:
        _fail(err)
    typer.echo(f"{'channel':<32} {'mean':>14} {'std':>14} {'diff std':>14}")
    for i, c in enumerate(stats.channels):
        typer.echo(f"{c:<32} {stats.mean[i]:>14.6g} {stats.std[i]:>14.6g} {stats.diff_std[i]:>14.6g}")


@graph_app.command("build")
def graph_build(
    data: Annotated[Optional[str], typer.Option("--data", help="Source whose grid to use (zarr/NetCDF/GRIB/'demo').")] = None,
    grid: Annotated[Optional[float], typer.Option("--grid", help="Instead of --data: a global regular grid of this spacing in degrees, poles included (0.25 gives 721 x 1440).")] = None,
    refinement: Annotated[int, typer.Option("--refinement", help="Finest icosahedral refinement level (6: 40,962 mesh nodes).")] = 6,
    radius_fraction: Annotated[float, typer.Option("--radius-fraction", help="grid2mesh radius as a fraction of the longest finest-mesh edge.")] = 0.6,
    ordering: Annotated[str, typer.Option("--ordering", help="Mesh node order: hilbert (space-filling curve), natural or random.")] = "hilbert",
    cache_dir: Annotated[Path, typer.Option("--cache-dir", help="Graph cache directory.")] = Path("cache/graphs"),
) -> None:
    """Build (or load from cache) the grid2mesh, multimesh and mesh2grid graphs for a grid."""
    import numpy as np

    from weathergnn.data.errors import DataError
    from weathergnn.graphs.storage import describe_graphs, load_or_build

    try:
        if grid is not None:
            n_lat = int(round(180 / grid)) + 1
            lat = np.linspace(-90, 90, n_lat)
            lon = np.arange(int(round(360 / grid))) * grid
        elif data is not None:
            from weathergnn.data.reader import open_dataset

            ds = open_dataset(data)
            lat, lon = ds["latitude"].values, ds["longitude"].values
        else:
            raise ValueError("give --data or --grid")
        t0 = time.perf_counter()
        graphs = load_or_build(lat, lon, refinement=refinement, radius_fraction=radius_fraction,
                               cache_dir=cache_dir, ordering=ordering)
        dt = time.perf_counter() - t0
    except (DataError, ValueError, FileNotFoundError) as err:
        _fail(err)
    typer.echo(json.dumps(describe_graphs(graphs), indent=2, default=str))
    typer.echo(f"built or loaded in {dt:.2f} s into {cache_dir}")


@graph_app.command("inspect")
def graph_inspect(
    path: Annotated[Path, typer.Argument(help="A graph file written by 'weathergnn graph build' (cache/graphs/graph-*.pt).")],
) -> None:
    """Print node and edge counts, degrees, radius and content hash of a stored graph."""
    from weathergnn.graphs.storage import describe_graphs, load_graphs

    try:
        graphs = load_graphs(path)
    except (ValueError, FileNotFoundError) as err:
        _fail(err)
    typer.echo(json.dumps(describe_graphs(graphs), indent=2, default=str))


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
