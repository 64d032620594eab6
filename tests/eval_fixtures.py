"""Tiny truth datasets and foreign WeatherBench2-layout forecast stores for the evaluation tests.

Everything is built with plain xarray / NumPy here (not with the code under
test), so the tests read stores "not written by us".
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

LEVELS = [500, 850]
PL_VARS = ["geopotential", "temperature", "u_component_of_wind", "v_component_of_wind"]
SCALE = {"geopotential": 500.0, "temperature": 2.0, "u_component_of_wind": 5.0, "v_component_of_wind": 5.0,
         "surface_pressure": 300.0}
MEAN = {"geopotential": 50000.0, "temperature": 260.0, "u_component_of_wind": 10.0, "v_component_of_wind": 0.0,
        "surface_pressure": 100000.0}


def grid(n_lat: int = 4, n_lon: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """WeatherBench2-style equiangular grid without poles (latitude ascending)."""
    dlat = 180.0 / n_lat
    lat = -90.0 + dlat / 2 + dlat * np.arange(n_lat)
    lon = np.arange(n_lon) * (360.0 / n_lon)
    return lat, lon


def cell_area_weights(lat: np.ndarray) -> np.ndarray:
    """Independent reference: sin(upper bound) - sin(lower bound), bounds at midpoints and the poles."""
    bounds = np.concatenate([[-90.0], (lat[1:] + lat[:-1]) / 2, [90.0]])
    return np.sin(np.deg2rad(bounds[1:])) - np.sin(np.deg2rad(bounds[:-1]))


def truth_dataset(n_times: int = 16, n_lat: int = 4, n_lon: int = 8, members: list[int] | None = None,
                  seed: int = 0, start: str = "2000-01-01") -> xr.Dataset:
    """Canonical truth: 6-hourly, a diurnal cycle plus noise, dims (member?, time, level?, lat, lon), float32."""
    rng = np.random.default_rng(seed)
    lat, lon = grid(n_lat, n_lon)
    times = pd.date_range(start, periods=n_times, freq="6h").values
    hours = pd.DatetimeIndex(times).hour.to_numpy()
    lead = [] if members is None else [len(members)]
    data = {}
    for v in PL_VARS + ["surface_pressure"]:
        spatial = [n_lat, n_lon] if v == "surface_pressure" else [len(LEVELS), n_lat, n_lon]
        noise = rng.standard_normal(lead + [n_times] + spatial)
        diurnal = np.cos(2 * np.pi * hours / 24).reshape([1] * len(lead) + [n_times] + [1] * len(spatial))
        vals = MEAN[v] + SCALE[v] * (noise + 0.5 * diurnal)
        dims = (["member"] if members is not None else []) + ["time"] + (
            [] if v == "surface_pressure" else ["level"]) + ["latitude", "longitude"]
        data[v] = (dims, vals.astype(np.float32))
    coords = {"time": times, "level": np.asarray(LEVELS, dtype=np.int64), "latitude": lat, "longitude": lon}
    if members is not None:
        coords["member"] = np.asarray(members, dtype=np.int64)
    ds = xr.Dataset(data, coords=coords)
    for v in ds.data_vars:
        ds[v].attrs["units"] = "m2 s-2" if v == "geopotential" else ""
    return ds


def foreign_forecast(truth: xr.Dataset, init_idx: list[int], n_leads: int, seed: int = 1,
                     numbers: list[int] | None = None, error_scale: float = 0.3) -> xr.Dataset:
    """A WB2-layout forecast made with plain xarray: truth at the valid time + noise (beyond the truth: noise
    around the last time). Dims (time, [number], prediction_timedelta, level?, latitude, longitude)."""
    rng = np.random.default_rng(seed)
    times = truth["time"].values
    dt = times[1] - times[0]
    leads = dt * np.arange(1, n_leads + 1)
    out = {}
    for v in truth.data_vars:
        da = truth[v]
        if "member" in da.dims:
            da = da.isel(member=0)
        spatial = [d for d in da.dims if d != "time"]
        blocks = []
        for i in init_idx:
            idx = np.minimum(np.arange(i + 1, i + 1 + n_leads), times.size - 1)
            base = da.isel(time=idx).values.astype(np.float64)  # [K, ...]
            if numbers is not None:
                base = np.repeat(base[None], len(numbers), axis=0)
            blocks.append(base + error_scale * SCALE[v] * rng.standard_normal(base.shape))
        dims = ["time"] + (["number"] if numbers is not None else []) + ["prediction_timedelta"] + spatial
        out[v] = (dims, np.stack(blocks).astype(np.float32))
    coords = {"time": times[init_idx], "prediction_timedelta": leads, "latitude": truth["latitude"].values,
              "longitude": truth["longitude"].values, "level": truth["level"].values}
    if numbers is not None:
        coords["number"] = np.asarray(numbers)
    return xr.Dataset(out, coords=coords)
