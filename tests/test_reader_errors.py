"""Bad inputs raise DataError naming the file and the variable / time at fault.

Small synthetic NetCDF files are built in tmp_path with xarray.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from weathergnn.data.checks import check_regular_times, infer_time_step
from weathergnn.data.errors import DataError
from weathergnn.data.reader import open_dataset

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::DeprecationWarning")

SIX_HOURLY = np.arange(np.datetime64("2000-01-01T00", "ns"), np.datetime64("2000-01-05T00", "ns"),
                       np.timedelta64(6, "h"))


def make_dataset(times=SIX_HOURLY, lat=None, lon=None, levels=(500, 850),
                 variables=("t", "z")) -> xr.Dataset:
    lat = np.linspace(-90.0, 90.0, 5) if lat is None else np.asarray(lat, dtype=np.float64)
    lon = np.arange(0.0, 360.0, 90.0) if lon is None else np.asarray(lon, dtype=np.float64)
    shape = (len(times), len(levels), len(lat), len(lon))
    data = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    dims = ("time", "level", "latitude", "longitude")
    return xr.Dataset({v: (dims, data + i) for i, v in enumerate(variables)},
                      coords={"time": np.asarray(times, dtype="datetime64[ns]"),
                              "level": np.asarray(levels, dtype=np.int32), "latitude": lat, "longitude": lon})


def write(ds: xr.Dataset, path: Path) -> Path:
    ds.to_netcdf(path)
    return path


def raises(source, match_all: list[str], **kwargs) -> DataError:
    """open_dataset raises a DataError whose message contains every string."""
    with pytest.raises(DataError) as info:
        open_dataset(source, **kwargs)
    message = str(info.value)
    for part in match_all:
        assert part in message, f"{part!r} not in {message!r}"
    return info.value


def test_data_error_is_a_value_error_with_context():
    err = DataError("variable missing", file="a.nc", variable="temperature", time="2000-01-01T00",
                    option="variables")
    assert isinstance(err, ValueError)
    assert str(err) == ("variable missing [file: a.nc; variable: temperature; time: 2000-01-01T00; "
                        "option: variables]")
    assert (err.file, err.variable, err.option) == ("a.nc", "temperature", "variables")
    assert str(pickle.loads(pickle.dumps(err))) == str(err)  # crosses DataLoader workers
    assert str(DataError("plain")) == "plain"


def test_missing_variable(tmp_path):
    path = write(make_dataset(), tmp_path / "tz.nc")
    err = raises(path, [str(path), "'specific_humidity'", "available: geopotential, temperature"],
                 variables=["temperature", "specific_humidity"])
    assert err.variable == "specific_humidity" and err.file == str(path)


def test_missing_level(tmp_path):
    path = write(make_dataset(), tmp_path / "tz.nc")
    err = raises(path, [str(path), "no level 925 hPa", "available levels: [500, 850]"],
                 variables=["geopotential"], levels=[500, 925])
    assert err.variable == "geopotential"


def test_duplicated_time_in_one_file(tmp_path):
    times = np.concatenate([SIX_HOURLY[:5], SIX_HOURLY[4:]])
    path = write(make_dataset(times), tmp_path / "dup.nc")
    err = raises(path, [str(path), "duplicated time 2000-01-02T00"])
    assert err.time == "2000-01-02T00"


def test_duplicated_time_across_files_names_both(tmp_path):
    a = write(make_dataset(SIX_HOURLY[:6]), tmp_path / "a.nc")
    b = write(make_dataset(SIX_HOURLY[5:]), tmp_path / "b.nc")
    raises([a, b], [str(a), str(b), "duplicated time 2000-01-02T06"])


def test_gap_in_times(tmp_path):
    times = np.delete(SIX_HOURLY, 10)  # drop 2000-01-03T12
    path = write(make_dataset(times), tmp_path / "gap.nc")
    err = raises(path, [str(path), "gap between 2000-01-03T06 and 2000-01-03T18", "(12 h, expected 6 h)"])
    assert err.time == "2000-01-03T06"


def test_gap_between_files_names_the_files(tmp_path):
    a = write(make_dataset(SIX_HOURLY[:4]), tmp_path / "a.nc")
    b = write(make_dataset(SIX_HOURLY[6:]), tmp_path / "b.nc")
    raises(str(tmp_path / "*.nc"), ["gap between 2000-01-01T18", f"(file {a})", f"(file {b})",
                                    "expected 6 h"])


def test_grids_differ_between_files(tmp_path):
    a = write(make_dataset(SIX_HOURLY[:4]), tmp_path / "a.nc")
    b = write(make_dataset(SIX_HOURLY[4:], lat=np.linspace(-80.0, 80.0, 5)), tmp_path / "b.nc")
    err = raises([a, b], [str(a), str(b), "grids differ", "latitude"])
    assert err.variable == "latitude"


def test_latitude_out_of_range(tmp_path):
    path = write(make_dataset(lat=[-100.0, -45.0, 0.0, 45.0, 100.0]), tmp_path / "badlat.nc")
    raises(path, [str(path), "unknown grid", "latitudes out of [-90, 90]"])


def test_missing_latitude_coordinate(tmp_path):
    ds = make_dataset().rename({"latitude": "y"}).drop_vars("y")
    path = write(ds, tmp_path / "nolat.nc")
    raises(path, [str(path), "unknown grid", "latitude coordinate is missing"])


def test_non_monotonic_longitude(tmp_path):
    path = write(make_dataset(lon=[0.0, 180.0, 90.0, 270.0]), tmp_path / "shuffled_lon.nc")
    raises(path, [str(path), "non-monotonic longitude"])


def test_members_on_a_deterministic_source(tmp_path):
    path = write(make_dataset(), tmp_path / "tz.nc")
    err = raises(path, [str(path), "not an ensemble"], members=[0])
    assert err.option == "members"


def test_bad_sources(tmp_path):
    raises(tmp_path / "absent.nc", ["no such file", str(tmp_path / "absent.nc")])
    raises(str(tmp_path / "none*.grib"), ["matches no file"])
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not a weather file")
    raises(junk, ["unknown file format", str(junk)])
    npy = tmp_path / "field.npy"
    np.save(npy, np.zeros((3, 4), np.float32))
    raises(npy, ["static_sources"])


def test_static_array_of_wrong_shape(tmp_path):
    path = write(make_dataset(), tmp_path / "tz.nc")
    npy = tmp_path / "orography.npy"
    np.save(npy, np.zeros((7, 9), np.float32))
    err = raises(path, [str(npy), "shape (7, 9)"], static_sources={"geopotential_at_surface": npy})
    assert err.variable == "geopotential_at_surface"


@pytest.mark.shared_data
def test_static_array_of_another_resolution(era5_dir):
    npy = era5_dir / "era5_surface_geopotential_0p25.npy"
    with pytest.raises(DataError, match="does not contain the grid"):
        open_dataset(era5_dir / "era5_eda_zt_3deg_20170101_members.grib",
                     static_sources={"geopotential_at_surface": np.zeros((5, 8), np.float32)})  # 45 deg
    # the 0.25 degree field does contain the 3 degree grid: cut to it
    ds = open_dataset(era5_dir / "era5_eda_zt_3deg_20170101_members.grib",
                      static_sources={"geopotential_at_surface": npy})
    assert ds["geopotential_at_surface"].shape == (61, 120)


def test_check_regular_times_directly():
    assert check_regular_times(SIX_HOURLY, "x") == np.timedelta64(6, "h")
    assert check_regular_times(SIX_HOURLY[:1], "x") is None
    short = np.insert(SIX_HOURLY, 3, SIX_HOURLY[2] + np.timedelta64(3, "h"))
    with pytest.raises(DataError, match=r"irregular step between 2000-01-01T12 and 2000-01-01T15 "
                                        r"\(3 h, expected 6 h\).*file: x"):
        check_regular_times(short, "x")
    with pytest.raises(DataError, match="times not increasing"):
        check_regular_times(SIX_HOURLY[::-1], "x")
    with pytest.raises(DataError, match="fewer than two times"):
        infer_time_step(make_dataset(SIX_HOURLY[:1]))
