"""PNG plots of an evaluation run (matplotlib, Agg backend, written atomically).

- :func:`plot_score_vs_lead`: RMSE or ACC vs lead time, one panel per channel,
  model next to persistence and climatology (and published reference curves);
- :func:`plot_spectra`: zonal KE spectra of forecast and truth (log-log) and
  their ratio per wavenumber, one column per level;
- :func:`plot_map`: truth, forecast and forecast - truth maps for one init
  time, channel and lead;
- :func:`plot_spread_skill`: ensemble-mean RMSE and spread vs lead (ensembles).

:func:`plot_all` draws those that apply and returns the paths.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from weathergnn.atomic import atomic_open  # noqa: E402
from weathergnn.data.checks import format_time  # noqa: E402
from weathergnn.evaluation.evaluate import EvaluationResult  # noqa: E402
from weathergnn.evaluation.reference_curves import ReferenceCurve  # noqa: E402
from weathergnn.evaluation.scorecard import HEADLINE_CHANNELS, short_name  # noqa: E402

__all__ = ["plot_score_vs_lead", "plot_spectra", "plot_map", "plot_spread_skill", "plot_all"]

_STYLE = {"model": dict(color="C0", marker="o", lw=2), "persistence": dict(color="C1", marker="s", lw=1.5),
          "climatology": dict(color="0.4", ls="--", lw=1.5)}
_REF_COLORS = {"persistence": "C1", "climatology": "0.4", "operational ifs": "C3"}
_UNITS = {"geopotential": "m$^2$ s$^{-2}$", "temperature": "K", "u_component_of_wind": "m s$^{-1}$",
          "v_component_of_wind": "m s$^{-1}$", "surface_pressure": "Pa", "mean_sea_level_pressure": "Pa",
          "specific_humidity": "kg kg$^{-1}$"}


def _units(channel: str) -> str:
    from weathergnn.data.channels import split_channel

    return _UNITS.get(split_channel(channel)[0], "")


def _save(fig, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb") as fh:
        fh.write(buf.getvalue())
    return path


def _channels(result: EvaluationResult, channels: Sequence[str] | None) -> list[str]:
    if channels:
        return [c for c in channels if c in result.channels]
    picked = [c for c in HEADLINE_CHANNELS if c in result.channels]
    return picked or result.channels[:6]


def _samples(result: EvaluationResult) -> str:
    n = result.n_samples["model"]
    text = f"{result.meta.get('n_init')} init times"
    if result.meta.get("samples") != "init time" or n.min() != n.max():
        text += f"; {n.max()} samples per lead" if n.min() == n.max() else f"; {n.min()}-{n.max()} samples per lead"
    return text


def _x(result: EvaluationResult) -> tuple[np.ndarray, str, float]:
    hours = np.asarray(result.lead_hours)
    if hours.max() >= 48:
        return hours / 24.0, "lead time (days)", 24.0
    return hours, "lead time (hours)", 1.0


def plot_score_vs_lead(result: EvaluationResult, path: str | Path, metric: str = "rmse",
                       channels: Sequence[str] | None = None,
                       reference: Sequence[ReferenceCurve] | None = None, title: str = "") -> Path:
    """One panel per channel: ``metric`` (``rmse`` or ``acc``) vs lead for model and baselines.

    Reference curves (published numbers, e.g. WeatherBench) with the same
    channel and metric are drawn as open markers joined by dotted lines.
    """
    chans = _channels(result, channels)
    x, xlabel, scale = _x(result)
    n = len(chans)
    ncol = min(3, n)
    nrow = int(np.ceil(n / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.6 * ncol, 3.5 * nrow), squeeze=False)
    systems = ["model", "persistence"] + (["climatology"] if metric != "acc" else [])
    for ax, ch in zip(axes.ravel(), chans):
        c = result.channels.index(ch)
        for system in systems:
            y = result.scores[system][metric][:, c]
            if np.isfinite(y).any():
                ax.plot(x, y, label=system, ms=3, **_STYLE[system])
        systems_ref = sorted({cv.system for cv in reference or []})
        for curve in reference or []:
            if curve.channel == ch and curve.metric == metric:
                color = _REF_COLORS.get(curve.system.lower(), f"C{3 + systems_ref.index(curve.system) % 6}")
                ax.plot(np.asarray(curve.lead_hours) / scale, curve.values, ls=":", marker="D", mfc="none",
                        color=color, label=f"{curve.system} (published)")
        ax.set_title(short_name(ch))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(metric.upper() + (f" ({_units(ch)})" if metric == "rmse" and _units(ch) else ""))
        if metric == "acc":
            ax.axhline(0.6, color="0.7", lw=0.8, ls=":")
            ax.set_ylim(min(0.0, np.nanmin(result.scores["persistence"]["acc"][:, c], initial=0.0)), 1.02)
        else:
            ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    fig.suptitle(title or f"{metric.upper()} vs lead time ({_samples(result)})")
    drawn = sorted({cv.label for cv in reference or [] if cv.metric == metric and cv.channel in chans})
    if drawn:
        fig.text(0.5, 0.005, "published (context only, other data): " + "; ".join(drawn), ha="center",
                 fontsize=8, style="italic")
        fig.tight_layout(rect=(0, 0.025, 1, 1))
    else:
        fig.tight_layout()
    return _save(fig, Path(path))


def plot_spectra(result: EvaluationResult, path: str | Path, title: str = "") -> Path:
    """Zonal KE spectra (forecast vs truth, log-log) and their ratio, one column per (level, lead).

    The ratio panel is logarithmic (1 = same energy as the truth); red bars are
    the ratios of the energy summed over each wavenumber band (the scorecard's numbers).
    """
    specs = result.spectra
    if not specs:
        raise ValueError("no spectra in this result (need u and v channels at spectra levels and leads)")
    n = len(specs)
    ncol = min(n, 3)
    nrow = int(np.ceil(n / ncol))
    fig, axes = plt.subplots(2 * nrow, ncol, figsize=(4.6 * ncol, 5.6 * nrow), squeeze=False,
                             gridspec_kw={"height_ratios": [2, 1] * nrow})
    for j, sp in enumerate(specs):
        r, c = divmod(j, ncol)
        k = sp.wavenumber[1:]
        ax = axes[2 * r, c]
        ax.loglog(k, sp.truth[1:], color="k", lw=2, label="truth")
        ax.loglog(k, sp.forecast[1:], color="C0", lw=1.5, label="forecast")
        ax.set_title(f"{sp.level} hPa, lead {sp.lead_hours / 24:g} d")
        ax.set_ylabel("KE per zonal wavenumber (m$^2$ s$^{-2}$)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
        ax = axes[2 * r + 1, c]
        ratio = np.where(sp.truth[1:] > 0, sp.forecast[1:] / np.where(sp.truth[1:] > 0, sp.truth[1:], 1), np.nan)
        ax.loglog(k, ratio, color="C0", lw=1)
        for (lo, hi), rb in zip(sp.bands, sp.band_ratio):
            ax.hlines(rb, max(lo, 1), hi, color="C3", lw=2.5)
            ax.text(np.sqrt(max(lo, 1) * hi), rb * 1.25, f"{rb:.2f}", color="C3", ha="center", fontsize=7)
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_xlabel("zonal wavenumber k")
        ax.set_ylabel("forecast / truth")
        ax.set_ylim(0.1, 10)
        ax.grid(alpha=0.3, which="both")
    for j in range(n, nrow * ncol):
        r, c = divmod(j, ncol)
        axes[2 * r, c].axis("off")
        axes[2 * r + 1, c].axis("off")
    lo, hi = specs[0].lat_band
    fig.suptitle(title or f"Zonal KE spectra, |lat| {lo:g}-{hi:g} deg, mean of {specs[0].n_samples} samples "
                          "(red: band ratios)")
    fig.tight_layout()
    return _save(fig, Path(path))


def plot_map(result: EvaluationResult, path: str | Path, title: str = "") -> Path:
    """Truth, forecast and forecast - truth for the run's map field (:class:`MapFields`)."""
    mf = result.map
    if mf is None:
        raise ValueError("no map field in this result")
    lon = np.append(mf.longitude, mf.longitude[-1] + (mf.longitude[-1] - mf.longitude[-2]))
    lat_b = np.concatenate([[mf.latitude[0] - (mf.latitude[1] - mf.latitude[0]) / 2],
                            (mf.latitude[1:] + mf.latitude[:-1]) / 2,
                            [mf.latitude[-1] + (mf.latitude[-1] - mf.latitude[-2]) / 2]])
    lat_b = np.clip(lat_b, -90, 90)
    lon_b = lon - (lon[1] - lon[0]) / 2
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
    vmin, vmax = np.nanmin(mf.truth), np.nanmax(mf.truth)
    err = mf.forecast - mf.truth
    emax = float(np.nanmax(np.abs(err))) or 1.0
    units = _units(mf.channel)
    for ax, data, name, kw in ((axes[0], mf.truth, "truth", dict(cmap="viridis", vmin=vmin, vmax=vmax)),
                               (axes[1], mf.forecast, "forecast", dict(cmap="viridis", vmin=vmin, vmax=vmax)),
                               (axes[2], err, "forecast - truth", dict(cmap="RdBu_r", vmin=-emax, vmax=emax))):
        im = ax.pcolormesh(lon_b, lat_b, data, shading="flat", **kw)
        ax.set_title(name)
        ax.set_xlabel("longitude (deg E)")
        ax.set_ylabel("latitude (deg N)")
        ax.set_aspect("equal")
        fig.colorbar(im, ax=ax, shrink=0.8, label=units)
    member = f", member {mf.member}" if mf.member is not None else ""
    fig.suptitle(title or f"{short_name(mf.channel)}: init {format_time(mf.init_time)}, lead "
                          f"{mf.lead_hours / 24:g} d{member}")
    fig.tight_layout()
    return _save(fig, Path(path))


def plot_spread_skill(result: EvaluationResult, path: str | Path, channels: Sequence[str] | None = None) -> Path:
    """Ensemble-mean RMSE and spread vs lead, one panel per channel."""
    if not result.ensemble:
        raise ValueError("no ensemble scores in this result")
    chans = _channels(result, channels)
    x, xlabel, _ = _x(result)
    fig, axes = plt.subplots(1, len(chans), figsize=(4.4 * len(chans), 3.4), squeeze=False)
    for ax, ch in zip(axes.ravel(), chans):
        c = result.channels.index(ch)
        ax.plot(x, result.ensemble["ens_mean_rmse"][:, c], "o-", label="ensemble-mean RMSE")
        ax.plot(x, result.ensemble["spread"][:, c], "s--", label="spread")
        ax.set_title(short_name(ch))
        ax.set_xlabel(xlabel)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Ensemble spread and skill")
    fig.tight_layout()
    return _save(fig, Path(path))


def plot_all(result: EvaluationResult, out_dir: str | Path, channels: Sequence[str] | None = None,
             reference: Sequence[ReferenceCurve] | None = None) -> list[Path]:
    """Every plot that applies to ``result``, as PNGs in ``out_dir``; returns their paths."""
    out = Path(out_dir)
    paths = [plot_score_vs_lead(result, out / "rmse_vs_lead.png", "rmse", channels, reference)]
    if np.isfinite(result.scores["model"]["acc"]).any():
        paths.append(plot_score_vs_lead(result, out / "acc_vs_lead.png", "acc", channels, reference))
    if result.spectra:
        paths.append(plot_spectra(result, out / "spectra.png"))
    if result.map is not None:
        paths.append(plot_map(result, out / "map.png"))
    if result.ensemble:
        paths.append(plot_spread_skill(result, out / "spread_skill.png", channels))
    return paths
