"""Scorecards of an evaluation run: Markdown (headline tables), CSV and JSON (every score).

The CSV has one row per (system, channel, lead time) with columns
``system, channel, variable, level, lead_hours, n_samples`` and one column per
metric (``rmse, rmse_mse_first, bias, mae, acc`` and, for ensembles,
``ens_mean_rmse, spread, spread_skill, crps`` on the ``model`` rows); systems
are ``model``, ``persistence`` and ``climatology``. The JSON holds the same
scores as ``[lead][channel]`` tables plus the run's metadata (sources, init
times, climatology, averaging orders), the spectra and their band ratios.
:func:`scorecard_rows` gives the scores as a long list of rows. Averaging orders are those of
:mod:`weathergnn.evaluation.evaluate` (written into the files too). All files
are written atomically.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from weathergnn.atomic import atomic_open
from weathergnn.data.channels import split_channel
from weathergnn.evaluation.evaluate import DETERMINISTIC_METRICS, ENSEMBLE_METRICS, SYSTEMS, EvaluationResult

__all__ = ["HEADLINE_CHANNELS", "HEADLINE_LEAD_DAYS", "scorecard_rows", "wide_rows", "headline_leads",
           "scorecard_markdown", "short_name", "write_scorecard"]

#: Channels of the Markdown tables when present (WeatherBench2 headline variables).
HEADLINE_CHANNELS: tuple[str, ...] = (
    "geopotential_500", "temperature_850", "u_component_of_wind_850", "v_component_of_wind_850",
    "u_component_of_wind_200", "v_component_of_wind_200",
)
#: Lead times (days) of the Markdown tables when present.
HEADLINE_LEAD_DAYS: tuple[float, ...] = (1, 3, 5, 7, 10)

_SHORT = {"geopotential": "z", "temperature": "t", "u_component_of_wind": "u", "v_component_of_wind": "v",
          "specific_humidity": "q", "surface_pressure": "sp", "mean_sea_level_pressure": "msl",
          "2m_temperature": "t2m"}


def short_name(channel: str) -> str:
    """``geopotential_500`` -> ``z500`` (ECMWF short name + level) for table headers."""
    var, level = split_channel(channel)
    return _SHORT.get(var, var) + ("" if level is None else str(level))


def _table_rows(result: EvaluationResult, system: str, metric: str, table: np.ndarray, n: np.ndarray) -> list[dict]:
    """Flat rows of one [lead, channel] table; NaN scores are left out."""
    rows = []
    for k, lead in enumerate(result.lead_hours):
        for c, ch in enumerate(result.channels):
            v = float(table[k, c])
            if math.isnan(v):
                continue
            var, level = split_channel(ch)
            rows.append({"system": system, "channel": ch, "variable": var, "level": level,
                         "lead_hours": lead, "metric": metric, "value": v, "n_samples": int(n[k])})
    return rows


def scorecard_rows(result: EvaluationResult) -> list[dict]:
    """Every score as a flat row (see module docstring); NaN scores are left out."""
    rows = []
    for system in SYSTEMS:
        for metric in DETERMINISTIC_METRICS:
            rows += _table_rows(result, system, metric, result.scores[system][metric], result.n_samples[system])
    for metric in ENSEMBLE_METRICS:
        table = result.ensemble.get(metric)
        if table is not None:
            rows += _table_rows(result, "model", metric, table, result.n_samples["model"])
    return rows


def headline_leads(lead_hours: Sequence[float], days: Sequence[float] = HEADLINE_LEAD_DAYS) -> list[float]:
    """The headline leads (``days`` x 24 h) present in ``lead_hours``.

    When fewer than 3 of them are present (short forecasts), all leads if there
    are at most 12, else 8 evenly spaced ones.
    """
    picked = [float(d * 24) for d in days if float(d * 24) in lead_hours]
    if len(picked) >= 3 or (picked and len(lead_hours) > 12):
        return picked
    return list(lead_hours) if len(lead_hours) <= 12 else [lead_hours[i] for i in
                                                            np.linspace(0, len(lead_hours) - 1, 8).astype(int)]


def _fmt(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    a = abs(x)
    if a >= 100:
        return f"{x:.0f}"
    if a >= 10:
        return f"{x:.1f}"
    if a >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"


def _lead_label(h: float) -> str:
    return f"{h / 24:g} d" if h % 24 == 0 else f"{h:g} h"


def scorecard_markdown(result: EvaluationResult, channels: Sequence[str] | None = None,
                       leads: Sequence[float] | None = None, title: str = "WeatherGNN scorecard") -> str:
    """The Markdown scorecard: headline RMSE / ACC vs baselines, other metrics, ensemble, spectra.

    Args:
        channels: channels of the tables (default: :data:`HEADLINE_CHANNELS` present, else the first 6).
        leads: lead hours of the tables (default :func:`headline_leads`).
    """
    chans = list(channels) if channels else [c for c in HEADLINE_CHANNELS if c in result.channels]
    chans = chans or result.channels[:6]
    leads = list(leads) if leads else headline_leads(result.lead_hours)
    m = result.meta
    out = [f"# {title}", ""]
    out.append(f"- forecast: `{m.get('forecast')}`")
    out.append(f"- truth: `{m.get('truth')}`")
    inits = m.get("init_times", [])
    span = f"{inits[0]} .. {inits[-1]}" if inits else "-"
    out.append(f"- {m.get('n_init')} init times ({span}); samples: {m.get('samples')}; "
               f"member mode: {m.get('member_mode')}")
    if m.get("member_mode") != "single":
        out.append(f"- forecast members: {m.get('forecast_members')}; truth members: {m.get('truth_members')}")
    clim = m.get("climatology") or {}
    if clim:
        members = f", truth members {clim['members']}" if clim.get("members") is not None else ""
        out.append(f"- climatology: truth {clim.get('start')} .. {clim.get('end')} ({clim.get('n_times')} times"
                   f"{members}), {clim.get('definition')}")
    out.append("- RMSE: area-weighted (cell-area weights); root of the spatial MSE per sample, then mean over "
               "samples (WeatherBench2 RMSESqrtBeforeTimeAvg). ACC: uncentred, anomalies from the climatology "
               "at the valid time, mean over samples. Persistence = truth at init time; climatology = climatology "
               "at the valid time.")
    out.append("")
    out.append("## RMSE and ACC vs baselines")
    out.append("")
    out.append("| channel | lead | RMSE model | RMSE persistence | RMSE climatology | ACC model | ACC persistence "
               "| n |")
    out.append("|---|---|---|---|---|---|---|---|")
    for ch in chans:
        for h in leads:
            v = lambda s, met: result.value(s, met, ch, h)  # noqa: E731
            k = result.lead_hours.index(h)
            out.append(f"| {short_name(ch)} | {_lead_label(h)} | **{_fmt(v('model', 'rmse'))}** | "
                       f"{_fmt(v('persistence', 'rmse'))} | {_fmt(v('climatology', 'rmse'))} | "
                       f"**{_fmt(v('model', 'acc'))}** | {_fmt(v('persistence', 'acc'))} | "
                       f"{int(result.n_samples['model'][k])} |")
    out.append("")
    out.append("## Other model metrics")
    out.append("")
    out.append("RMSE (MSE first) = sqrt of the mean over samples of the spatial MSE (WeatherBench2 RMSE); "
               "bias = mean(forecast - truth).")
    out.append("")
    out.append("| channel | lead | RMSE (MSE first) | bias | MAE |")
    out.append("|---|---|---|---|---|")
    for ch in chans:
        for h in leads:
            out.append(f"| {short_name(ch)} | {_lead_label(h)} | {_fmt(result.value('model', 'rmse_mse_first', ch, h))}"
                       f" | {_fmt(result.value('model', 'bias', ch, h))} | {_fmt(result.value('model', 'mae', ch, h))} |")
    if result.ensemble:
        out.append("")
        out.append("## Ensemble")
        out.append("")
        out.append("Ensemble-mean RMSE; spread = mean over samples of sqrt(area-mean unbiased ensemble variance); "
                   "spread-skill = spread / ensemble-mean RMSE (no finite-ensemble factor, as WeatherBench2); "
                   "fair CRPS (Ferro 2014).")
        out.append("")
        out.append("| channel | lead | ens-mean RMSE | spread | spread-skill | CRPS |")
        out.append("|---|---|---|---|---|---|")
        for ch in chans:
            for h in leads:
                vals = [_fmt(result.value("model", met, ch, h)) for met in ENSEMBLE_METRICS]
                out.append(f"| {short_name(ch)} | {_lead_label(h)} | " + " | ".join(vals) + " |")
    if result.spectra:
        out.append("")
        out.append("## Kinetic-energy spectrum ratio (forecast / truth)")
        out.append("")
        sp0 = result.spectra[0]
        out.append(f"Zonal KE spectrum per latitude (WeatherBench2 ZonalEnergySpectrum), averaged over samples and "
                   f"over |latitude| {sp0.lat_band[0]:g}-{sp0.lat_band[1]:g}; ratio of the energy summed over each "
                   "zonal-wavenumber band (1 = the forecast keeps the truth's energy; < 1 = too smooth).")
        out.append("")
        out.append("| level | lead | " + " | ".join(f"k {a}-{b}" for a, b in sp0.bands) + " |")
        out.append("|---|---|" + "---|" * len(sp0.bands))
        for sp in result.spectra:
            out.append(f"| {sp.level} hPa | {_lead_label(sp.lead_hours)} | "
                       + " | ".join(f"{r:.2f}" for r in sp.band_ratio) + " |")
        if sp0.sh_band_ratio is not None:
            out.append("")
            out.append("Spherical-harmonic KE spectrum (torch-harmonics vector SHT), ratio per total-wavenumber band:")
            out.append("")
            out.append("| level | lead | " + " | ".join(f"l {a}-{b}" for a, b in sp0.sh_bands) + " |")
            out.append("|---|---|" + "---|" * len(sp0.sh_bands))
            for sp in result.spectra:
                out.append(f"| {sp.level} hPa | {_lead_label(sp.lead_hours)} | "
                           + " | ".join(f"{r:.2f}" for r in sp.sh_band_ratio) + " |")
        elif sp0.sh_note:
            out.append("")
            out.append(f"Spherical-harmonic spectrum not computed: {sp0.sh_note}.")
    out.append("")
    return "\n".join(out)


def _spectra_json(result: EvaluationResult) -> list[dict]:
    def vec(a) -> list:
        return [_sig(float(x)) for x in a]

    out = []
    for sp in result.spectra:
        d = {"level": sp.level, "lead_hours": sp.lead_hours, "lat_band": list(sp.lat_band),
             "n_samples": sp.n_samples, "bands": [list(b) for b in sp.bands], "band_ratio": vec(sp.band_ratio),
             "wavenumber": sp.wavenumber.tolist(), "forecast": vec(sp.forecast), "truth": vec(sp.truth)}
        if sp.sh_band_ratio is not None:
            d.update({"sh_bands": [list(b) for b in sp.sh_bands], "sh_band_ratio": vec(sp.sh_band_ratio),
                      "sh_forecast": vec(sp.sh_forecast), "sh_truth": vec(sp.sh_truth)})
        out.append(d)
    return out


def _sig(x: float, digits: int = 6) -> float | None:
    """``x`` rounded to ``digits`` significant digits (None for NaN) to keep the files small."""
    if x is None or not math.isfinite(x):
        return None
    return float(f"{x:.{digits}g}")


def wide_rows(result: EvaluationResult) -> list[dict]:
    """One row per (system, channel, lead): ``n_samples`` and every metric as a column (6 significant digits)."""
    metrics = list(DETERMINISTIC_METRICS) + ([m for m in ENSEMBLE_METRICS] if result.ensemble else [])
    rows = []
    for system in SYSTEMS:
        for c, ch in enumerate(result.channels):
            var, level = split_channel(ch)
            for k, lead in enumerate(result.lead_hours):
                row = {"system": system, "channel": ch, "variable": var, "level": "" if level is None else level,
                       "lead_hours": lead, "n_samples": int(result.n_samples[system][k])}
                for m in metrics:
                    if m in ENSEMBLE_METRICS:
                        v = result.ensemble[m][k, c] if system == "model" else float("nan")
                    else:
                        v = result.scores[system][m][k, c]
                    row[m] = _sig(float(v))
                rows.append(row)
    return rows


def write_scorecard(result: EvaluationResult, out_dir: str | Path, *, channels: Sequence[str] | None = None,
                    leads: Sequence[float] | None = None, title: str = "WeatherGNN scorecard") -> list[Path]:
    """Write ``scorecard.md``, ``scorecard.csv`` and ``scorecard.json`` into ``out_dir`` atomically.

    ``scorecard.csv``: :func:`wide_rows` (one row per system, channel and lead; a
    metric per column; empty = undefined). ``scorecard.json``: the run's
    metadata, ``scores[system][metric]`` as ``[lead][channel]`` tables (null =
    undefined), ``ensemble[metric]`` likewise, ``n_samples`` and the spectra.
    Values have 6 significant digits.

    Returns:
        The three paths.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = wide_rows(result)
    md, csv_path, json_path = out / "scorecard.md", out / "scorecard.csv", out / "scorecard.json"
    with atomic_open(md, "w") as fh:
        fh.write(scorecard_markdown(result, channels, leads, title))
    with atomic_open(csv_path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in rows)

    def table(a: np.ndarray) -> list[list[float | None]]:
        return [[_sig(float(x)) for x in row] for row in a]

    doc = {"meta": result.meta, "channels": result.channels, "lead_hours": result.lead_hours,
           "n_samples": {k: v.tolist() for k, v in result.n_samples.items()},
           "scores": {s: {m: table(a) for m, a in t.items()} for s, t in result.scores.items()},
           "ensemble": {m: table(a) for m, a in result.ensemble.items()},
           "spectra": _spectra_json(result)}
    with atomic_open(json_path, "w") as fh:
        json.dump(doc, fh, default=str, separators=(",", ":"))
    return [md, csv_path, json_path]
