"""Latitude-weighted RMSE scores (WeatherBench2 definitions), numpy float64.

Conventions: ``forecast`` and ``truth`` are ``[N_init, K, G, C]`` (init time,
lead time index ``k`` = lead ``k * dt`` as stored by the caller, grid node
flattened latitude-major, channel); ``truth[i, k]`` is the verifying state at
valid time ``init_i + lead_k``. ``lat_weights`` ``[G]`` are cell-area weights
(any positive scale; normalised here by their sum). Inputs may be numpy
arrays or torch tensors; computation is in float64 numpy. Units are those of
the inputs (e.g. m2 s-2 for geopotential, K for temperature).

Two averaging orders (WeatherBench2, Rasp et al. 2024, ``metrics.py``):

- :func:`rmse_per_lead` (WB2 ``RMSESqrtBeforeTimeAvg``, the headline RMSE):
  ``mean_i sqrt( sum_g a_g (f - t)^2 / sum_g a_g )``.
- :func:`rmse_mse_first` (WB2 ``RMSE`` = sqrt of time-averaged ``MSE``):
  ``sqrt( mean_i sum_g a_g (f - t)^2 / sum_g a_g )``. By Jensen's inequality
  ``rmse_per_lead <= rmse_mse_first``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["weighted_spatial_mse", "rmse_per_lead", "rmse_mse_first"]


def _as_f64(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor, without importing torch here
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def weighted_spatial_mse(forecast: Any, truth: Any, lat_weights: Any) -> np.ndarray:
    """Area-weighted spatial mean squared error per init, lead and channel.

    Args:
        forecast, truth: ``[N_init, K, G, C]`` (any leading dims ``[..., G, C]``).
        lat_weights: ``[G]``, non-negative, not all zero.

    Returns:
        ``[N_init, K, C]`` float64: ``sum_g a_g (f - t)^2 / sum_g a_g``.
        NaNs in the inputs propagate.

    Raises:
        ValueError: shape mismatch, fewer than 2 dims, or bad weights.
    """
    f = _as_f64(forecast)
    t = _as_f64(truth)
    a = _as_f64(lat_weights)
    if f.shape != t.shape:
        raise ValueError(f"forecast {f.shape} and truth {t.shape} differ in shape")
    if f.ndim < 2:
        raise ValueError(f"forecast must be [..., G, C], got shape {f.shape}")
    if a.shape != (f.shape[-2],):
        raise ValueError(f"lat_weights must have shape [G={f.shape[-2]}], got {a.shape}")
    if np.any(a < 0) or not a.sum() > 0:
        raise ValueError("lat_weights must be non-negative with a positive sum")
    err2 = (f - t) ** 2
    return np.einsum("...gc,g->...c", err2, a) / a.sum()


def _check_4d(forecast: Any) -> None:
    ndim = getattr(forecast, "ndim", np.ndim(forecast))
    if ndim != 4:
        raise ValueError(f"forecast must be [N_init, K, G, C], got {ndim} dims")


def rmse_per_lead(forecast: Any, truth: Any, lat_weights: Any) -> np.ndarray:
    """RMSE per lead time and channel, root before the average over init times.

    ``rmse[k, c] = mean_i sqrt( sum_g a_g (forecast[i,k,g,c] - truth[i,k,g,c])^2 / sum_g a_g )``
    (WeatherBench2 headline RMSE, ``RMSESqrtBeforeTimeAvg``).

    Args:
        forecast, truth: ``[N_init, K, G, C]``; numpy or torch.
        lat_weights: ``[G]`` cell-area weights.

    Returns:
        ``[K, C]`` float64 numpy array.

    Raises:
        ValueError: shape mismatch, not 4-D, or bad weights.
    """
    _check_4d(forecast)
    return np.sqrt(weighted_spatial_mse(forecast, truth, lat_weights)).mean(axis=0)


def rmse_mse_first(forecast: Any, truth: Any, lat_weights: Any) -> np.ndarray:
    """RMSE per lead time and channel, MSE averaged over init times before the root.

    ``rmse[k, c] = sqrt( mean_i sum_g a_g (forecast[i,k,g,c] - truth[i,k,g,c])^2 / sum_g a_g )``
    (WeatherBench2 ``RMSE`` metric, sqrt of the time-mean ``MSE``).

    Args/Returns/Raises: as :func:`rmse_per_lead`.
    """
    _check_4d(forecast)
    return np.sqrt(weighted_spatial_mse(forecast, truth, lat_weights).mean(axis=0))
