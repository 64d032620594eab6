"""Channel names, presets, and stacking of dataset variables into channels.

A *channel* is one 2-D field per time step:

- ``variable`` for a surface field, e.g. ``2m_temperature``,
  ``mean_sea_level_pressure``;
- ``variable_level`` for a pressure-level field, the level in hPa as a trailing
  ``_<int>``, e.g. ``geopotential_500`` (z500), ``temperature_850`` (t850).

Variable names are WeatherBench2's. Surface names that start with digits
(``2m_temperature``, ``10m_u_component_of_wind``) or end in a non-integer
suffix (``total_precipitation_6hr``) are surface channels: only a trailing
``_<digits>`` is a level.

The canonical dataset layout is described in ``docs/architecture.md``: dims
``(member?, time, level, latitude, longitude)`` for pressure-level variables,
``(member?, time, latitude, longitude)`` for surface variables.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import xarray as xr

from weathergnn.data.errors import DataError

__all__ = [
    "ATMOSPHERIC_SEED",
    "PRESETS",
    "SURFACE_SEED",
    "WEATHERBENCH_LEVELS",
    "channels_for",
    "channel_name",
    "dataset_source",
    "read_channels",
    "resolve_channels",
    "select_channels",
    "split_channel",
]

_LEVEL_RE = re.compile(r"^(?P<var>.+)_(?P<level>\d+)$")

#: The 13 WeatherBench pressure levels (hPa).
WEATHERBENCH_LEVELS: tuple[int, ...] = (50, 100, 150, 200, 250, 300, 400, 500, 600, 700, 850, 925, 1000)
#: The 6 atmospheric variables of the seed configuration.
ATMOSPHERIC_SEED: tuple[str, ...] = (
    "geopotential",
    "temperature",
    "u_component_of_wind",
    "v_component_of_wind",
    "specific_humidity",
    "vertical_velocity",
)
#: The 6 surface variables of the seed configuration.
SURFACE_SEED: tuple[str, ...] = (
    "2m_temperature",
    "10m_u_component_of_wind",
    "10m_v_component_of_wind",
    "mean_sea_level_pressure",
    "surface_pressure",
    "total_column_water_vapour",
)


def dataset_source(ds: xr.Dataset) -> str:
    """The source label of a dataset for error messages: ``attrs["weathergnn_source"]``
    (set by ``reader.open_dataset``), else ``encoding["source"]``, else ``"<in-memory dataset>"``."""
    return str(ds.attrs.get("weathergnn_source") or ds.encoding.get("source") or "<in-memory dataset>")


def split_channel(name: str) -> tuple[str, int | None]:
    """Split a channel name into ``(variable, level)``; ``level`` is None for surface.

    ``split_channel("geopotential_500") == ("geopotential", 500)``,
    ``split_channel("10m_u_component_of_wind") == ("10m_u_component_of_wind", None)``.
    A level is only a trailing ``_<digits>`` (hPa).

    Raises:
        DataError: empty or non-string name.
    """
    if not isinstance(name, str) or not name:
        raise DataError(f"invalid channel name {name!r}", variable=str(name))
    m = _LEVEL_RE.match(name)
    if m is None:
        return name, None
    return m.group("var"), int(m.group("level"))


def channel_name(variable: str, level: int | None = None) -> str:
    """Inverse of :func:`split_channel`."""
    return variable if level is None else f"{variable}_{int(level)}"


def channels_for(
    atmospheric_variables: Sequence[str],
    levels: Sequence[int],
    surface_variables: Sequence[str] = (),
) -> list[str]:
    """Channel list: variable-major over ``atmospheric_variables`` x ``levels``, then surface.

    Example: ``channels_for(["geopotential"], [500, 850], ["2m_temperature"]) ==
    ["geopotential_500", "geopotential_850", "2m_temperature"]``.
    """
    out = [channel_name(v, lv) for v in atmospheric_variables for lv in levels]
    out += [channel_name(v) for v in surface_variables]
    return out


#: Named channel presets (lists of channel names).
PRESETS: dict[str, list[str]] = {
    # GraphCast / seed configuration: 6 x 13 + 6 = 84 channels.
    "seed84": channels_for(ATMOSPHERIC_SEED, WEATHERBENCH_LEVELS, SURFACE_SEED),
    # Held-Suarez store (../shared/data/heldsuarez): 4 x 7 + 1 = 29 channels.
    # mean_sea_level_pressure is left out: it equals surface_pressure there.
    "heldsuarez": channels_for(
        ("geopotential", "temperature", "u_component_of_wind", "v_component_of_wind"),
        (100, 200, 300, 500, 700, 850, 1000),
        ("surface_pressure",),
    ),
    # ERA5 ensemble of data assimilations test file: z and t at 500 and 850 hPa.
    "era5-eda-zt": channels_for(("geopotential", "temperature"), (500, 850)),
    # weathergnn.data.demo.make_demo_dataset() with its default levels: 4 x 2 + 1 = 9.
    "demo": channels_for(
        ("geopotential", "temperature", "u_component_of_wind", "v_component_of_wind"),
        (500, 850),
        ("mean_sea_level_pressure",),
    ),
}


def _describe(ds: xr.Dataset) -> str:
    vars_ = [str(v) for v in ds.data_vars if "time" in ds[v].dims]
    levels = [int(x) for x in ds["level"].values] if "level" in ds.coords else []
    return f"dataset has variables {vars_} and levels {levels}"


def _check_channel(name: str, ds: xr.Dataset) -> None:
    var, level = split_channel(name)
    if name in ds.data_vars and "level" not in ds[name].dims:
        var, level = name, None  # a surface variable whose name ends in _<int>
    if var not in ds.data_vars:
        raise DataError(f"channel {name!r}: variable {var!r} not in dataset; {_describe(ds)}", variable=var)
    da = ds[var]
    if "time" not in da.dims:
        raise DataError(f"channel {name!r}: variable {var!r} has no time dim (static field); {_describe(ds)}",
                        variable=var)
    if level is None:
        if "level" in da.dims:
            raise DataError(f"channel {name!r}: {var!r} is a pressure-level variable; name a level as "
                            f"'{var}_<hPa>'; {_describe(ds)}", variable=var)
        return
    if "level" not in da.dims:
        raise DataError(f"channel {name!r}: {var!r} is a surface variable (no level dim); {_describe(ds)}",
                        variable=var)
    if level not in set(int(x) for x in ds["level"].values):
        raise DataError(f"channel {name!r}: level {level} hPa not in dataset; {_describe(ds)}", variable=name)


def resolve_channels(spec: str | Sequence[str], ds: xr.Dataset) -> list[str]:
    """Resolve a preset name or an explicit channel list against a dataset.

    Args:
        spec: a key of :data:`PRESETS` or a list of channel names.
        ds: canonical dataset.

    Returns:
        The channel names, validated (variable present with a time dim, level present).

    Raises:
        DataError: unknown preset (``option``), missing variable or level (names
            the channel and what the dataset has), duplicate channels.
    """
    if isinstance(spec, str):
        if spec not in PRESETS:
            raise DataError(f"unknown channel preset {spec!r}; presets are {sorted(PRESETS)}", option="channels")
        channels = list(PRESETS[spec])
    else:
        channels = [str(c) for c in spec]
    if not channels:
        raise DataError("empty channel list", option="channels")
    dup = sorted({c for c in channels if channels.count(c) > 1})
    if dup:
        raise DataError(f"duplicate channels {dup}", option="channels")
    for c in channels:
        _check_channel(c, ds)
    return channels


def _channel_array(ds: xr.Dataset, name: str) -> xr.DataArray:
    var, level = split_channel(name)
    if name in ds.data_vars and "level" not in ds[name].dims:
        var, level = name, None
    da = ds[var]
    if level is not None:
        da = da.sel(level=level, drop=True)
    return da


def select_channels(ds: xr.Dataset, channels: Sequence[str]) -> xr.DataArray:
    """Stack channels into one lazy array.

    Returns:
        DataArray float32 with dims ``(member?, time, channel, latitude, longitude)``
        (``member`` only when the dataset has it), coordinate ``channel`` = names.
        Lazy when the dataset is (dask / lazy backend arrays): nothing is loaded.

    Raises:
        DataError: as :func:`resolve_channels`.
    """
    channels = resolve_channels(list(channels), ds)
    arrays = [_channel_array(ds, c) for c in channels]
    stacked = xr.concat(arrays, dim=xr.DataArray(channels, dims="channel", name="channel"),
                        coords="minimal", compat="override", join="exact")
    lead = ["member"] if "member" in stacked.dims else []
    stacked = stacked.transpose(*lead, "time", "channel", "latitude", "longitude")
    if stacked.dtype != np.float32:
        stacked = stacked.astype(np.float32)
    return stacked.rename("channels")


def _plan(ds: xr.Dataset, channels: Sequence[str]) -> list[tuple[str, list[int] | None, list[int]]]:
    """Group channels by variable: [(variable, levels or None, channel positions)]."""
    groups: dict[str, tuple[list[int] | None, list[int]]] = {}
    for i, name in enumerate(channels):
        var, level = split_channel(name)
        if name in ds.data_vars and "level" not in ds[name].dims:
            var, level = name, None
        levels, pos = groups.setdefault(var, ([] if level is not None else None, []))
        if level is not None:
            levels.append(level)
        pos.append(i)
    return [(v, lv, pos) for v, (lv, pos) in groups.items()]


def read_channels(
    ds: xr.Dataset,
    channels: Sequence[str],
    time_index: slice,
    member_index: int | None = None,
    plan: list | None = None,
) -> np.ndarray:
    """Read a block of consecutive times into memory, one read per variable.

    Args:
        ds: canonical dataset (channels already validated with :func:`resolve_channels`).
        channels: channel names, C of them.
        time_index: positional slice along ``time``.
        member_index: positional index along ``member`` (required iff the dataset has it).
        plan: cached result of ``_plan(ds, channels)`` (optional).

    Returns:
        float32 array ``[T, C, n_lat, n_lon]`` (physical units).
    """
    plan = plan if plan is not None else _plan(ds, channels)
    out = None
    for var, levels, pos in plan:
        da = ds[var]
        sel: dict = {"time": time_index}
        if "member" in da.dims:
            if member_index is None:
                raise DataError(f"{var!r} has a member dim; a member must be chosen", variable=var, option="members")
            sel["member"] = member_index
        da = da.isel(sel)
        if levels is not None:
            da = da.sel(level=levels).transpose("time", "level", "latitude", "longitude")
            vals = np.asarray(da.values, dtype=np.float32)
        else:
            vals = np.asarray(da.transpose("time", "latitude", "longitude").values, dtype=np.float32)[:, None]
        if out is None:
            out = np.empty((vals.shape[0], len(channels), vals.shape[2], vals.shape[3]), dtype=np.float32)
        out[:, pos] = vals
    assert out is not None
    return out
