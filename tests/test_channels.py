"""Channel naming, presets, resolution against datasets, lazy stacking."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from weathergnn.data.channels import (
    PRESETS,
    channels_for,
    read_channels,
    resolve_channels,
    select_channels,
    split_channel,
)
from weathergnn.data.demo import make_demo_dataset
from weathergnn.data.errors import DataError


@pytest.mark.parametrize(
    "name, expected",
    [
        ("geopotential_500", ("geopotential", 500)),
        ("temperature_850", ("temperature", 850)),
        ("u_component_of_wind_1000", ("u_component_of_wind", 1000)),
        ("2m_temperature", ("2m_temperature", None)),
        ("10m_u_component_of_wind", ("10m_u_component_of_wind", None)),
        ("total_precipitation_6hr", ("total_precipitation_6hr", None)),
        ("mean_sea_level_pressure", ("mean_sea_level_pressure", None)),
    ],
)
def test_split_channel(name, expected):
    assert split_channel(name) == expected


def test_presets_sizes():
    seed = PRESETS["seed84"]
    assert len(seed) == 84 == len(set(seed))
    assert seed[:13][0] == "geopotential_50" and "vertical_velocity_1000" in seed
    assert seed[-6:] == ["2m_temperature", "10m_u_component_of_wind", "10m_v_component_of_wind",
                         "mean_sea_level_pressure", "surface_pressure", "total_column_water_vapour"]
    assert len(PRESETS["heldsuarez"]) == 29
    assert "mean_sea_level_pressure" not in PRESETS["heldsuarez"]
    assert PRESETS["era5-eda-zt"] == ["geopotential_500", "geopotential_850", "temperature_500", "temperature_850"]
    assert channels_for(["a"], [1, 2], ["b"]) == ["a_1", "a_2", "b"]


def test_demo_preset_matches_demo_dataset():
    ds = make_demo_dataset(n_times=4, noise=0)
    assert resolve_channels("demo", ds) == PRESETS["demo"]


def test_resolve_errors_name_what_is_missing():
    ds = make_demo_dataset(n_times=4, noise=0)
    with pytest.raises(DataError, match="geopotential_300.*level 300.*levels \\[500, 850\\]"):
        resolve_channels(["geopotential_300"], ds)
    with pytest.raises(DataError, match="specific_humidity.*not in dataset") as e:
        resolve_channels(["specific_humidity_500"], ds)
    assert e.value.variable == "specific_humidity"
    with pytest.raises(DataError, match="pressure-level"):
        resolve_channels(["geopotential"], ds)
    with pytest.raises(DataError, match="static"):
        resolve_channels(["land_sea_mask"], ds)
    with pytest.raises(DataError, match="unknown channel preset"):
        resolve_channels("nope", ds)
    with pytest.raises(DataError, match="duplicate"):
        resolve_channels(["temperature_500", "temperature_500"], ds)


def test_select_channels_values_and_laziness():
    ds = make_demo_dataset(n_times=5, noise=0).chunk({"time": 1})
    chans = ["temperature_850", "mean_sea_level_pressure", "geopotential_500"]
    da = select_channels(ds, chans)
    assert da.dims == ("time", "channel", "latitude", "longitude")
    assert da.dtype == np.float32
    assert da.chunks is not None  # still dask
    np.testing.assert_array_equal(da.sel(channel="temperature_850").values, ds.temperature.sel(level=850).values)
    np.testing.assert_array_equal(da.isel(channel=1).values, ds.mean_sea_level_pressure.values)
    block = read_channels(ds, chans, slice(1, 4))
    np.testing.assert_array_equal(block, da.isel(time=slice(1, 4)).values)


def test_select_channels_member_dim():
    ds = make_demo_dataset(n_times=3, noise=0)
    ens = xr.concat([ds, ds + 1.0], dim=xr.DataArray(np.array([0, 1]), dims="member", name="member"))
    ens = ens.transpose("member", "time", "level", "latitude", "longitude")
    da = select_channels(ens, ["geopotential_500", "mean_sea_level_pressure"])
    assert da.dims == ("member", "time", "channel", "latitude", "longitude")
    np.testing.assert_allclose(da.isel(member=1).values - da.isel(member=0).values, 1.0, rtol=0, atol=0.01)
    with pytest.raises(DataError, match="member"):
        read_channels(ens, ["geopotential_500"], slice(0, 1))


def test_heldsuarez_preset(heldsuarez_store):
    ds = xr.open_zarr(heldsuarez_store).astype("float32")
    chans = resolve_channels("heldsuarez", ds)
    da = select_channels(ds, chans)
    assert da.sizes == {"time": 1440, "channel": 29, "latitude": 32, "longitude": 64}
    np.testing.assert_array_equal(da.isel(time=3).sel(channel="geopotential_500").values,
                                  ds.geopotential.isel(time=3).sel(level=500).values)
