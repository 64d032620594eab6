"""Open any ERA5 source as the canonical dataset.

Sources: a WeatherBench2-layout zarr store (path or URL), one or many NetCDF
files (list or glob; CDS downloads included), one or many GRIB files (cfgrib),
or the string ``"demo"``; plus static fields from ``.npy`` arrays.

Canonical layout (docs/architecture.md): dims ``(member?, time, level,
latitude, longitude)`` for pressure-level variables, ``(member?, time,
latitude, longitude)`` for surface variables, ``(latitude, longitude)`` for
static fields; latitude ascending (degrees north), longitude in [0, 360)
ascending (degrees east), ``level`` int64 hPa ascending, ``time``
datetime64[ns] ascending, ``member`` int64; WeatherBench2 variable names;
float32 values backed by dask (nothing is loaded whole).

Every bad input raises :class:`~weathergnn.data.errors.DataError` naming the
file and the variable, time, level or option at fault; the checks live in
:mod:`weathergnn.data.checks`, the summary for ``data inspect`` in
:mod:`weathergnn.data.describe`.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from weathergnn.data.checks import (
    COORD_TOL,
    check_duplicate_times,
    check_grid,
    check_same_grid,
    format_coord,
    validate_dataset,
)
from weathergnn.data.errors import DataError
from weathergnn.data.names import (
    CANONICAL_DIMS,
    LATITUDE_NAMES,
    LEVEL_NAMES,
    LONGITUDE_NAMES,
    MEMBER_NAMES,
    STATIC_VARIABLES,
    canonical_variable_name,
)

__all__ = ["open_dataset", "canonicalize"]

PathLike = str | os.PathLike
_GRIB_KWARGS = {"indexpath": ""}  # never write .idx files next to (read-only) data
_NETCDF_SUFFIXES = {".nc", ".nc4", ".netcdf", ".cdf", ".h5", ".hdf5"}
_GRIB_SUFFIXES = {".grib", ".grb", ".grib1", ".grib2", ".grb1", ".grb2"}


# --------------------------------------------------------------------------- #
# public entry point
# --------------------------------------------------------------------------- #
def open_dataset(
    source: PathLike | Sequence[PathLike] | None,
    *,
    variables: Sequence[str] | None = None,
    levels: Sequence[int] | None = None,
    static_sources: Mapping[str, PathLike | np.ndarray] | None = None,
    members: Sequence[int] | None = None,
) -> xr.Dataset:
    """Open an ERA5 source as the canonical, lazy dataset.

    Args:
        source: a zarr store (directory or URL), a NetCDF or GRIB file, a glob
            pattern or a list of NetCDF/GRIB files (combined along ``time``),
            ``"demo"`` (``weathergnn.data.demo.make_demo_dataset()``), or
            ``None`` for a dataset of ``static_sources`` only (their grid must
            then be inferable: regular global arrays, or files with coordinates).
        variables: variables to keep (WeatherBench2 or ECMWF short names);
            ``None`` keeps all.
        levels: pressure levels to keep, hPa; ``None`` keeps all.
        static_sources: ``{name: path or array}`` of static fields added as
            ``(latitude, longitude)`` variables. A ``.npy`` file / array is a
            2-D field in ERA5 order (first row northernmost, first column at
            0° E); its grid is inferred from the shape for a regular global
            grid with poles (``n_lon / 2 + 1`` x ``n_lon``) or else taken from
            the dataset (same shape). A global field is cut to a regional
            dataset's grid. Other paths are opened with this function.
        members: ensemble members (values of ``member``) to keep.

    Returns:
        ``xr.Dataset`` in the canonical layout (see module docstring), dask
        backed, float32; ``attrs["weathergnn_source"]`` names the source.

    Raises:
        DataError: unreadable or unknown source, missing variable / level /
            member, duplicated or irregular times, grids differing between
            files, unknown grid.
    """
    if source is None:  # static fields only (e.g. ``weathergnn data inspect x.npy``)
        if not static_sources:
            raise DataError("no source and no static_sources given", option="source")
        label = _source_label([s if isinstance(s, (str, os.PathLike)) else "<array>"
                               for s in static_sources.values()])
        ds = xr.Dataset()
    elif isinstance(source, str) and source == "demo":
        label = "demo"
        from weathergnn.data.demo import make_demo_dataset

        ds = canonicalize(make_demo_dataset(), "demo")
        validate_dataset(ds, "demo")
    else:
        label = _source_label(source)
        ds = _open_paths(_resolve(source), label)
    if static_sources:
        for name, static in static_sources.items():
            ds[name] = _static_field(name, static, ds, label)
    ds = _select(ds, variables, levels, members, label, keep=list(static_sources or ()))
    ds.attrs["weathergnn_source"] = label
    return ds


# --------------------------------------------------------------------------- #
# locating and opening files
# --------------------------------------------------------------------------- #
def _source_label(source: Any) -> str:
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    paths = [str(p) for p in source]
    return ", ".join(paths) if len(paths) <= 3 else f"{paths[0]} ... {paths[-1]} ({len(paths)} files)"


def _resolve(source: PathLike | Sequence[PathLike]) -> list[tuple[str, str]]:
    """[(path, kind)] with kind in {"zarr", "netcdf", "grib"}."""
    if isinstance(source, (str, os.PathLike)):
        text = str(source)
        if "://" not in text and any(c in text for c in "*?["):
            paths = sorted(glob.glob(text))
            if not paths:
                raise DataError("glob pattern matches no file", file=text)
        else:
            paths = [text]
    else:
        paths = [str(p) for p in source]
        if not paths:
            raise DataError("empty list of files", option="source")
    resolved = [(p, _kind(p)) for p in paths]
    kinds = {k for _, k in resolved}
    if "zarr" in kinds and len(resolved) > 1:
        raise DataError("give a single zarr store, not a list", file=_source_label(paths))
    if len(kinds) > 1:
        raise DataError(f"mixed file kinds {sorted(kinds)}; give files of one kind",
                        file=_source_label(paths))
    return resolved


def _kind(path: str) -> str:
    if "://" in path:
        return "netcdf" if Path(path.split("?")[0]).suffix.lower() in _NETCDF_SUFFIXES else "zarr"
    p = Path(path)
    if not p.exists():
        raise DataError("no such file or directory", file=path)
    if p.is_dir():
        if p.suffix == ".zarr" or any((p / m).exists() for m in (".zgroup", ".zmetadata", "zarr.json")):
            return "zarr"
        raise DataError("directory is not a zarr store (no .zgroup / zarr.json)", file=path)
    suffix = p.suffix.lower()
    if suffix in _NETCDF_SUFFIXES:
        return "netcdf"
    if suffix in _GRIB_SUFFIXES:
        return "grib"
    if suffix == ".npy":
        raise DataError("a .npy array holds no coordinates; pass it in static_sources", file=path)
    with open(p, "rb") as f:
        magic = f.read(8)
    if magic.startswith(b"GRIB"):
        return "grib"
    if magic.startswith(b"CDF") or magic.startswith(b"\x89HDF"):
        return "netcdf"
    raise DataError("unknown file format (expected zarr, NetCDF or GRIB)", file=path)


def _open_paths(resolved: list[tuple[str, str]], label: str) -> xr.Dataset:
    parts = [_open_one(path, kind) for path, kind in resolved]
    paths = [path for path, _ in resolved]
    if len(parts) == 1:
        validate_dataset(parts[0], paths[0])
        return parts[0]
    check_same_grid(parts, paths)
    ds, time_files = _combine(parts, paths, label)
    validate_dataset(ds, label, time_sources=time_files)
    return ds


def _open_one(path: str, kind: str) -> xr.Dataset:
    """One file or store, canonical (not yet time-validated)."""
    try:
        if kind == "zarr":
            raw = xr.open_zarr(path, consolidated=None, chunks={})
        elif kind == "netcdf":
            raw = xr.open_dataset(path, cache=False)
        else:
            return _open_grib(path)
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure becomes a DataError
        raise DataError(f"cannot open {kind} source: {type(exc).__name__}: {exc}", file=path) from exc
    return canonicalize(raw, path)


def _open_grib(path: str) -> xr.Dataset:
    """A GRIB file; several hypercubes (e.g. surface + pressure levels) are merged."""
    import cfgrib

    try:
        raw = xr.open_dataset(path, engine="cfgrib", backend_kwargs=_GRIB_KWARGS, cache=False)
        return canonicalize(raw, path)
    except cfgrib.dataset.DatasetBuildError:
        cubes = cfgrib.open_datasets(path, backend_kwargs=_GRIB_KWARGS, cache=False)
    parts = [canonicalize(cube, path) for cube in cubes]
    try:
        return xr.merge(parts, join="exact", compat="override", combine_attrs="drop_conflicts")
    except ValueError as exc:
        raise DataError(f"the GRIB hypercubes of this file have different times or grids: {exc}",
                        file=path) from exc


def _combine(parts: list[xr.Dataset], paths: list[str], label: str) -> tuple[xr.Dataset, np.ndarray | None]:
    """Concatenate files along time (files with the same variables), then merge."""
    groups: dict[frozenset, list[int]] = {}
    for i, part in enumerate(parts):
        groups.setdefault(frozenset(part.data_vars), []).append(i)
    combined, time_files = [], None
    for members in groups.values():
        timed = [i for i in members if "time" in parts[i].dims]
        if not timed:
            combined.append(parts[members[0]])
            continue
        check_duplicate_times([parts[i] for i in timed], [paths[i] for i in timed])
        ds = xr.concat([parts[i] for i in timed], dim="time", data_vars="minimal", coords="minimal",
                       compat="override", join="override", combine_attrs="drop_conflicts")
        files = np.concatenate([np.full(parts[i].sizes["time"], paths[i], dtype=object) for i in timed])
        order = np.argsort(ds["time"].values, kind="stable")
        ds, files = ds.isel(time=order), files[order]
        time_files = files if time_files is None else time_files
        combined.append(ds)
    if len(combined) == 1:
        return combined[0], time_files
    try:
        ds = xr.merge(combined, join="exact", compat="override", combine_attrs="drop_conflicts")
    except ValueError as exc:
        raise DataError(f"files holding different variables cover different times: {exc}",
                        file=label) from exc
    return ds, (time_files if time_files is not None and len(time_files) == ds.sizes.get("time") else None)


# --------------------------------------------------------------------------- #
# canonical layout
# --------------------------------------------------------------------------- #
def canonicalize(ds: xr.Dataset, source: str = "<dataset>") -> xr.Dataset:
    """Rename, reorder and cast one dataset into the canonical layout (lazily).

    Handles ECMWF short names, dim aliases (isobaricInhPa / pressure_level /
    plev / lev, valid_time, lat / lon, number), any dim order, descending
    latitude, longitude in [-180, 180), scalar time or level coordinates,
    GRIB ``step`` / ``valid_time`` (time becomes the valid time), levels in Pa.
    Time is sorted but not validated (see :func:`validate_dataset`).

    Raises:
        DataError: no 1-D latitude / longitude, bad latitude / longitude
            values, unknown extra dims, duplicated levels or members,
            non-pressure level values, name clashes after renaming.
    """
    ds = _rename_coords(ds, source)
    ds = _canonical_time(ds, source)
    ds = _canonical_level(ds, source)
    if "member" in ds.dims:
        ds = ds.assign_coords(member=ds["member"].values.astype(np.int64))
    ds = _rename_variables(ds, source)
    ds = canonical_grid(ds, source)
    ds = ds.reset_coords(drop=True)
    ds = _squeeze_extra_dims(ds, source)
    if not any(isinstance(v.data, da.Array) for v in ds.data_vars.values()):
        ds = ds.chunk({d: (1 if d in ("time", "member") else -1) for d in ds.dims})
    for dim in ("member", "time", "level"):
        ds = _sort_dim(ds, dim, source)
    for name in [v for v in ds.data_vars if v in STATIC_VARIABLES]:
        extra = {d: 0 for d in ("member", "time") if d in ds[name].dims}
        if extra:
            ds[name] = ds[name].isel(extra, drop=True)
    ds = ds.transpose(*CANONICAL_DIMS, missing_dims="ignore")
    for name in list(ds.data_vars):
        if ds[name].dtype != np.float32:
            ds[name] = ds[name].astype(np.float32)
        ds[name].encoding = {}  # the source's int16 packing no longer applies
    if "time" in ds.dims and "time" not in ds.coords:
        raise DataError("time dim has no coordinate values", file=source)
    return ds


def _rename_coords(ds: xr.Dataset, source: str) -> xr.Dataset:
    names = set(ds.variables) | set(ds.dims)
    mapping: dict[str, str] = {}
    for target, aliases in (("latitude", LATITUDE_NAMES), ("longitude", LONGITUDE_NAMES)):
        if target not in names:
            found = [a for a in aliases if a in names]
            if found:
                mapping[found[0]] = target
    if "level" not in ds.dims:
        found = [a for a in LEVEL_NAMES if a in ds.dims] or [a for a in LEVEL_NAMES if a in ds.coords]
        if found and found[0] != "level":
            if "level" in ds.variables:
                ds = ds.drop_vars("level")
            mapping[found[0]] = "level"
    member_dims = [a for a in MEMBER_NAMES if a in ds.dims]
    if member_dims and member_dims[0] != "member":
        mapping[member_dims[0]] = "member"
    scalar_members = [a for a in MEMBER_NAMES if a in ds.coords and a not in ds.dims and a not in mapping]
    ds = ds.drop_vars(scalar_members)
    if "valid_time" in ds.dims and "time" not in ds.dims:
        ds = ds.drop_vars([n for n in ("time",) if n in ds.variables])
        mapping["valid_time"] = "time"
    return ds.rename(mapping)


def _canonical_time(ds: xr.Dataset, source: str) -> xr.Dataset:
    """Make ``time`` the (valid-time) dim; drop step / valid_time."""
    if "step" in ds.dims:
        if ds.sizes["step"] == 1:
            ds = ds.isel(step=0)
        elif "time" in ds.dims and "valid_time" in ds.coords:
            valid = ds["valid_time"].transpose("time", "step").values.ravel()
            ds = ds.drop_vars("valid_time").stack(_vt=("time", "step"))
            ds = ds.drop_vars(["_vt", "time", "step"]).rename({"_vt": "time"})
            ds = ds.assign_coords(time=valid)
        else:
            raise DataError("forecast 'step' dim without time / valid_time coordinates", file=source)
    if "time" in ds.dims:
        if "valid_time" in ds.coords and ds["valid_time"].dims == ("time",):
            ds = ds.assign_coords(time=ds["valid_time"].values)
    elif "time" in ds.coords or "valid_time" in ds.coords:
        name = "valid_time" if "valid_time" in ds.coords else "time"
        when = np.atleast_1d(ds[name].values)
        if when.size != 1:
            raise DataError(f"time coordinate '{name}' is not a dim but has {when.size} values", file=source)
        ds = ds.drop_vars([n for n in ("time", "valid_time") if n in ds.variables])
        ds = ds.expand_dims(time=when)
    if "time" in ds.dims:
        values = ds["time"].values
        if not np.issubdtype(values.dtype, np.datetime64):
            raise DataError(f"time values are not dates (dtype {values.dtype}); check CF time units",
                            file=source)
        ds = ds.assign_coords(time=values.astype("datetime64[ns]"))
    return ds


def _canonical_level(ds: xr.Dataset, source: str) -> xr.Dataset:
    """``level`` int64 hPa dim (scalar level coordinates become length-1 dims)."""
    if "level" not in ds.coords and "level" not in ds.dims:
        return ds
    if "level" not in ds.coords:
        raise DataError("level dim has no coordinate values", file=source, variable="level")
    coord = ds["level"]
    values = np.atleast_1d(coord.values).astype(np.float64)
    units = str(coord.attrs.get("units", "")).strip().lower()
    if units in ("pa", "pascal", "pascals") or (not units and values.max(initial=0) > 1100):
        values = values / 100.0
    rounded = np.round(values)
    if not np.allclose(values, rounded, atol=1e-3) or (rounded <= 0).any():
        raise DataError(f"level values {values.tolist()} are not whole hPa pressure levels",
                        file=source, variable="level")
    attrs = {"units": "hPa", "long_name": "pressure level"}
    if coord.ndim == 0:
        ds = ds.drop_vars("level").expand_dims(level=rounded.astype(np.int64))
    else:
        ds = ds.assign_coords(level=("level", rounded.astype(np.int64)))
    ds["level"].attrs = attrs
    return ds


def _rename_variables(ds: xr.Dataset, source: str) -> xr.Dataset:
    mapping: dict[str, str] = {}
    for name, var in ds.data_vars.items():
        new = canonical_variable_name(str(name))
        if new == "geopotential" and ("level" not in var.dims
                                      or var.attrs.get("GRIB_typeOfLevel") == "surface"):
            new = "geopotential_at_surface"
        if new != name:
            mapping[name] = new
    targets = [mapping.get(n, n) for n in ds.data_vars]
    clashes = {t for t in targets if targets.count(t) > 1}
    if clashes:
        first = sorted(clashes)[0]
        raise DataError(f"several variables map to {sorted(clashes)}", file=source, variable=first)
    return ds.rename(mapping)


def canonical_grid(ds: xr.Dataset, source: str) -> xr.Dataset:
    """Latitude ascending, longitude wrapped to [0, 360) ascending (also used for forecast stores).

    Raises:
        DataError: no 1-D latitude/longitude dim coordinate, an unknown grid
            (``check_grid``) or longitudes that overlap after wrapping; names ``source``.
    """
    for name in ("latitude", "longitude"):
        if name not in ds.dims or name not in ds.coords or ds[name].ndim != 1:
            what = "is missing" if name not in ds.variables else f"is not a 1-D dim (dims {ds[name].dims})"
            raise DataError(f"unknown grid: {name} coordinate {what}; dims are {dict(ds.sizes)} "
                            "(only regular, Gaussian and regional lat-lon grids are supported)", file=source)
    lat = ds["latitude"].values.astype(np.float64)
    lon = ds["longitude"].values.astype(np.float64)
    check_grid(lat, lon, source, sorted_=False)
    if lat.size > 1 and lat[0] > lat[-1]:
        ds, lat = ds.isel(latitude=slice(None, None, -1)), lat[::-1]
    wrapped = np.mod(lon, 360.0)
    wrapped[np.isclose(wrapped, 360.0, rtol=0, atol=1e-9)] = 0.0
    order = np.argsort(wrapped, kind="stable")
    if (np.diff(wrapped[order]) <= 0).any():
        raise DataError("unknown grid: longitudes overlap after wrapping to [0, 360)", file=source)
    if not (order == np.arange(order.size)).all():
        ds = ds.isel(longitude=order)
    ds = ds.assign_coords(latitude=("latitude", lat), longitude=("longitude", wrapped[order]))
    ds["latitude"].attrs = {"units": "degrees_north", "long_name": "latitude"}
    ds["longitude"].attrs = {"units": "degrees_east", "long_name": "longitude"}
    return ds


def _squeeze_extra_dims(ds: xr.Dataset, source: str) -> xr.Dataset:
    extra = [d for d in ds.dims if d not in CANONICAL_DIMS]
    big = [d for d in extra if ds.sizes[d] > 1]
    if big:
        raise DataError(f"unsupported dims {[f'{d}({ds.sizes[d]})' for d in big]}; expected a subset of "
                        f"{list(CANONICAL_DIMS)}", file=source)
    return ds.isel({d: 0 for d in extra}, drop=True) if extra else ds


def _sort_dim(ds: xr.Dataset, dim: str, source: str) -> xr.Dataset:
    if dim not in ds.dims:
        return ds
    values = ds[dim].values
    if dim != "time" and np.unique(values).size != values.size:
        raise DataError(f"duplicated {dim} values {values.tolist()}", file=source, variable=dim)
    if values.size > 1 and (values[1:] < values[:-1]).any():
        if (values[1:] < values[:-1]).all():
            return ds.isel({dim: slice(None, None, -1)})
        return ds.isel({dim: np.argsort(values, kind="stable")})
    return ds


# --------------------------------------------------------------------------- #
# static fields
# --------------------------------------------------------------------------- #
def _static_field(name: str, static: PathLike | np.ndarray, ds: xr.Dataset, label: str) -> xr.DataArray:
    """A static field as a float32 ``(latitude, longitude)`` DataArray on ds's grid
    (on its own grid when ds has none yet)."""
    where = "<array>" if isinstance(static, np.ndarray) else str(static)
    if isinstance(static, np.ndarray) or str(static).endswith(".npy"):
        if isinstance(static, np.ndarray):
            array = static
        else:
            if not Path(static).is_file():
                raise DataError("no such file", file=where, variable=name)
            array = np.load(static, mmap_mode="r")
        field = _array_on_grid(array, name, where, ds)
    else:
        other = open_dataset(static)
        if name in other.data_vars:
            field = other[name]
        elif len(other.data_vars) == 1:
            field = next(iter(other.data_vars.values()))
        else:
            raise DataError(f"static source has no variable {name!r}; available: {sorted(other.data_vars)}",
                            file=where, variable=name)
        field = field.squeeze(drop=True)
        if field.dims != ("latitude", "longitude"):
            raise DataError(f"static field must be 2-D (latitude, longitude), got dims {field.dims}",
                            file=where, variable=name)
    if "latitude" in ds.coords:
        field = _cut_to_grid(field, ds, name, where, label)
    return field.astype(np.float32).rename(name)


def _array_on_grid(array: np.ndarray, name: str, where: str, ds: xr.Dataset) -> xr.DataArray:
    while array.ndim > 2 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2:
        raise DataError(f"static array must be 2-D (latitude, longitude), got shape {array.shape}",
                        file=where, variable=name)
    n_lat, n_lon = array.shape
    if n_lon % 2 == 0 and n_lat == n_lon // 2 + 1:  # regular global grid with poles
        lat = np.linspace(90.0, -90.0, n_lat)
        lon = np.arange(n_lon) * (360.0 / n_lon)
    elif (n_lat, n_lon) == (ds.sizes.get("latitude"), ds.sizes.get("longitude")):
        lat, lon = ds["latitude"].values[::-1], ds["longitude"].values
    else:
        raise DataError(f"static array shape {array.shape} is neither a regular global grid "
                        f"(n_lon / 2 + 1, n_lon) nor the dataset's grid "
                        f"({ds.sizes.get('latitude')}, {ds.sizes.get('longitude')})",
                        file=where, variable=name)
    data = da.from_array(array, chunks=-1)
    field = xr.DataArray(data, dims=("latitude", "longitude"),
                         coords={"latitude": lat, "longitude": lon})
    return field.isel(latitude=slice(None, None, -1))  # rows are north to south


def _cut_to_grid(field: xr.DataArray, ds: xr.Dataset, name: str, where: str, label: str) -> xr.DataArray:
    """field on exactly ds's latitude / longitude (a global field may be cut to a region)."""
    indices = {}
    for dim in ("latitude", "longitude"):
        src, dst = field[dim].values, ds[dim].values
        pos = np.clip(np.searchsorted(src, dst), 0, src.size - 1)
        left = np.clip(pos - 1, 0, src.size - 1)
        best = np.where(np.abs(src[left] - dst) < np.abs(src[pos] - dst), left, pos)
        if not np.allclose(src[best], dst, rtol=0, atol=COORD_TOL):
            raise DataError(f"static field grid ({dim} {format_coord(src)}) does not contain the grid of "
                            f"{label} ({dim} {format_coord(dst)})", file=where, variable=name)
        indices[dim] = best
    field = field.reset_coords(drop=True).isel(indices)
    return field.assign_coords(latitude=ds["latitude"], longitude=ds["longitude"])


# --------------------------------------------------------------------------- #
# selection
# --------------------------------------------------------------------------- #
def _select(ds: xr.Dataset, variables: Sequence[str] | None, levels: Sequence[int] | None,
            members: Sequence[int] | None, label: str, keep: list[str]) -> xr.Dataset:
    if members is not None:
        if "member" not in ds.dims:
            raise DataError("members given but the source is not an ensemble (no member dim)",
                            file=label, option="members")
        available = ds["member"].values.tolist()
        missing = [m for m in members if m not in available]
        if missing:
            raise DataError(f"member {missing[0]} not found; available members: {available}",
                            file=label, option="members")
        ds = ds.sel(member=[int(m) for m in members])
    if variables is not None:
        wanted = [canonical_variable_name(v) for v in variables]
        for asked, name in zip(variables, wanted):
            if name not in ds.data_vars:
                available = ", ".join(sorted(map(str, ds.data_vars)))
                raise DataError(f"variable {asked!r} not found; available: {available}",
                                file=label, variable=name)
        ds = ds[list(dict.fromkeys(wanted + keep))]
    if levels is not None:
        with_levels = [str(n) for n, v in ds.data_vars.items() if "level" in v.dims]
        if not with_levels:
            raise DataError("levels given but no selected variable has pressure levels", file=label,
                            option="levels")
        available = ds["level"].values.tolist()
        for level in levels:
            if int(level) not in available:
                raise DataError(f"variable {with_levels[0]!r} has no level {int(level)} hPa; "
                                f"available levels: {available}", file=label, variable=with_levels[0])
        ds = ds.sel(level=sorted({int(level) for level in levels}))
    return ds
