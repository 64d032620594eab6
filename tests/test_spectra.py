"""weathergnn.evaluation.spectra: Parseval, single waves, brute-force DFT, band ratios."""

from __future__ import annotations

import cmath
import importlib.util
import math

import numpy as np
import pytest

from weathergnn.evaluation import spectra as S

HAS_TH = importlib.util.find_spec("torch_harmonics") is not None


def _grid(nlat: int, nlon: int):
    lat = -90 + (np.arange(nlat) + 0.5) * 180 / nlat  # WB2 equiangular, no poles
    lon = np.arange(nlon) * 360 / nlon
    return lat, lon


@pytest.mark.parametrize("nlon", [16, 15])
def test_parseval_and_brute_force_dft(nlon: int) -> None:
    rng = np.random.default_rng(nlon)
    lat, lon = _grid(6, nlon)
    u = rng.normal(size=(2, 6, nlon)) * 10
    v = rng.normal(size=(2, 6, nlon)) * 10
    spec = S.zonal_energy_spectrum(u, v, lat, lon)
    assert spec.shape == (2, 6, nlon // 2 + 1)
    np.testing.assert_allclose(spec.sum(axis=-1), 0.5 * (u**2 + v**2).mean(axis=-1), rtol=1e-12)
    # brute-force DFT at one (sample, latitude)
    L = nlon
    for k in range(L // 2 + 1):
        U = sum(u[1, 3, l] * cmath.exp(-2j * math.pi * k * l / L) for l in range(L)) / L
        V = sum(v[1, 3, l] * cmath.exp(-2j * math.pi * k * l / L) for l in range(L)) / L
        c = 1.0 if k == 0 or 2 * k == L else 2.0
        assert spec[1, 3, k] == pytest.approx(0.5 * c * (abs(U) ** 2 + abs(V) ** 2), rel=1e-10)


@pytest.mark.parametrize("k0", [1, 3, 8])
def test_single_zonal_wave(k0: int) -> None:
    lat, lon = _grid(4, 16)
    A = 7.0
    u = A * np.cos(k0 * np.deg2rad(lon))[None, :].repeat(4, axis=0)
    v = np.zeros_like(u)
    spec = S.zonal_energy_spectrum(u, v, lat, lon)
    expected = np.zeros(9)
    expected[k0] = A**2 / 4 if k0 < 8 else A**2 / 2  # Nyquist: one term
    np.testing.assert_allclose(spec, np.broadcast_to(expected, spec.shape), atol=1e-12)
    # WB2 units: times the circumference of each latitude circle
    circ = S.zonal_energy_spectrum(u, v, lat, lon, scale="circumference")
    np.testing.assert_allclose(circ, spec * (2 * np.pi * S.EARTH_RADIUS_M * np.cos(np.deg2rad(lat)))[:, None])


def test_wavelength() -> None:
    wl = S.zonal_wavelength([0.0, 60.0], 8)
    assert wl.shape == (2, 5) and np.isinf(wl[:, 0]).all()
    assert wl[0, 1] == pytest.approx(2 * np.pi * 6.371e6)
    assert wl[1, 2] == pytest.approx(2 * np.pi * 6.371e6 * 0.5 / 2)


def test_band_mean_vs_loop() -> None:
    rng = np.random.default_rng(0)
    lat, _ = _grid(12, 8)  # -82.5 .. 82.5 step 15
    spec = rng.uniform(size=(3, 12, 5))
    got = S.band_mean(spec, lat, (30, 60))
    sel = [i for i in range(12) if 30 <= abs(lat[i]) <= 60]
    assert len(sel) == 4  # +-37.5, +-52.5
    w = np.cos(np.deg2rad(lat))
    exp = sum(w[i] * spec[:, i] for i in sel) / sum(w[i] for i in sel)
    np.testing.assert_allclose(got, exp, rtol=1e-12)
    north = S.band_mean(spec, lat, (30, 60), absolute=False)
    np.testing.assert_allclose(north, (w[8] * spec[:, 8] + w[9] * spec[:, 9]) / (w[8] + w[9]), rtol=1e-12)
    with pytest.raises(ValueError, match="no latitude in band"):
        S.band_mean(spec, lat, (84, 90))


def test_spectrum_ratio() -> None:
    rng = np.random.default_rng(1)
    t = rng.uniform(size=(2, 9))
    np.testing.assert_allclose(S.spectrum_ratio(t, t, [(0, 2), (3, 8)]), 1.0)
    f = t.copy()
    f[:, 3:] *= 0.5
    got = S.spectrum_ratio(f, t, [(1, 4), (5, 8)])
    exp0 = (f[:, 1:5].sum(-1)) / (t[:, 1:5].sum(-1))
    np.testing.assert_allclose(got[:, 0], exp0)
    np.testing.assert_allclose(got[:, 1], 0.5)
    z = np.zeros_like(t)
    assert np.isnan(S.spectrum_ratio(t, z, [(0, 1)])).all()
    with pytest.raises(ValueError, match="outside wavenumbers"):
        S.spectrum_ratio(t, t, [(3, 9)])


def test_bad_grid_and_nan() -> None:
    lat, lon = _grid(4, 8)
    u = np.ones((4, 8))
    with pytest.raises(ValueError, match="cover 360"):
        S.zonal_energy_spectrum(u, u, lat, lon[:8] * 0.5)
    bad = u.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="v contains NaN"):
        S.zonal_energy_spectrum(u, bad, lat, lon)


@pytest.mark.skipif(HAS_TH, reason="torch-harmonics installed: the ImportError path cannot be exercised")
def test_spherical_harmonic_spectrum_without_library() -> None:
    lat, lon = _grid(8, 16)
    with pytest.raises(ImportError, match="torch-harmonics"):
        S.spherical_harmonic_spectrum(np.ones((8, 16)), np.ones((8, 16)), lat, lon)


def _gradient_of_y32(lat_deg: np.ndarray, lon_deg: np.ndarray):
    """u, v of grad(sin(phi) cos(phi)^2 cos(2 lambda)) (a degree-3 harmonic) on the unit sphere."""
    phi = np.deg2rad(lat_deg)[:, None]
    lam = np.deg2rad(lon_deg)[None, :]
    u = -2 * np.sin(phi) * np.cos(phi) * np.sin(2 * lam)
    v = np.cos(phi) * (np.cos(phi) ** 2 - 2 * np.sin(phi) ** 2) * np.cos(2 * lam)
    return u, v


@pytest.mark.skipif(not HAS_TH, reason="optional torch-harmonics not installed (pip install --no-deps torch-harmonics)")
def test_spherical_harmonic_spectrum_with_torch_harmonics() -> None:
    nlat, nlon = 16, 32
    gauss = np.rad2deg(np.arcsin(np.polynomial.legendre.leggauss(nlat)[0]))
    lon = np.arange(nlon) * 360 / nlon
    u, v = _gradient_of_y32(gauss, lon)
    e = S.spherical_harmonic_spectrum(u, v, gauss, lon)
    assert e[3] / e.sum() == pytest.approx(1.0, abs=1e-10)
    # Parseval with the Gauss-Legendre quadrature: sum_l E_l = 0.5 <u^2 + v^2>
    gw = np.polynomial.legendre.leggauss(nlat)[1]
    mean_ke = 0.5 * (gw[:, None] * (u**2 + v**2)).sum() / (2 * nlon)
    assert e.sum() == pytest.approx(mean_ke, rel=1e-6)
    # WB2 grid (no poles): interpolated onto Gauss nodes, energy still at l = 3
    lat2, lon2 = _grid(32, 64)
    u2, v2 = _gradient_of_y32(lat2, lon2)
    e2 = S.spherical_harmonic_spectrum(u2[None], v2[None], lat2, lon2)
    assert e2.shape[0] == 1 and e2[0, 3] / e2[0].sum() > 0.999
