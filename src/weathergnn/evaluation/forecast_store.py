"""WeatherBench2-layout forecast zarr stores: open and validate any of them, write ours.

Layout (WeatherBench2, Rasp et al. 2024, "forecast datasets"): one zarr store
whose pressure-level variables have dims ``(time, [number],
prediction_timedelta, level, latitude, longitude)`` and surface variables
``(time, [number], prediction_timedelta, latitude, longitude)``, where

- ``time`` is the **init time** (datetime64), ``prediction_timedelta`` the
  **lead time** (timedelta64), so the valid time is ``time + prediction_timedelta``;
- ``number`` is the ensemble member (only for ensemble forecasts);
- ``level`` is the pressure level in hPa (int), ``latitude`` / ``longitude`` in
  degrees; variable names are WeatherBench2's (``geopotential``,
  ``temperature``, ``u_component_of_wind``, ...), values in physical (SI) units.

:func:`open_forecast` reads such a store (ours or a foreign one) into the
*canonical forecast layout*: the dims above in that order, latitude ascending,
longitude wrapped to [0, 360) ascending, ``level`` int64 hPa ascending,
``time`` datetime64[ns] ascending, ``prediction_timedelta`` timedelta64[ns]
ascending and >= 0, float32 values, lazy (dask). It accepts a few common
aliases (``init_time``, ``lead_time``/``step``, ``lat``/``lon``,
``member``/``realization``, ECMWF short names such as ``z``/``t``).

:class:`ForecastStoreWriter` writes our forecasts one init time at a time into
a temporary store next to the target, pre-created with all coordinates and one
init time per chunk, and renames it onto the target only when every init time
was written; a failed run leaves no final store.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import dask.array as dsa
import numpy as np
import xarray as xr

from weathergnn.atomic import fsync_dir
from weathergnn.data.reader import canonical_grid
from weathergnn.data.errors import DataError
from weathergnn.data.names import canonical_variable_name

__all__ = [
    "FORECAST_DIMS",
    "ForecastStoreWriter",
    "forecast_channels",
    "open_forecast",
]

#: Dims of the canonical forecast layout, in order (``number`` and ``level`` when present).
FORECAST_DIMS: tuple[str, ...] = ("time", "number", "prediction_timedelta", "level", "latitude", "longitude")

_ALIASES: dict[str, tuple[str, ...]] = {
    "time": ("init_time", "initial_time", "forecast_reference_time"),
    "prediction_timedelta": ("lead_time", "step", "forecast_period"),
    "number": ("member", "realization", "ensemble_member"),
    "level": ("isobaricInhPa", "pressure_level", "plev", "lev"),
    "latitude": ("lat",),
    "longitude": ("lon",),
}
#: Coordinates that foreign stores carry and we do not need (recomputed when needed).
_DROP = ("valid_time", "surface", "isobaricInhPa_bounds")


def _rename_dims(ds: xr.Dataset) -> xr.Dataset:
    names = set(ds.variables) | set(ds.dims)
    mapping = {}
    for target, aliases in _ALIASES.items():
        if target in names:
            continue
        found = [a for a in aliases if a in names]
        if found:
            mapping[found[0]] = target
    return ds.rename(mapping) if mapping else ds


def open_forecast(
    path: str | os.PathLike | xr.Dataset,
    variables: Sequence[str] | None = None,
) -> xr.Dataset:
    """Open a WeatherBench2-layout forecast zarr store (or check a dataset) in the canonical forecast layout.

    Args:
        path: zarr store directory / URL, or an ``xr.Dataset`` already opened.
        variables: forecast variables to keep (WeatherBench2 or ECMWF short
            names); None keeps every variable that has ``time`` and
            ``prediction_timedelta`` dims (others, e.g. static fields, are dropped).

    Returns:
        Lazy ``xr.Dataset`` in the canonical forecast layout (module
        docstring); ``attrs["weathergnn_source"]`` names the store.

    Raises:
        DataError: unreadable store; missing ``time`` / ``prediction_timedelta``;
            init times not dates or duplicated; lead times not timedeltas,
            negative or duplicated; levels not whole hPa; an unknown grid; a
            variable with an unknown dim; a requested variable missing; no
            forecast variable at all (each names the store and the variable/option).
    """
    if isinstance(path, xr.Dataset):
        raw, source = path, str(path.attrs.get("weathergnn_source", "<in-memory forecast>"))
    else:
        source = str(path)
        if "://" not in source and not Path(source).exists():
            raise DataError("no such forecast store", file=source)
        try:
            with warnings.catch_warnings():  # foreign stores need not have consolidated metadata
                warnings.filterwarnings("ignore", message="Failed to open Zarr store with consolidated")
                raw = xr.open_zarr(source, consolidated=None, chunks={})
        except Exception as exc:  # noqa: BLE001 - any reader failure becomes a DataError
            raise DataError(f"cannot open forecast zarr store: {type(exc).__name__}: {exc}", file=source) from exc
    ds = _rename_dims(raw)
    ds = ds.drop_vars([n for n in _DROP if n in ds.variables])
    ds = ds.rename({n: canonical_variable_name(str(n)) for n in ds.data_vars
                    if canonical_variable_name(str(n)) != n and canonical_variable_name(str(n)) not in ds})
    for dim in ("time", "prediction_timedelta"):
        if dim not in ds.dims:
            raise DataError(f"not a WeatherBench2 forecast store: no {dim!r} dim (dims {dict(ds.sizes)}); "
                            "expected (time=init time, prediction_timedelta=lead time, [level], latitude, longitude)",
                            file=source, variable=dim)
    ds = _check_times(ds, source)
    ds = _check_level(ds, source)
    ds = canonical_grid(ds, source)
    if "number" in ds.dims:
        ds = ds.assign_coords(number=np.asarray(ds["number"].values).astype(np.int64))
    fc_vars = [str(n) for n, v in ds.data_vars.items() if {"time", "prediction_timedelta"} <= set(v.dims)]
    if variables is not None:
        wanted = [canonical_variable_name(v) for v in variables]
        missing = [w for w in wanted if w not in fc_vars]
        if missing:
            raise DataError(f"forecast variable {missing[0]!r} not in store; forecast variables: {fc_vars}",
                            file=source, variable=missing[0])
        fc_vars = list(dict.fromkeys(wanted))
    if not fc_vars:
        raise DataError("no forecast variable (none has both time and prediction_timedelta dims)", file=source)
    ds = ds[fc_vars]
    for name in fc_vars:
        extra = [d for d in ds[name].dims if d not in FORECAST_DIMS]
        if extra:
            raise DataError(f"variable has unsupported dims {extra}; expected a subset of {list(FORECAST_DIMS)}",
                            file=source, variable=name)
        for d in ("latitude", "longitude"):
            if d not in ds[name].dims:
                raise DataError(f"variable has no {d} dim (dims {ds[name].dims})", file=source, variable=name)
        if ds[name].dtype != np.float32:
            ds[name] = ds[name].astype(np.float32)
    ds = ds.transpose(*[d for d in FORECAST_DIMS if d in ds.dims])
    ds.attrs = dict(raw.attrs)
    ds.attrs["weathergnn_source"] = source
    return ds


def _check_times(ds: xr.Dataset, source: str) -> xr.Dataset:
    init = ds["time"].values
    if not np.issubdtype(init.dtype, np.datetime64):
        raise DataError(f"init times ('time') are not dates (dtype {init.dtype})", file=source, variable="time")
    init = init.astype("datetime64[ns]")
    if np.unique(init).size != init.size:
        dup = init[np.nonzero(np.diff(np.sort(init)) == np.timedelta64(0))[0][0]]
        raise DataError("duplicated init time", file=source, variable="time", time=dup)
    lead = ds["prediction_timedelta"].values
    if not np.issubdtype(lead.dtype, np.timedelta64):
        raise DataError(f"lead times ('prediction_timedelta') are not timedeltas (dtype {lead.dtype}); store "
                        "them as timedelta64 (CF units 'hours since' decode to timedelta)", file=source,
                        variable="prediction_timedelta")
    lead = lead.astype("timedelta64[ns]")
    if (lead < np.timedelta64(0)).any():
        raise DataError(f"negative lead time {lead[lead < np.timedelta64(0)][0]}", file=source,
                        variable="prediction_timedelta")
    if np.unique(lead).size != lead.size:
        raise DataError("duplicated lead times", file=source, variable="prediction_timedelta")
    ds = ds.assign_coords(time=init, prediction_timedelta=lead)
    for dim in ("time", "prediction_timedelta"):
        values = ds[dim].values.astype(np.int64)
        if values.size > 1 and (np.diff(values) < 0).any():
            ds = ds.isel({dim: np.argsort(values, kind="stable")})
    return ds


def _check_level(ds: xr.Dataset, source: str) -> xr.Dataset:
    if "level" not in ds.dims:
        return ds.drop_vars("level") if "level" in ds.variables else ds
    values = np.asarray(ds["level"].values, dtype=np.float64)
    units = str(ds["level"].attrs.get("units", "")).strip().lower()
    if units in ("pa", "pascal", "pascals") or (not units and values.max(initial=0) > 1100):
        values = values / 100.0
    rounded = np.round(values)
    if not np.allclose(values, rounded, atol=1e-3) or (rounded <= 0).any():
        raise DataError(f"level values {values.tolist()} are not whole hPa pressure levels", file=source,
                        variable="level")
    if np.unique(rounded).size != rounded.size:
        raise DataError(f"duplicated levels {rounded.tolist()}", file=source, variable="level")
    ds = ds.assign_coords(level=rounded.astype(np.int64))
    ds["level"].attrs = {"units": "hPa", "long_name": "pressure level"}
    return ds.isel(level=np.argsort(rounded, kind="stable"))


def forecast_channels(ds: xr.Dataset) -> list[str]:
    """Channel names (``variable_level`` / ``variable``) of a canonical forecast dataset, variable-major."""
    from weathergnn.data.channels import channel_name

    out = []
    for name, var in ds.data_vars.items():
        if "level" in var.dims:
            out += [channel_name(str(name), int(lv)) for lv in ds["level"].values]
        else:
            out.append(str(name))
    return out


class ForecastStoreWriter:
    """Write a WeatherBench2-layout forecast store one init time at a time, atomically.

    The store is pre-created (metadata and coordinates only) in a temporary
    directory beside ``path`` with chunks of one init time (and the full
    extent of every other dim); :meth:`write` fills one init time;
    :meth:`commit` checks that every init time was written and renames the
    temporary store onto ``path``. Used as a context manager, a clean exit
    commits and an exception (or an incomplete store) removes the temporary
    store and leaves ``path`` untouched.

    Args:
        path: target store (a directory, e.g. ``forecast.zarr``).
        init_times: ``[N]`` datetime64 init times (the ``time`` dim).
        lead_times: ``[K]`` timedelta64 lead times (``prediction_timedelta``).
        variables: ``{name: levels or None}``: pressure-level variables with
            their levels (hPa), surface variables with None.
        latitude, longitude: grid coordinates (degrees; latitude ascending).
        members: ensemble member numbers (adds the ``number`` dim) or None.
        attrs: global attributes (provenance).
        overwrite: replace an existing store at ``path`` (only at commit).

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False (raised at
            construction, before any work).
        ValueError: an empty or inconsistent coordinate, a level set that differs
            between variables.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        init_times: Sequence,
        lead_times: Sequence,
        variables: Mapping[str, Sequence[int] | None],
        latitude: Sequence[float],
        longitude: Sequence[float],
        members: Sequence[int] | None = None,
        attrs: Mapping | None = None,
        overwrite: bool = False,
    ) -> None:
        self.path = Path(path)
        if self.path.exists() and not overwrite:
            raise FileExistsError(f"forecast store {self.path} exists; pass overwrite to replace it")
        self.init_times = np.asarray(init_times, dtype="datetime64[ns]")
        self.lead_times = np.asarray(lead_times, dtype="timedelta64[ns]")
        if self.init_times.size == 0 or self.lead_times.size == 0:
            raise ValueError("need at least one init time and one lead time")
        level_sets = {tuple(int(x) for x in lv) for lv in variables.values() if lv is not None}
        if len(level_sets) > 1:
            raise ValueError(f"pressure-level variables have different level sets {sorted(level_sets)}")
        self.levels = list(level_sets.pop()) if level_sets else None
        self.variables = {str(k): (None if v is None else [int(x) for x in v]) for k, v in variables.items()}
        self.members = None if members is None else [int(m) for m in members]
        self.overwrite = overwrite
        self._written = np.zeros(self.init_times.size, dtype=bool)
        self.committed = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.parent / f".{self.path.name}.tmp-{uuid.uuid4().hex[:8]}"
        lat = np.asarray(latitude, dtype=np.float64)
        lon = np.asarray(longitude, dtype=np.float64)
        coords = {"time": self.init_times, "prediction_timedelta": self.lead_times,
                  "latitude": lat, "longitude": lon}
        if self.levels is not None:
            coords["level"] = np.asarray(self.levels, dtype=np.int64)
        if self.members is not None:
            coords["number"] = np.asarray(self.members, dtype=np.int64)
        data_vars, encoding = {}, {}
        for name, levels in self.variables.items():
            dims = self._dims(levels is not None)
            shape = tuple(len(coords[d]) for d in dims)
            chunks = (1,) + shape[1:]
            data_vars[name] = (dims, dsa.zeros(shape, chunks=chunks, dtype=np.float32))
            encoding[name] = {"chunks": chunks, "_FillValue": np.float32(np.nan)}
        template = xr.Dataset(data_vars, coords=coords, attrs=dict(attrs or {}))
        template["latitude"].attrs = {"units": "degrees_north", "long_name": "latitude"}
        template["longitude"].attrs = {"units": "degrees_east", "long_name": "longitude"}
        template["time"].attrs = {"long_name": "forecast initialisation time"}
        template["prediction_timedelta"].attrs = {"long_name": "forecast lead time"}
        if self.levels is not None:
            template["level"].attrs = {"units": "hPa", "long_name": "pressure level"}
        encoding["time"] = {"units": "hours since 1970-01-01", "dtype": "int64"}
        encoding["prediction_timedelta"] = {"units": "hours", "dtype": "int64"} if _whole_hours(
            self.lead_times) else {"units": "seconds", "dtype": "int64"}
        try:
            template.to_zarr(self.tmp, mode="w", compute=False, encoding=encoding, zarr_format=2,
                             consolidated=True)
        except BaseException:
            self.abort()
            raise

    def _dims(self, has_level: bool) -> tuple[str, ...]:
        dims = ["time"]
        if self.members is not None:
            dims.append("number")
        dims.append("prediction_timedelta")
        if has_level:
            dims.append("level")
        return (*dims, "latitude", "longitude")

    def write(self, index: int, fields: Mapping[str, np.ndarray]) -> None:
        """Write init time ``index``.

        Args:
            index: position in ``init_times``.
            fields: ``{variable: array}`` for every variable, float32 in physical
                units, shaped ``[number?, K, level?, n_lat, n_lon]`` (the dims of
                the store minus ``time``).

        Raises:
            KeyError: a variable missing; ValueError: a wrong shape or index.
        """
        if not 0 <= index < self.init_times.size:
            raise ValueError(f"init index {index} out of range 0..{self.init_times.size - 1}")
        data_vars = {}
        for name, levels in self.variables.items():
            if name not in fields:
                raise KeyError(f"write({index}): variable {name!r} missing")
            dims = self._dims(levels is not None)[1:]
            arr = np.asarray(fields[name], dtype=np.float32)
            data_vars[name] = (("time", *dims), arr[None])
        ds = xr.Dataset(data_vars)
        ds.to_zarr(self.tmp, region={"time": slice(index, index + 1)}, zarr_format=2, consolidated=True)
        self._written[index] = True

    def commit(self) -> Path:
        """Rename the temporary store onto ``path`` (replacing it when ``overwrite``); return ``path``.

        Raises:
            RuntimeError: some init time was never written (names the first).
        """
        if not self._written.all():
            first = self.init_times[np.argmin(self._written)]
            raise RuntimeError(f"forecast store incomplete: init time {first} was not written "
                               f"({int((~self._written).sum())} of {self._written.size} missing)")
        old = None
        if self.path.exists():
            if not self.overwrite:
                raise FileExistsError(f"forecast store {self.path} appeared meanwhile; not replacing it")
            old = self.path.parent / f".{self.path.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(self.path, old)
        os.replace(self.tmp, self.path)
        fsync_dir(self.path.parent)
        self.committed = True
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.path

    def abort(self) -> None:
        """Remove the temporary store (``path`` is untouched)."""
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(self.tmp)

    def __enter__(self) -> "ForecastStoreWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()
        elif not self.committed:
            try:
                self.commit()
            except BaseException:
                self.abort()
                raise


def _whole_hours(lead: np.ndarray) -> bool:
    return bool((lead % np.timedelta64(1, "h") == np.timedelta64(0)).all())
