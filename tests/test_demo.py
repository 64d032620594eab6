"""Demo dataset: determinism, canonical layout, Williamson et al. (1992) test case 6."""

from __future__ import annotations

import numpy as np
import xarray as xr

from weathergnn.data.channels import resolve_channels
from weathergnn.data.demo import level_scale, make_demo_dataset, phase_speed, rossby_haurwitz

A, OM, G, H0, W, K, R = 6.37122e6, 7.292e-5, 9.80616, 8000.0, 7.848e-6, 7.848e-6, 4


def test_deterministic_and_seeded():
    a, b = make_demo_dataset(n_times=8), make_demo_dataset(n_times=8)
    xr.testing.assert_identical(a, b)
    c = make_demo_dataset(n_times=8, seed=1)
    assert not np.array_equal(a.geopotential.values, c.geopotential.values)


def test_canonical_layout():
    ds = make_demo_dataset()
    assert ds.sizes == {"time": 120, "level": 2, "latitude": 32, "longitude": 64}
    assert ds.geopotential.dims == ("time", "level", "latitude", "longitude")
    assert ds.mean_sea_level_pressure.dims == ("time", "latitude", "longitude")
    assert ds.land_sea_mask.dims == ("latitude", "longitude") and float(abs(ds.land_sea_mask).max()) == 0
    lat, lon = ds.latitude.values, ds.longitude.values
    np.testing.assert_allclose(lat[[0, -1]], [-87.1875, 87.1875])
    np.testing.assert_allclose(lon[[0, -1]], [0.0, 354.375])
    assert np.all(np.diff(lat) > 0) and np.all(np.diff(lon) > 0)
    assert ds.level.dtype == np.int64 and list(ds.level.values) == [500, 850]
    assert ds.time.dtype == np.dtype("datetime64[ns]")
    assert np.all(np.diff(ds.time.values) == np.timedelta64(6, "h"))
    assert all(ds[v].dtype == np.float32 for v in ds.data_vars)
    assert all(np.isfinite(ds[v].values).all() for v in ds.data_vars)
    assert len(resolve_channels("demo", ds)) == 9


def test_point_matches_williamson_formulas():
    """u, v, h of eqs. (142)-(146) written out independently at one point, t = 0."""
    ds = make_demo_dataset(second_wave=0.0, noise=0.0, n_times=2)
    i, j = 23, 7
    phi, lam = np.radians(ds.latitude.values[i]), np.radians(ds.longitude.values[j])
    c, s = np.cos(phi), np.sin(phi)
    u = A * W * c + A * K * c**3 * (4 * s**2 - c**2) * np.cos(4 * lam)
    v = -A * K * 4 * c**3 * s * np.sin(4 * lam)
    Aphi = W / 2 * (2 * OM + W) * c**2 + K**2 / 4 * c**8 * (5 * c**2 + 26 - 32 / c**2)
    Bphi = 2 * (OM + W) * K / 30 * c**4 * (26 - 25 * c**2)
    Cphi = K**2 / 4 * c**8 * (5 * c**2 - 6)
    gh = G * H0 + A**2 * (Aphi + Bphi * np.cos(4 * lam) + Cphi * np.cos(8 * lam))
    uu, vv, ghh = rossby_haurwitz(ds.latitude.values[i], ds.longitude.values[j], 0.0)
    np.testing.assert_allclose([uu, vv, ghh], [u, v, gh], rtol=1e-12)
    s500 = level_scale(500)
    np.testing.assert_allclose(ds.u_component_of_wind.sel(level=500).values[0, i, j], s500 * u, rtol=1e-6)
    np.testing.assert_allclose(ds.v_component_of_wind.sel(level=500).values[0, i, j], s500 * v, rtol=1e-5)
    # geopotential anomaly differences are s(p) * g * (h1 - h2)
    dz = ds.geopotential.sel(level=500).values[0]
    _, _, gh2 = rossby_haurwitz(ds.latitude.values[3], ds.longitude.values[40], 0.0)
    np.testing.assert_allclose(dz[i, j] - dz[3, 40], s500 * (gh - gh2), rtol=1e-4)
    assert abs(phase_speed(W, R) - (R * (3 + R) * W - 2 * OM) / ((1 + R) * (2 + R))) < 1e-20


def test_pattern_translates_at_nu():
    """Along a latitude circle the field is a trig polynomial in R*lam: the phase of
    Fourier mode R must advance by -R * nu * dt per step (exact on a 64-point circle)."""
    ds = make_demo_dataset(second_wave=0.0, noise=0.0, n_times=6)
    z = ds.geopotential.sel(level=850).values.astype(np.float64)[:, 20]  # [T, lon]
    f = np.fft.rfft(z, axis=-1)[:, R]
    dphase = np.angle(f[1:] / f[:-1])
    expected = -R * phase_speed(W, R) * 6 * 3600.0
    np.testing.assert_allclose(dphase, expected, atol=2e-4)  # float32 storage
    assert abs(np.degrees(phase_speed(W, R)) * 86400 - 12.195) < 0.01  # ~12.2 deg/day eastward
    # with the second wave the evolution is not a pure rotation of mode R alone
    ds2 = make_demo_dataset(noise=0.0, n_times=3)
    z2 = ds2.geopotential.sel(level=850).values.astype(np.float64)[:, 20]
    f2 = np.fft.rfft(z2, axis=-1)[:, 2]
    np.testing.assert_allclose(np.angle(f2[1] / f2[0]), -2 * phase_speed(W, 2) * 6 * 3600.0, atol=1e-3)


def test_barotropic_vorticity_equation():
    """The travelling wave solves d(zeta)/dt + u/(a cos) d(zeta+f)/dlam + v/a d(zeta+f)/dphi = 0
    (Haurwitz 1940), with d/dt = -nu d/dlam: check by finite differences at a few points."""
    h = 1e-4

    def zeta(phi, lam):  # relative vorticity from u, v (degrees in, radians for derivatives)
        def uv(p, l):
            u, v, _ = rossby_haurwitz(np.degrees(p), np.degrees(l), 0.0)
            return u, v
        dv_dlam = (uv(phi, lam + h)[1] - uv(phi, lam - h)[1]) / (2 * h)
        ducos = (uv(phi + h, lam)[0] * np.cos(phi + h) - uv(phi - h, lam)[0] * np.cos(phi - h)) / (2 * h)
        return (dv_dlam - ducos) / (A * np.cos(phi))

    nu = phase_speed(W, R)
    for phi, lam in [(0.3, 0.2), (-0.7, 1.1), (1.0, 2.5)]:
        q = lambda p, l: zeta(p, l) + 2 * OM * np.sin(p)  # noqa: E731
        u, v, _ = rossby_haurwitz(np.degrees(phi), np.degrees(lam), 0.0)
        dq_dlam = (q(phi, lam + 1e-3) - q(phi, lam - 1e-3)) / 2e-3
        dq_dphi = (q(phi + 1e-3, lam) - q(phi - 1e-3, lam)) / 2e-3
        dzeta_dt = -nu * (zeta(phi, lam + 1e-3) - zeta(phi, lam - 1e-3)) / 2e-3
        adv = u / (A * np.cos(phi)) * dq_dlam + v / A * dq_dphi
        assert abs(dzeta_dt + adv) < 1e-3 * abs(adv) + 1e-18
