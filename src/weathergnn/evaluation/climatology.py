"""Day-of-year x hour-of-day climatology of the truth, for ACC and the climatology baseline.

Source: WeatherBench 2 (Rasp et al. 2024, sec. 3.3; ``weatherbench2/utils.py``
``compute_hourly_stat`` / ``compute_rolling_stat`` / ``create_window_weights``),
following ECMWF practice (Ben Bouallegue et al., "Scale-dependent verification
of ensemble forecasts").

Definition (per variable, level and grid point; ``d`` day of year 1..366,
``h`` hour of day):

    ``clim[d, h] = sum_j w_j S[d + j, h] / sum_j w_j N[d + j, h]``,
    ``j = -H .. H``, ``window_days = 2H + 1``, day index circular over 366,

with ``S[d, h]`` the sum and ``N[d, h]`` the number of samples (times x
members) at day of year ``d`` and hour ``h`` in the climatology period, and
WB2's triangular window weights ``w_j = 1 - |j| / H`` (zero at ``|j| = H``,
so ``window_days = 61`` averages 59 days with non-zero weight;
``window_shape="boxcar"`` gives ``w_j = 1``). This equals WB2's weighted mean
over (window, year) of the per-year fields with missing days skipped. ``S`` and
``N`` are accumulated in one streaming pass over blocks of ``chunk_times`` times,
one variable at a time, so memory is bounded by one variable's
``[366, hour, (level,) lat, lon]`` accumulator.

Day of year is the calendar one (pandas ``dayofyear``, as WB2): Feb 29 is day
60, and in a leap year every later day is shifted by one (Dec 31 is day 366).
As in WB2, day 366 of a non-leap year is filled with that year's day 365
(Dec 31), i.e. bin 366 is "Dec 31" in every year; for ``window_days=None``
this duplicate is not used.

``window_days=None``: no day-of-year dependence, the mean per hour of day over
the whole period (dims ``(hour, ...)``, no ``dayofyear``). Use it for
statistically stationary data such as Held-Suarez, whose validation days of
year are not in the training period.

A ``(dayofyear, hour)`` cell with no sample within its window is NaN;
:func:`climatology_at` raises a :class:`DataError` naming the valid time,
variable and climatology period when such a cell is requested.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr

from weathergnn.atomic import fsync_dir
from weathergnn.data.errors import DataError

__all__ = [
    "N_DAYS",
    "window_weights",
    "dayofyear",
    "compute_climatology",
    "climatology_at",
    "load_or_compute_climatology",
]

N_DAYS = 366
_CACHE_VERSION = 1


def window_weights(window_days: int, shape: Literal["triangular", "boxcar"] = "triangular") -> np.ndarray:
    """Weights ``w_j``, ``j = -H .. H``, of the day-of-year window (WB2 ``create_window_weights``).

    Args:
        window_days: odd window length ``2H + 1`` >= 1 (1: no smoothing).
        shape: ``"triangular"`` (WB2: ``1 - |j|/H``, zero at the ends) or ``"boxcar"``.

    Returns:
        ``[window_days]`` float64 (unnormalised; the climatology divides by
        the weighted sample count).

    Raises:
        ValueError: even or non-positive ``window_days``, longer than 366, or unknown shape.
    """
    if not isinstance(window_days, (int, np.integer)) or window_days < 1 or window_days % 2 == 0:
        raise ValueError(f"window_days must be a positive odd integer (or None), got {window_days!r}")
    if window_days > N_DAYS:
        raise ValueError(f"window_days must be at most {N_DAYS}, got {window_days}")
    if shape not in ("triangular", "boxcar"):
        raise ValueError(f"window_shape must be 'triangular' or 'boxcar', got {shape!r}")
    half = window_days // 2
    j = np.arange(-half, half + 1, dtype=np.float64)
    if shape == "boxcar" or half == 0:
        return np.ones_like(j)
    return 1.0 - np.abs(j) / half


def dayofyear(times: Any) -> np.ndarray:
    """Calendar day of year 1..366 of ``times`` (Feb 29 = 60; Dec 31 of a leap year = 366)."""
    return pd.DatetimeIndex(np.asarray(times, dtype="datetime64[ns]")).day_of_year.to_numpy().astype(np.int64)


def _circulant(weights: np.ndarray) -> np.ndarray:
    """``[366, 366]`` matrix ``A[d, e] = w_j`` where ``e = d + j (mod 366)``."""
    half = weights.size // 2
    a = np.zeros((N_DAYS, N_DAYS))
    d = np.arange(N_DAYS)
    for j, wj in zip(range(-half, half + 1), weights):
        np.add.at(a, (d, (d + j) % N_DAYS), wj)
    return a


def _accumulate(sums: np.ndarray, cells: np.ndarray, block: np.ndarray) -> None:
    """``sums[c] += sum of block rows with cells == c`` (rows with cell -1 skipped)."""
    keep = cells >= 0
    if not keep.any():
        return
    cells, block = cells[keep], block[keep]
    order = np.argsort(cells, kind="stable")
    cells = cells[order]
    uniq, starts = np.unique(cells, return_index=True)
    sums[uniq] += np.add.reduceat(block[order], starts, axis=0)


def compute_climatology(
    ds: xr.Dataset,
    variables: Sequence[str] | None = None,
    start: Any = None,
    end: Any = None,
    window_days: int | None = 61,
    hour_step: int | None = None,
    *,
    window_shape: Literal["triangular", "boxcar"] = "triangular",
    chunk_times: int = 256,
    dtype: Any = np.float32,
) -> xr.Dataset:
    """Climatological mean per (day of year, hour of day) in one streaming pass.

    See the module docstring for the definition (WB2 rolling-window
    climatology), leap years and ``window_days=None``.

    Args:
        ds: canonical dataset (:func:`weathergnn.data.reader.open_dataset`):
            variables with dims ``(member?, time, level?, latitude, longitude)``,
            dask-backed or in memory. Members count as extra samples.
        variables: variables to use (WB2 names); ``None``: every variable with
            a ``time`` dim.
        start, end: climatology period, inclusive (anything ``ds.sel(time=slice(start, end))``
            accepts); ``None``: open-ended.
        window_days: odd window length in days, or ``None`` for no
            day-of-year dependence.
        hour_step: keep hours ``0, hour_step, ..`` of the day (``24 % hour_step == 0``),
            dropping samples at other hours; ``None``: the hours present in the period.
        window_shape: ``"triangular"`` (WB2) or ``"boxcar"``.
        chunk_times: times read per block (bounds memory).
        dtype: dtype of the returned fields (sums are float64).

    Returns:
        Dataset with, per variable, dims ``(dayofyear, hour, level?, latitude,
        longitude)`` (``dayofyear`` = 1..366) or ``(hour, level?, latitude,
        longitude)`` for ``window_days=None``; spatial coordinates copied from
        ``ds``; attrs ``climatology_start``/``climatology_end`` (first/last time
        used), ``window_days`` (``"none"`` for None), ``window_shape``,
        ``n_times``. Cells without samples are NaN.

    Raises:
        DataError: unknown variable, no time in the period, no sample at the
            requested hours, a NaN/inf in the data (naming variable and time),
            bad ``hour_step``/``window_days``.
    """
    if window_days is not None:
        try:
            wts = window_weights(window_days, window_shape)
        except ValueError as exc:
            raise DataError(str(exc), option="window_days") from None
    if "time" not in ds.dims:
        raise DataError("dataset has no 'time' dimension", option="ds")
    if variables is None:
        variables = [v for v in ds.data_vars if "time" in ds[v].dims]
    variables = list(variables)
    for v in variables:
        if v not in ds.data_vars:
            available = ", ".join(map(str, ds.data_vars))
            raise DataError(f"variable {v!r} not in dataset; available: {available}", variable=v)
        if "time" not in ds[v].dims:
            raise DataError(f"variable {v!r} has no time dimension (static field)", variable=v)
    sub = ds[variables].sel(time=slice(start, end))
    period = f"{start}..{end}"
    if sub.sizes["time"] == 0:
        raise DataError(f"no time in the climatology period {period}", option="start/end")
    times = sub["time"].values
    tindex = pd.DatetimeIndex(times)
    doy = tindex.day_of_year.to_numpy().astype(np.int64)
    hod = tindex.hour.to_numpy().astype(np.int64)
    if hour_step is None:
        hours = np.unique(hod)
    else:
        if not isinstance(hour_step, (int, np.integer)) or hour_step < 1 or 24 % hour_step:
            raise DataError(f"hour_step must divide 24, got {hour_step!r}", option="hour_step")
        hours = np.arange(0, 24, hour_step)
    hour_idx = np.full(hod.shape, -1)
    for i, h in enumerate(hours):
        hour_idx[hod == h] = i
    used = hour_idx >= 0
    if not used.any():
        raise DataError(f"no time at hours {hours.tolist()} in period {period}", option="hour_step")
    n_h = hours.size
    cells = np.where(used, (doy - 1) * n_h + hour_idx, -1)
    # Dec 31 of a non-leap year also fills bin 366 (WB2 fillna with day 365)
    dup = used & (doy == 365) & ~tindex.is_leap_year
    dup_cells = np.where(dup, hour_idx, -1)  # into a [hour, ...] accumulator
    n_tot = np.bincount(cells[used], minlength=N_DAYS * n_h).astype(np.float64)
    n_dup = np.zeros(N_DAYS * n_h)
    n_dup[(N_DAYS - 1) * n_h :] = np.bincount(dup_cells[dup], minlength=n_h)
    if window_days is not None:
        circ = _circulant(wts)

    attrs = {
        "climatology_start": str(np.datetime_as_string(times[used][0], unit="s")),
        "climatology_end": str(np.datetime_as_string(times[used][-1], unit="s")),
        "window_days": "none" if window_days is None else int(window_days),
        "window_shape": window_shape,
        "n_times": int(used.sum()),
        "source": "weathergnn.evaluation.climatology.compute_climatology (WeatherBench2 rolling-window climatology)",
    }
    out = {}
    for v in variables:
        da = sub[v]
        extra = [d for d in da.dims if d not in ("time", "latitude", "longitude", "level")]
        if extra and extra != ["member"]:
            raise DataError(
                f"unexpected dims {extra} (canonical: member?, time, level?, latitude, longitude)", variable=v
            )
        n_mem = da.sizes.get("member", 1)
        spatial = [d for d in ("level", "latitude", "longitude") if d in da.dims]
        order = ["time"] + (["member"] if "member" in da.dims else []) + spatial
        da = da.transpose(*order)
        sshape = tuple(da.sizes[d] for d in spatial)
        sums = np.zeros((N_DAYS * n_h,) + sshape)
        dsum = np.zeros((n_h,) + sshape)
        for s0 in range(0, times.size, chunk_times):
            sl = slice(s0, min(s0 + chunk_times, times.size))
            if not used[sl].any():
                continue
            block = np.asarray(da.isel(time=sl).values, dtype=np.float64)
            if not np.all(np.isfinite(block)):
                bad = np.nonzero(~np.isfinite(block.reshape(block.shape[0], -1)).all(axis=1))[0][0]
                raise DataError("NaN or inf in the climatology period", variable=v, time=times[sl][bad])
            if "member" in da.dims:
                block = block.sum(axis=1)
            _accumulate(sums, cells[sl], block)
            _accumulate(dsum, dup_cells[sl], block)
        sums = sums.reshape((N_DAYS, n_h) + sshape)
        counts = (n_tot * n_mem).reshape(N_DAYS, n_h)
        if window_days is None:
            num = sums.sum(axis=0)
            den = counts.sum(axis=0)
            dims = ["hour"] + spatial
        else:
            sums[N_DAYS - 1] += dsum
            counts = counts + (n_dup * n_mem).reshape(N_DAYS, n_h)
            num = np.tensordot(circ, sums, axes=(1, 0))
            den = circ @ counts
            dims = ["dayofyear", "hour"] + spatial
        del dsum
        den_b = den.reshape(den.shape + (1,) * len(sshape))
        with np.errstate(invalid="ignore", divide="ignore"):
            clim = np.where(den_b > 0, num / np.where(den_b > 0, den_b, 1.0), np.nan)
        coords = {d: ds[d].values for d in spatial if d in ds.coords}
        coords["hour"] = hours.astype(np.int64)
        if window_days is not None:
            coords["dayofyear"] = np.arange(1, N_DAYS + 1, dtype=np.int64)
        out[v] = xr.DataArray(clim.astype(dtype), dims=dims, coords=coords, attrs=dict(ds[v].attrs))
        del sums, num, clim
    return xr.Dataset(out, attrs=attrs)


def climatology_at(clim: xr.Dataset, valid_times: Any) -> xr.Dataset:
    """Climatology at the given valid times (vectorised lookup).

    Each valid time ``T`` gets ``clim[dayofyear(T), hour(T)]`` (WB2 ``ACC``
    selects the same way); a climatology without ``dayofyear`` (``window_days=None``)
    or ``hour`` dim is constant along it.

    Args:
        clim: from :func:`compute_climatology` / :func:`load_or_compute_climatology`.
        valid_times: ``[time]`` datetime64 (anything ``pd.DatetimeIndex`` accepts).

    Returns:
        Dataset with dims ``(time, level?, latitude, longitude)``, ``time =
        valid_times``, values loaded in memory.

    Raises:
        DataError: a valid time's hour of day is not in the climatology, or its
            (day of year, hour) cell has no sample (names the valid time,
            variable and climatology period).
    """
    vt = pd.DatetimeIndex(np.atleast_1d(np.asarray(valid_times, dtype="datetime64[ns]")))
    period = f"{clim.attrs.get('climatology_start', '?')}..{clim.attrs.get('climatology_end', '?')}"
    window = clim.attrs.get("window_days", "?")
    idx: dict[str, xr.DataArray] = {}
    if "hour" in clim.dims:
        hours = clim["hour"].values
        pos = pd.Index(hours).get_indexer(vt.hour)
        if (pos < 0).any():
            bad = vt[np.nonzero(pos < 0)[0][0]]
            raise DataError(
                f"hour {bad.hour} of valid time not in the climatology hours {hours.tolist()} "
                f"(climatology period {period})",
                time=bad,
            )
        if ((vt.minute != 0) | (vt.second != 0)).any():
            bad = vt[np.nonzero((vt.minute != 0) | (vt.second != 0))[0][0]]
            raise DataError("valid time is not on the hour; the climatology is per hour of day", time=bad)
        idx["hour"] = xr.DataArray(pos, dims="time")
    if "dayofyear" in clim.dims:
        pos = pd.Index(clim["dayofyear"].values).get_indexer(vt.day_of_year)
        if (pos < 0).any():
            bad = vt[np.nonzero(pos < 0)[0][0]]
            raise DataError(f"day of year {bad.day_of_year} not in the climatology (period {period})", time=bad)
        idx["dayofyear"] = xr.DataArray(pos, dims="time")
    out = clim.isel(idx) if idx else clim.expand_dims(time=len(vt))
    out = out.drop_vars([c for c in ("hour", "dayofyear") if c in out.coords]).assign_coords(time=vt.values)
    out = out.transpose("time", ...).load()
    for v in out.data_vars:
        vals = out[v].values
        nan_t = np.isnan(vals.reshape(vals.shape[0], -1)).any(axis=1)
        if nan_t.any():
            bad = vt[np.nonzero(nan_t)[0][0]]
            where = f"day of year {bad.day_of_year}, " if "dayofyear" in clim.dims else ""
            raise DataError(
                f"climatology has no sample for {where}hour {bad.hour} of this valid time "
                f"(climatology period {period}, window_days {window}); use a longer period or "
                "window_days=None for stationary data",
                variable=str(v),
                time=bad,
            )
    return out


def _digest(ds: xr.Dataset, key: str, variables: Sequence[str] | None, params: dict[str, Any]) -> str:
    grid = {d: np.asarray(ds[d].values).tolist() for d in ("level", "latitude", "longitude") if d in ds.coords}
    payload = {
        "version": _CACHE_VERSION,
        "key": key,
        "variables": sorted(variables) if variables is not None else None,
        "params": params,
        "grid": hashlib.sha256(json.dumps(grid).encode()).hexdigest(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def load_or_compute_climatology(
    ds: xr.Dataset,
    variables: Sequence[str] | None,
    start: Any,
    end: Any,
    window_days: int | None,
    cache_dir: str | os.PathLike[str],
    key: str,
    *,
    hour_step: int | None = None,
    window_shape: Literal["triangular", "boxcar"] = "triangular",
    dtype: Any = np.float32,
) -> xr.Dataset:
    """:func:`compute_climatology` with an on-disk netCDF cache.

    The file ``cache_dir/climatology-<key>-<digest>.nc`` is keyed by ``key``
    (the caller's name for the truth source, e.g. its path), the variables,
    period, window, hours, dtype and the grid (level/latitude/longitude
    values). It is written atomically (temp file in ``cache_dir``, fsync, then
    ``os.replace``), so a present file is complete. A cached file that cannot
    be read or whose stored digest differs is recomputed (with a warning).

    Args:
        ds, variables, start, end, window_days, hour_step, window_shape, dtype:
            as :func:`compute_climatology`.
        cache_dir: directory of the cache (created if missing).
        key: identifies the truth source.

    Returns:
        the climatology Dataset, loaded in memory.

    Raises:
        DataError: as :func:`compute_climatology`.
        OSError: the cache directory is not writable.
    """
    params = {
        "start": str(start),
        "end": str(end),
        "window_days": window_days,
        "hour_step": hour_step,
        "window_shape": window_shape,
        "dtype": np.dtype(dtype).name,
    }
    digest = _digest(ds, key, variables, params)
    safe_key = "".join(c if c.isalnum() or c in "-_" else "_" for c in str(key))[-60:].strip("_") or "truth"
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"climatology-{safe_key}-{digest}.nc"
    if path.exists():
        try:
            with xr.open_dataset(path) as cached:
                if cached.attrs.get("weathergnn_digest") == digest:
                    return cached.load()
            warnings.warn(f"climatology cache {path} does not match the request; recomputing", stacklevel=2)
        except (OSError, ValueError) as exc:
            warnings.warn(f"climatology cache {path} unreadable ({exc}); recomputing", stacklevel=2)
    clim = compute_climatology(
        ds, variables, start, end, window_days, hour_step, window_shape=window_shape, dtype=dtype
    )
    clim.attrs["weathergnn_digest"] = digest
    clim.attrs["weathergnn_key"] = str(key)
    fd, tmp = tempfile.mkstemp(dir=cache, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        clim.to_netcdf(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(cache)
    return clim
