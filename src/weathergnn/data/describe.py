"""Summary of a canonical dataset (``weathergnn data inspect``)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from weathergnn.data.checks import (
    format_step,
    format_time,
    grid_kind,
    infer_time_step,
    is_month,
    longitude_spacing,
)
from weathergnn.data.errors import DataError

__all__ = ["describe_dataset", "format_description"]


def _longitude_axis(longitude: np.ndarray) -> dict:
    """Like :func:`_axis`; a region across 0° E runs from its west to its east edge."""
    lon = np.asarray(longitude, dtype=np.float64)
    spacing, global_ = longitude_spacing(lon)
    axis = _axis(lon, spacing)
    if spacing is not None and not global_:
        gaps = np.diff(np.append(lon, lon[0] + 360.0))
        k = int(np.argmax(gaps))  # the gap outside the region
        axis["first"], axis["last"] = float(lon[(k + 1) % lon.size]), float(lon[k])
    return axis


def _axis(values: np.ndarray, spacing: float | None = None) -> dict:
    values = np.asarray(values, dtype=np.float64)
    if spacing is None and values.size > 1:
        steps = np.diff(values)
        spacing = float(round(steps[0], 6)) if np.allclose(steps, steps[0], rtol=0, atol=1e-6) else None
    return {"size": int(values.size), "first": float(values[0]), "last": float(values[-1]),
            "spacing": spacing}


def describe_dataset(ds: xr.Dataset, source: str | None = None) -> dict:
    """A JSON-serialisable summary of a canonical dataset.

    Returns:
        ``{"source", "variables": {name: {"dims", "shape", "units", "long_name",
        "kind": "pressure-level" | "surface" | "static"}}, "levels_hpa",
        "grid": {"kind", "shape": [n_lat, n_lon], "latitude": {"size", "first",
        "last", "spacing"}, "longitude": {...} (a region across 0° E goes
        from its west edge, e.g. 350, to its east edge, e.g. 2)}, "times": {"first", "last",
        "count", "step", "step_seconds"} or None, "members": [...] or None}``.
        Degrees for latitude / longitude, hPa for levels, ISO 8601 times.
    """
    variables = {}
    for name, var in ds.data_vars.items():
        kind = "pressure-level" if "level" in var.dims else ("surface" if "time" in var.dims else "static")
        variables[str(name)] = {
            "dims": [str(d) for d in var.dims], "shape": [int(s) for s in var.shape],
            "units": var.attrs.get("units"), "long_name": var.attrs.get("long_name"), "kind": kind,
        }
    times = None
    if "time" in ds.dims:
        t = ds["time"].values.astype("datetime64[ns]")
        step = None
        if t.size > 1:
            try:
                step = infer_time_step(ds)
            except DataError:
                step = None
        times = {"first": format_time(t[0]), "last": format_time(t[-1]), "count": int(t.size),
                 "step": None if step is None else format_step(step),
                 "step_seconds": None if step is None or is_month(step)
                 else int(np.timedelta64(step, "s").astype(np.int64))}
    lat, lon = ds["latitude"].values, ds["longitude"].values
    return {
        "source": source if source is not None else ds.attrs.get("weathergnn_source"),
        "variables": variables,
        "levels_hpa": [int(v) for v in ds["level"].values] if "level" in ds.coords else [],
        "grid": {"kind": grid_kind(lat, lon), "shape": [int(lat.size), int(lon.size)],
                 "latitude": _axis(lat), "longitude": _longitude_axis(lon)},
        "times": times,
        "members": [int(m) for m in ds["member"].values] if "member" in ds.coords else None,
    }


def format_description(d: dict) -> str:
    """Human-readable text of :func:`describe_dataset`'s dict."""
    grid = d["grid"]

    def axis(name: str) -> str:
        a = grid[name]
        spacing = f", spacing {a['spacing']:g}°" if a["spacing"] is not None else ", non-uniform"
        return f"{name} {a['first']:g} .. {a['last']:g} ({a['size']}{spacing})"

    lines = [f"source: {d.get('source') or '<dataset>'}",
             f"grid: {grid['kind']}, {grid['shape'][0]} x {grid['shape'][1]}; "
             f"{axis('latitude')}; {axis('longitude')}"]
    t = d.get("times")
    if t:
        step = f", step {t['step']}" if t["step"] else ""
        lines.append(f"times: {t['count']} from {t['first']} to {t['last']}{step}")
    if d.get("levels_hpa"):
        lines.append(f"levels (hPa): {', '.join(map(str, d['levels_hpa']))}")
    if d.get("members") is not None:
        lines.append(f"members: {len(d['members'])} ({', '.join(map(str, d['members']))})")
    lines.append("variables:")
    width = max((len(n) for n in d["variables"]), default=0)
    for name, v in d["variables"].items():
        units = f" [{v['units']}]" if v.get("units") else ""
        lines.append(f"  {name:<{width}}  {v['kind']:<14} ({', '.join(v['dims'])}){units}")
    return "\n".join(lines)
