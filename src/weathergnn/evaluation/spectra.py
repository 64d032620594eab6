"""Kinetic-energy spectra of the horizontal wind, forecast vs truth.

Sources: WeatherBench 2 (Rasp et al. 2024, sec. 4.4; ``ZonalEnergySpectrum`` in
``weatherbench2/derived_variables.py``) for the zonal spectrum; the vector
spherical-harmonic transform of torch-harmonics (Bonev et al. 2023) for the
spherical-harmonic spectrum.

Zonal spectrum (:func:`zonal_energy_spectrum`): at each latitude the wind is
Fourier transformed along longitude, ``U_k = (1/L) sum_l u_l exp(-2 pi i k l / L)``
(``L`` longitudes, ``k = 0 .. L//2``), and

    ``E_k = 0.5 c_k (|U_k|^2 + |V_k|^2)``,  ``c_0 = 1``, ``c_k = 2`` for
    ``0 < k < L/2`` (the ``+k`` and ``-k`` terms), ``c_{L/2} = 1`` for even ``L``,

so that (Parseval) ``sum_k E_k = 0.5 mean_lon(u^2 + v^2)``, the zonal-mean
kinetic energy per unit mass (m2 s-2) at that latitude. WB2 multiplies by the
circumference ``C = 2 pi R cos(lat)`` (units m3 s-2; ``scale="circumference"``
here) and counts the Nyquist term twice (we count it once, which is what
Parseval needs). The wavelength of ``k`` at latitude ``lat`` is
``2 pi R cos(lat) / k`` (:func:`zonal_wavelength`), ``R = 6371 km``.
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

import numpy as np

from weathergnn.evaluation.metrics import _as_f64, _finite

__all__ = [
    "EARTH_RADIUS_M",
    "zonal_wavenumbers",
    "zonal_wavelength",
    "zonal_energy_spectrum",
    "band_mean",
    "spectrum_ratio",
    "spherical_harmonic_spectrum",
]

EARTH_RADIUS_M = 6_371_000.0


def _check_grid(u: np.ndarray, latitude: Any, longitude: Any) -> tuple[np.ndarray, np.ndarray]:
    lat = _as_f64(latitude)
    lon = _as_f64(longitude)
    if u.ndim < 2:
        raise ValueError(f"wind must be [..., latitude, longitude], got shape {u.shape}")
    if lat.shape != (u.shape[-2],):
        raise ValueError(f"latitude must have shape [{u.shape[-2]}], got {lat.shape}")
    if lon.shape != (u.shape[-1],):
        raise ValueError(f"longitude must have shape [{u.shape[-1]}], got {lon.shape}")
    if np.any(np.abs(lat) > 90):
        raise ValueError("latitude must be within [-90, 90] degrees")
    if lon.size < 2:
        raise ValueError("need at least 2 longitudes")
    d = np.diff(lon)
    if np.max(np.abs(d - d[0])) > 1e-3 or not abs(d[0] * lon.size - 360.0) < 1e-3:
        raise ValueError(
            f"longitude must be uniformly spaced and cover 360 degrees (spacing {d[0]:g}, {lon.size} points)"
        )
    return lat, lon


def zonal_wavenumbers(n_lon: int) -> np.ndarray:
    """Zonal wavenumbers ``k = 0 .. n_lon // 2`` (cycles per latitude circle), ``[k]`` int64."""
    return np.arange(n_lon // 2 + 1, dtype=np.int64)


def zonal_wavelength(latitude: Any, n_lon: int) -> np.ndarray:
    """Wavelength (m) of each zonal wavenumber at each latitude.

    ``lambda(lat, k) = 2 pi R cos(lat) / k`` with ``R = 6371 km``; ``inf`` for ``k = 0``.

    Args:
        latitude: ``[latitude]`` degrees north.
        n_lon: number of longitudes of the grid.

    Returns:
        ``[latitude, k]`` float64 metres.
    """
    lat = _as_f64(latitude)
    circ = 2 * np.pi * EARTH_RADIUS_M * np.cos(np.deg2rad(lat))
    k = zonal_wavenumbers(n_lon).astype(np.float64)
    with np.errstate(divide="ignore"):
        return np.where(k[None, :] > 0, circ[:, None] / np.where(k > 0, k, 1.0)[None, :], np.inf)


def zonal_energy_spectrum(
    u: Any,
    v: Any,
    latitude: Any,
    longitude: Any,
    *,
    scale: Literal["mean", "circumference"] = "mean",
) -> np.ndarray:
    """Zonal kinetic-energy spectrum per latitude (WB2 ``ZonalEnergySpectrum`` of u and v).

    ``E_k = 0.5 c_k (|U_k|^2 + |V_k|^2)`` (module docstring), so
    ``sum_k E_k = 0.5 mean_lon(u^2 + v^2)`` at each latitude.

    Args:
        u, v: ``[..., latitude, longitude]`` eastward / northward wind, m s-1.
        latitude: ``[latitude]`` degrees north.
        longitude: ``[longitude]`` degrees east, uniform, covering 360 degrees.
        scale: ``"mean"`` (m2 s-2; sums to the zonal-mean KE) or
            ``"circumference"`` (times ``2 pi R cos(lat)``: m3 s-2, WB2's units;
            sums to the zonal integral of the KE).

    Returns:
        ``[..., latitude, k]`` float64, ``k = 0 .. n_lon // 2``.

    Raises:
        ValueError: NaN/inf in u or v, shapes differ, bad grid, bad ``scale``.
    """
    uu = _finite(u, "u")
    vv = _finite(v, "v")
    if uu.shape != vv.shape:
        raise ValueError(f"u {uu.shape} and v {vv.shape} differ in shape")
    lat, _ = _check_grid(uu, latitude, longitude)
    n = uu.shape[-1]
    uk = np.fft.rfft(uu, axis=-1, norm="forward")
    vk = np.fft.rfft(vv, axis=-1, norm="forward")
    c = np.full(uk.shape[-1], 2.0)
    c[0] = 1.0
    if n % 2 == 0:
        c[-1] = 1.0  # Nyquist: a single term of the full FFT
    spec = 0.5 * c * (uk.real**2 + uk.imag**2 + vk.real**2 + vk.imag**2)
    if scale == "circumference":
        spec = spec * (2 * np.pi * EARTH_RADIUS_M * np.cos(np.deg2rad(lat)))[:, None]
    elif scale != "mean":
        raise ValueError(f"scale must be 'mean' or 'circumference', got {scale!r}")
    return spec


def band_mean(
    spectrum: Any,
    latitude: Any,
    lat_band: tuple[float, float] = (30.0, 60.0),
    weights: Any | None = None,
    *,
    absolute: bool = True,
) -> np.ndarray:
    """Area-weighted mean of zonal spectra over a latitude band.

    ``sum_{i in band} w_i E_{i,k} / sum_{i in band} w_i`` at each wavenumber ``k``.
    With ``absolute=True`` (default) the band is ``lo <= |lat| <= hi`` in both
    hemispheres (e.g. the mid-latitudes 30-60 N and S together); with
    ``absolute=False`` it is ``lo <= lat <= hi`` (signed, degrees north).
    Averaging is at fixed zonal wavenumber (the wavelength of ``k`` varies
    with latitude, see :func:`zonal_wavelength`).

    Args:
        spectrum: ``[..., latitude, k]`` from :func:`zonal_energy_spectrum`.
        latitude: ``[latitude]`` degrees north.
        lat_band: ``(lo, hi)`` degrees.
        weights: ``[latitude]`` area weights; default ``cos(latitude)``.
        absolute: band in ``|lat|`` (both hemispheres) or signed latitude.

    Returns:
        ``[..., k]`` float64, units of ``spectrum``.

    Raises:
        ValueError: shapes, NaN/inf, ``lo > hi``, no latitude in the band, bad weights.
    """
    s = _finite(spectrum, "spectrum")
    lat = _as_f64(latitude)
    if s.ndim < 2 or lat.shape != (s.shape[-2],):
        raise ValueError(f"spectrum must be [..., latitude={lat.size}, k], got {s.shape}")
    lo, hi = float(lat_band[0]), float(lat_band[1])
    if lo > hi:
        raise ValueError(f"lat_band {lat_band}: lower bound above upper bound")
    x = np.abs(lat) if absolute else lat
    sel = (x >= lo) & (x <= hi)
    if not sel.any():
        which = "|lat|" if absolute else "lat"
        raise ValueError(f"no latitude in band {lat_band} ({which}); latitudes: {lat.min():g}..{lat.max():g}")
    w = np.cos(np.deg2rad(lat)) if weights is None else _as_f64(weights)
    if w.shape != lat.shape or np.any(w < 0) or not np.all(np.isfinite(w)):
        raise ValueError(f"weights must be [latitude={lat.size}], finite and non-negative")
    w = np.where(sel, w, 0.0)
    if not w.sum() > 0:
        raise ValueError(f"weights are zero on every latitude in band {lat_band}")
    return np.einsum("...ik,i->...k", s, w) / w.sum()


def spectrum_ratio(forecast_spec: Any, truth_spec: Any, bands: list[tuple[int, int]]) -> np.ndarray:
    """Forecast / truth energy in wavenumber bands.

    ``ratio_b = sum_{k_lo <= k <= k_hi} E^f_k / sum_{k_lo <= k <= k_hi} E^t_k``
    (bounds inclusive; ``k`` is the index along the last axis).

    Args:
        forecast_spec, truth_spec: ``[..., k]`` spectra (same shape, e.g. from
            :func:`band_mean`, or ``[..., latitude, k]``).
        bands: ``[(k_lo, k_hi), ...]`` inclusive wavenumber ranges.

    Returns:
        ``[..., n_bands]`` float64; 1 for identical spectra; NaN where the truth
        energy in a band is 0.

    Raises:
        ValueError: shapes differ, NaN/inf, a band outside ``0 .. n_k - 1`` or with ``k_lo > k_hi``.
    """
    f = _finite(forecast_spec, "forecast_spec")
    t = _finite(truth_spec, "truth_spec")
    if f.shape != t.shape:
        raise ValueError(f"forecast_spec {f.shape} and truth_spec {t.shape} differ in shape")
    if f.ndim < 1 or not bands:
        raise ValueError("need spectra [..., k] and at least one band")
    nk = f.shape[-1]
    out = []
    for lo, hi in bands:
        lo, hi = int(lo), int(hi)
        if not 0 <= lo <= hi < nk:
            raise ValueError(f"band ({lo}, {hi}) outside wavenumbers 0..{nk - 1} or reversed")
        fs = f[..., lo : hi + 1].sum(axis=-1)
        ts = t[..., lo : hi + 1].sum(axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out.append(np.where(ts > 0, fs / np.where(ts > 0, ts, 1.0), np.nan))
    return np.stack(out, axis=-1)


# --------------------------------------------------------------------------- #
# spherical harmonics (optional: torch-harmonics)
# --------------------------------------------------------------------------- #
def _native_grid(lat: np.ndarray) -> str | None:
    """torch-harmonics grid name matching ``lat`` (ascending degrees), or None."""
    n = lat.size
    gauss = np.rad2deg(np.arcsin(np.polynomial.legendre.leggauss(n)[0]))  # ascending
    if np.allclose(lat, gauss, atol=1e-6):
        return "legendre-gauss"
    if np.allclose(lat, np.linspace(-90.0, 90.0, n), atol=1e-6):
        return "equiangular"
    return None


def spherical_harmonic_spectrum(u: Any, v: Any, latitude: Any, longitude: Any) -> np.ndarray:
    """Kinetic-energy spectrum per total spherical-harmonic wavenumber ``l``.

    The wind ``(u, v)`` is expanded in vector spherical harmonics (spheroidal
    ``S_lm`` and toroidal ``T_lm`` coefficients, orthonormal, torch-harmonics
    ``RealVectorSHT``), and

        ``E_l = 0.5 l (l + 1) sum_m c_m (|S_lm|^2 + |T_lm|^2) / (4 pi)``,
        ``c_0 = 1``, ``c_m = 2`` for ``m > 0``,

    so that ``sum_l E_l`` is the global area-mean KE ``0.5 <u^2 + v^2>`` (m2 s-2)
    computed with the transform's quadrature. The wavelength of ``l`` is about
    ``2 pi R / sqrt(l (l + 1))``.

    Grids: latitudes on the Gauss-Legendre nodes or the equiangular grid
    with poles are transformed directly; any other latitude set (e.g.
    WeatherBench2's equiangular grid without poles) is first interpolated in
    latitude (cubic spline) onto the Gauss-Legendre nodes of the same count,
    which must lie inside the data's latitude range (an approximation that
    slightly damps the smallest scales).

    Args:
        u, v: ``[..., latitude, longitude]`` m s-1, latitude ascending.
        latitude: ``[latitude]`` degrees north, ascending.
        longitude: ``[longitude]`` degrees east, uniform from 0, covering 360.

    Returns:
        ``[..., l]`` float64, ``l = 0 .. lmax - 1``.

    Raises:
        ImportError: torch-harmonics is not installed (optional dependency;
            ``pip install --no-deps torch-harmonics`` next to an existing torch).
        ValueError: NaN/inf, shapes, grid unsupported.
    """
    try:
        import torch
        import torch_harmonics as th
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "spherical_harmonic_spectrum needs the optional package torch-harmonics "
            "(install it without upgrading torch: `pip install --no-deps torch-harmonics`); "
            "the zonal spectrum (zonal_energy_spectrum) needs no extra package"
        ) from exc
    uu = _finite(u, "u")
    vv = _finite(v, "v")
    if uu.shape != vv.shape:
        raise ValueError(f"u {uu.shape} and v {vv.shape} differ in shape")
    lat, lon = _check_grid(uu, latitude, longitude)
    if np.any(np.diff(lat) <= 0):
        raise ValueError("latitude must be ascending")
    if abs(lon[0]) > 1e-6:
        raise ValueError(f"longitude must start at 0 degrees, starts at {lon[0]:g}")
    nlat, nlon = lat.size, lon.size
    grid = _native_grid(lat)
    if grid is None:
        from scipy.interpolate import CubicSpline

        target = np.rad2deg(np.arcsin(np.polynomial.legendre.leggauss(nlat)[0]))
        if target[0] < lat[0] or target[-1] > lat[-1]:
            raise ValueError(
                f"latitudes {lat[0]:g}..{lat[-1]:g} do not cover the Gauss-Legendre nodes "
                f"{target[0]:g}..{target[-1]:g} of {nlat} latitudes; cannot interpolate"
            )
        uu = CubicSpline(lat, uu, axis=-2)(target)
        vv = CubicSpline(lat, vv, axis=-2)(target)
        grid = "legendre-gauss"
    lmax = min(nlat if grid == "legendre-gauss" else (nlat + 1) // 2, nlon // 2 + 1)
    # torch-harmonics: colatitude ascending (north to south); components (theta, phi) = (-v, u)
    field = np.stack([-vv, uu], axis=-3)[..., ::-1, :].copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        sht = th.RealVectorSHT(nlat, nlon, lmax=lmax, mmax=lmax, grid=grid).double()
    with torch.no_grad():
        coeffs = sht(torch.from_numpy(field)).numpy()  # [..., 2, l, m] complex
    ell = np.arange(coeffs.shape[-2], dtype=np.float64)
    cm = np.full(coeffs.shape[-1], 2.0)
    cm[0] = 1.0
    power = (coeffs.real**2 + coeffs.imag**2).sum(axis=-3)  # [..., l, m]
    return 0.5 * ell * (ell + 1) * (power * cm).sum(axis=-1) / (4 * np.pi)
