"""Per-channel normalisation statistics, computed in one streaming pass.

``NormStats`` holds, per channel (numpy float64 ``[C]``, physical units):

- ``mean``, ``std``: mean and population standard deviation (ddof=0) of the
  field over all grid points, all selected times (and all members);
- ``diff_std``: standard deviation (about its own mean, ddof=0) of the
  one-step difference ``x(t + dt) - x(t)`` over consecutive selected times
  (GraphCast residual normalisation: Lam et al. 2023, Science 382:1416, suppl.
  sec. 3.4). For ensembles, differences are taken within each member only.

Simplifications (documented choices): statistics are *unweighted* (every grid
point counts once, no latitude/area weighting), and ``std`` is about the global
mean (not per grid point). Degenerate channels (std below
``1e-7 * max(|mean|, tiny)``, e.g. a constant field) get ``std = 1.0`` (the
scikit-learn convention: the normalised field is then 0) and a warning;
a degenerate ``diff_std`` (field constant in time) is replaced by ``std``.

Streaming: times are read in blocks (default 64) with
:func:`weathergnn.data.channels.read_channels`; block moments are computed in
float64 and merged with the parallel combination of Chan, Golub & LeVeque
(1979; "Updating formulae and a pairwise algorithm for computing sample
variances"), so the whole dataset is never in memory and the result is
numerically stable. Differences across block boundaries are included (the last
state of the previous block is carried over).
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from weathergnn.atomic import atomic_open
from weathergnn.data.channels import _plan, dataset_source, read_channels, resolve_channels
from weathergnn.data.errors import DataError

__all__ = ["NormStats", "STATS_FORMAT_VERSION", "compute_stats", "load_or_compute_stats", "time_indices"]

STATS_FORMAT_VERSION = 1


@dataclass
class NormStats:
    """Normalisation statistics per channel.

    Attributes:
        channels: channel names, C.
        mean: float64 ``[C]``, physical units.
        std: float64 ``[C]``, physical units (population std; > 0).
        diff_std: float64 ``[C]``, std of the one-time-step difference (> 0).
        count: number of values (grid points x times x members) per channel.
        diff_count: number of difference values per channel.
    """

    channels: list[str]
    mean: np.ndarray
    std: np.ndarray
    diff_std: np.ndarray
    count: int = 0
    diff_count: int = 0

    def __post_init__(self) -> None:
        self.channels = [str(c) for c in self.channels]
        c = len(self.channels)
        for name in ("mean", "std", "diff_std"):
            arr = np.asarray(getattr(self, name), dtype=np.float64).reshape(-1)
            if arr.shape != (c,):
                raise DataError(f"NormStats.{name} has shape {arr.shape}, expected ({c},)", option=name)
            setattr(self, name, arr)

    def select(self, channels: Sequence[str]) -> NormStats:
        """Statistics for a subset / reordering of channels."""
        idx = [self.channels.index(c) for c in channels]
        return NormStats(list(channels), self.mean[idx], self.std[idx], self.diff_std[idx],
                         self.count, self.diff_count)

    def to_json(self) -> str:
        """Serialise (float64 values round-trip exactly through ``repr``)."""
        return json.dumps({
            "format_version": STATS_FORMAT_VERSION,
            "channels": self.channels,
            "mean": [float(x) for x in self.mean],
            "std": [float(x) for x in self.std],
            "diff_std": [float(x) for x in self.diff_std],
            "count": int(self.count),
            "diff_count": int(self.diff_count),
        }, indent=1)

    @classmethod
    def from_json(cls, text: str) -> NormStats:
        """Inverse of :meth:`to_json`. Raises DataError on a malformed or other-version document."""
        try:
            d = json.loads(text)
            if d.get("format_version") != STATS_FORMAT_VERSION:
                raise DataError(f"stats format version {d.get('format_version')} != {STATS_FORMAT_VERSION}",
                                option="stats")
            return cls(d["channels"], np.array(d["mean"]), np.array(d["std"]), np.array(d["diff_std"]),
                       int(d.get("count", 0)), int(d.get("diff_count", 0)))
        except (KeyError, TypeError, json.JSONDecodeError) as e:
            raise DataError(f"malformed stats JSON: {e}", option="stats") from e


class _Moments:
    """Running count / mean / M2 per channel, merged with Chan et al. (1979)."""

    def __init__(self, c: int) -> None:
        self.n = 0
        self.mean = np.zeros(c)
        self.m2 = np.zeros(c)

    def add(self, x: np.ndarray) -> None:
        """x: ``[N, C]`` (any float dtype); accumulated in float64."""
        nb = x.shape[0]
        if nb == 0:
            return
        x = x.astype(np.float64, copy=False)
        mb = x.mean(axis=0)
        m2b = ((x - mb) ** 2).sum(axis=0)
        n = self.n + nb
        delta = mb - self.mean
        self.mean = self.mean + delta * (nb / n)
        self.m2 = self.m2 + m2b + delta**2 * (self.n * nb / n)
        self.n = n

    def std(self) -> np.ndarray:
        return np.sqrt(self.m2 / self.n) if self.n else np.full_like(self.mean, np.nan)


def time_indices(ds: xr.Dataset, times=None) -> np.ndarray:
    """Positional time indices selected by ``times``.

    ``times``: None (all), a ``slice`` of dates (label-based, inclusive), a
    ``(start, end)`` pair of dates (inclusive), or a sequence of datetimes
    (each must be in the dataset).

    Raises:
        DataError: dates not in the dataset, or an empty selection (``time``).
    """
    tv = ds["time"].values
    if times is None:
        idx = np.arange(tv.size)
    elif isinstance(times, slice) or (isinstance(times, tuple) and len(times) == 2):
        start, end = (times.start, times.stop) if isinstance(times, slice) else times
        mask = np.ones(tv.size, bool)
        if start is not None:
            mask &= tv >= np.datetime64(start, "ns")
        if end is not None:
            mask &= tv <= np.datetime64(end, "ns")
        idx = np.nonzero(mask)[0]
    else:
        want = np.asarray(times, dtype="datetime64[ns]").reshape(-1)
        idx = np.searchsorted(tv, want)
        bad = (idx >= tv.size) | (tv[np.minimum(idx, tv.size - 1)] != want)
        if bad.any():
            raise DataError(f"{int(bad.sum())} requested times not in the dataset", time=str(want[bad][0]))
        idx = np.unique(idx)
    if idx.size == 0:
        raise DataError(f"no dataset times selected by {times!r} (dataset: {tv[0]} .. {tv[-1]})", time=str(times))
    return idx


def compute_stats(ds: xr.Dataset, channels: Sequence[str], times=None, *, block: int = 64) -> NormStats:
    """Per-channel mean, std and one-step-difference std in one streaming pass.

    Args:
        ds: canonical dataset (lazy), optionally with a ``member`` dim.
        channels: channel names (validated with :func:`resolve_channels`).
        times: time selection, see :func:`time_indices`. Differences are formed
            only between selected times that are consecutive in the dataset.
        block: number of times read at once.

    Returns:
        :class:`NormStats` (float64).

    Raises:
        DataError: bad channels or times; a non-finite value (names channel and time).
    """
    channels = resolve_channels(list(channels), ds)
    plan = _plan(ds, channels)
    idx = time_indices(ds, times)
    c = len(channels)
    tv = ds["time"].values
    # split the selection into runs of consecutive dataset indices
    breaks = np.nonzero(np.diff(idx) != 1)[0] + 1
    runs = np.split(idx, breaks)
    n_members = ds.sizes["member"] if "member" in ds.dims else None
    mom, dmom = _Moments(c), _Moments(c)
    for m in range(n_members or 1):
        member = m if n_members is not None else None
        for run in runs:
            prev = None  # last state of previous block, [1, C, lat, lon]
            for b0 in range(0, run.size, block):
                i0, i1 = int(run[b0]), int(run[min(b0 + block, run.size) - 1]) + 1
                x = read_channels(ds, channels, slice(i0, i1), member, plan)  # [T, C, lat, lon]
                if not np.isfinite(x).all():
                    t, ch = np.argwhere(~np.isfinite(x).all(axis=(2, 3)))[0]
                    raise DataError(f"non-finite value in channel {channels[ch]!r} at {tv[i0 + t]}",
                                    variable=channels[ch], time=str(tv[i0 + t]),
                                    file=dataset_source(ds))
                flat = np.moveaxis(x, 1, -1).reshape(-1, c)  # [T*lat*lon, C]
                mom.add(flat)
                seq = x if prev is None else np.concatenate([prev, x], axis=0)
                if seq.shape[0] > 1:
                    d = seq[1:].astype(np.float64) - seq[:-1].astype(np.float64)
                    dmom.add(np.moveaxis(d, 1, -1).reshape(-1, c))
                prev = x[-1:]
    mean, std = mom.mean, mom.std()
    diff_std = dmom.std() if dmom.n else np.full(c, np.nan)
    std, diff_std = _guard(channels, mean, std, diff_std)
    return NormStats(channels, mean, std, diff_std, mom.n, dmom.n)


def _guard(channels, mean, std, diff_std):
    floor = 1e-7 * np.maximum(np.abs(mean), 1e-30)
    bad = ~(std > floor)
    if bad.any():
        warnings.warn(f"channels {[channels[i] for i in np.nonzero(bad)[0]]} have (near-)zero std; "
                      "using std = 1.0", RuntimeWarning, stacklevel=3)
        std = np.where(bad, 1.0, std)
    dbad = ~(diff_std > 1e-7 * std)
    if dbad.any():
        warnings.warn(f"channels {[channels[i] for i in np.nonzero(dbad)[0]]} have (near-)zero time-difference "
                      "std (or a single time); using diff_std = std", RuntimeWarning, stacklevel=3)
        diff_std = np.where(dbad, std, diff_std)
    return std, diff_std


def stats_key(dataset_key: str, channels: Sequence[str], ds: xr.Dataset, times=None) -> str:
    """Cache hash over (dataset identity, channels, first/last/count of times, format version)."""
    tv = ds["time"].values[time_indices(ds, times)]
    members = [int(x) for x in ds["member"].values] if "member" in ds.dims else None
    payload = json.dumps({
        "dataset": str(dataset_key),
        "channels": list(channels),
        "first": str(tv[0]), "last": str(tv[-1]), "count": int(tv.size),
        "members": members,
        "version": STATS_FORMAT_VERSION,
    }, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _default_dataset_key(ds: xr.Dataset) -> str:
    src = dataset_source(ds)
    shape = ",".join(f"{k}={v}" for k, v in sorted(ds.sizes.items()))
    return f"{src}|{shape}|{sorted(map(str, ds.data_vars))}|{ds.attrs.get('title', '')}"


def load_or_compute_stats(
    ds: xr.Dataset,
    channels: Sequence[str],
    times=None,
    cache_dir: str | os.PathLike | None = None,
    dataset_key: str | None = None,
    *,
    block: int = 64,
) -> NormStats:
    """Return cached statistics or compute and cache them.

    The cache file is ``<cache_dir>/stats-<hash>.json`` with the hash of
    :func:`stats_key`; it is written atomically (temp file in the same folder,
    then ``os.replace``). ``dataset_key`` identifies the data (e.g. the store
    path or URL); when None it is derived from the source recorded in
    ``ds.encoding``, the sizes, variable names and title. ``cache_dir=None``
    disables caching.
    """
    channels = resolve_channels(list(channels), ds)
    if cache_dir is None:
        return compute_stats(ds, channels, times, block=block)
    cache_dir = Path(cache_dir)
    key = stats_key(dataset_key if dataset_key is not None else _default_dataset_key(ds), channels, ds, times)
    path = cache_dir / f"stats-{key}.json"
    if path.is_file():
        try:
            stats = NormStats.from_json(path.read_text())
            if stats.channels == channels:
                return stats
        except DataError:
            pass  # stale or corrupt: recompute and overwrite
    stats = compute_stats(ds, channels, times, block=block)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "w") as f:
        f.write(stats.to_json())
    return stats
