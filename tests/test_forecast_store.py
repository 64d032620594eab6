"""WeatherBench2-layout forecast stores: opening foreign stores, atomic writes, and `weathergnn forecast`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from eval_fixtures import foreign_forecast, truth_dataset
from weathergnn.cli.main import app
from weathergnn.config import Config, DataConfig, GraphConfig, ModelConfig, dump_config
from weathergnn.data.errors import DataError
from weathergnn.data.normalization import compute_stats
from weathergnn.data.reader import open_dataset
from weathergnn.data.windows import WindowDataset
from weathergnn.evaluation.forecast import forecast_checkpoint, select_init_times
from weathergnn.evaluation.forecast_store import ForecastStoreWriter, forecast_channels, open_forecast
from weathergnn.training.checkpoint import save_checkpoint
from weathergnn.training.setup import build_forecaster, build_graphs_for


def test_open_foreign_store_canonicalises_layout(tmp_path):
    truth = truth_dataset(n_times=8)
    fc = foreign_forecast(truth, [2, 4], n_leads=3)
    # a foreign layout: descending latitude, longitudes in [-180, 180), short names, lead_time alias, level in Pa
    foreign = fc.isel(latitude=slice(None, None, -1)).rename(
        {"geopotential": "z", "prediction_timedelta": "lead_time", "time": "init_time"})
    foreign = foreign.assign_coords(longitude=(((foreign.longitude + 180) % 360) - 180),
                                    level=foreign.level * 100)
    foreign["level"].attrs["units"] = "Pa"
    foreign = foreign.sortby("longitude")
    path = tmp_path / "foreign.zarr"
    foreign.to_zarr(path, zarr_format=2)
    ds = open_forecast(path)
    assert list(ds["geopotential"].dims) == ["time", "prediction_timedelta", "level", "latitude", "longitude"]
    assert (np.diff(ds.latitude.values) > 0).all() and ds.longitude.values.min() >= 0
    assert ds.level.values.tolist() == [500, 850]
    # every value is where it was, by coordinates
    for lat, lon in ((truth.latitude.values[0], 45.0), (truth.latitude.values[-1], 315.0)):
        got = ds["geopotential"].sel(latitude=lat, longitude=lon, level=850).values
        want = fc["geopotential"].sel(latitude=lat, longitude=lon, level=850).values
        np.testing.assert_array_equal(got, want)
    assert "geopotential_500" in forecast_channels(ds) and "surface_pressure" in forecast_channels(ds)


def test_open_forecast_errors_name_the_problem(tmp_path):
    truth = truth_dataset(n_times=8)
    fc = foreign_forecast(truth, [2], n_leads=2)
    bad = tmp_path / "nolead.zarr"
    fc.isel(prediction_timedelta=0).to_zarr(bad, zarr_format=2)
    with pytest.raises(DataError, match="prediction_timedelta") as err:
        open_forecast(bad)
    assert str(bad) in str(err.value)
    ints = fc.assign_coords(prediction_timedelta=[6, 12])
    with pytest.raises(DataError, match="not timedeltas"):
        open_forecast(ints)
    with pytest.raises(DataError, match="specific_humidity"):
        open_forecast(fc, variables=["specific_humidity"])
    with pytest.raises(DataError, match="no such forecast store"):
        open_forecast(tmp_path / "missing.zarr")


def _writer(path, **kw):
    lat, lon = np.array([-45.0, 45.0]), np.array([0.0, 120.0, 240.0])
    inits = np.array(["2000-01-01T00", "2000-01-01T12", "2000-01-02T00"], dtype="datetime64[ns]")
    leads = np.array([6, 12], dtype="timedelta64[h]")
    return ForecastStoreWriter(path, inits, leads, {"temperature": [500, 850], "surface_pressure": None},
                               lat, lon, **kw)


def _fields(i):
    t = np.arange(2 * 2 * 2 * 3, dtype=np.float32).reshape(2, 2, 2, 3) + 1000 * i
    return {"temperature": t, "surface_pressure": t[:, 0] + 0.5}


def test_writer_round_trip_one_init_per_chunk(tmp_path):
    path = tmp_path / "fc.zarr"
    with _writer(path, attrs={"note": "x"}) as w:
        for i in (2, 0, 1):  # any order
            w.write(i, _fields(i))
    assert path.is_dir() and not list(tmp_path.glob(".fc.zarr.tmp-*"))
    ds = open_forecast(path)
    for i in range(3):
        np.testing.assert_array_equal(ds["temperature"].isel(time=i).values, _fields(i)["temperature"])
        np.testing.assert_array_equal(ds["surface_pressure"].isel(time=i).values, _fields(i)["surface_pressure"])
    assert ds["temperature"].encoding["chunks"][0] == 1
    assert ds["prediction_timedelta"].values.astype("timedelta64[h]").astype(int).tolist() == [6, 12]
    assert ds.attrs["note"] == "x"


def test_writer_failure_leaves_no_store(tmp_path):
    path = tmp_path / "fc.zarr"
    with pytest.raises(RuntimeError, match="boom"):
        with _writer(path) as w:
            w.write(0, _fields(0))
            raise RuntimeError("boom")
    assert not path.exists() and not list(tmp_path.iterdir())
    with pytest.raises(RuntimeError, match="incomplete.*2000-01-01T12"):
        with _writer(path) as w:
            w.write(0, _fields(0))
    assert not path.exists() and not list(tmp_path.iterdir())
    path.mkdir()
    with pytest.raises(FileExistsError):
        _writer(path)


def test_select_init_times_checks_the_source():
    times = np.arange(np.datetime64("2000-01-01T00", "ns"), np.datetime64("2000-01-05T00", "ns"),
                      np.timedelta64(6, "h"))
    got = select_init_times(times, "2000-01-01T06", "2000-01-03T06", 30 - 6)
    assert got.astype("datetime64[h]").astype(str).tolist() == ["2000-01-01T06", "2000-01-02T06", "2000-01-03T06"]
    with pytest.raises(DataError, match="previous time"):
        select_init_times(times, "2000-01-01T00", "2000-01-01T06")
    with pytest.raises(DataError, match="multiple of the time step"):
        select_init_times(times, "2000-01-01T06", "2000-01-02T06", 5)
    with pytest.raises(DataError, match="not in the source"):
        select_init_times(times, init_times=["2000-01-09T00"])


def test_forecast_refuses_bad_lead_and_existing_store(tmp_path):
    ckpt, _, _, _ = _tiny_checkpoint(tmp_path)
    with pytest.raises(DataError, match="lead 9 h is not a positive multiple"):
        forecast_checkpoint(ckpt, tmp_path / "a.zarr", lead_hours=9, show_progress=False)
    (tmp_path / "b.zarr").mkdir()
    with pytest.raises(FileExistsError):
        forecast_checkpoint(ckpt, tmp_path / "b.zarr", lead_hours=6, start="2000-01-01T06",
                            end="2000-01-01T06", show_progress=False)
    assert not list(tmp_path.glob(".a.zarr*")) and not list(tmp_path.glob(".b.zarr*"))


def _tiny_checkpoint(tmp_path):
    truth = truth_dataset(n_times=12, n_lat=8, n_lon=16)
    src = tmp_path / "truth.zarr"
    truth.to_zarr(src, zarr_format=2)
    channels = ["geopotential_500", "geopotential_850", "temperature_500", "temperature_850", "surface_pressure"]
    cfg = Config(data=DataConfig(source=str(src), channels=channels, cache_dir=str(tmp_path / "cache")),
                 graph=GraphConfig(refinement=1), model=ModelConfig(latent=8, layers=1))
    ds = open_dataset(str(src))
    stats = compute_stats(ds, channels)
    graphs = build_graphs_for(ds, cfg)
    torch.manual_seed(0)
    model = build_forecaster(cfg, graphs, stats, 0)
    ckpt = tmp_path / "ckpt.pt"
    save_checkpoint(ckpt, model=model, optimizer=None, scheduler=None, step=0, epoch=0, config=dump_config(cfg),
                    norm_stats=json.loads(stats.to_json()), graph_hash=graphs.content_hash,
                    extra={"channels": channels, "n_static": 0})
    return ckpt, ds, channels, model


def test_forecast_store_holds_the_model_rollout(tmp_path):
    """The store's values equal an independent rollout of the same model from WindowDataset samples."""
    ckpt, ds, channels, model = _tiny_checkpoint(tmp_path)
    out = tmp_path / "fc.zarr"
    result = CliRunner().invoke(app, ["forecast", "--checkpoint", str(ckpt), "--out", str(out), "--start",
                                      "2000-01-01T06", "--end", "2000-01-01T18", "--stride-hours", "12",
                                      "--lead-hours", "12", "--no-progress"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "2 init times" in result.output
    fc = open_forecast(out)
    assert fc.attrs["initial_conditions"] == str(tmp_path / "truth.zarr")
    assert [str(t)[:13] for t in fc.time.values] == ["2000-01-01T06", "2000-01-01T18"]
    assert fc.prediction_timedelta.values.astype("timedelta64[h]").astype(int).tolist() == [6, 12]
    windows = WindowDataset(ds, channels, rollout_steps=2)
    model.eval()
    n_lat, n_lon = ds.sizes["latitude"], ds.sizes["longitude"]
    for n, init in enumerate(fc.time.values):
        idx = int(np.nonzero(windows.init_times == init)[0][0])
        sample = windows[idx]
        with torch.no_grad():
            ref = model.rollout(sample["inputs"][None], sample["forcings"][None], sample["static"], 2)[0].numpy()
        ref = ref.reshape(2, n_lat, n_lon, len(channels))  # [K, lat, lon, C]
        for c, name in enumerate(channels):
            var, level = (name.rsplit("_", 1)[0], int(name.rsplit("_", 1)[1])) if name[-1].isdigit() else (name, None)
            got = fc[var].isel(time=n)
            got = got.sel(level=level) if level is not None else got
            np.testing.assert_allclose(got.values, ref[..., c], rtol=1e-5, atol=1e-3 * abs(ref[..., c]).max())
