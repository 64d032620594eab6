"""weathergnn.evaluation.climatology: known signals, xarray groupby, WB2's rolling algorithm, cache."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from weathergnn.data.errors import DataError
from weathergnn.evaluation import climatology as C


def _dataset(times, fn=None, *, members: int | None = None, seed: int = 0) -> xr.Dataset:
    """Canonical-layout dataset (dask-chunked): temperature (level) and surface_pressure."""
    times = pd.DatetimeIndex(times)
    rng = np.random.default_rng(seed)
    lead = (members,) if members else ()
    shape3 = lead + (len(times), 2, 2, 3)
    shape2 = lead + (len(times), 2, 3)
    if fn is None:
        t3, t2 = rng.normal(size=shape3), rng.normal(size=shape2)
    else:
        t3, t2 = np.broadcast_to(fn(times, 3), shape3).copy(), np.broadcast_to(fn(times, 2), shape2).copy()
    mdim = ("member",) if members else ()
    ds = xr.Dataset(
        {
            "temperature": (mdim + ("time", "level", "latitude", "longitude"), t3.astype(np.float64)),
            "surface_pressure": (mdim + ("time", "latitude", "longitude"), t2.astype(np.float64)),
        },
        coords={"time": times.values, "level": [500, 850], "latitude": [-45.0, 45.0], "longitude": [0.0, 120.0, 240.0]},
    )
    if members:
        ds = ds.assign_coords(member=np.arange(members))
    return ds.chunk({"time": 5})


def _signal(times, ndim):
    doy = times.day_of_year.to_numpy()[:, None, None, None]
    hour = times.hour.to_numpy()[:, None, None, None]
    base = 250 + 10 * np.cos(2 * np.pi * doy / 365) + 0.5 * hour
    pattern = np.arange(12).reshape(1, 2, 2, 3)
    out = base + pattern
    return out if ndim == 3 else out[:, 0]


def test_dayofyear_leap_convention() -> None:
    d = C.dayofyear(np.array(["2004-02-29", "2004-03-01", "2003-03-01", "2004-12-31", "2003-12-31"], dtype="datetime64[ns]"))
    assert d.tolist() == [60, 61, 60, 366, 365]


def test_window_one_recovers_known_signal() -> None:
    times = pd.date_range("2001-01-01", "2002-12-31 18:00", freq="6h")
    clim = C.compute_climatology(_dataset(times, _signal), None, None, None, window_days=1, dtype=np.float64)
    assert clim["temperature"].dims == ("dayofyear", "hour", "level", "latitude", "longitude")
    assert clim["hour"].values.tolist() == [0, 6, 12, 18]
    ref_times = pd.date_range("2001-01-01", "2001-12-31 18:00", freq="6h")  # one per (doy, hour)
    expected = _signal(ref_times, 3).reshape(365, 4, 2, 2, 3)
    np.testing.assert_allclose(clim["temperature"].values[:365], expected, rtol=1e-12)
    # day 366 of non-leap years is their Dec 31 (WB2 fill)
    np.testing.assert_allclose(clim["temperature"].values[365], expected[364], rtol=1e-12)
    np.testing.assert_allclose(clim["surface_pressure"].values[:365], expected[:, :, 0], rtol=1e-12)
    assert clim.attrs["climatology_start"] == "2001-01-01T00:00:00" and clim.attrs["window_days"] == 1


def test_streaming_equals_xarray_groupby() -> None:
    times = pd.date_range("2000-02-20", "2001-03-10", freq="6h")
    ds = _dataset(times, members=2, seed=1)
    clim = C.compute_climatology(ds, ["temperature"], None, None, window_days=1, chunk_times=7, dtype=np.float64)
    da = ds["temperature"].load()
    for h in (0, 6, 12, 18):
        sub = da.sel(time=da["time"].dt.hour == h)
        ref = sub.groupby("time.dayofyear").mean("time").mean("member")
        got = clim["temperature"].sel(hour=h, dayofyear=ref["dayofyear"])
        np.testing.assert_allclose(got.values, ref.transpose("dayofyear", ...).values, rtol=1e-12, atol=1e-12)


def _wb2_rolling_reference(da: xr.DataArray, hour: int, weights: np.ndarray) -> np.ndarray:
    """WB2 compute_rolling_stat by loops: stack years by day of year, fill 366 from 365, circular weighted mean."""
    sub = da.sel(time=da["time"].dt.hour == hour)
    times = pd.DatetimeIndex(sub["time"].values)
    years = np.unique(times.year)
    field = sub.values.reshape(len(times), -1)
    stack = np.full((len(years), 366, field.shape[1]), np.nan)
    for n, ts in enumerate(times):
        stack[np.searchsorted(years, ts.year), ts.day_of_year - 1] = field[n]
    for y in range(len(years)):
        if np.isnan(stack[y, 365]).all():
            stack[y, 365] = stack[y, 364]
    half = len(weights) // 2
    out = np.full((366, field.shape[1]), np.nan)
    for d in range(366):
        for g in range(field.shape[1]):
            num = den = 0.0
            for j in range(-half, half + 1):
                for y in range(len(years)):
                    x = stack[y, (d + j) % 366, g]
                    if not np.isnan(x):
                        num += weights[j + half] * x
                        den += weights[j + half]
            out[d, g] = num / den if den > 0 else np.nan
    return out


@pytest.mark.parametrize(("window", "shape"), [(7, "triangular"), (5, "boxcar")])
def test_window_smoothing_vs_wb2_rolling_loops(window: int, shape: str) -> None:
    times = pd.date_range("2000-01-01", "2001-12-31 12:00", freq="12h")
    keep = np.random.default_rng(2).uniform(size=len(times)) > 0.15  # missing times: unequal counts
    ds = _dataset(times[keep], seed=3)
    clim = C.compute_climatology(ds, ["surface_pressure"], None, None, window_days=window, window_shape=shape,
                                 chunk_times=50, dtype=np.float64)
    w = C.window_weights(window, shape)
    for h in (0, 12):
        ref = _wb2_rolling_reference(ds["surface_pressure"].load(), h, w)
        got = clim["surface_pressure"].sel(hour=h).values.reshape(366, -1)
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


def test_window_none_gives_hourly_means_over_period() -> None:
    times = pd.date_range("2001-12-01", "2002-01-31 18:00", freq="6h")  # includes a non-leap Dec 31
    ds = _dataset(times, seed=4)
    clim = C.compute_climatology(ds, None, "2001-12-10", "2002-01-20", window_days=None, dtype=np.float64)
    assert clim["temperature"].dims == ("hour", "level", "latitude", "longitude")
    ref = ds["temperature"].sel(time=slice("2001-12-10", "2002-01-20")).groupby("time.hour").mean()
    np.testing.assert_allclose(clim["temperature"].values, ref.values, rtol=1e-12, atol=1e-12)
    at = C.climatology_at(clim, np.array(["2030-06-01T06"], dtype="datetime64[ns]"))
    np.testing.assert_allclose(at["temperature"].values[0], ref.sel(hour=6).values, rtol=1e-12, atol=1e-12)


def test_climatology_at_vectorised_equals_loop() -> None:
    times = pd.date_range("2003-01-01", "2004-12-31 18:00", freq="6h")
    clim = C.compute_climatology(_dataset(times, seed=5), None, None, None, window_days=3, window_shape="boxcar")
    valid = np.array(["2004-02-29T06", "2003-12-31T18", "2004-12-31T00", "2005-03-01T12"], dtype="datetime64[ns]")
    out = C.climatology_at(clim, valid)
    assert out["temperature"].dims == ("time", "level", "latitude", "longitude")
    assert (out["time"].values == valid).all()
    for k, ts in enumerate(pd.DatetimeIndex(valid)):
        for v in ("temperature", "surface_pressure"):
            ref = clim[v].sel(dayofyear=ts.day_of_year, hour=ts.hour).values
            np.testing.assert_array_equal(out[v].values[k], ref)


def test_missing_cells_raise_clear_errors() -> None:
    times = pd.date_range("2001-01-01", "2001-01-31 18:00", freq="6h")
    clim = C.compute_climatology(_dataset(times, seed=6), ["temperature"], None, None, window_days=1)
    C.climatology_at(clim, np.array(["2001-01-15T06"], dtype="datetime64[ns]"))  # present: fine
    with pytest.raises(DataError, match=r"no sample for day of year 182.*2001-01-01T00:00:00\.\.2001-01-31T18:00:00") as err:
        C.climatology_at(clim, np.array(["2001-01-15T06", "2001-07-01T00"], dtype="datetime64[ns]"))
    assert err.value.variable == "temperature" and err.value.time.startswith("2001-07-01")
    with pytest.raises(DataError, match="hour 3"):
        C.climatology_at(clim, np.array(["2001-01-15T03"], dtype="datetime64[ns]"))


def test_bad_inputs() -> None:
    times = pd.date_range("2001-01-01", periods=8, freq="6h")
    ds = _dataset(times, seed=7).load()
    ds["temperature"][3, 0, 0, 0] = np.nan
    with pytest.raises(DataError, match="NaN") as err:
        C.compute_climatology(ds, ["temperature"], None, None, window_days=1, chunk_times=3)
    assert err.value.variable == "temperature" and err.value.time.startswith("2001-01-01T18")
    with pytest.raises(DataError, match="not in dataset"):
        C.compute_climatology(ds, ["geopotential"], None, None)
    with pytest.raises(DataError, match="no time in the climatology period"):
        C.compute_climatology(ds, ["surface_pressure"], "1990-01-01", "1990-12-31")
    with pytest.raises(DataError, match="odd"):
        C.compute_climatology(ds, ["surface_pressure"], None, None, window_days=4)
    with pytest.raises(DataError, match="hour_step"):
        C.compute_climatology(ds, ["surface_pressure"], None, None, hour_step=5)


def test_cache_is_written_atomically_and_reused(tmp_path, monkeypatch) -> None:
    times = pd.date_range("2001-01-01", "2001-03-01", freq="6h")
    ds = _dataset(times, seed=8)
    first = C.load_or_compute_climatology(ds, ["temperature"], "2001-01-01", "2001-02-28", 5, tmp_path, "toy/source.zarr")
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].suffix == ".nc" and not files[0].name.startswith(".")
    with xr.open_dataset(files[0]) as on_disk:  # complete and readable
        np.testing.assert_array_equal(on_disk["temperature"].values, first["temperature"].values)

    def boom(*args, **kwargs):
        raise AssertionError("compute_climatology called although the cache holds the result")

    monkeypatch.setattr(C, "compute_climatology", boom)
    second = C.load_or_compute_climatology(ds, ["temperature"], "2001-01-01", "2001-02-28", 5, tmp_path, "toy/source.zarr")
    xr.testing.assert_identical(first, second)
    with pytest.raises(AssertionError, match="cache holds"):  # another window is another cache entry
        C.load_or_compute_climatology(ds, ["temperature"], "2001-01-01", "2001-02-28", 7, tmp_path, "toy/source.zarr")
    assert len(list(tmp_path.iterdir())) == 1  # the failed computation left no temp file


@pytest.mark.shared_data
def test_heldsuarez_hourly_climatology(heldsuarez_store) -> None:
    from weathergnn.data.reader import open_dataset

    ds = open_dataset(heldsuarez_store, variables=["temperature"])
    clim = C.compute_climatology(ds, ["temperature"], "2000-01-01", "2000-01-05T18", window_days=None)
    ref = ds["temperature"].sel(time=slice("2000-01-01", "2000-01-05T18")).groupby("time.hour").mean().load()
    assert clim["temperature"].shape == (4,) + ds["temperature"].shape[1:]
    np.testing.assert_allclose(clim["temperature"].values, ref.values, rtol=1e-5)
    assert 150 < float(clim["temperature"].min()) and float(clim["temperature"].max()) < 340
