"""Training windows: (history, targets, forcings, static) samples by init time.

A sample at init time ``t`` (and ensemble member ``m``) is a dict:

- ``inputs``   float32 ``[2, G, C]``: states at ``t - dt``, ``t`` (physical units);
- ``targets``  float32 ``[K, G, C]``: states at ``t + dt ... t + K dt``;
- ``forcings`` float32 ``[2 + K, G, F]``: :func:`forcing_features` at ``t - dt ... t + K dt``;
- ``static``   float32 ``[G, S]``: static fields (see :data:`STATIC_FIELDS`), S may be 0;
- ``init_time`` int64 scalar tensor (ns since 1970-01-01);
- ``member``    int64 scalar tensor (member coordinate value, -1 without ensemble).

``G = n_lat * n_lon``, flattened latitude-major (``g = i_lat * n_lon + i_lon``).
Data are read lazily, per sample, with one contiguous time slice per variable.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import xarray as xr

from weathergnn.data.channels import _plan, dataset_source, read_channels, resolve_channels
from weathergnn.data.errors import DataError
from weathergnn.data.forcings import FORCING_NAMES, forcing_features
from weathergnn.data.checks import check_regular_times

__all__ = ["STATIC_FIELDS", "WindowDataset", "regular_time_step", "static_features"]

#: Standard gravity (m s-2), used to scale surface geopotential.
G0 = 9.80665
#: Static fields used when present, with their scale: ``geopotential_at_surface``
#: is divided by ``g * 1000 m`` (i.e. expressed as orography height in km, about
#: O(1) and zero at sea level); ``land_sea_mask`` is a fraction in [0, 1], unscaled.
STATIC_FIELDS: dict[str, float] = {
    "geopotential_at_surface": G0 * 1000.0,
    "land_sea_mask": 1.0,
}


_source = dataset_source


def regular_time_step(ds: xr.Dataset) -> np.timedelta64:
    """The time step of a regular time axis (windows need one).

    Raises:
        DataError: fewer than 2 times, duplicated or decreasing times, or a
            gap or irregular step (names the first offending times and the source).
    """
    step = check_regular_times(ds["time"].values, _source(ds))
    if step is None:
        raise DataError("need at least 2 times to infer the time step", file=_source(ds))
    return step


def static_features(ds: xr.Dataset) -> tuple[list[str], np.ndarray]:
    """Static fields present in the dataset, scaled per :data:`STATIC_FIELDS`.

    Returns:
        (names, array float32 ``[G, S]``); S = 0 when none are present.
    """
    names = [n for n in STATIC_FIELDS if n in ds.data_vars]
    g = ds.sizes["latitude"] * ds.sizes["longitude"]
    cols = []
    for n in names:
        da = ds[n]
        extra = [d for d in da.dims if d not in ("latitude", "longitude")]
        if extra:  # e.g. a stray length-1 time dim
            da = da.isel({d: 0 for d in extra})
        vals = np.asarray(da.transpose("latitude", "longitude").values, dtype=np.float64).reshape(g)
        if not np.isfinite(vals).all():
            raise DataError(f"non-finite values in static field {n!r}", variable=n, file=_source(ds))
        cols.append(vals / STATIC_FIELDS[n])
    arr = np.stack(cols, axis=1) if cols else np.zeros((g, 0))
    return names, arr.astype(np.float32)


class WindowDataset(torch.utils.data.Dataset):
    """Map-style dataset of forecast windows over a canonical dataset.

    Args:
        ds: canonical dataset (lazy), dims ``(member?, time, level, latitude, longitude)``.
        channels: preset name or channel list (see :func:`resolve_channels`).
        rollout_steps: K, the number of target steps (``1 <= K <= max_rollout_steps``).
        start, end: date range (inclusive, strings or datetimes; None = open). Every
            state used, ``t - dt ... t + max_rollout_steps * dt``, lies inside it.
        members: member coordinate values to use (ensembles only); None = all.
        max_rollout_steps: K_max fixing the index set across a rollout curriculum
            (default ``rollout_steps``).

    Attributes:
        channels (list[str]), time_step (np.timedelta64), grid_lat / grid_lon
        (float64 ``[G]`` degrees, flattened latitude-major), static_names,
        forcing_names, init_times (datetime64[ns] ``[N_init]``), members (list[int] or None).

    Index ``i`` maps to (member ``i // N_init``, init time ``i % N_init``); ``len`` =
    ``N_members * N_init``.

    Raises:
        DataError: bad channels, irregular time axis, range too short, members
            unknown or given for a non-ensemble dataset; at read time, a NaN/inf
            value (names channel, time and source).
    """

    def __init__(
        self,
        ds: xr.Dataset,
        channels: str | Sequence[str],
        rollout_steps: int = 1,
        start=None,
        end=None,
        members: Sequence[int] | None = None,
        max_rollout_steps: int | None = None,
    ) -> None:
        super().__init__()
        self.ds = ds
        self.channels = resolve_channels(channels, ds)
        self._plan = _plan(ds, self.channels)
        self.time_step = regular_time_step(ds)
        self.max_rollout_steps = int(max_rollout_steps if max_rollout_steps is not None else rollout_steps)
        if self.max_rollout_steps < 1:
            raise DataError(f"max_rollout_steps must be >= 1, got {self.max_rollout_steps}", option="max_rollout_steps")
        self.set_rollout_steps(rollout_steps)

        tv = ds["time"].values.astype("datetime64[ns]")
        self.times = tv
        lo, hi = 0, tv.size - 1
        if start is not None:
            lo = int(np.searchsorted(tv, np.datetime64(start, "ns"), side="left"))
        if end is not None:
            hi = int(np.searchsorted(tv, np.datetime64(end, "ns"), side="right")) - 1
        first, last = lo + 1, hi - self.max_rollout_steps  # init time indices, inclusive
        if last < first:
            raise DataError(
                f"time range {start} .. {end} holds {max(hi - lo + 1, 0)} states; need at least "
                f"{2 + self.max_rollout_steps} (2 history + {self.max_rollout_steps} targets); "
                f"dataset covers {tv[0]} .. {tv[-1]}", option="time range", file=_source(ds))
        self._init_index = np.arange(first, last + 1)
        self.init_times = tv[self._init_index]

        if "member" in ds.dims:
            all_members = [int(x) for x in ds["member"].values]
            if members is None:
                members = all_members
            missing = [m for m in members if int(m) not in all_members]
            if missing:
                raise DataError(f"members {missing} not in dataset (has {all_members})", option="members",
                                file=_source(ds))
            self.members: list[int] | None = [int(m) for m in members]
            self._member_index = [all_members.index(m) for m in self.members]
        else:
            if members is not None:
                raise DataError("members given but the dataset has no member dim", option="members",
                                file=_source(ds))
            self.members = None
            self._member_index = [None]

        n_lat, n_lon = ds.sizes["latitude"], ds.sizes["longitude"]
        lat = ds["latitude"].values.astype(np.float64)
        lon = ds["longitude"].values.astype(np.float64)
        self.grid_lat = np.repeat(lat, n_lon)
        self.grid_lon = np.tile(lon, n_lat)
        self.static_names, static = static_features(ds)
        self._static = torch.from_numpy(static)
        self.forcing_names = FORCING_NAMES

    # -- curriculum -------------------------------------------------------------------------
    def set_rollout_steps(self, k: int) -> None:
        """Change K (between epochs); the index set stays the one for ``max_rollout_steps``."""
        k = int(k)
        if not 1 <= k <= self.max_rollout_steps:
            raise DataError(f"rollout_steps must be in 1..{self.max_rollout_steps}, got {k}", option="rollout_steps")
        self.rollout_steps = k

    # -- Dataset ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._member_index) * self._init_index.size

    @property
    def num_nodes(self) -> int:
        return self.grid_lat.size

    def sample_key(self, idx: int) -> tuple[int, np.datetime64]:
        """(member value or -1, init time) of sample ``idx``."""
        m, j = divmod(int(idx), self._init_index.size)
        return (self.members[m] if self.members is not None else -1), self.init_times[j]

    def __getitem__(self, idx: int) -> dict[str, torch.Tensor]:
        n = len(self)
        if idx < 0:
            idx += n
        if not 0 <= idx < n:
            raise IndexError(f"index {idx} out of range for {n} samples")
        m, j = divmod(int(idx), self._init_index.size)
        i = int(self._init_index[j])
        k = self.rollout_steps
        tsl = slice(i - 1, i + k + 1)
        x = read_channels(self.ds, self.channels, tsl, self._member_index[m], self._plan)  # [2+K, C, lat, lon]
        finite = np.isfinite(x)
        if not finite.all():
            t, c = np.argwhere(~finite.all(axis=(2, 3)))[0]
            raise DataError(f"non-finite value (NaN/inf) in channel {self.channels[c]!r}"
                            + (f", member {self.members[m]}" if self.members is not None else ""),
                            variable=self.channels[c], time=self.times[i - 1 + t], file=_source(self.ds))
        steps = x.shape[0]
        x = x.reshape(steps, x.shape[1], -1).transpose(0, 2, 1)  # [2+K, G, C]
        x = torch.from_numpy(np.ascontiguousarray(x))
        forc = forcing_features(self.times[tsl], self.grid_lat, self.grid_lon)  # [2+K, G, F]
        return {
            "inputs": x[:2],
            "targets": x[2:],
            "forcings": torch.from_numpy(forc),
            "static": self._static,
            "init_time": torch.tensor(self.times[i].astype("datetime64[ns]").astype(np.int64), dtype=torch.int64),
            "member": torch.tensor(self.members[m] if self.members is not None else -1, dtype=torch.int64),
        }
