"""The reader opens every real ERA5 layout into the canonical layout, values intact.

Each real file is compared with xarray's own direct read of the same file: a
few points are picked in the canonical dataset, found by coordinate value in
the raw dataset (whatever its dim names, order, latitude direction or
longitude convention) and compared.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import xarray as xr

from weathergnn.data.names import CANONICAL_DIMS
from weathergnn.data.checks import infer_time_step
from weathergnn.data.describe import describe_dataset, format_description
from weathergnn.data.reader import open_dataset

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::DeprecationWarning")

# raw name of each canonical dim / variable, per file, where they differ
RAW_DIMS = {"level": ("isobaricInhPa", "level", "pressure_level"), "latitude": ("latitude", "lat"),
            "longitude": ("longitude", "lon"), "member": ("number",), "time": ("time", "valid_time")}


def raw_open(path: Path) -> xr.Dataset:
    """xarray's direct read, no reader involved."""
    if path.suffix == ".grib":
        return xr.open_dataset(path, engine="cfgrib", backend_kwargs={"indexpath": ""})
    if path.suffix == ".zarr":
        return xr.open_zarr(path)
    return xr.open_dataset(path)


def assert_canonical(ds: xr.Dataset) -> None:
    """Dims order, coordinate conventions, float32, lazy."""
    for name, var in ds.data_vars.items():
        order = [CANONICAL_DIMS.index(d) for d in var.dims]  # ValueError on a foreign dim
        assert order == sorted(order), (name, var.dims)
        assert var.dims[-2:] == ("latitude", "longitude"), name
        assert var.dtype == np.float32, name
        assert isinstance(var.data, da.Array), f"{name} is not lazy"
    lat, lon = ds["latitude"].values, ds["longitude"].values
    assert (np.diff(lat) > 0).all() and lat.min() >= -90 and lat.max() <= 90
    assert (np.diff(lon) > 0).all() and lon.min() >= 0 and lon.max() < 360
    if "level" in ds.dims:
        assert ds["level"].dtype == np.int64 and (np.diff(ds["level"].values) > 0).all()
    if "time" in ds.dims:
        assert ds["time"].dtype == np.dtype("datetime64[ns]")
        assert (np.diff(ds["time"].values) > np.timedelta64(0)).all()
    if "member" in ds.dims:
        assert ds["member"].dtype == np.int64


def spot_check(canon: xr.DataArray, raw: xr.DataArray, n: int = 6, seed: int = 0) -> None:
    """n random canonical points equal the raw value found by coordinate."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        index = {d: int(rng.integers(canon.sizes[d])) for d in canon.dims}
        where = {}
        for dim, i in index.items():
            value = canon[dim].values[i]
            raw_dim = next((r for r in RAW_DIMS[dim] if r in raw.dims), None)
            if raw_dim is None:  # a scalar in the raw file (single time, single level)
                assert canon.sizes[dim] == 1
                continue
            coord = raw[raw_dim].values
            if dim == "longitude":
                hits = np.flatnonzero(np.isclose(np.mod(coord, 360.0), value))
            elif dim == "time":
                hits = np.flatnonzero(coord == value)
            else:
                hits = np.flatnonzero(np.isclose(coord, value))
            assert hits.size == 1, (dim, value)
            where[raw_dim] = int(hits[0])
        expected = float(raw.isel(where).values)
        got = float(canon.isel(index).values)
        assert got == pytest.approx(expected, rel=1e-6, abs=1e-30), (canon.name, index)


# file, {canonical variable: raw variable}, expected canonical sizes
REAL_FILES = [
    ("era5_eda_zt_3deg_20170101_members.grib", {"geopotential": "z", "temperature": "t"},
     {"member": 10, "time": 4, "level": 2, "latitude": 61, "longitude": 120}),
    ("era5_zt_1deg_20070101T12.nc", {"geopotential": "z", "temperature": "t"},
     {"time": 1, "level": 2, "latitude": 181, "longitude": 360}),
    ("era5_zt_1deg_20070101T12.grib", {"geopotential": "z", "temperature": "t"},
     {"time": 1, "level": 2, "latitude": 181, "longitude": 360}),
    ("era5_tl31_19590102T00.nc",
     {"temperature": "temperature", "specific_cloud_ice_water_content": "specific_cloud_ice_water_content",
      "sea_surface_temperature": "sea_surface_temperature"},
     {"time": 1, "level": 37, "latitude": 32, "longitude": 64}),
    ("era5_t2m_0p25_20170101T12.nc", {"2m_temperature": "t2m"},
     {"time": 1, "latitude": 721, "longitude": 1440}),
    ("era5t_t2m_0p25_monthly_202210.grib", {"2m_temperature": "t2m"},
     {"time": 1, "latitude": 721, "longitude": 1440}),
    ("era5_t2m_uk_hourly_201903.grib", {"2m_temperature": "t2m"},
     {"time": 744, "latitude": 33, "longitude": 49}),
]


@pytest.mark.shared_data
@pytest.mark.parametrize("name, variables, sizes", REAL_FILES, ids=[f[0] for f in REAL_FILES])
def test_real_era5_file_opens_canonical_with_same_values(era5_dir, name, variables, sizes):
    path = era5_dir / name
    ds = open_dataset(path)
    assert_canonical(ds)
    assert dict(ds.sizes) == sizes
    raw = raw_open(path)
    for canonical_name, raw_name in variables.items():
        spot_check(ds[canonical_name], raw[raw_name])


@pytest.mark.shared_data
def test_heldsuarez_store_opens_canonical_with_same_values(heldsuarez_store):
    ds = open_dataset(heldsuarez_store)
    assert_canonical(ds)
    assert dict(ds.sizes) == {"time": 1440, "level": 7, "latitude": 32, "longitude": 64}
    assert ds["geopotential_at_surface"].dims == ("latitude", "longitude")
    assert infer_time_step(ds) == np.timedelta64(6, "h")
    raw = raw_open(heldsuarez_store)
    for name in ("geopotential", "temperature", "surface_pressure", "geopotential_at_surface"):
        spot_check(ds[name], raw[name])


@pytest.mark.shared_data
def test_specific_layouts_are_fixed(era5_dir):
    """TL31: (level, lon, lat) -> (time, level, lat, lon), Gaussian latitudes kept;
    scalar times become a length-1 time dim; UK longitudes -10..2 wrap to [0, 360)."""
    tl31 = open_dataset(era5_dir / "era5_tl31_19590102T00.nc")
    assert tl31["temperature"].dims == ("time", "level", "latitude", "longitude")
    gauss = np.rad2deg(np.arcsin(np.polynomial.legendre.leggauss(32)[0]))
    np.testing.assert_allclose(tl31["latitude"].values, gauss, atol=1e-3)
    assert tl31["time"].values[0] == np.datetime64("1959-01-02T00")
    assert tl31["level"].values[[0, -1]].tolist() == [1, 1000]

    monthly = open_dataset(era5_dir / "era5t_t2m_0p25_monthly_202210.grib")
    assert monthly["time"].values.tolist() == [np.datetime64("2022-10-01", "ns").astype(int)]

    uk = open_dataset(era5_dir / "era5_t2m_uk_hourly_201903.grib")
    lon = uk["longitude"].values
    assert lon[0] == 0.0 and lon[-1] == 359.75 and np.isclose(lon, 350.0).any()
    assert infer_time_step(uk) == np.timedelta64(1, "h")

    eda = open_dataset(era5_dir / "era5_eda_zt_3deg_20170101_members.grib")
    assert eda["level"].values.tolist() == [500, 850]  # GRIB order was 850, 500
    assert eda["member"].values.tolist() == list(range(10))
    assert infer_time_step(eda) == np.timedelta64(12, "h")


@pytest.mark.shared_data
def test_netcdf_and_grib_of_the_same_fields_agree(era5_dir):
    nc = open_dataset(era5_dir / "era5_zt_1deg_20070101T12.nc")
    grib = open_dataset(era5_dir / "era5_zt_1deg_20070101T12.grib")
    for dim in ("time", "level", "latitude", "longitude"):
        np.testing.assert_array_equal(nc[dim].values, grib[dim].values)
    raw = xr.open_dataset(era5_dir / "era5_zt_1deg_20070101T12.nc")
    for name, short in (("geopotential", "z"), ("temperature", "t")):
        step = raw[short].encoding["scale_factor"]  # NetCDF int16 packing step
        diff = np.abs(nc[name].values - grib[name].values).max()
        assert diff <= step, (name, diff, step)


@pytest.mark.shared_data
def test_npy_static_field_on_global_and_regional_grid(era5_dir):
    npy = era5_dir / "era5_surface_geopotential_0p25.npy"
    array = np.load(npy)
    ds = open_dataset(era5_dir / "era5_t2m_0p25_20170101T12.nc",
                      static_sources={"geopotential_at_surface": npy})
    assert_canonical(ds)
    z = ds["geopotential_at_surface"]
    assert z.dims == ("latitude", "longitude")
    # canonical latitude ascending: row i is the array's row 720 - i (array runs 90 -> -90)
    for i, j in ((0, 0), (720, 1439), (360, 100), (500, 777)):
        assert float(z[i, j]) == array[720 - i, j]
    uk = open_dataset(era5_dir / "era5_t2m_uk_hourly_201903.grib",
                      static_sources={"geopotential_at_surface": npy})
    zuk = uk["geopotential_at_surface"]
    for lat, lon in ((50.0, 350.0), (58.0, 2.0), (54.25, 0.0)):
        value = float(zuk.sel(latitude=lat, longitude=lon))
        assert value == array[int(round((90 - lat) * 4)), int(round(lon * 4))]


@pytest.mark.shared_data
def test_selection_of_variables_levels_members(era5_dir, heldsuarez_store):
    eda = open_dataset(era5_dir / "era5_eda_zt_3deg_20170101_members.grib",
                       variables=["t"], levels=[850], members=[2, 5])
    assert list(eda.data_vars) == ["temperature"]
    assert eda["level"].values.tolist() == [850]
    assert eda["member"].values.tolist() == [2, 5]
    full = open_dataset(era5_dir / "era5_eda_zt_3deg_20170101_members.grib")
    np.testing.assert_array_equal(eda["temperature"].values,
                                  full["temperature"].sel(member=[2, 5], level=[850]).values)
    hs = open_dataset(heldsuarez_store, variables=["z"], levels=[850, 500])
    assert list(hs.data_vars) == ["geopotential"] and hs["level"].values.tolist() == [500, 850]


@pytest.mark.shared_data
def test_grib_with_several_hypercubes_is_merged(era5_dir, tmp_path):
    """A GRIB file holding z on pressure levels and z at the surface needs
    cfgrib.open_datasets; surface z becomes geopotential_at_surface."""
    eccodes = pytest.importorskip("eccodes")
    out = tmp_path / "mixed.grib"
    with open(era5_dir / "era5_zt_1deg_20070101T12.grib", "rb") as f, open(out, "wb") as g:
        surface = None
        while (h := eccodes.codes_grib_new_from_file(f)) is not None:
            eccodes.codes_write(h, g)
            if surface is None and eccodes.codes_get(h, "shortName") == "z":
                surface = eccodes.codes_clone(h)
                eccodes.codes_set(surface, "typeOfLevel", "surface")
                eccodes.codes_set(surface, "level", 0)
            eccodes.codes_release(h)
        eccodes.codes_write(surface, g)
        eccodes.codes_release(surface)
    ds = open_dataset(out)
    assert_canonical(ds)
    assert set(ds.data_vars) == {"geopotential", "temperature", "geopotential_at_surface"}
    np.testing.assert_array_equal(ds["geopotential_at_surface"].values,
                                  ds["geopotential"].sel(level=500).isel(time=0).values)
    assert not list(tmp_path.glob("*.idx"))


def _cds_style(times, members=2) -> xr.Dataset:
    lat = np.array([90.0, 45.0, 0.0, -45.0, -90.0])  # descending, as CDS
    lon = np.array([-180.0, -90.0, 0.0, 90.0])
    levels = np.array([1000.0, 850.0, 500.0])
    shape = (members, len(times), len(levels), len(lat), len(lon))
    values = np.arange(np.prod(shape), dtype=np.float64).reshape(shape)
    dims = ("number", "valid_time", "pressure_level", "latitude", "longitude")
    return xr.Dataset(
        {"z": (dims, values), "t": (dims, values + 0.5)},
        coords={"number": np.arange(members), "valid_time": times, "pressure_level": levels,
                "latitude": lat, "longitude": lon, "expver": ("valid_time", ["0001"] * len(times))},
    )


def test_cds_style_netcdf_opens(tmp_path):
    times = np.array(["2020-01-01T00", "2020-01-01T06", "2020-01-01T12"], dtype="datetime64[ns]")
    raw = _cds_style(times)
    path = tmp_path / "cds.nc"
    raw.to_netcdf(path)
    ds = open_dataset(path)
    assert_canonical(ds)
    assert dict(ds.sizes) == {"member": 2, "time": 3, "level": 3, "latitude": 5, "longitude": 4}
    assert ds["level"].values.tolist() == [500, 850, 1000]
    assert ds["longitude"].values.tolist() == [0.0, 90.0, 180.0, 270.0]
    spot_check(ds["geopotential"], raw["z"], n=10)
    spot_check(ds["temperature"], raw["t"], n=10)


def test_multi_file_sources_combine_along_time(tmp_path):
    times = np.arange(np.datetime64("2020-01-01T00", "ns"), np.datetime64("2020-01-03T00", "ns"),
                      np.timedelta64(6, "h"))
    raw = _cds_style(times, members=1).isel(number=0, drop=True)
    # three files, given out of order: combined and sorted by time
    for k, part in enumerate((slice(4, 8), slice(0, 4))):
        raw.isel(valid_time=part).to_netcdf(tmp_path / f"part{1 - k}.nc")
    for source in ([tmp_path / "part1.nc", tmp_path / "part0.nc"], str(tmp_path / "part*.nc")):
        ds = open_dataset(source)
        assert_canonical(ds)
        assert ds["time"].values.tolist() == times.astype(np.int64).tolist()
        spot_check(ds["geopotential"], raw["z"], n=8)
        assert infer_time_step(ds) == np.timedelta64(6, "h")
    # one file per variable (as CDS splits downloads): merged
    raw[["z"]].to_netcdf(tmp_path / "z.nc")
    raw[["t"]].to_netcdf(tmp_path / "t.nc")
    ds = open_dataset([tmp_path / "z.nc", tmp_path / "t.nc"])
    assert set(ds.data_vars) == {"geopotential", "temperature"}
    spot_check(ds["temperature"], raw["t"], n=8)


def test_shuffled_times_in_one_file_are_sorted(tmp_path):
    times = np.array(["2020-01-01T12", "2020-01-01T00", "2020-01-01T06"], dtype="datetime64[ns]")
    raw = _cds_style(times, members=1)
    raw.to_netcdf(tmp_path / "shuffled.nc")
    ds = open_dataset(tmp_path / "shuffled.nc")
    assert (np.diff(ds["time"].values) == np.timedelta64(6, "h")).all()
    spot_check(ds["temperature"], raw["t"], n=8)


def test_monthly_series_is_regular(tmp_path):
    times = np.array(["2022-01-01", "2022-02-01", "2022-03-01", "2022-04-01"], dtype="datetime64[ns]")
    _cds_style(times, members=1).to_netcdf(tmp_path / "monthly.nc")
    ds = open_dataset(tmp_path / "monthly.nc")
    assert infer_time_step(ds) == np.timedelta64(1, "M")
    assert describe_dataset(ds)["times"]["step"] == "1 month"


@pytest.mark.shared_data
def test_describe_dataset(era5_dir, heldsuarez_store):
    hs = describe_dataset(open_dataset(heldsuarez_store))
    json.dumps(hs)
    assert hs["grid"]["kind"] == "regular lat-lon" and hs["grid"]["shape"] == [32, 64]
    assert hs["grid"]["latitude"]["spacing"] == 5.625
    assert hs["times"] == {"first": "2000-01-01T00", "last": "2000-12-25T18", "count": 1440,
                           "step": "6 h", "step_seconds": 21600}
    assert hs["levels_hpa"] == [100, 200, 300, 500, 700, 850, 1000]
    assert hs["variables"]["geopotential"]["kind"] == "pressure-level"
    assert hs["variables"]["surface_pressure"]["kind"] == "surface"
    assert hs["variables"]["land_sea_mask"]["kind"] == "static"
    assert hs["members"] is None
    tl31 = describe_dataset(open_dataset(era5_dir / "era5_tl31_19590102T00.nc"))
    assert tl31["grid"]["kind"] == "Gaussian" and tl31["times"]["step"] is None
    uk = describe_dataset(open_dataset(era5_dir / "era5_t2m_uk_hourly_201903.grib"))
    assert uk["grid"]["kind"] == "regional"
    assert (uk["grid"]["longitude"]["first"], uk["grid"]["longitude"]["last"]) == (350.0, 2.0)
    eda = describe_dataset(open_dataset(era5_dir / "era5_eda_zt_3deg_20170101_members.grib"))
    assert eda["members"] == list(range(10))
    text = format_description(eda)
    assert "regular lat-lon, 61 x 120" in text and "members: 10" in text and "geopotential" in text


def test_demo_source():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = open_dataset("demo")
    assert_canonical(ds)


def test_cf_names_plev_in_pa_and_forecast_steps(tmp_path):
    """lat / lon / plev (Pa) names; a (time, step) forecast layout becomes valid times."""
    lat, lon = np.array([-60.0, 0.0, 60.0]), np.array([-90.0, 0.0, 90.0, 180.0])
    plev = np.array([85000.0, 50000.0])
    values = np.arange(2 * 3 * 4, dtype=np.float64).reshape(2, 3, 4)
    raw = xr.Dataset({"u": (("plev", "lat", "lon"), values), "q": (("plev", "lat", "lon"), values * 1e-5)},
                     coords={"plev": ("plev", plev, {"units": "Pa"}), "lat": lat, "lon": lon,
                             "time": np.datetime64("2001-01-01T00", "ns")})
    raw.to_netcdf(tmp_path / "cf.nc")
    ds = open_dataset(tmp_path / "cf.nc")
    assert_canonical(ds)
    assert ds["level"].values.tolist() == [500, 850]
    assert set(ds.data_vars) == {"u_component_of_wind", "specific_humidity"}
    assert float(ds["u_component_of_wind"].isel(time=0).sel(level=850, latitude=60.0, longitude=270.0)) == \
        values[0, 2, 0]

    init = np.array(["2001-01-01T06", "2001-01-01T18"], dtype="datetime64[ns]")
    step = np.array([6, 12], dtype="timedelta64[h]").astype("timedelta64[ns]")
    tp = np.arange(2 * 2 * 3 * 4, dtype=np.float32).reshape(2, 2, 3, 4)
    fc = xr.Dataset({"tp": (("time", "step", "latitude", "longitude"), tp)},
                    coords={"time": init, "step": step, "latitude": lat, "longitude": lon,
                            "valid_time": (("time", "step"), init[:, None] + step[None, :])})
    fc.to_netcdf(tmp_path / "tp.nc")
    ds = open_dataset(tmp_path / "tp.nc")
    assert ds["total_precipitation_6hr"].dims == ("time", "latitude", "longitude")
    assert ds["time"].values.tolist() == (init[0] + np.arange(1, 5) * np.timedelta64(6, "h")).astype(
        np.int64).tolist()
    assert float(ds["total_precipitation_6hr"].sel(time="2001-01-02T06", latitude=0.0, longitude=0.0)) == \
        tp[1, 1, 1, 1]


@pytest.mark.shared_data
def test_static_fields_only(era5_dir):
    """``open_dataset(None, static_sources=...)`` (used by ``data inspect x.npy``)."""
    npy = era5_dir / "era5_surface_geopotential_0p25.npy"
    ds = open_dataset(None, static_sources={"geopotential_at_surface": npy})
    assert_canonical(ds)
    assert ds["geopotential_at_surface"].dims == ("latitude", "longitude")
    assert describe_dataset(ds)["grid"]["kind"] == "regular lat-lon"
    assert describe_dataset(ds)["times"] is None
