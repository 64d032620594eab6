"""TOA solar radiation against analytic cases and an independent ephemeris."""

from __future__ import annotations

import numpy as np
import pandas as pd

from weathergnn.data.forcings import (
    FORCING_NAMES,
    SOLAR_CONSTANT,
    forcing_features,
    solar_geometry,
    toa_incident_solar_radiation,
)

S0 = SOLAR_CONSTANT


def _toa(time, lat, lon):
    return toa_incident_solar_radiation(np.array([time], dtype="datetime64[ns]"), [lat], [lon])[0, 0]


def _spencer_toa(times, lat, lon):
    """Independent reference: Spencer (1971) Fourier series as in NOAA's "General Solar
    Position Calculations" (day-of-year based; ~0.45 deg declination epoch error in 2001)."""
    t = pd.DatetimeIndex(times)
    hours = (t.hour + t.minute / 60 + t.second / 3600).to_numpy()[:, None]
    ndays = np.where(t.is_leap_year, 366.0, 365.0)[:, None]
    g = 2 * np.pi / ndays * (t.day_of_year.to_numpy()[:, None] - 1 + (hours - 12) / 24)
    eqt = 229.18 * (0.000075 + 0.001868 * np.cos(g) - 0.032077 * np.sin(g) - 0.014615 * np.cos(2 * g)
                    - 0.040849 * np.sin(2 * g))
    dec = (0.006918 - 0.399912 * np.cos(g) + 0.070257 * np.sin(g) - 0.006758 * np.cos(2 * g)
           + 0.000907 * np.sin(2 * g) - 0.002697 * np.cos(3 * g) + 0.00148 * np.sin(3 * g))
    e0 = 1.000110 + 0.034221 * np.cos(g) + 0.001280 * np.sin(g) + 0.000719 * np.cos(2 * g) + 0.000077 * np.sin(2 * g)
    ha = np.radians((hours * 60 + eqt + 4 * np.asarray(lon)[None, :]) / 4 - 180)
    phi = np.radians(np.asarray(lat))[None, :]
    cosz = np.sin(phi) * np.sin(dec) + np.cos(phi) * np.cos(dec) * np.cos(ha)
    return S0 * e0 * np.maximum(cosz, 0.0)


def test_published_ephemeris_events():
    """Event times of 2001 (USNO "Earth's Seasons"): equinox 20 Mar 13:31 UTC, solstice
    21 Jun 07:38, perihelion 4 Jan 09 h (0.98329 au), aphelion 4 Jul 14 h (1.01668 au);
    equation of time about -14.2 min on 11 Feb and +16.4 min on 3 Nov."""
    times = np.array(["2001-03-20T13:31", "2001-06-21T07:38", "2001-01-04T09:00", "2001-07-04T14:00",
                      "2001-02-11T12:00", "2001-11-03T12:00"], dtype="datetime64[ns]")
    geo = solar_geometry(times)
    dec = np.degrees(geo["declination"])
    assert abs(dec[0]) < 0.02
    assert abs(dec[1] - 23.439) < 0.01
    r = 1.0 / np.sqrt(geo["distance_factor"])
    assert abs(r[2] - 0.98329) < 1e-4 and abs(r[3] - 1.01668) < 1e-4
    assert abs(geo["eqtime"][4] - (-14.2)) < 0.3 and abs(geo["eqtime"][5] - 16.4) < 0.3


def test_night_is_zero():
    # longitude 0 at 00 UTC is local midnight on the equator; longitude 180 is local noon
    assert _toa("2000-03-20T00:00", 0.0, 0.0) == 0.0
    assert _toa("2000-03-20T00:00", 0.0, 180.0) > 0.99 * S0
    # north pole in polar night (December), every hour
    times = pd.date_range("2001-12-21", periods=24, freq="1h").to_numpy()
    assert np.all(toa_incident_solar_radiation(times, [90.0], [0.0]) == 0.0)
    # south pole in polar day then gets sun all day
    assert np.all(toa_incident_solar_radiation(times, [-90.0], [0.0]) > 0.0)


def test_equinox_noon_equator():
    # 2001-03-20: declination ~0; noon at lon 0 is ~12:07 UTC (equation of time ~ -7.5 min)
    v = _toa("2001-03-20T12:07", 0.0, 0.0)
    dist = 1.0 / 0.99598**2  # Earth-Sun distance ~0.996 au on 20 March
    assert abs(v - S0 * dist) / (S0 * dist) < 2e-3


def test_solstice_noon_tropic_and_distance():
    # summer solstice noon on the Tropic of Cancer: sun at zenith; r ~ 1.0163 au (near aphelion)
    v_jun = _toa("2001-06-21T12:02", 23.44, 0.0)
    assert abs(v_jun - S0 / 1.0163**2) < 0.002 * S0
    # winter solstice noon on the Tropic of Capricorn: r ~ 0.9837 au (near perihelion)
    v_dec = _toa("2001-12-21T11:58", -23.44, 0.0)
    assert abs(v_dec - S0 / 0.9837**2) < 0.002 * S0
    # the ratio is the (r_jun / r_dec)^2 ~ 0.937 distance effect (~6.7 %)
    assert abs(v_jun / v_dec - (0.9837 / 1.0163) ** 2) < 3e-3


def test_equator_equinox_daily_mean_is_s0_over_pi():
    # daily mean of max(cos h, 0) over a day at dec=0, lat=0 is 1/pi
    times = pd.date_range("2001-03-20T00:00", periods=24 * 60, freq="1min").to_numpy()
    v = toa_incident_solar_radiation(times, [0.0], [0.0])[:, 0]
    assert abs(v.mean() - S0 * 1.0081 / np.pi) / (S0 / np.pi) < 0.01


def test_against_spencer_noaa():
    rng = np.random.default_rng(1)
    start = np.datetime64("2000-01-01", "s").astype(np.int64)
    secs = rng.integers(0, 20 * 365 * 86400, size=200) + start
    times = secs.astype("datetime64[s]").astype("datetime64[ns]")
    lat = rng.uniform(-90, 90, size=50)
    lon = rng.uniform(0, 360, size=50)
    ours = toa_incident_solar_radiation(times, lat, lon)
    ref = _spencer_toa(times, lat, lon)
    assert ours.shape == (200, 50)
    # Spencer's series is tied to the calendar: ~0.45 deg declination and ~1 min time errors
    # -> up to ~15 W m-2 where the sun is low; typically ~2 W m-2
    assert np.abs(ours - ref).max() < 20.0
    assert np.abs(ours - ref).mean() < 3.0


def test_forcing_features():
    times = pd.date_range("2001-01-01", periods=5, freq="6h").to_numpy()
    lat = np.array([0.0, 45.0, -30.0])
    lon = np.array([0.0, 90.0, 270.0])
    f = forcing_features(times, lat, lon)
    assert f.shape == (5, 3, len(FORCING_NAMES)) and f.dtype == np.float32
    np.testing.assert_allclose(f[..., 0], toa_incident_solar_radiation(times, lat, lon) / S0, rtol=1e-6)
    # local time: lon 90 at 00 UTC is 06 local -> angle pi/2
    np.testing.assert_allclose(f[0, 1, 1:3], [1.0, 0.0], atol=1e-6)
    # lon 270 at 06 UTC is 00 local
    np.testing.assert_allclose(f[1, 2, 1:3], [0.0, 1.0], atol=1e-6)
    # day of year: Jan 1 00 UTC -> angle 0, same for every point
    np.testing.assert_allclose(f[0, :, 3:5], [[0.0, 1.0]] * 3, atol=1e-6)
    np.testing.assert_allclose(f[..., 3] ** 2 + f[..., 4] ** 2, 1.0, atol=1e-6)
