"""Known-in-advance forcings: top-of-atmosphere solar radiation and clock features.

Solar geometry follows Spencer (1971), "Fourier series representation of the
position of the sun", Search 2(5):172, as written in NOAA's "General Solar
Position Calculations" (NOAA Global Monitoring Division,
https://gml.noaa.gov/grad/solcalc/solareqns.PDF):

- fractional year ``gamma = 2 pi / N_days * (day_of_year - 1 + (hour - 12) / 24)``,
- equation of time (minutes) ``229.18 (0.000075 + 0.001868 cos g - 0.032077 sin g
  - 0.014615 cos 2g - 0.040849 sin 2g)``,
- declination (rad) ``0.006918 - 0.399912 cos g + 0.070257 sin g - 0.006758 cos 2g
  + 0.000907 sin 2g - 0.002697 cos 3g + 0.00148 sin 3g``,
- true solar time (minutes) ``= UTC minutes + eqtime + 4 * longitude_deg``,
  hour angle ``= tst / 4 - 180`` degrees,
- Earth-Sun distance factor ``(r0 / r)^2 = 1.000110 + 0.034221 cos g + 0.001280 sin g
  + 0.000719 cos 2g + 0.000077 sin 2g`` (Spencer 1971).

Accuracy: declination about 0.0006 rad, equation of time about 35 s, so a few
W m-2 at most. GraphCast (google-deepmind/graphcast, ``solar_radiation.py``)
integrates over the preceding hour; we use the *instantaneous* flux.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["FORCING_NAMES", "SOLAR_CONSTANT", "forcing_features", "solar_geometry",
           "toa_incident_solar_radiation"]

#: Total solar irradiance (W m-2), Kopp & Lean (2011), GRL 38:L01706.
SOLAR_CONSTANT = 1361.0

#: Feature names of :func:`forcing_features`, in order (F = 5).
FORCING_NAMES: tuple[str, ...] = (
    "toa_incident_solar_radiation",  # W m-2 / SOLAR_CONSTANT
    "sin_local_time_of_day",
    "cos_local_time_of_day",
    "sin_day_of_year",
    "cos_day_of_year",
)


def _time_parts(time) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(day_of_year [T] 1-based, seconds since 00 UTC [T], days in year [T])."""
    t = pd.DatetimeIndex(np.asarray(time, dtype="datetime64[ns]").reshape(-1))
    doy = t.dayofyear.to_numpy().astype(np.float64)
    sec = (t - t.normalize()).total_seconds().to_numpy().astype(np.float64)
    ndays = np.where(t.is_leap_year, 366.0, 365.0)
    return doy, sec, ndays


def solar_geometry(time) -> dict[str, np.ndarray]:
    """Spencer/NOAA solar quantities per time: each an array ``[T]`` float64.

    Keys: ``gamma`` (rad), ``declination`` (rad), ``eqtime`` (minutes),
    ``distance_factor`` ((r0/r)^2), ``utc_minutes``.
    """
    doy, sec, ndays = _time_parts(time)
    g = 2.0 * np.pi / ndays * (doy - 1.0 + (sec / 3600.0 - 12.0) / 24.0)
    eqtime = 229.18 * (0.000075 + 0.001868 * np.cos(g) - 0.032077 * np.sin(g)
                       - 0.014615 * np.cos(2 * g) - 0.040849 * np.sin(2 * g))
    decl = (0.006918 - 0.399912 * np.cos(g) + 0.070257 * np.sin(g) - 0.006758 * np.cos(2 * g)
            + 0.000907 * np.sin(2 * g) - 0.002697 * np.cos(3 * g) + 0.00148 * np.sin(3 * g))
    dist = (1.000110 + 0.034221 * np.cos(g) + 0.001280 * np.sin(g) + 0.000719 * np.cos(2 * g)
            + 0.000077 * np.sin(2 * g))
    return {"gamma": g, "declination": decl, "eqtime": eqtime, "distance_factor": dist,
            "utc_minutes": sec / 60.0}


def toa_incident_solar_radiation(time, lat, lon) -> np.ndarray:
    """Instantaneous top-of-atmosphere incident solar flux (W m-2).

    ``S0 * (r0/r)^2 * max(cos(zenith), 0)`` with ``S0 = 1361`` W m-2.

    Args:
        time: datetime64-like, scalar or ``[T]``.
        lat: degrees north, ``[G]`` (or scalar).
        lon: degrees east, ``[G]`` (or scalar), same shape as ``lat``.

    Returns:
        float64 ``[T, G]`` (broadcast time x grid points).
    """
    geo = solar_geometry(time)
    lat = np.radians(np.asarray(lat, dtype=np.float64).reshape(-1))[None, :]
    lon_deg = np.asarray(lon, dtype=np.float64).reshape(-1)[None, :]
    tst = geo["utc_minutes"][:, None] + geo["eqtime"][:, None] + 4.0 * lon_deg  # true solar time, minutes
    ha = np.radians(tst / 4.0 - 180.0)
    decl = geo["declination"][:, None]
    cosz = np.sin(lat) * np.sin(decl) + np.cos(lat) * np.cos(decl) * np.cos(ha)
    return SOLAR_CONSTANT * geo["distance_factor"][:, None] * np.maximum(cosz, 0.0)


def forcing_features(times, lat, lon) -> np.ndarray:
    """Forcing features per time and grid point.

    Args:
        times: datetime64-like ``[T]``.
        lat, lon: degrees, ``[G]`` each (flattened grid).

    Returns:
        float32 ``[T, G, F]`` with F = len(FORCING_NAMES) = 5:
        TOA incident solar radiation / 1361 W m-2; sin, cos of the local mean
        solar time of day (``2 pi (UTC hours + lon / 15) / 24``, longitude
        dependent); sin, cos of the fraction of the year
        (``2 pi (day_of_year - 1 + UTC hours / 24) / days_in_year``, same for all points).
    """
    toa = toa_incident_solar_radiation(times, lat, lon) / SOLAR_CONSTANT  # [T, G]
    doy, sec, ndays = _time_parts(times)
    lon_deg = np.asarray(lon, dtype=np.float64).reshape(-1)[None, :]
    local = 2.0 * np.pi * ((sec[:, None] / 3600.0 + lon_deg / 15.0) / 24.0)  # [T, G]
    year = 2.0 * np.pi * (doy - 1.0 + sec / 86400.0) / ndays  # [T]
    yr = np.broadcast_to(year[:, None], toa.shape)
    out = np.stack([toa, np.sin(local), np.cos(local), np.sin(yr), np.cos(yr)], axis=-1)
    return out.astype(np.float32)
