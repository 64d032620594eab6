"""Known-in-advance forcings: top-of-atmosphere solar radiation and clock features.

Solar position from the low-precision solar coordinates of the Astronomical
Almanac (U.S. Naval Observatory, "Approximate Solar Coordinates",
https://aa.usno.navy.mil/faq/sun_approx; also Michalsky 1988, Solar Energy
40:227), accurate to about 0.01 degree for 1950-2050. With ``D`` = days since
J2000.0 (2000-01-01T12:00 UT, UT taken as UTC):

- mean anomaly ``g = 357.529 + 0.98560028 D``, mean longitude ``q = 280.459 + 0.98564736 D``,
- ecliptic longitude ``L = q + 1.915 sin g + 0.020 sin 2g`` (degrees),
- distance ``R = 1.00014 - 0.01671 cos g - 0.00014 cos 2g`` (au),
- obliquity ``e = 23.439 - 0.00000036 D``; right ascension ``RA = atan2(cos e sin L, cos L)``,
  declination ``delta = asin(sin e sin L)``,
- equation of time ``EqT = q - RA`` (wrapped to +-180 deg; x4 -> minutes),
- hour angle ``h = 15 (UTC hours - 12) + longitude + EqT`` (degrees),
- ``cos(zenith) = sin(lat) sin(delta) + cos(lat) cos(delta) cos(h)``.

Flux: ``S0 / R^2 * max(cos(zenith), 0)`` with ``S0 = 1361`` W m-2. The formulas
are continuous in time since J2000 (like GraphCast's ``solar_radiation.py``,
which follows the IFS), so there is no calendar-epoch error: Spencer's (1971)
day-of-year Fourier series, as in NOAA's "General Solar Position
Calculations", is off by up to ~0.45 degree in declination in 2001 (tested).
GraphCast integrates the flux over the preceding hour; we use the
*instantaneous* flux.
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
    doy = t.day_of_year.to_numpy().astype(np.float64)
    sec = (t - t.normalize()).total_seconds().to_numpy().astype(np.float64)
    ndays = np.where(t.is_leap_year, 366.0, 365.0)
    return doy, sec, ndays


def solar_geometry(time) -> dict[str, np.ndarray]:
    """Solar coordinates per time (Astronomical Almanac low-precision formulas).

    Returns:
        dict of float64 arrays ``[T]``: ``declination`` (rad), ``eqtime`` (minutes,
        apparent minus mean solar time), ``distance_factor`` ((1 au / R)^2),
        ``utc_minutes`` (minutes since 00 UTC).
    """
    t = np.asarray(time, dtype="datetime64[ns]").reshape(-1)
    d = (t - np.datetime64("2000-01-01T12:00", "ns")).astype(np.float64) / 86400e9  # days since J2000.0
    g = np.radians(357.529 + 0.98560028 * d)
    q = 280.459 + 0.98564736 * d
    L = np.radians(q + 1.915 * np.sin(g) + 0.020 * np.sin(2 * g))
    r = 1.00014 - 0.01671 * np.cos(g) - 0.00014 * np.cos(2 * g)
    e = np.radians(23.439 - 0.00000036 * d)
    ra = np.degrees(np.arctan2(np.cos(e) * np.sin(L), np.cos(L)))
    decl = np.arcsin(np.sin(e) * np.sin(L))
    eqtime = 4.0 * ((q - ra + 180.0) % 360.0 - 180.0)
    _, sec, _ = _time_parts(t)
    return {"declination": decl, "eqtime": eqtime, "distance_factor": 1.0 / r**2, "utc_minutes": sec / 60.0}


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
    tst = geo["utc_minutes"][:, None] + geo["eqtime"][:, None] + 4.0 * lon_deg  # apparent solar time, minutes
    ha = np.radians(tst / 4.0 - 180.0)  # hour angle
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
