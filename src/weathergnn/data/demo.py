"""Offline, deterministic demo dataset from the Rossby-Haurwitz wave.

Source: Williamson, Drake, Hack, Jakob & Swarztrauber (1992), "A standard test
set for numerical approximations to the shallow water equations in spherical
geometry", J. Comput. Phys. 102:211-224, test case 6, eqs. (142)-(146) for
``u, v, h`` and (139) for the angular phase velocity:

- ``u = a w cos(phi) + a K cos^(R-1)(phi) (R sin^2(phi) - cos^2(phi)) cos(R lam)``
- ``v = -a K R cos^(R-1)(phi) sin(phi) sin(R lam)``
- ``g h = g h0 + a^2 A(phi) + a^2 B(phi) cos(R lam) + a^2 C(phi) cos(2 R lam)``
- ``A = w/2 (2 Om + w) cos^2 + K^2/4 cos^(2R) ((R+1) cos^2 + (2R^2 - R - 2) - 2 R^2 cos^-2)``
- ``B = 2 (Om + w) K / ((R+1)(R+2)) cos^R ((R^2 + 2R + 2) - (R+1)^2 cos^2)``
- ``C = K^2/4 cos^(2R) ((R+1) cos^2 - (R+2))``
- ``nu = (R (3 + R) w - 2 Om) / ((1 + R)(2 + R))`` (rad s-1); the pattern is a
  function of ``lam - nu t``. With w = K = 7.848e-6 s-1, R = 4: nu = 2.46e-6 s-1,
  about 12.2 degrees per day *eastward*. It is an exact travelling solution of the
  non-divergent barotropic vorticity equation (Haurwitz 1940) and close to one of
  the shallow-water equations.

Layout of the demo (a synthetic, *kinematic* atmosphere, not a model integration):

- primary wave R = 4 (test case 6 constants); a secondary wave R2 = 2 with a
  weaker amplitude ``K2`` that shares the solid-body rotation ``w``; it travels
  at its own analytic speed nu(R2) = -5.6e-6 s-1 (about 28 degrees per day
  *westward*). Fields of the secondary wave are the wave-only part
  ``rh(w, K2, R2) - rh(w, 0, R2)``. The sum is not an exact solution of the
  nonlinear equations (the waves interact), but every component moves at its
  analytic speed, so the evolution is not a pure rotation.
- vertical structure (equivalent-barotropic proxy): at pressure ``p`` the winds
  are ``s(p) (u, v)`` and the geopotential is
  ``Phi(p) = Phi_std(p) + s(p) phi'`` with ``s(p) = 0.25 (1000 / p)^0.7`` and
  ``phi' = g (h - h0) - <g (h - h0)>`` (area-mean removed, exactly by Gauss
  quadrature). ``Phi_std``, ``T_std`` are the ICAO standard atmosphere
  (T0 = 288.15 K, lapse 6.5 K/km, p0 = 1013.25 hPa).
- temperature is hydrostatic for that continuous profile,
  ``T = -(1 / R_d) dPhi / d ln p = T_std(p) + 0.7 s(p) phi' / R_d``.
- ``mean_sea_level_pressure = 101325 Pa + rho0 s(1000) phi'`` with
  ``rho0 = 1.225 kg m-3`` (hydrostatic: a geopotential anomaly at fixed pressure
  corresponds to a surface pressure anomaly of rho * Phi').
- static ``geopotential_at_surface`` and ``land_sea_mask`` are zeros.
- optional Gaussian noise from ``numpy.random.default_rng(seed)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

__all__ = ["DEMO_CONSTANTS", "make_demo_dataset", "phase_speed", "rossby_haurwitz", "level_scale"]

#: Constants of Williamson et al. (1992) (a, Omega, g, h0, w, K, R of test case 6).
DEMO_CONSTANTS = {
    "a": 6.37122e6,  # m
    "omega_earth": 7.292e-5,  # s-1
    "g": 9.80616,  # m s-2
    "h0": 8000.0,  # m
    "w": 7.848e-6,  # s-1
    "K": 7.848e-6,  # s-1
    "R": 4,
}
R_DRY = 287.05  # J kg-1 K-1
RHO0 = 1.225  # kg m-3
_ALPHA = 0.7
_NOISE = {  # standard deviation of the optional noise, physical units
    "geopotential": 10.0, "temperature": 0.1, "u_component_of_wind": 0.1,
    "v_component_of_wind": 0.1, "mean_sea_level_pressure": 10.0,
}


def phase_speed(w: float, R: int, omega_earth: float = DEMO_CONSTANTS["omega_earth"]) -> float:
    """Angular phase velocity nu (rad s-1) of a Rossby-Haurwitz wave, Williamson et al. (1992) eq. (139)."""
    return (R * (3 + R) * w - 2 * omega_earth) / ((1 + R) * (2 + R))


def rossby_haurwitz(lat, lon, t, *, w=DEMO_CONSTANTS["w"], K=DEMO_CONSTANTS["K"], R=DEMO_CONSTANTS["R"],
                    a=DEMO_CONSTANTS["a"], omega_earth=DEMO_CONSTANTS["omega_earth"], g=DEMO_CONSTANTS["g"],
                    h0=DEMO_CONSTANTS["h0"]):
    """Rossby-Haurwitz wave (Williamson et al. 1992, test case 6) at time ``t``.

    Args:
        lat, lon: degrees, broadcastable arrays.
        t: seconds since the initial state (broadcastable).

    Returns:
        (u, v, gh): float64 arrays, m s-1, m s-1, m2 s-2 (geopotential g h).
    """
    phi = np.radians(np.asarray(lat, dtype=np.float64))
    lam = np.radians(np.asarray(lon, dtype=np.float64)) - phase_speed(w, R, omega_earth) * np.asarray(t, float)
    c, s = np.cos(phi), np.sin(phi)
    u = a * w * c + a * K * c ** (R - 1) * (R * s**2 - c**2) * np.cos(R * lam)
    v = -a * K * R * c ** (R - 1) * s * np.sin(R * lam)
    A = _zonal_A(c, w, K, R, omega_earth)
    B = 2 * (omega_earth + w) * K / ((R + 1) * (R + 2)) * c**R * ((R**2 + 2 * R + 2) - (R + 1) ** 2 * c**2)
    C = 0.25 * K**2 * c ** (2 * R) * ((R + 1) * c**2 - (R + 2))
    gh = g * h0 + a**2 * (A + B * np.cos(R * lam) + C * np.cos(2 * R * lam))
    return u, v, gh


def _zonal_A(c, w, K, R, omega_earth):
    # the cos^-2 term is multiplied by cos^(2R): write it as cos^(2R-2) to stay finite at the poles
    return (0.5 * w * (2 * omega_earth + w) * c**2
            + 0.25 * K**2 * (c ** (2 * R) * ((R + 1) * c**2 + (2 * R**2 - R - 2)) - 2 * R**2 * c ** (2 * R - 2)))


def _area_mean_A(w, K, R, omega_earth, a) -> float:
    """Exact area mean of a^2 A(phi) (B, C terms average to zero in longitude), Gauss-Legendre."""
    x, wt = np.polynomial.legendre.leggauss(64)  # x = sin(phi)
    c = np.sqrt(1 - x**2)
    return float(a**2 * 0.5 * np.sum(wt * _zonal_A(c, w, K, R, omega_earth)))


def level_scale(p_hpa) -> np.ndarray:
    """Vertical amplitude factor s(p) = 0.25 (1000 / p)^0.7."""
    return 0.25 * (1000.0 / np.asarray(p_hpa, dtype=np.float64)) ** _ALPHA


def _standard_atmosphere(p_hpa):
    """ICAO standard atmosphere (troposphere): (Phi_std m2 s-2, T_std K) at pressure p."""
    t0, lapse, p0, g = 288.15, 0.0065, 1013.25, DEMO_CONSTANTS["g"]
    e = R_DRY * lapse / g
    ratio = (np.asarray(p_hpa, dtype=np.float64) / p0) ** e
    return g * t0 / lapse * (1 - ratio), t0 * ratio


def make_demo_dataset(
    n_lat: int = 32,
    n_lon: int = 64,
    n_times: int = 120,
    dt_hours: float = 6,
    levels: Sequence[int] = (500, 850),
    seed: int = 0,
    *,
    second_wave: float = 0.25,
    noise: float = 1.0,
    start: str = "2000-01-01",
) -> xr.Dataset:
    """Canonical demo dataset (see module docstring for the physics).

    Args:
        n_lat, n_lon: equiangular grid, WeatherBench2 style: latitudes
            ``-90 + (i + 0.5) 180 / n_lat`` (ascending, no poles), longitudes
            ``j 360 / n_lon``. Defaults: 5.625 degrees (32 x 64).
        n_times: number of states (default 120 = 30 days at 6 h).
        dt_hours: time step.
        levels: pressure levels (hPa), sorted ascending in the output.
        seed: seed of the noise.
        second_wave: amplitude K2 / K of the R2 = 2 wave (0 disables it).
        noise: multiplier of the per-variable noise std (0 disables it).
        start: first time.

    Returns:
        xr.Dataset (numpy-backed, float32): ``geopotential``, ``temperature``,
        ``u_component_of_wind``, ``v_component_of_wind`` (time, level, latitude,
        longitude); ``mean_sea_level_pressure`` (time, latitude, longitude);
        ``geopotential_at_surface``, ``land_sea_mask`` (latitude, longitude).
    """
    k = DEMO_CONSTANTS
    lat = -90.0 + (np.arange(n_lat) + 0.5) * 180.0 / n_lat
    lon = np.arange(n_lon) * 360.0 / n_lon
    times = pd.date_range(start, periods=n_times, freq=pd.Timedelta(hours=dt_hours)).to_numpy()
    tsec = (np.arange(n_times) * dt_hours * 3600.0)[:, None, None]
    la, lo = lat[None, :, None], lon[None, None, :]

    u, v, gh = rossby_haurwitz(la, lo, tsec)  # [T, lat, lon]
    mean_gh = k["g"] * k["h0"] + _area_mean_A(k["w"], k["K"], k["R"], k["omega_earth"], k["a"])
    if second_wave:
        K2, R2 = second_wave * k["K"], 2
        u2, v2, gh2 = rossby_haurwitz(la, lo, tsec, K=K2, R=R2)
        u0, v0, gh0 = rossby_haurwitz(la, lo, tsec, K=0.0, R=R2)
        u, v, gh = u + (u2 - u0), v + (v2 - v0), gh + (gh2 - gh0)
        mean_gh += (_area_mean_A(k["w"], K2, R2, k["omega_earth"], k["a"])
                    - _area_mean_A(k["w"], 0.0, R2, k["omega_earth"], k["a"]))
    phi_anom = gh - mean_gh  # [T, lat, lon], m2 s-2, area mean 0

    levels = np.array(sorted(int(x) for x in levels), dtype=np.int64)
    s = level_scale(levels)[None, :, None, None]  # [1, L, 1, 1]
    phi_std, t_std = _standard_atmosphere(levels)
    z = phi_std[None, :, None, None] + s * phi_anom[:, None]
    temp = t_std[None, :, None, None] + _ALPHA * s * phi_anom[:, None] / R_DRY
    uu = s * u[:, None]
    vv = s * v[:, None]
    mslp = 101325.0 + RHO0 * level_scale(1000.0) * phi_anom

    fields = {"geopotential": z, "temperature": temp, "u_component_of_wind": uu,
              "v_component_of_wind": vv, "mean_sea_level_pressure": mslp}
    if noise:
        rng = np.random.default_rng(seed)
        fields = {n: f + noise * _NOISE[n] * rng.standard_normal(f.shape) for n, f in fields.items()}

    dims4, dims3 = ("time", "level", "latitude", "longitude"), ("time", "latitude", "longitude")
    units = {"geopotential": "m2 s-2", "temperature": "K", "u_component_of_wind": "m s-1",
             "v_component_of_wind": "m s-1", "mean_sea_level_pressure": "Pa"}
    data_vars = {n: ((dims3 if f.ndim == 3 else dims4), f.astype(np.float32), {"units": units[n]})
                 for n, f in fields.items()}
    zeros = np.zeros((n_lat, n_lon), np.float32)
    data_vars["geopotential_at_surface"] = (("latitude", "longitude"), zeros, {"units": "m2 s-2"})
    data_vars["land_sea_mask"] = (("latitude", "longitude"), zeros.copy(), {"units": "1"})
    return xr.Dataset(
        data_vars,
        coords={"time": times.astype("datetime64[ns]"), "level": levels, "latitude": lat, "longitude": lon},
        attrs={
            "title": "WeatherGNN demo: Rossby-Haurwitz waves (Williamson et al. 1992, test case 6)",
            "weathergnn_source": "demo",
            "phase_speed_rad_s": phase_speed(k["w"], k["R"]),
            "second_wave": float(second_wave),
            "seed": int(seed),
            "note": "synthetic kinematic fields; vertical structure and temperature are an "
                    "equivalent-barotropic, hydrostatic proxy (see weathergnn.data.demo)",
        },
    )
