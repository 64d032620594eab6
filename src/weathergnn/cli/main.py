"""The ``weathergnn`` command line: thin subcommands over the library.

    weathergnn train [--config quickstart] [--data PATH] [--out DIR] [--resume]
    weathergnn forecast --checkpoint runs/x/checkpoint.pt --out runs/x/forecast.zarr --start D --end D --lead-days 10
    weathergnn evaluate --forecast runs/x/forecast.zarr --truth PATH --out DIR
    weathergnn evaluate --checkpoint runs/x/checkpoint.pt [--data PATH]
    weathergnn data inspect PATH
    weathergnn data stats PATH --channels PRESET
    weathergnn graph build --data PATH --refinement 6
    weathergnn graph inspect PATH
    weathergnn benchmark [--cases sum,interaction,fused,step,locality] [--device cuda] [--out DIR]
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


def _int_list(text: str | None, option: str) -> list[int] | None:
    """``"0-7,9"`` -> ``[0, 1, ..., 7, 9]``."""
    if text is None:
        return None
    out: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                lo, hi = part.split("-", 1)
                out += list(range(int(lo), int(hi) + 1))
            elif part:
                out.append(int(part))
    except ValueError:
        raise typer.BadParameter(f"{option} {text!r}: expected integers and ranges like 0-7,9") from None
    return out


def _float_list(text: str | None, option: str) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise typer.BadParameter(f"{option} {text!r}: expected comma-separated numbers") from None


@app.command()
def forecast(
    checkpoint: Annotated[Path, typer.Option("--checkpoint", help="Checkpoint written by 'weathergnn train'.")],
    out: Annotated[Path, typer.Option("--out", help="Forecast zarr store to write (WeatherBench2 layout), e.g. runs/x/forecast.zarr.")],
    start: Annotated[Optional[str], typer.Option("--start", help="First init time (ISO date; default: the second time of the source).")] = None,
    end: Annotated[Optional[str], typer.Option("--end", help="Last init time, inclusive (ISO date; default: the last time of the source).")] = None,
    stride_hours: Annotated[Optional[float], typer.Option("--stride-hours", help="Hours between init times (a multiple of the time step; default: the time step).")] = None,
    lead_days: Annotated[Optional[float], typer.Option("--lead-days", help="Longest lead in days (default 10).")] = None,
    lead_hours: Annotated[Optional[float], typer.Option("--lead-hours", help="Longest lead in hours (instead of --lead-days).")] = None,
    members: Annotated[Optional[str], typer.Option("--members", help="Ensemble members of the source to start from, e.g. 0-9 (default: all).")] = None,
    data: Annotated[Optional[str], typer.Option("--data", help="Source of the initial states overriding the checkpoint's config.")] = None,
    device: Annotated[Optional[str], typer.Option("--device", help="auto, cpu, cuda or cuda:N.")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="(init time, member) pairs rolled out together (all members of an init time share a group).")] = 8,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing store.")] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="Hide the progress bar.")] = False,
) -> None:
    """Roll a checkpoint out from chosen init times and write a WeatherBench2-layout forecast zarr store."""
    from weathergnn.data.errors import DataError
    from weathergnn.evaluation.forecast import forecast_checkpoint

    if lead_days is not None and lead_hours is not None:
        _fail(ValueError("give --lead-days or --lead-hours, not both"))
    hours = lead_hours if lead_hours is not None else 24.0 * (lead_days if lead_days is not None else 10.0)
    ov = {}
    if data:
        ov["data.source"] = data
    if device:
        ov["training.device"] = device
    t0 = time.perf_counter()
    try:
        run = forecast_checkpoint(checkpoint, out, lead_hours=hours, start=start, end=end, stride_hours=stride_hours,
                                  members=_int_list(members, "--members"), cfg_overrides=ov, batch_size=batch_size,
                                  overwrite=overwrite, show_progress=not no_progress)
    except (DataError, ValueError, FileNotFoundError, FileExistsError, KeyError) as err:
        _fail(err)
    from weathergnn.data.checks import format_time

    typer.echo(f"wrote {run.path}: {len(run.init_times)} init times ({format_time(run.init_times[0])} .. "
               f"{format_time(run.init_times[-1])}) x {len(run.lead_times)} leads to {hours:g} h"
               + (f" x {len(run.members)} members" if run.members else "")
               + f", {len(run.channels)} channels, {run.seconds:.1f} s ({time.perf_counter() - t0:.1f} s in all)")


def _window(text: str) -> int | None:
    if text.strip().lower() in ("none", "null", ""):
        return None
    try:
        return int(text)
    except ValueError:
        raise typer.BadParameter(f"--climatology-window-days {text!r}: expected an odd integer or 'none'") from None


@app.command()
def evaluate(
    checkpoint: Annotated[Optional[Path], typer.Option("--checkpoint", help="Score a checkpoint directly: roll out over the config's test split, RMSE vs persistence (the quick check).")] = None,
    forecast: Annotated[Optional[str], typer.Option("--forecast", help="Score a WeatherBench2-layout forecast zarr store (from 'weathergnn forecast' or elsewhere) with baselines, ACC, spectra, scorecard and plots.")] = None,
    truth: Annotated[Optional[str], typer.Option("--truth", help="With --forecast: truth source (zarr, NetCDF, GRIB, glob; default: the store's initial_conditions attribute).")] = None,
    data: Annotated[Optional[str], typer.Option("--data", help="With --checkpoint: truth source overriding the checkpoint's config.")] = None,
    split: Annotated[str, typer.Option("--split", help="With --checkpoint: which split of the config to score: test or val.")] = "test",
    lead_steps: Annotated[Optional[int], typer.Option("--lead-steps", help="With --checkpoint: model steps to roll out (default: evaluation.lead_steps).")] = None,
    max_init_times: Annotated[Optional[int], typer.Option("--max-init-times", help="Score at most this many evenly spaced init times.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Output directory (default: beside the checkpoint / forecast store).")] = None,
    channels: Annotated[Optional[str], typer.Option("--channels", help="Comma-separated channels to print and plot (default: key/headline channels; all are saved).")] = None,
    score_channels: Annotated[Optional[str], typer.Option("--score-channels", help="With --forecast: comma-separated channels to score (default: all channels forecast and truth share).")] = None,
    leads: Annotated[Optional[str], typer.Option("--leads-hours", help="With --forecast: comma-separated lead hours to score (default: all).")] = None,
    init_start: Annotated[Optional[str], typer.Option("--init-start", help="With --forecast: first init time to score.")] = None,
    init_end: Annotated[Optional[str], typer.Option("--init-end", help="With --forecast: last init time to score.")] = None,
    clim_start: Annotated[Optional[str], typer.Option("--climatology-start", help="Climatology period start (default: the truth's first time).")] = None,
    clim_end: Annotated[Optional[str], typer.Option("--climatology-end", help="Climatology period end (default: the truth's last time).")] = None,
    clim_window: Annotated[str, typer.Option("--climatology-window-days", help="Day-of-year smoothing window (WeatherBench2: 61), or 'none' for a climatology without day-of-year dependence (stationary data such as Held-Suarez).")] = "61",
    clim_members: Annotated[Optional[str], typer.Option("--climatology-members", help="Truth members the climatology uses (ensembles; default all).")] = None,
    cache_dir: Annotated[Path, typer.Option("--cache-dir", help="Where the climatology is cached.")] = Path("cache"),
    member_mode: Annotated[str, typer.Option("--member-mode", help="auto, paired (forecast member m vs truth member m) or ensemble (forecast members vs each truth member).")] = "auto",
    truth_members: Annotated[Optional[str], typer.Option("--truth-members", help="Truth members to verify against, e.g. 8-9.")] = None,
    forecast_members: Annotated[Optional[str], typer.Option("--forecast-members", help="Forecast members (number) to use, e.g. 0-7.")] = None,
    spectra_leads: Annotated[str, typer.Option("--spectra-leads-hours", help="Lead hours of the KE spectra.")] = "120",
    spectra_levels: Annotated[str, typer.Option("--spectra-levels", help="Levels (hPa) of the KE spectra.")] = "200,500,850",
    spectra_lat_band: Annotated[str, typer.Option("--spectra-lat-band", help="|latitude| band (degrees, both hemispheres) the zonal spectra are averaged over.")] = "30,60",
    map_channel: Annotated[Optional[str], typer.Option("--map-channel", help="Channel of the map plot (default geopotential_500).")] = None,
    map_lead: Annotated[Optional[float], typer.Option("--map-lead-hours", help="Lead of the map plot (default: closest to 120 h).")] = None,
    map_init: Annotated[Optional[str], typer.Option("--map-init", help="Init time of the map plot (default: the first).")] = None,
    reference: Annotated[Optional[str], typer.Option("--reference", help="Published reference curves on the RMSE plot: 'weatherbench' (Rasp et al. 2020) or a CSV path.")] = None,
    no_plots: Annotated[bool, typer.Option("--no-plots", help="Skip the PNG plots.")] = False,
    device: Annotated[Optional[str], typer.Option("--device", help="With --checkpoint: auto, cpu, cuda or cuda:N.")] = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="Hide the progress bar.")] = False,
) -> None:
    """Score forecasts: a forecast store (--forecast) against a truth with baselines, or a checkpoint (--checkpoint) vs persistence."""
    from weathergnn.data.errors import DataError

    if (checkpoint is None) == (forecast is None):
        _fail(ValueError("give exactly one of --checkpoint (quick rollout score) or --forecast (forecast store)"))
    if forecast is not None:
        _evaluate_store(forecast, truth, out, channels, score_channels, leads, init_start, init_end, max_init_times,
                        clim_start, clim_end, clim_window, clim_members, cache_dir, member_mode, truth_members,
                        forecast_members, spectra_leads, spectra_levels, spectra_lat_band, map_channel, map_lead,
                        map_init, reference, no_plots, no_progress)
        return
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


def _evaluate_store(forecast, truth, out, channels, score_channels, leads, init_start, init_end, max_init_times,
                    clim_start, clim_end, clim_window, clim_members, cache_dir, member_mode, truth_members,
                    forecast_members, spectra_leads, spectra_levels, spectra_lat_band, map_channel, map_lead,
                    map_init, reference, no_plots, no_progress) -> None:
    from weathergnn.data.errors import DataError
    from weathergnn.evaluation.evaluate import EvaluateOptions, evaluate_forecast
    from weathergnn.evaluation.forecast_store import open_forecast
    from weathergnn.evaluation.scorecard import scorecard_markdown, write_scorecard

    t0 = time.perf_counter()
    try:
        fc = open_forecast(forecast)
        if truth is None:
            truth = fc.attrs.get("initial_conditions")
            if not truth:
                raise DataError("no --truth given and the store has no initial_conditions attribute",
                                file=forecast, option="--truth")
        opts = EvaluateOptions(
            channels=score_channels.split(",") if score_channels else None,
            lead_hours=_float_list(leads, "--leads-hours"), init_start=init_start, init_end=init_end,
            max_init_times=max_init_times, climatology_start=clim_start, climatology_end=clim_end,
            climatology_window_days=_window(clim_window), climatology_members=_int_list(clim_members,
                                                                                       "--climatology-members"),
            cache_dir=cache_dir, member_mode=member_mode, truth_members=_int_list(truth_members, "--truth-members"),
            forecast_members=_int_list(forecast_members, "--forecast-members"),
            spectra_lead_hours=_float_list(spectra_leads, "--spectra-leads-hours") or (),
            spectra_levels=_int_list(spectra_levels, "--spectra-levels") or (),
            spectra_lat_band=tuple((_float_list(spectra_lat_band, "--spectra-lat-band") + [0.0, 0.0])[:2]),
            map_channel=map_channel, map_lead_hours=map_lead, map_init=map_init, show_progress=not no_progress)
        import warnings

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            result = evaluate_forecast(fc, truth, opts)
        for w in caught:
            typer.secho(f"warning: {w.message}", fg=typer.colors.YELLOW, err=True)
        curves = None
        if reference:
            from weathergnn.evaluation.reference_curves import load_reference_curves

            curves = load_reference_curves(reference)
        out_dir = out or Path(str(forecast).rstrip("/")).parent / "evaluation"
        show = channels.split(",") if channels else None
        paths = write_scorecard(result, out_dir, channels=show)
        if not no_plots:
            from weathergnn.evaluation.plots import plot_all

            paths += plot_all(result, out_dir, show, curves)
    except (DataError, ValueError, FileNotFoundError, KeyError) as err:
        _fail(err)
    md = scorecard_markdown(result, show)
    typer.echo(md[md.index("## RMSE and ACC"):].split("\n## Other")[0].rstrip())
    typer.echo(f"\nscored {result.meta['n_init']} init times x {len(result.lead_hours)} leads x "
               f"{len(result.channels)} channels in {time.perf_counter() - t0:.1f} s")
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


@app.command()
def benchmark(
    cases: Annotated[str, typer.Option("--cases", help="Comma-separated cases: sum (sum aggregation), interaction (one interaction-network layer), fused (one fused-processor layer), step (a GraphCast-size training step), locality (mesh orderings natural/random/hilbert).")] = "sum,interaction,fused,step,locality",
    grid_deg: Annotated[float, typer.Option("--grid-deg", help="Regular lat-lon grid spacing in degrees, poles included (0.25: 721 x 1440).")] = 0.25,
    refinement: Annotated[int, typer.Option("--refinement", help="Finest icosahedral refinement of the multimesh (6: 40,962 mesh nodes).")] = 6,
    latent: Annotated[int, typer.Option("--latent", help="Feature width of the aggregation and layer cases; latent of the training-step models.")] = 512,
    repeats: Annotated[int, typer.Option("--repeats", help="Timed samples per measurement, median reported (the training step uses twice as many).")] = 10,
    warmup: Annotated[int, typer.Option("--warmup", help="Untimed calls before timing; compilation happens here (the training step uses at most 2).")] = 3,
    device: Annotated[str, typer.Option("--device", help="cuda, cuda:N or cpu (cpu: a smoke test at toy size, e.g. --grid-deg 10 --refinement 2 --latent 16).")] = "cuda",
    out: Annotated[Path, typer.Option("--out", help="Directory for benchmark_<device>_<date>.{json,csv,md,png}.")] = Path("benchmarks/results"),
    impls: Annotated[Optional[str], typer.Option("--impls", help="Comma-separated implementation names or glob patterns, e.g. 'ours-*,pyg*' (default: every case's default set).")] = None,
    compile_backend: Annotated[str, typer.Option("--compile-backend", help="torch.compile backend of the *-compiled implementations: auto (inductor on CUDA, aot_eager on CPU), inductor, aot_eager or eager.")] = "auto",
    max_minutes: Annotated[float, typer.Option("--max-minutes", help="Wall-clock budget; measurements not started by then are recorded as skipped (0: no limit).")] = 7.5,
    graphs: Annotated[str, typer.Option("--graphs", help="Comma-separated edge sets for the sum, interaction, fused and locality cases: mesh, grid2mesh, mesh2grid (the training step always runs on all).")] = "mesh,grid2mesh,mesh2grid",
) -> None:
    """Time message passing on the GPU, ours vs plain torch, PyG and cuSPARSE; write JSON, CSV, table and plot."""
    from weathergnn.benchmarking.suite import SuiteOptions, run_suite

    try:
        opts = SuiteOptions(
            cases=[c.strip() for c in cases.split(",") if c.strip()], grid_deg=grid_deg, refinement=refinement,
            latent=latent, repeats=repeats, warmup=warmup, device=device, out=out,
            impls=[p.strip() for p in impls.split(",") if p.strip()] if impls else None,
            compile_backend=compile_backend, max_minutes=max_minutes if max_minutes > 0 else None,
            graphs=[g.strip() for g in graphs.split(",") if g.strip()],
        )
        run_suite(opts)
    except ValueError as err:
        _fail(err)


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
