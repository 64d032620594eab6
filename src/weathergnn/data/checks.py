"""Checks of canonical datasets: grid coordinates, regular unique times, grid kind.

Used by the reader (every opened source is validated) and by other modules
(windows reuses :func:`check_regular_times`). Every failure raises
:class:`~weathergnn.data.errors.DataError` naming the file and the variable,
time or coordinate at fault; the ``format_*`` helpers write times, steps and
coordinates in those messages.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from weathergnn.data.errors import DataError
from weathergnn.data.names import CANONICAL_DIMS, STATIC_VARIABLES

__all__ = [
    "COORD_TOL",
    "validate_dataset",
    "check_grid",
    "check_regular_times",
    "check_same_grid",
    "check_duplicate_times",
    "infer_time_step",
    "is_month",
    "grid_kind",
    "longitude_spacing",
    "format_time",
    "format_step",
    "format_coord",
]

COORD_TOL = 1e-4  # degrees: two grids whose coordinates agree this well are equal
_MONTH = np.timedelta64(1, "M")


def validate_dataset(ds: xr.Dataset, source: str = "<dataset>", *,
                     time_sources: Sequence[str] | None = None) -> None:
    """Check a canonical dataset: dims, grid, regular unique times.

    Args:
        ds: canonical dataset.
        source: file / source named in errors.
        time_sources: optional file of each time (multi-file sources), named
            in time errors.

    Raises:
        DataError: unexpected dims, unknown grid, duplicated or irregular
            times, surface / level variables without a time dim.
    """
    extra = [d for d in ds.dims if d not in CANONICAL_DIMS]
    if extra:
        raise DataError(f"unexpected dims {extra}", file=source)
    if "latitude" not in ds.coords or "longitude" not in ds.coords:
        raise DataError("unknown grid: no latitude / longitude coordinates", file=source)
    check_grid(ds["latitude"].values, ds["longitude"].values, source)
    for name, var in ds.data_vars.items():
        if name not in STATIC_VARIABLES and "time" not in var.dims:
            raise DataError(f"variable has dims {var.dims} but no time coordinate "
                            "(static fields must be one of " + ", ".join(sorted(STATIC_VARIABLES)) + ")",
                            file=source, variable=str(name))
    if "time" in ds.dims:
        check_regular_times(ds["time"].values, source, time_sources=time_sources)


def check_grid(latitude: np.ndarray, longitude: np.ndarray, source: str = "<dataset>",
               *, sorted_: bool = True) -> None:
    """Check grid coordinates (degrees).

    Args:
        latitude: [n_lat] degrees north; within [-90, 90], unique, monotonic
            (ascending when ``sorted_``).
        longitude: [n_lon] degrees east; unique, monotonic (within [0, 360)
            ascending when ``sorted_``).
        source: file named in errors.

    Raises:
        DataError: naming the file and the faulty coordinate.
    """
    lat = np.asarray(latitude, dtype=np.float64)
    lon = np.asarray(longitude, dtype=np.float64)
    for name, values in (("latitude", lat), ("longitude", lon)):
        if values.ndim != 1 or values.size == 0:
            raise DataError(f"unknown grid: {name} must be a non-empty 1-D coordinate", file=source)
        if not np.isfinite(values).all():
            raise DataError(f"unknown grid: {name} has non-finite values", file=source)
        steps = np.diff(values)
        if not ((steps > 0).all() or (not sorted_ and (steps < 0).all())):
            kind = "duplicated" if (steps == 0).any() else "non-monotonic"
            raise DataError(f"unknown grid: {kind} {name} values", file=source)
    if lat.min() < -90 - 1e-6 or lat.max() > 90 + 1e-6:
        raise DataError(f"unknown grid: latitudes out of [-90, 90] (range {lat.min():g} .. {lat.max():g})",
                        file=source)
    if sorted_ and (lon.min() < 0 or lon.max() >= 360):
        raise DataError(f"longitudes out of [0, 360) (range {lon.min():g} .. {lon.max():g})", file=source)
    if not sorted_ and (lon.max() - lon.min() >= 360 + 1e-6):
        raise DataError("unknown grid: longitudes span more than 360 degrees", file=source)


def check_regular_times(times: np.ndarray, source: str = "<dataset>", *,
                        time_sources: Sequence[str] | None = None) -> np.timedelta64 | None:
    """Check that times are increasing, unique and evenly spaced.

    Calendar-monthly series (first of each month, 28-31 days apart) count as
    regular.

    Args:
        times: [T] datetime64.
        source: file named in errors.
        time_sources: optional [T] file of each time, named in errors.

    Returns:
        The step: ``np.timedelta64`` in ns, ``np.timedelta64(1, "M")`` for
        monthly series, ``None`` for a single time.

    Raises:
        DataError: duplicated time, decreasing times, or the first step that
            differs from the modal step, e.g. "gap between 2000-01-03T06 and
            2000-01-03T18 (expected 6 h)".
    """
    t = np.asarray(times).astype("datetime64[ns]")
    where = (lambda i: f" (file {time_sources[i]})") if time_sources is not None else (lambda i: "")
    if t.size < 2:
        return None
    steps = np.diff(t)
    zero = np.timedelta64(0, "ns")
    if (steps == zero).any():
        i = int(np.flatnonzero(steps == zero)[0])
        files = ""
        if time_sources is not None:
            pair = dict.fromkeys((time_sources[i], time_sources[i + 1]))
            files = f" (in {' and '.join(map(str, pair))})"
        raise DataError(f"duplicated time {format_time(t[i])}{files}", file=source, time=format_time(t[i]))
    if (steps < zero).any():
        i = int(np.flatnonzero(steps < zero)[0])
        raise DataError(f"times not increasing: {format_time(t[i])} is followed by {format_time(t[i + 1])}",
                        file=source, time=format_time(t[i + 1]))
    if _is_monthly(t):
        return _MONTH
    step = _modal_step(steps)
    bad = np.flatnonzero(steps != step)
    if bad.size:
        i = int(bad[0])
        kind = "gap" if steps[i] > step else "irregular step"
        raise DataError(f"{kind} between {format_time(t[i])}{where(i)} and {format_time(t[i + 1])}{where(i + 1)}"
                        f" ({format_step(steps[i])}, expected {format_step(step)}); "
                        f"{bad.size} of {steps.size} steps differ", file=source, time=format_time(t[i]))
    return step


def infer_time_step(ds: xr.Dataset) -> np.timedelta64:
    """The modal step of ``ds.time``: ``np.timedelta64`` in ns, or
    ``np.timedelta64(1, "M")`` for calendar-monthly data.

    Raises:
        DataError: fewer than two times.
    """
    source = ds.attrs.get("weathergnn_source", "<dataset>")
    if "time" not in ds.dims or ds.sizes["time"] < 2:
        raise DataError("cannot infer a time step from fewer than two times", file=source)
    t = ds["time"].values.astype("datetime64[ns]")
    if _is_monthly(t):
        return _MONTH
    return _modal_step(np.diff(t))


def is_month(step: np.timedelta64) -> bool:
    """Whether a step from :func:`infer_time_step` is the calendar month."""
    return np.datetime_data(np.asarray(step).dtype)[0] == "M"


def _modal_step(steps: np.ndarray) -> np.timedelta64:
    values, counts = np.unique(steps, return_counts=True)  # ties -> smallest step
    return values[np.argmax(counts)]


def _is_monthly(t: np.ndarray) -> bool:
    if t.size < 2:
        return False
    days = np.diff(t).astype("timedelta64[D]").astype(np.int64)
    starts = t.astype("datetime64[M]").astype("datetime64[ns]")
    return bool((t == starts).all() and ((days >= 28) & (days <= 31)).all())


def format_time(t: np.datetime64) -> str:
    """ISO 8601 time, as short as exact: ``2000-01-03T06``, ``2000-01-03T06:30``."""
    t = np.datetime64(t, "ns")
    for unit in ("D", "h", "m", "s"):
        if t == t.astype(f"datetime64[{unit}]"):
            return str(np.datetime_as_string(t, unit="h" if unit == "D" else unit))
    return str(np.datetime_as_string(t, unit="ns"))


def format_step(step: np.timedelta64) -> str:
    """A time step in words: ``6 h``, ``2 days``, ``1 month``."""
    if is_month(step):
        return "1 month"
    seconds = int(np.timedelta64(step, "ns").astype(np.int64)) / 1e9
    if seconds % 86400 == 0 and seconds >= 86400 * 2:
        return f"{seconds / 86400:g} days"
    if seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def check_same_grid(parts: list[xr.Dataset], paths: list[str]) -> None:
    """Check that the files of one source share latitude, longitude and (where both have it) level."""
    ref = parts[0]
    for part, path in zip(parts[1:], paths[1:]):
        for name in ("latitude", "longitude", "level"):
            if (name in ref.coords) != (name in part.coords):
                if name == "level":
                    continue  # surface-only file beside a pressure-level file
            elif name in ref.coords:
                a, b = ref[name].values, part[name].values
                if a.shape != b.shape or not np.allclose(a, b, rtol=0, atol=COORD_TOL):
                    raise DataError(f"grids differ between files: {name} of {paths[0]} is "
                                    f"{format_coord(a)} but {name} of {path} is {format_coord(b)}",
                                    file=f"{paths[0]}, {path}", variable=name)


def check_duplicate_times(parts: list[xr.Dataset], paths: list[str]) -> None:
    """Check that no time is in two of the files of one source (naming both)."""
    seen: dict[np.datetime64, str] = {}
    for part, path in zip(parts, paths):
        for t in part["time"].values:
            if t in seen and seen[t] != path:
                raise DataError(f"duplicated time {format_time(t)}: in {seen[t]} and in {path}",
                                file=f"{seen[t]}, {path}", time=format_time(t))
            seen[t] = path


def format_coord(values: np.ndarray) -> str:
    """A coordinate in an error message: its values, or size and range when long."""
    values = np.asarray(values)
    if values.size <= 6:
        return f"[{', '.join(f'{v:g}' for v in values)}]"
    return f"{values.size} values {values[0]:g} .. {values[-1]:g}"



def grid_kind(latitude: np.ndarray, longitude: np.ndarray) -> str:
    """Kind of a canonical grid: "regular lat-lon", "Gaussian", "regional" or "irregular".

    Args:
        latitude: [n_lat] ascending degrees north.
        longitude: [n_lon] ascending degrees east in [0, 360); a region across
            the prime meridian (e.g. 350..359.75 then 0..2) counts as uniform.
    """
    lat = np.asarray(latitude, dtype=np.float64)
    lon_step, lon_global = longitude_spacing(longitude)
    if lat.size < 2 or lon_step is None:
        return "regional" if lon_step is not None or lat.size < 2 else "irregular"
    dlat = np.diff(lat)
    lat_uniform = np.allclose(dlat, dlat[0], rtol=0, atol=1e-6)
    if not lon_global:
        return "regional" if lat_uniform else "irregular"
    if lat_uniform:
        global_ = lat[0] - dlat[0] / 2 <= -90 + 1e-4 and lat[-1] + dlat[0] / 2 >= 90 - 1e-4
        return "regular lat-lon" if global_ else "regional"
    gauss = np.rad2deg(np.arcsin(np.polynomial.legendre.leggauss(lat.size)[0]))
    return "Gaussian" if np.allclose(gauss, lat, rtol=0, atol=1e-3) else "irregular"


def longitude_spacing(longitude: np.ndarray) -> tuple[float | None, bool]:
    """(uniform spacing or None, whether the longitudes go all the way round)."""
    lon = np.asarray(longitude, dtype=np.float64)
    if lon.size < 2:
        return None, False
    gaps = np.diff(np.append(lon, lon[0] + 360.0))  # circular differences
    step = float(np.min(gaps))
    off = ~np.isclose(gaps, step, rtol=0, atol=1e-6)
    if off.sum() == 0:
        return round(step, 6), True
    return (round(step, 6), False) if off.sum() == 1 else (None, False)
