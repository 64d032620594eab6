"""Score a WeatherBench2-layout forecast store against a truth source, with baselines.

``evaluate_forecast`` streams over init times: for each init it loads the
forecast ``[member?, lead, channel, latitude, longitude]`` and the truth at
the valid times (and at the init time, for persistence), computes per-init
area-weighted scores with :mod:`weathergnn.evaluation.metrics` and
:mod:`weathergnn.evaluation.ensemble` into small ``[sample, lead, channel]``
arrays, and aggregates over samples at the end. Memory stays bounded by one
init time's fields however many init times.

Systems scored in the same run (WeatherBench2, Rasp et al. 2024, sec. 5):
``model`` (the forecast store), ``persistence`` (the truth at the init time
held fixed) and ``climatology`` (the climatological mean at the valid time,
day-of-year x hour-of-day from a chosen period of the truth, see
:mod:`weathergnn.evaluation.climatology`).

Metrics per system, channel and lead time, area weights from
:func:`weathergnn.graphs.features.row_area_weights` (cell area; Gauss-Legendre
weights on Gaussian grids), ``<.>`` the area-weighted spatial mean, ``s`` a
sample (an init time, or an (init, member) pair):

- ``rmse``            = ``mean_s sqrt(<(f - o)^2>_s)`` (WB2 ``RMSESqrtBeforeTimeAvg``, headline);
- ``rmse_mse_first``  = ``sqrt(mean_s <(f - o)^2>_s)`` (WB2 ``RMSE``);
- ``bias`` = ``mean_s <f - o>_s``; ``mae`` = ``mean_s <|f - o|>_s``;
- ``acc``  = ``mean_s ACC_s``, ``ACC_s = <f'o'> / sqrt(<f'^2><o'^2>)``, anomalies
  from the climatology at the valid time (WB2 ``ACC``; undefined, NaN, for the
  climatology itself).

Ensembles (a ``number`` dim in the forecast):

- ``member_mode="paired"``: the truth has members too; forecast member ``m``
  (started from truth member ``m``) is scored against truth member ``m``;
  samples are (init, member) pairs; deterministic metrics only.
- ``member_mode="ensemble"``: the forecast members form an ensemble verified
  against one truth trajectory (the truth without members, or each of
  ``truth_members`` in turn, each pair (init, truth member) a sample). The
  deterministic metrics score the ensemble mean; in addition ``ens_mean_rmse``
  (= model ``rmse``), ``spread`` = ``mean_s sqrt(<s^2>_s)`` (unbiased ensemble
  variance, WB2 ``EnsembleStddevSqrtBeforeTimeAvg``), ``spread_skill`` =
  spread / ens_mean_rmse, and ``crps`` = ``mean_s <fair CRPS>_s`` (WB2 ``CRPS``,
  Ferro 2014). Truth members must not be among the forecast members.

Truth coverage: a valid time missing from the truth (e.g. beyond its end)
leaves that (sample, lead) out of the average with a warning naming the first
missing time; ``n_samples[lead]`` says how many samples each lead averages.
A lead with no sample at all is reported as NaN. An init time missing from
the truth leaves persistence out for that sample.

Spectra (``spectra_lead_hours``, ``spectra_levels``): the zonal kinetic-energy
spectrum per latitude (WB2 ``ZonalEnergySpectrum``) of the forecast and of
the truth at the same valid times, averaged over samples (and members) and over
the latitudes of ``spectra_lat_band`` (both hemispheres), and their ratio per
wavenumber band; plus the spherical-harmonic spectrum when torch-harmonics is
installed.
"""

from __future__ import annotations

import logging
import os
import time as _time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from weathergnn.data.channels import channel_name, dataset_source, split_channel
from weathergnn.data.checks import format_time
from weathergnn.data.errors import DataError
from weathergnn.data.reader import open_dataset
from weathergnn.evaluation import ensemble as ens
from weathergnn.evaluation import metrics as met
from weathergnn.evaluation.forecast_store import forecast_channels, open_forecast
from weathergnn.graphs.features import row_area_weights

__all__ = ["SYSTEMS", "DETERMINISTIC_METRICS", "ENSEMBLE_METRICS", "EvaluateOptions", "SpectrumResult",
           "MapFields", "EvaluationResult", "evaluate_forecast"]

log = logging.getLogger(__name__)

#: Systems scored in one run.
SYSTEMS: tuple[str, ...] = ("model", "persistence", "climatology")
#: Deterministic metrics (per system).
DETERMINISTIC_METRICS: tuple[str, ...] = ("rmse", "rmse_mse_first", "bias", "mae", "acc")
#: Ensemble metrics (model only, ``member_mode="ensemble"``).
ENSEMBLE_METRICS: tuple[str, ...] = ("ens_mean_rmse", "spread", "spread_skill", "crps")
_COORD_TOL = 1e-4  # degrees


@dataclass
class EvaluateOptions:
    """What to score and how.

    Attributes:
        channels: channels to score (``geopotential_500``, ...); default every
            channel both the forecast and the truth have.
        lead_hours: lead times to score (a subset of the store's); default all.
        init_start, init_end: score only init times in this range (ISO dates, inclusive).
        max_init_times: at most this many init times, evenly spaced.
        climatology: compute the climatology (needed for ACC and the climatology baseline).
        climatology_start, climatology_end: period of the truth the climatology
            is computed from (default: the whole truth).
        climatology_window_days: smoothing window over day of year (WB2: 61);
            None: no day-of-year dependence, the mean per hour of day over the
            period (stationary data such as Held-Suarez; see
            :func:`weathergnn.evaluation.climatology.compute_climatology`).
        climatology_members: truth members the climatology averages (ensemble
            truths; default all).
        cache_dir: where the climatology is cached (None: not cached).
        member_mode: ``auto`` (paired when the truth has members and no
            ``truth_members`` are given, else ensemble), ``paired`` or ``ensemble``.
        truth_members: truth members to verify against (ensemble mode) or to pair (paired mode).
        forecast_members: forecast members (``number``) to use; default all.
        spectra_lead_hours: leads at which to compute KE spectra (skipped if absent).
        spectra_levels: pressure levels (hPa) for spectra (those with u and v).
        spectra_bands: wavenumber bands ``(lo, hi)`` inclusive for the ratio (zonal
            wavenumber; total wavenumber for the spherical-harmonic spectrum).
        spectra_lat_band: ``(lo, hi)`` in ``|latitude|`` (both hemispheres) over which
            the zonal spectra are averaged (default the mid-latitudes 30-60).
        map_channel, map_lead_hours, map_init: which field to keep for the maps
            (default: ``geopotential_500`` or the first channel, the lead closest
            to 120 h, the first init).
        show_progress: tqdm progress bar.
    """

    channels: Sequence[str] | None = None
    lead_hours: Sequence[float] | None = None
    init_start: str | None = None
    init_end: str | None = None
    max_init_times: int | None = None
    climatology: bool = True
    climatology_start: str | None = None
    climatology_end: str | None = None
    climatology_window_days: int | None = 61
    climatology_members: Sequence[int] | None = None
    cache_dir: str | os.PathLike | None = "cache"
    member_mode: str = "auto"
    truth_members: Sequence[int] | None = None
    forecast_members: Sequence[int] | None = None
    spectra_lead_hours: Sequence[float] = (120.0,)
    spectra_levels: Sequence[int] = (200, 500, 850)
    spectra_bands: Sequence[tuple[int, int]] = ((1, 3), (4, 10), (11, 20), (21, 31))
    spectra_lat_band: tuple[float, float] = (30.0, 60.0)
    map_channel: str | None = None
    map_lead_hours: float | None = None
    map_init: str | None = None
    show_progress: bool = True


@dataclass
class SpectrumResult:
    """Mean KE spectra of forecast and truth at one level and lead.

    Attributes:
        level: hPa. lead_hours: lead.
        wavenumber: ``[k]`` zonal wavenumbers 0 .. n_lon/2.
        forecast, truth: ``[k]`` zonal KE spectrum (m2 s-2 per zonal wavenumber,
            :func:`weathergnn.evaluation.spectra.zonal_energy_spectrum`, ``sum_k`` =
            zonal-mean KE), averaged over samples (and forecast members), then
            over the latitudes of ``lat_band`` (cell-area weights, :func:`spectra.band_mean`).
        bands: ``[(lo, hi)]`` inclusive wavenumber bands.
        band_ratio: ``[n_bands]`` forecast / truth energy summed over each band.
        lat_band: ``|latitude|`` band averaged. n_samples: samples averaged.
        sh_forecast, sh_truth: ``[l]`` spherical-harmonic KE spectra
            (:func:`spectra.spherical_harmonic_spectrum`) when torch-harmonics is
            installed, else None (``sh_note`` says why); ``sh_bands``,
            ``sh_band_ratio`` as above over total wavenumber ``l``.
    """

    level: int
    lead_hours: float
    wavenumber: np.ndarray
    forecast: np.ndarray
    truth: np.ndarray
    bands: list[tuple[int, int]]
    band_ratio: np.ndarray
    lat_band: tuple[float, float]
    n_samples: int
    sh_forecast: np.ndarray | None = None
    sh_truth: np.ndarray | None = None
    sh_bands: list[tuple[int, int]] | None = None
    sh_band_ratio: np.ndarray | None = None
    sh_note: str = ""


@dataclass
class MapFields:
    """One forecast field next to its truth, for the map plot.

    Attributes:
        channel, init_time (datetime64), lead_hours, member (or None);
        latitude ``[lat]``, longitude ``[lon]``; truth, forecast ``[lat, lon]``
        physical units; units (str or "").
    """

    channel: str
    init_time: np.datetime64
    lead_hours: float
    member: int | None
    latitude: np.ndarray
    longitude: np.ndarray
    truth: np.ndarray
    forecast: np.ndarray
    units: str = ""


@dataclass
class EvaluationResult:
    """Scores of one evaluation run.

    Attributes:
        channels: ``[C]`` channel names.
        lead_hours: ``[K]`` lead times scored.
        scores: ``{system: {metric: [K, C] float64}}`` (``SYSTEMS`` x
            ``DETERMINISTIC_METRICS``; NaN where undefined or unscored).
        ensemble: ``{metric: [K, C]}`` (``ENSEMBLE_METRICS``) or empty.
        n_samples: ``{system: [K] int}``: samples averaged per lead.
        spectra: KE spectra results (possibly empty).
        map: fields for the map plot, or None.
        meta: provenance (forecast, truth, init times, climatology, member mode, timings).
    """

    channels: list[str]
    lead_hours: list[float]
    scores: dict[str, dict[str, np.ndarray]]
    ensemble: dict[str, np.ndarray]
    n_samples: dict[str, np.ndarray]
    spectra: list[SpectrumResult] = field(default_factory=list)
    map: MapFields | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def value(self, system: str, metric: str, channel: str, lead_hours: float) -> float:
        """One score (NaN if absent)."""
        table = self.ensemble.get(metric) if system == "model" and metric in ENSEMBLE_METRICS else \
            self.scores.get(system, {}).get(metric)
        if table is None or channel not in self.channels or lead_hours not in self.lead_hours:
            return float("nan")
        return float(table[self.lead_hours.index(lead_hours), self.channels.index(channel)])


# --------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------- #
def _hours(td: np.ndarray) -> np.ndarray:
    return np.asarray(td, dtype="timedelta64[ns]") / np.timedelta64(1, "h")


def _truth_channels(ds: xr.Dataset) -> set[str]:
    out = set()
    for name, var in ds.data_vars.items():
        if "time" not in var.dims:
            continue
        if "level" in var.dims:
            out |= {channel_name(str(name), int(lv)) for lv in ds["level"].values}
        else:
            out.add(str(name))
    return out


def _select_channels(fc: xr.Dataset, truth: xr.Dataset, wanted: Sequence[str] | None) -> list[str]:
    fc_ch = forecast_channels(fc)
    tr_ch = _truth_channels(truth)
    if wanted is None:
        chans = [c for c in fc_ch if c in tr_ch]
        if not chans:
            raise DataError(f"forecast and truth share no channel: forecast has {fc_ch}, truth has "
                            f"{sorted(tr_ch)}", file=dataset_source(truth), option="channels")
        return chans
    for c in wanted:
        if c not in fc_ch:
            raise DataError(f"channel {c!r} not in the forecast store (has {fc_ch})",
                            file=fc.attrs.get("weathergnn_source"), variable=c, option="channels")
        if c not in tr_ch:
            raise DataError(f"channel {c!r} not in the truth (has {sorted(tr_ch)})", file=dataset_source(truth),
                            variable=c, option="channels")
    return list(dict.fromkeys(wanted))


def _check_same_grid(fc: xr.Dataset, truth: xr.Dataset) -> None:
    for name in ("latitude", "longitude"):
        a, b = fc[name].values, truth[name].values
        if a.shape != b.shape or not np.allclose(a, b, rtol=0, atol=_COORD_TOL):
            raise DataError(f"forecast and truth grids differ in {name}: forecast {a.size} values "
                            f"{a.min():g} .. {a.max():g}, truth {b.size} values {b.min():g} .. {b.max():g}; "
                            "regrid one of them first", file=fc.attrs.get("weathergnn_source"), variable=name)


def _plan(channels: Sequence[str]) -> list[tuple[str, list[int] | None, list[int]]]:
    """[(variable, levels or None, channel positions)]."""
    groups: dict[str, tuple[list[int] | None, list[int]]] = {}
    for i, c in enumerate(channels):
        var, level = split_channel(c)
        levels, pos = groups.setdefault(var, ([] if level is not None else None, []))
        if level is not None:
            levels.append(level)
        pos.append(i)
    return [(v, lv, pos) for v, (lv, pos) in groups.items()]


def _read_block(ds: xr.Dataset, plan, n_channels: int, sel: dict, lead_dims: Sequence[str]) -> np.ndarray:
    """Read channels into ``[*lead_dims, C, lat, lon]`` float32 with one read per variable."""
    out = None
    for var, levels, pos in plan:
        da = ds[var].isel({k: v for k, v in sel.items() if k in ds[var].dims})
        if levels is not None:
            da = da.sel(level=levels).transpose(*lead_dims, "level", "latitude", "longitude")
            vals = np.asarray(da.values, dtype=np.float32)
        else:
            da = da.transpose(*lead_dims, "latitude", "longitude")
            vals = np.asarray(da.values, dtype=np.float32)[..., None, :, :]
        if out is None:
            out = np.empty(vals.shape[:-3] + (n_channels,) + vals.shape[-2:], dtype=np.float32)
        out[..., pos, :, :] = vals
    assert out is not None
    return out


def _climatology_block(clim: xr.Dataset, plan, n_channels: int, valid_times: np.ndarray) -> np.ndarray:
    """Climatology at ``valid_times`` as ``[T, C, lat, lon]``."""
    from weathergnn.evaluation.climatology import climatology_at

    at = climatology_at(clim, valid_times)
    time_dim = [d for d in at[plan[0][0]].dims if d not in ("level", "latitude", "longitude")]
    return _read_block(at, plan, n_channels, {}, time_dim)


def _units(ds: xr.Dataset, channel: str) -> str:
    var, _ = split_channel(channel)
    if var in ds:
        return str(ds[var].attrs.get("units", ""))
    return ""


# --------------------------------------------------------------------------- #
# the pipeline
# --------------------------------------------------------------------------- #
def evaluate_forecast(
    forecast: str | os.PathLike | xr.Dataset,
    truth: str | os.PathLike | xr.Dataset,
    options: EvaluateOptions | None = None,
) -> EvaluationResult:
    """Score a forecast store and the persistence and climatology baselines against a truth.

    Args:
        forecast: a WeatherBench2-layout forecast zarr store (ours or foreign) or
            a dataset (see :func:`weathergnn.evaluation.forecast_store.open_forecast`).
        truth: any source :func:`weathergnn.data.reader.open_dataset` reads, or
            a canonical dataset.
        options: :class:`EvaluateOptions`.

    Returns:
        :class:`EvaluationResult` (averaging orders in the module docstring).

    Raises:
        DataError: unreadable stores; no common channel; a requested channel,
            lead or member missing; different grids; no init time left; member
            options that do not fit the stores (each names the store and option).
    """
    opt = options or EvaluateOptions()
    t_start = _time.perf_counter()
    fc = open_forecast(forecast)  # validates and canonicalises (cheap and lazy for an opened store)
    tr = truth if isinstance(truth, xr.Dataset) else open_dataset(truth)
    fc_src, tr_src = str(fc.attrs.get("weathergnn_source")), dataset_source(tr)
    channels = _select_channels(fc, tr, opt.channels)
    _check_same_grid(fc, tr)
    plan = _plan(channels)
    n_c = len(channels)
    lat = tr["latitude"].values.astype(np.float64)
    lon = tr["longitude"].values.astype(np.float64)
    weights = row_area_weights(lat)

    # lead times
    all_leads = _hours(fc["prediction_timedelta"].values)
    if opt.lead_hours is None:
        lead_idx = np.arange(all_leads.size)
    else:
        lead_idx = []
        for h in opt.lead_hours:
            hit = np.nonzero(np.isclose(all_leads, float(h)))[0]
            if hit.size == 0:
                raise DataError(f"lead {h} h not in the forecast store (leads {all_leads.tolist()} h)",
                                file=fc_src, option="lead_hours")
            lead_idx.append(int(hit[0]))
        lead_idx = np.asarray(sorted(set(lead_idx)))
    leads_td = fc["prediction_timedelta"].values[lead_idx].astype("timedelta64[ns]")
    lead_hours = [float(h) for h in _hours(leads_td)]
    n_k = len(lead_hours)

    # init times
    inits = fc["time"].values.astype("datetime64[ns]")
    init_pos = np.arange(inits.size)
    keep = np.ones(inits.size, dtype=bool)
    if opt.init_start is not None:
        keep &= inits >= np.datetime64(opt.init_start, "ns")
    if opt.init_end is not None:
        keep &= inits <= np.datetime64(opt.init_end, "ns")
    init_pos = init_pos[keep]
    if opt.max_init_times is not None and init_pos.size > opt.max_init_times:
        pick = np.linspace(0, init_pos.size - 1, opt.max_init_times).round().astype(int)
        init_pos = init_pos[np.unique(pick)]
    if init_pos.size == 0:
        raise DataError(f"no init time of the forecast store in {opt.init_start} .. {opt.init_end}",
                        file=fc_src, option="init times")

    # members
    mode, fc_members, tr_members = _member_setup(fc, tr, opt, fc_src, tr_src)
    fc_member_pos = None if fc_members is None else [list(fc["number"].values).index(m) for m in fc_members]
    tr_member_pos = None if tr_members is None else [list(tr["member"].values).index(m) for m in tr_members]

    # climatology
    clim, clim_meta = None, {}
    if opt.climatology:
        clim, clim_meta = _load_climatology(tr, sorted({v for v, _, _ in plan}), opt, tr_src)

    # spectra set-up
    spec_levels, spec_leads = _spectra_setup(channels, lead_hours, opt)
    spec_sum: dict[tuple[int, float], list] = {}

    # map set-up
    map_channel = opt.map_channel or ("geopotential_500" if "geopotential_500" in channels else channels[0])
    if map_channel not in channels:
        raise DataError(f"map channel {map_channel!r} is not scored (channels {channels})", option="map_channel")
    target = 120.0 if opt.map_lead_hours is None else float(opt.map_lead_hours)
    map_k = int(np.argmin(np.abs(np.asarray(lead_hours) - target)))
    map_init = init_pos[0] if opt.map_init is None else None
    if opt.map_init is not None:
        hit = np.nonzero(inits[init_pos] == np.datetime64(opt.map_init, "ns"))[0]
        if hit.size == 0:
            raise DataError(f"map init {opt.map_init} is not a scored init time", file=fc_src, option="map_init")
        map_init = init_pos[hit[0]]
    map_fields: MapFields | None = None

    n_samples_per_init = len(fc_members) if mode == "paired" else len(tr_members or [None])
    n_s = init_pos.size * n_samples_per_init
    per: dict[tuple[str, str], np.ndarray] = {}
    det_keys = [("mse", "mse"), ("bias", "bias"), ("mae", "mae"), ("acc", "acc")]
    for system in SYSTEMS:
        for key, _ in det_keys:
            per[(system, key)] = np.full((n_s, n_k, n_c), np.nan)
    if mode == "ensemble":
        for key in ("variance", "crps"):
            per[("ens", key)] = np.full((n_s, n_k, n_c), np.nan)
    valid = {s: np.zeros((n_s, n_k), dtype=bool) for s in SYSTEMS}

    tr_times = tr["time"].values.astype("datetime64[ns]")
    missing_first: np.datetime64 | None = None
    missing_init: np.datetime64 | None = None
    s = 0
    t_read = t_score = 0.0
    for i in tqdm(init_pos, desc="evaluate", disable=not opt.show_progress, unit="init"):
        init = inits[i]
        vt = init + leads_td
        pos = np.searchsorted(tr_times, vt)
        pos_c = np.minimum(pos, tr_times.size - 1)
        present = (pos < tr_times.size) & (tr_times[pos_c] == vt)
        if not present.all() and missing_first is None:
            missing_first = vt[~present][0]
        kk = np.nonzero(present)[0]
        ip = int(np.searchsorted(tr_times, init))
        init_ok = ip < tr_times.size and tr_times[ip] == init
        if not init_ok and missing_init is None:
            missing_init = init
        t0 = _time.perf_counter()
        fsel: dict = {"time": int(i), "prediction_timedelta": lead_idx}
        lead_dims = ["prediction_timedelta"]
        if "number" in fc.dims:
            fsel["number"] = fc_member_pos
            lead_dims = ["number", "prediction_timedelta"]
        fblock = _read_block(fc, plan, n_c, fsel, lead_dims)  # [M?, K, C, lat, lon]
        _check_finite(fblock, channels, "forecast", fc_src, init, leads_td)
        clim_block = None
        if clim is not None and kk.size:
            clim_block = _climatology_block(clim, plan, n_c, vt[kk])  # [K', C, lat, lon]
        truth_rows = [None] if tr_member_pos is None else tr_member_pos  # paired: row j <-> forecast member j
        t_read += _time.perf_counter() - t0
        for j, trow in enumerate(truth_rows):
            t0 = _time.perf_counter()
            tsel = {"time": np.concatenate([pos_c[kk], [ip] if init_ok else []]).astype(int)}
            if trow is not None:
                tsel["member"] = int(trow)
            tblock = _read_block(tr, plan, n_c, tsel, ["time"]) if tsel["time"].size else None
            if tblock is not None:
                _check_finite(tblock, channels, "truth", tr_src, None, tr_times[tsel["time"]])
            t_read += _time.perf_counter() - t0
            t0 = _time.perf_counter()
            if mode == "paired":
                f = fblock[j]
            elif mode == "ensemble":
                f = fblock.mean(axis=0, dtype=np.float64)
            else:
                f = fblock
            if kk.size:
                t_valid = tblock[: kk.size]
                f_k = f[kk]
                _score_into(per, "model", s, kk, f_k, t_valid, clim_block, weights)
                valid["model"][s, kk] = True
                if init_ok:
                    pers = tblock[kk.size][None]
                    _score_into(per, "persistence", s, kk, pers, t_valid, clim_block, weights)
                    valid["persistence"][s, kk] = True
                if clim_block is not None:
                    _score_into(per, "climatology", s, kk, clim_block, t_valid, clim_block, weights, acc=False)
                    valid["climatology"][s, kk] = True
                if mode == "ensemble":
                    fe = fblock[:, kk]
                    per[("ens", "variance")][s, kk] = ens.ensemble_variance_per_init(fe, weights, member_axis=0)
                    per[("ens", "crps")][s, kk] = ens.crps_fair_per_init(fe, t_valid, weights, member_axis=0)
                # spectra
                for (level, lead_h) in [(lv, ld) for lv in spec_levels for ld in spec_leads]:
                    k = lead_hours.index(lead_h)
                    if k not in set(kk.tolist()):
                        continue
                    kt = int(np.nonzero(kk == k)[0][0])
                    iu, iv = channels.index(f"u_component_of_wind_{level}"), channels.index(
                        f"v_component_of_wind_{level}")
                    if mode == "ensemble":
                        fu, fv = fblock[:, k, iu], fblock[:, k, iv]  # every member
                    elif mode == "paired":
                        fu, fv = fblock[j, k, iu][None], fblock[j, k, iv][None]
                    else:
                        fu, fv = fblock[k, iu][None], fblock[k, iv][None]
                    _accumulate_spectrum(spec_sum, (level, lead_h), fu, fv, t_valid[kt, iu][None],
                                         t_valid[kt, iv][None], lat, lon)
                if map_fields is None and i == map_init and map_k in set(kk.tolist()):
                    kt = int(np.nonzero(kk == map_k)[0][0])
                    c = channels.index(map_channel)
                    fm = fblock[j] if mode == "paired" else (fblock[0] if mode == "ensemble" else fblock)
                    member = None
                    if mode == "paired":
                        member = int(fc_members[j])
                    elif mode == "ensemble":
                        member = int(fc_members[0])
                    map_fields = MapFields(map_channel, init, lead_hours[map_k], member, lat, lon,
                                           np.asarray(t_valid[kt, c], dtype=np.float64),
                                           np.asarray(fm[map_k, c], dtype=np.float64), _units(tr, map_channel))
            t_score += _time.perf_counter() - t0
            s += 1

    if missing_first is not None:
        warnings.warn(f"truth {tr_src} lacks valid time {format_time(missing_first)} (and possibly later ones): "
                      "those (init, lead) pairs are left out of the averages", stacklevel=2)
    if missing_init is not None:
        warnings.warn(f"truth {tr_src} lacks init time {format_time(missing_init)}: persistence is left out "
                      "for such init times", stacklevel=2)

    scores: dict[str, dict[str, np.ndarray]] = {}
    n_samples: dict[str, np.ndarray] = {}
    for system in SYSTEMS:
        tables = {m: np.full((n_k, n_c), np.nan) for m in DETERMINISTIC_METRICS}
        ok = valid[system]
        n_samples[system] = ok.sum(axis=0)
        for k in range(n_k):
            rows = ok[:, k]
            if not rows.any():
                continue
            mse = per[(system, "mse")][rows, k]
            tables["rmse"][k] = met.finalize_rmse(mse, axis=0)
            tables["rmse_mse_first"][k] = met.finalize_rmse_mse_first(mse, axis=0)
            tables["bias"][k] = met.finalize_mean(per[(system, "bias")][rows, k], axis=0)
            tables["mae"][k] = met.finalize_mean(per[(system, "mae")][rows, k], axis=0)
            tables["acc"][k] = met.finalize_mean(per[(system, "acc")][rows, k], axis=0)
        scores[system] = tables
    ensemble_tables: dict[str, np.ndarray] = {}
    if mode == "ensemble":
        ensemble_tables = {m: np.full((n_k, n_c), np.nan) for m in ENSEMBLE_METRICS}
        ok = valid["model"]
        for k in range(n_k):
            rows = ok[:, k]
            if not rows.any():
                continue
            var, mse = per[("ens", "variance")][rows, k], per[("model", "mse")][rows, k]
            ensemble_tables["ens_mean_rmse"][k] = met.finalize_rmse(mse, axis=0)
            ensemble_tables["spread"][k] = ens.finalize_spread(var, axis=0)
            ensemble_tables["spread_skill"][k] = ens.finalize_spread_skill_ratio(var, mse, axis=0)
            ensemble_tables["crps"][k] = met.finalize_mean(per[("ens", "crps")][rows, k], axis=0)

    spectra = _finish_spectra(spec_sum, opt, lat)
    meta = {
        "forecast": fc_src,
        "truth": tr_src,
        "n_init": int(init_pos.size),
        "init_times": [format_time(t) for t in inits[init_pos]],
        "member_mode": mode,
        "forecast_members": fc_members,
        "truth_members": tr_members,
        "lead_hours": lead_hours,
        "weights": "cell-area (graphs.features.row_area_weights)",
        "climatology": clim_meta,
        "averaging": {
            "rmse": "mean over samples of sqrt(area-weighted spatial MSE) (WB2 RMSESqrtBeforeTimeAvg)",
            "rmse_mse_first": "sqrt(mean over samples of area-weighted spatial MSE) (WB2 RMSE)",
            "bias": "mean over samples of area-weighted spatial mean of (f - o)",
            "mae": "mean over samples of area-weighted spatial mean of |f - o|",
            "acc": "mean over samples of uncentred area-weighted ACC of anomalies from the climatology",
            "spread": "mean over samples of sqrt(area-weighted mean unbiased ensemble variance)",
            "crps": "mean over samples of area-weighted fair CRPS",
        },
        "samples": "(init time, member) pair" if mode == "paired" else (
            "init time" if tr_members is None else "(init time, truth member) pair"),
        "seconds": {"total": _time.perf_counter() - t_start, "read": t_read, "score": t_score},
    }
    return EvaluationResult(channels, lead_hours, scores, ensemble_tables, n_samples, spectra, map_fields, meta)


def _check_finite(block: np.ndarray, channels, what: str, source: str, init, times) -> None:
    """DataError naming the channel and time of the first NaN/inf in ``block`` ``[..., T, C, lat, lon]``."""
    finite = np.isfinite(block).all(axis=(-2, -1))  # [..., T, C]
    if finite.all():
        return
    idx = np.argwhere(~finite)[0]
    t, c = idx[-2], idx[-1]
    when = init + times[t] if init is not None else times[t]
    label = f"{what} init {format_time(init)}, lead {_hours(times[t]):g} h" if init is not None else what
    raise DataError(f"NaN/inf in the {label} (valid time {format_time(when)})", file=source,
                    variable=channels[c], time=format_time(when))


def _score_into(per, system, s, kk, f, t, clim, weights, acc: bool = True) -> None:
    """Per-init deterministic scores of ``f`` ``[K' or 1, C, lat, lon]`` vs ``t`` ``[K', C, lat, lon]``."""
    shape = (kk.size, t.shape[1])
    per[(system, "mse")][s, kk] = np.broadcast_to(met.weighted_mse(f, t, weights), shape)
    per[(system, "bias")][s, kk] = np.broadcast_to(met.weighted_bias(f, t, weights), shape)
    per[(system, "mae")][s, kk] = np.broadcast_to(met.weighted_mae(f, t, weights), shape)
    if acc and clim is not None:
        per[(system, "acc")][s, kk] = np.broadcast_to(met.acc_per_init(f, t, clim, weights), shape)


def _member_setup(fc, tr, opt: EvaluateOptions, fc_src: str, tr_src: str):
    """(mode, forecast members or None, truth members or None)."""
    fc_has, tr_has = "number" in fc.dims, "member" in tr.dims
    fc_all = [int(x) for x in fc["number"].values] if fc_has else None
    tr_all = [int(x) for x in tr["member"].values] if tr_has else None
    if opt.forecast_members is not None and not fc_has:
        raise DataError("forecast_members given but the forecast store has no 'number' dim", file=fc_src,
                        option="forecast_members")
    if opt.truth_members is not None and not tr_has:
        raise DataError("truth_members given but the truth has no member dim", file=tr_src, option="truth_members")
    fc_members = None if not fc_has else [int(m) for m in (opt.forecast_members or fc_all)]
    tr_members = None if not tr_has else [int(m) for m in (opt.truth_members or tr_all)]
    for name, wanted, have, src in (("forecast_members", fc_members, fc_all, fc_src),
                                    ("truth_members", tr_members, tr_all, tr_src)):
        if wanted is not None:
            missing = [m for m in wanted if m not in have]
            if missing:
                raise DataError(f"member {missing[0]} not in the store (has {have})", file=src, option=name)
    mode = opt.member_mode
    if mode == "auto":
        if not fc_has:
            mode = "single"
        elif tr_has and opt.truth_members is None:
            mode = "paired"
        else:
            mode = "ensemble"
    if mode not in ("single", "paired", "ensemble"):
        raise DataError(f"member_mode {opt.member_mode!r}: expected auto, paired or ensemble", option="member_mode")
    if mode == "single":
        if fc_has:
            raise DataError("the forecast has members: use member_mode paired or ensemble", option="member_mode")
        if tr_has and opt.truth_members is None:
            raise DataError(f"the truth has members {tr_all}; choose the truth member(s) to verify the "
                            "deterministic forecast against with truth_members", file=tr_src,
                            option="truth_members")
        return "single", None, tr_members
    if not fc_has:
        raise DataError(f"member_mode {mode}: the forecast store has no 'number' dim", file=fc_src,
                        option="member_mode")
    if mode == "paired":
        if not tr_has:
            raise DataError("member_mode paired: the truth has no member dim", file=tr_src, option="member_mode")
        if opt.truth_members is not None and sorted(tr_members) != sorted(fc_members):
            raise DataError(f"member_mode paired: truth members {tr_members} differ from forecast members "
                            f"{fc_members}", option="truth_members")
        missing = [m for m in fc_members if m not in tr_all]
        if missing:
            raise DataError(f"member_mode paired: forecast member {missing[0]} has no truth member (truth has "
                            f"{tr_all})", file=tr_src, option="member_mode")
        return "paired", fc_members, list(fc_members)
    overlap = sorted(set(fc_members) & set(tr_members or []))
    if overlap:
        raise DataError(f"member_mode ensemble: truth members {overlap} are also forecast members; verify against "
                        "held-out members (choose forecast_members without them)", option="truth_members")
    return "ensemble", fc_members, tr_members


def _load_climatology(tr: xr.Dataset, variables: list[str], opt: EvaluateOptions, tr_src: str):
    from weathergnn.evaluation.climatology import compute_climatology, load_or_compute_climatology

    ds = tr[variables]
    members = None
    if "member" in ds.dims and opt.climatology_members is not None:
        members = [int(m) for m in opt.climatology_members]
        missing = [m for m in members if m not in ds["member"].values.tolist()]
        if missing:
            raise DataError(f"climatology member {missing[0]} not in the truth", file=tr_src,
                            option="climatology_members")
        ds = ds.sel(member=members)
    times = tr["time"].values
    start = opt.climatology_start or format_time(times[0])
    end = opt.climatology_end or format_time(times[-1])
    if opt.cache_dir is None:
        clim = compute_climatology(ds, variables, start, end, window_days=opt.climatology_window_days)
    else:
        key = f"{tr_src}|members={members if members is not None else 'all'}"
        clim = load_or_compute_climatology(ds, variables, start, end, window_days=opt.climatology_window_days,
                                           cache_dir=opt.cache_dir, key=key)
    meta = {"source": tr_src, "start": clim.attrs.get("climatology_start", start),
            "end": clim.attrs.get("climatology_end", end), "window_days": opt.climatology_window_days,
            "n_times": clim.attrs.get("n_times"), "variables": variables,
            "definition": ("mean per hour of day over the period (no day-of-year dependence)"
                           if opt.climatology_window_days is None else
                           f"day of year x hour of day, triangular {opt.climatology_window_days}-day window "
                           "(WeatherBench2)")}
    if "member" in tr.dims:
        meta["members"] = members if members is not None else "all (members count as extra samples)"
    return clim, meta


def _spectra_setup(channels, lead_hours, opt):
    levels = [int(lv) for lv in opt.spectra_levels
              if f"u_component_of_wind_{int(lv)}" in channels and f"v_component_of_wind_{int(lv)}" in channels]
    leads = [float(h) for h in opt.spectra_lead_hours if float(h) in lead_hours]
    return levels, leads


def _accumulate_spectrum(acc: dict, key, fu, fv, tu, tv, lat, lon) -> None:
    """Add the zonal (and, when torch-harmonics is installed, spherical-harmonic) KE spectra
    of forecast ``fu, fv`` ``[n, lat, lon]`` (mean over ``n`` members) and truth ``tu, tv`` ``[1, lat, lon]``."""
    from weathergnn.evaluation.spectra import spherical_harmonic_spectrum, zonal_energy_spectrum

    entry = acc.setdefault(key, {"zonal_f": 0.0, "zonal_t": 0.0, "sh_f": 0.0, "sh_t": 0.0, "n": 0, "sh": True})
    entry["zonal_f"] = entry["zonal_f"] + zonal_energy_spectrum(fu, fv, lat, lon).mean(axis=0)  # [lat, k]
    entry["zonal_t"] = entry["zonal_t"] + zonal_energy_spectrum(tu, tv, lat, lon).mean(axis=0)
    if entry["sh"]:
        try:
            entry["sh_f"] = entry["sh_f"] + spherical_harmonic_spectrum(fu, fv, lat, lon).mean(axis=0)  # [l]
            entry["sh_t"] = entry["sh_t"] + spherical_harmonic_spectrum(tu, tv, lat, lon).mean(axis=0)
        except (ImportError, ValueError) as exc:
            entry["sh"] = False
            entry["sh_reason"] = str(exc).split(";")[0]
    entry["n"] += 1


def _finish_spectra(acc: dict, opt: EvaluateOptions, lat: np.ndarray) -> list[SpectrumResult]:
    from weathergnn.evaluation.spectra import band_mean, spectrum_ratio

    out = []
    w = row_area_weights(lat)
    for (level, lead_h), e in sorted(acc.items()):
        n = e["n"]
        f = band_mean(e["zonal_f"] / n, lat, opt.spectra_lat_band, weights=w)  # [k]
        t = band_mean(e["zonal_t"] / n, lat, opt.spectra_lat_band, weights=w)
        bands = [(int(a), min(int(b), f.size - 1)) for a, b in opt.spectra_bands if int(a) < f.size]
        ratio = np.asarray(spectrum_ratio(f, t, bands), dtype=np.float64)
        res = SpectrumResult(level, lead_h, np.arange(f.size), f, t, bands, ratio, tuple(opt.spectra_lat_band), n)
        if e["sh"]:
            res.sh_forecast = np.asarray(e["sh_f"] / n)
            res.sh_truth = np.asarray(e["sh_t"] / n)
            sh_bands = [(int(a), min(int(b), res.sh_truth.size - 1)) for a, b in opt.spectra_bands
                        if int(a) < res.sh_truth.size]
            res.sh_bands = sh_bands
            res.sh_band_ratio = np.asarray(spectrum_ratio(res.sh_forecast, res.sh_truth, sh_bands))
        else:
            res.sh_note = e.get("sh_reason", "")
        out.append(res)
    return out
