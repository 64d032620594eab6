"""Streaming normalisation statistics vs a brute-force float64 numpy computation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from weathergnn.data.errors import DataError
from weathergnn.data.normalization import NormStats, compute_stats, load_or_compute_stats


def _random_ds(n_times=50, members=None, seed=0):
    rng = np.random.default_rng(seed)
    lead = (members,) if members else ()
    lead_dims = ("member",) if members else ()
    shape4 = lead + (n_times, 3, 4, 8)
    # large offset + small spread: a naive sum-of-squares in float32 would fail
    z = (5.0e4 + 10.0 * np.cumsum(rng.standard_normal(shape4), axis=len(lead))).astype(np.float32)
    p = (1.0e5 + rng.standard_normal(lead + (n_times, 4, 8)) * 300).astype(np.float32)
    coords = {"time": pd.date_range("2001-01-01", periods=n_times, freq="6h").to_numpy(),
              "level": np.array([300, 500, 850]), "latitude": np.linspace(-60, 60, 4),
              "longitude": np.arange(8) * 45.0}
    if members:
        coords["member"] = np.arange(members)
    ds = xr.Dataset({"geopotential": (lead_dims + ("time", "level", "latitude", "longitude"), z),
                     "surface_pressure": (lead_dims + ("time", "latitude", "longitude"), p)}, coords=coords)
    return ds.chunk({"time": 5})


def _brute(x):
    """x: [(member,) T, C, lat, lon] float64 -> mean, std, diff_std per channel."""
    x = x.astype(np.float64)
    if x.ndim == 4:
        x = x[None]
    c = x.shape[2]
    vals = np.moveaxis(x, 2, -1).reshape(-1, c)
    d = np.moveaxis(x[:, 1:] - x[:, :-1], 2, -1).reshape(-1, c)
    return vals.mean(0), vals.std(0), d.std(0)


CHANS = ["geopotential_300", "geopotential_850", "surface_pressure"]


def _stack(ds, sel_time=slice(None)):
    z = ds.geopotential.sel(level=[300, 850]).isel(time=sel_time).values
    p = ds.surface_pressure.isel(time=sel_time).values
    return np.concatenate([z, p[..., None, :, :]], axis=-3)


@pytest.mark.parametrize("block", [1, 7, 64])
def test_matches_brute_force(block):
    ds = _random_ds()
    st = compute_stats(ds, CHANS, block=block)
    m, s, d = _brute(_stack(ds))
    np.testing.assert_allclose(st.mean, m, rtol=1e-12)
    np.testing.assert_allclose(st.std, s, rtol=1e-9)
    np.testing.assert_allclose(st.diff_std, d, rtol=1e-9)
    assert st.count == 50 * 32 and st.diff_count == 49 * 32
    assert st.mean.dtype == np.float64


def test_time_range_and_gaps():
    ds = _random_ds()
    tv = ds.time.values
    st = compute_stats(ds, CHANS, (tv[10], tv[29]), block=6)
    m, s, d = _brute(_stack(ds, slice(10, 30)))
    np.testing.assert_allclose([st.mean, st.std, st.diff_std], [m, s, d], rtol=1e-9)
    # two separate runs: differences only within each run
    sel = np.r_[0:10, 20:30]
    st2 = compute_stats(ds, CHANS, tv[sel], block=4)
    x = _stack(ds)
    vals = np.concatenate([x[0:10], x[20:30]])
    diffs = np.concatenate([x[1:10] - x[0:9], x[21:30] - x[20:29]]).astype(np.float64)
    np.testing.assert_allclose(st2.mean, np.moveaxis(vals, 1, -1).reshape(-1, 3).astype(np.float64).mean(0),
                               rtol=1e-12)
    np.testing.assert_allclose(st2.diff_std, np.moveaxis(diffs, 1, -1).reshape(-1, 3).std(0), rtol=1e-9)
    with pytest.raises(DataError, match="not in the dataset"):
        compute_stats(ds, CHANS, [np.datetime64("1990-01-01")])


def test_ensemble_differences_within_members():
    ds = _random_ds(n_times=20, members=3)
    st = compute_stats(ds, CHANS, block=6)
    m, s, d = _brute(_stack(ds))  # [member, T, C, lat, lon]
    np.testing.assert_allclose([st.mean, st.std, st.diff_std], [m, s, d], rtol=1e-9)
    assert st.diff_count == 3 * 19 * 32


def test_constant_field_guard_and_nan():
    ds = _random_ds(n_times=10).load()
    ds["surface_pressure"][:] = 101325.0
    with pytest.warns(RuntimeWarning, match="surface_pressure"):
        st = compute_stats(ds, CHANS)
    assert st.std[2] == 1.0 and st.diff_std[2] == 1.0 and st.mean[2] == 101325.0
    ds["geopotential"][3, 0, 1, 1] = np.nan
    with pytest.raises(DataError, match="geopotential_300") as e:
        compute_stats(ds, CHANS)
    assert e.value.time is not None and str(ds.time.values[3])[:13] in e.value.time


def test_json_roundtrip_and_cache(tmp_path, monkeypatch):
    ds = _random_ds(n_times=12)
    st = load_or_compute_stats(ds, CHANS, None, tmp_path, "random-ds")
    files = list(tmp_path.glob("stats-*.json"))
    assert len(files) == 1 and not list(tmp_path.glob(".stats-*"))
    back = NormStats.from_json(files[0].read_text())
    assert back.channels == CHANS
    np.testing.assert_array_equal(back.mean, st.mean)
    np.testing.assert_array_equal(back.diff_std, st.diff_std)
    # the second call reads the cache (no recomputation)
    import weathergnn.data.normalization as nm

    monkeypatch.setattr(nm, "compute_stats", lambda *a, **k: (_ for _ in ()).throw(AssertionError("recomputed")))
    again = load_or_compute_stats(ds, CHANS, None, tmp_path, "random-ds")
    np.testing.assert_array_equal(again.std, st.std)
    monkeypatch.undo()
    # another period -> another file
    load_or_compute_stats(ds, CHANS, (ds.time.values[2], None), tmp_path, "random-ds")
    assert len(list(tmp_path.glob("stats-*.json"))) == 2
    with pytest.raises(DataError, match="format version"):
        NormStats.from_json(json.dumps({"format_version": 99}))


def test_heldsuarez_slice(heldsuarez_store):
    ds = xr.open_zarr(heldsuarez_store).astype("float32").isel(time=slice(0, 40))
    chans = ["geopotential_500", "temperature_850", "u_component_of_wind_300", "surface_pressure"]
    st = compute_stats(ds, chans, block=16)
    x = np.stack([ds.geopotential.sel(level=500).values, ds.temperature.sel(level=850).values,
                  ds.u_component_of_wind.sel(level=300).values, ds.surface_pressure.values], axis=1)
    m, s, d = _brute(x)
    np.testing.assert_allclose([st.mean, st.std, st.diff_std], [m, s, d], rtol=1e-9)
    # sanity against PROVENANCE.md: z500 6-hourly change std is O(160) m2 s-2
    assert 50 < st.diff_std[0] < 500
