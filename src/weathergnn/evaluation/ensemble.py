"""Ensemble scores (WeatherBench2 definitions), NumPy float64.

Sources: WeatherBench 2 (Rasp et al. 2024, sec. 4.3; ``weatherbench2/metrics.py``:
``EnsembleMeanRMSESqrtBeforeTimeAvg``, ``EnsembleMeanMSE``,
``EnsembleStddevSqrtBeforeTimeAvg``, ``EnsembleVariance``, ``CRPS``); the fair
CRPS estimator of Ferro (2014, QJRMS 140, 1917) and Zamo & Naveau (2018,
Math. Geosci. 50, 209; "PWM" form); the spread-skill correction of Fortin et
al. (2014, J. Hydrometeor. 15, 1708).

Conventions, as :mod:`weathergnn.evaluation.metrics`: float64; fields
``[..., latitude, longitude]``; ``weights`` ``[latitude]`` area weights (any
scale, normalised inside); ``<.>`` the area-weighted spatial mean; NaN/inf in
forecast or truth raises :class:`ValueError` naming the argument.

Ensemble layout: ``forecast`` has a member axis ``member_axis`` (default 1,
i.e. ``[init, member, ..., lat, lon]``); ``truth`` has the forecast's shape
without that axis (it may broadcast). ``M`` is the number of members.

Two levels, as in ``metrics``:

- per-init functions reduce members and (latitude, longitude) only, keeping
  every other axis (an init axis, if present, is kept):
  :func:`ensemble_mean_mse_per_init`, :func:`ensemble_variance_per_init`,
  :func:`crps_fair_per_init` (and :func:`pointwise_crps_fair`, no spatial mean);
- aggregations over the init axis ``time_axis`` (numbered on the FORECAST's
  axes; must differ from ``member_axis``): :func:`ensemble_mean_rmse`,
  :func:`ensemble_spread`, :func:`spread_skill_ratio`, :func:`crps_fair`, and
  :func:`finalize_spread`, :func:`finalize_spread_skill_ratio` for streamed
  per-init values.

Averaging orders (``xbar`` ensemble mean, ``s^2`` unbiased ``ddof=1`` ensemble
variance, ``t`` init time):

- ensemble-mean RMSE: ``mean_t sqrt(<(xbar - y)^2>)`` (default), or
  ``sqrt(mean_t <(xbar - y)^2>)`` with ``mse_first=True``;
- spread: ``mean_t sqrt(<s^2>)`` (default; WB2 ``EnsembleStddevSqrtBeforeTimeAvg``),
  or ``sqrt(mean_t <s^2>)`` with ``mse_first=True`` (root of WB2
  ``EnsembleVariance``). ``M = 1`` gives spread 0, as WB2;
- spread-skill ratio: spread / ensemble-mean RMSE, both with the same order;
  WB2's metrics apply no finite-ensemble factor, so neither do we by default;
  ``finite_ensemble_correction=True`` multiplies by ``sqrt((M + 1) / M)``
  (Fortin et al. 2014: for a perfectly reliable ``M``-member ensemble
  ``E<(xbar - y)^2> = (1 + 1/M) E<s^2>``, so the corrected ratio is 1);
- fair CRPS: pointwise ``mean_m |x_m - y| - 1/(2 M (M-1)) sum_{m,m'} |x_m - x_m'|``,
  then ``<.>`` per init, then ``mean_t``. ``M = 1`` gives the MAE (pairwise
  term 0, as WB2). The pairwise sum uses the sorted members,
  ``sum_{m,m'} |x_m - x_m'| = 2 sum_i (2i - M - 1) x_(i)`` (O(M log M)).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from weathergnn.evaluation.metrics import (
    _finite,
    _non_spatial_axis,
    _spatial_reduce,
    finalize_mean,
    finalize_rmse,
    finalize_rmse_mse_first,
    normalized_latitude_weights,
)

__all__ = [
    "pointwise_crps_fair",
    "ensemble_mean_mse_per_init",
    "ensemble_variance_per_init",
    "crps_fair_per_init",
    "ensemble_mean_rmse",
    "ensemble_spread",
    "spread_skill_ratio",
    "crps_fair",
    "finalize_spread",
    "finalize_spread_skill_ratio",
]


# --------------------------------------------------------------------------- #
# input handling
# --------------------------------------------------------------------------- #
def _member_axis(ndim: int, member_axis: int) -> int:
    return _non_spatial_axis(ndim, member_axis, "member_axis", "forecast")


def _prepare(
    forecast: Any, truth: Any | None, weights: Any, member_axis: int
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, int]:
    """float64 forecast with members moved to axis 0, truth expanded to match, weights, axis."""
    f = _finite(forecast, "forecast")
    if f.ndim < 3:
        raise ValueError(f"forecast must be [..., member, ..., latitude, longitude], got shape {f.shape}")
    ax = _member_axis(f.ndim, member_axis)
    w = normalized_latitude_weights(weights, f.shape[-2])
    t = None
    if truth is not None:
        t = _finite(truth, "truth")
        if t.ndim != f.ndim - 1:
            raise ValueError(
                f"truth must have the forecast's shape without the member axis {ax}: "
                f"forecast {f.shape}, truth {t.shape}"
            )
        if t.shape[-2:] != f.shape[-2:]:
            raise ValueError(f"truth spatial shape {t.shape[-2:]} differs from forecast's {f.shape[-2:]}")
        try:
            np.broadcast_shapes(f.shape, np.expand_dims(t, ax).shape)
        except ValueError:
            raise ValueError(
                f"truth {t.shape} does not broadcast against forecast {f.shape} without member axis {ax}"
            ) from None
        t = np.expand_dims(t, ax)
    return f, t, w, ax


def _reduced_time_axis(ndim: int, member_ax: int, time_axis: int) -> int:
    """Index of the forecast's ``time_axis`` once the member axis is removed."""
    ax = _non_spatial_axis(ndim, time_axis, "time_axis", "forecast")
    if ax == member_ax:
        raise ValueError(f"time_axis {time_axis} is the member axis")
    return ax - 1 if ax > member_ax else ax


def _sorted_pairwise_half_mean(x: np.ndarray, axis: int) -> np.ndarray:
    """``1/(2 M (M-1)) sum_{m,m'} |x_m - x_m'|`` along ``axis`` (0 for M = 1), O(M log M)."""
    m = x.shape[axis]
    if m < 2:
        return np.zeros(np.delete(x.shape, axis), dtype=np.float64)
    xs = np.sort(x, axis=axis)
    coef = 2.0 * np.arange(1, m + 1) - m - 1  # (2i - M - 1), i = 1..M
    shape = [1] * x.ndim
    shape[axis] = m
    # sum_{m,m'} |.| = 2 sum_i coef_i x_(i)  =>  half mean = sum_i coef_i x_(i) / (M (M-1))
    return (xs * coef.reshape(shape)).sum(axis=axis) / (m * (m - 1))


# --------------------------------------------------------------------------- #
# pointwise and per-init
# --------------------------------------------------------------------------- #
def pointwise_crps_fair(forecast: Any, truth: Any, member_axis: int = 1) -> np.ndarray:
    """Fair (unbiased) CRPS at every grid point, no spatial mean.

    ``mean_m |x_m - y| - 1/(2 M (M-1)) sum_{m,m'} |x_m - x_m'|`` (Ferro 2014;
    Zamo & Naveau 2018; WB2 ``SpatialCRPS``); pairwise term 0 for ``M = 1``.

    Args:
        forecast: ``[..., member, ..., latitude, longitude]``.
        truth: forecast shape without the member axis.
        member_axis: member axis of ``forecast``.

    Returns:
        forecast shape without the member axis, float64, units of the inputs.

    Raises:
        ValueError: NaN/inf, shapes, bad ``member_axis``.
    """
    f = _finite(forecast, "forecast")
    if f.ndim < 3:
        raise ValueError(f"forecast must be [..., member, ..., latitude, longitude], got shape {f.shape}")
    ax = _member_axis(f.ndim, member_axis)
    f, t, _, ax = _prepare(f, truth, np.ones(f.shape[-2]), ax)
    skill = np.abs(f - t).mean(axis=ax)
    return skill - _sorted_pairwise_half_mean(f, ax)


def ensemble_mean_mse_per_init(forecast: Any, truth: Any, weights: Any, member_axis: int = 1) -> np.ndarray:
    """Area-weighted MSE of the ensemble mean per init (WB2 ``EnsembleMeanMSE``).

    ``<(mean_m x_m - y)^2>`` (biased by ``s^2 / M`` as an estimate of the
    infinite-ensemble MSE, as WB2 ``EnsembleMeanMSE``).

    Args:
        forecast: ``[..., member, ..., latitude, longitude]``.
        truth: forecast shape without the member axis.
        weights: ``[latitude]``.
        member_axis: member axis of ``forecast``.

    Returns:
        forecast shape without member and spatial axes, float64, squared units.

    Raises:
        ValueError: NaN/inf, shapes, weights, ``member_axis``.
    """
    f, t, w, ax = _prepare(forecast, truth, weights, member_axis)
    return _spatial_reduce((f.mean(axis=ax) - np.squeeze(t, ax)) ** 2, w)


def ensemble_variance_per_init(forecast: Any, weights: Any, member_axis: int = 1) -> np.ndarray:
    """Area-weighted mean of the unbiased ensemble variance per init (WB2 ``EnsembleVariance``).

    ``<s^2>``, ``s^2 = 1/(M-1) sum_m (x_m - xbar)^2``; 0 for ``M = 1`` (WB2).

    Args:
        forecast: ``[..., member, ..., latitude, longitude]``.
        weights: ``[latitude]``.
        member_axis: member axis.

    Returns:
        forecast shape without member and spatial axes, float64, squared units.

    Raises:
        ValueError: NaN/inf, weights, ``member_axis``.
    """
    f, _, w, ax = _prepare(forecast, None, weights, member_axis)
    if f.shape[ax] < 2:
        return np.zeros(np.delete(f.shape, ax)[:-2], dtype=np.float64)
    return _spatial_reduce(f.var(axis=ax, ddof=1), w)


def crps_fair_per_init(forecast: Any, truth: Any, weights: Any, member_axis: int = 1) -> np.ndarray:
    """Area-weighted fair CRPS per init (WB2 ``CRPS.compute_chunk``).

    ``<pointwise fair CRPS>`` (see :func:`pointwise_crps_fair`).

    Args/Raises: as :func:`ensemble_mean_mse_per_init`.

    Returns:
        forecast shape without member and spatial axes, float64, units of the inputs.
    """
    f, t, w, ax = _prepare(forecast, truth, weights, member_axis)
    point = np.abs(f - t).mean(axis=ax) - _sorted_pairwise_half_mean(f, ax)
    return _spatial_reduce(point, w)


# --------------------------------------------------------------------------- #
# aggregation over init times
# --------------------------------------------------------------------------- #
def finalize_spread(variance_per_init: Any, axis: int = 0, *, mse_first: bool = False) -> np.ndarray:
    """Ensemble spread from per-init ``<s^2>`` (:func:`ensemble_variance_per_init`).

    ``mean_t sqrt(<s^2>_t)`` (default) or ``sqrt(mean_t <s^2>_t)`` (``mse_first``).

    Args:
        variance_per_init: e.g. ``[init, lead, ...]``.
        axis: init-time axis.
        mse_first: average the variance over init times before the root.

    Returns:
        array without ``axis``, float64, units of the forecast.
    """
    return finalize_rmse_mse_first(variance_per_init, axis) if mse_first else finalize_rmse(variance_per_init, axis)


def finalize_spread_skill_ratio(
    variance_per_init: Any,
    mse_per_init: Any,
    axis: int = 0,
    *,
    mse_first: bool = False,
    n_members: int | None = None,
    finite_ensemble_correction: bool = False,
) -> np.ndarray:
    """Spread-skill ratio from per-init ``<s^2>`` and ensemble-mean ``<(xbar - y)^2>``.

    ``finalize_spread(var) / finalize_rmse(mse)`` (same averaging order), times
    ``sqrt((M + 1) / M)`` if ``finite_ensemble_correction`` (Fortin et al. 2014).

    Args:
        variance_per_init, mse_per_init: same shape, e.g. ``[init, lead, ...]``.
        axis: init-time axis.
        mse_first: time-mean before the root in both numerator and denominator.
        n_members: ``M``, required with ``finite_ensemble_correction``.
        finite_ensemble_correction: apply ``sqrt((M + 1) / M)``.

    Returns:
        array without ``axis``, float64, dimensionless; NaN where the RMSE is 0.

    Raises:
        ValueError: shapes differ, or correction requested without ``n_members >= 1``.
    """
    var = np.asarray(variance_per_init, dtype=np.float64)
    mse = np.asarray(mse_per_init, dtype=np.float64)
    if var.shape != mse.shape:
        raise ValueError(f"variance_per_init {var.shape} and mse_per_init {mse.shape} differ in shape")
    spread = finalize_spread(var, axis, mse_first=mse_first)
    skill = finalize_spread(mse, axis, mse_first=mse_first)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(skill > 0, spread / np.where(skill > 0, skill, 1.0), np.nan)
    if finite_ensemble_correction:
        if n_members is None or n_members < 1:
            raise ValueError("finite_ensemble_correction needs n_members >= 1")
        ratio = ratio * np.sqrt((n_members + 1) / n_members)
    return ratio


def ensemble_mean_rmse(
    forecast: Any,
    truth: Any,
    weights: Any,
    member_axis: int = 1,
    time_axis: int = 0,
    *,
    mse_first: bool = False,
) -> np.ndarray:
    """RMSE of the ensemble mean (WB2 ``EnsembleMeanRMSESqrtBeforeTimeAvg``).

    ``mean_t sqrt(<(xbar - y)^2>_t)``; ``mse_first=True``: ``sqrt(mean_t <.>_t)``
    (root of WB2 ``EnsembleMeanMSE``).

    Args:
        forecast: ``[init, member, ..., latitude, longitude]`` (axes per
            ``time_axis`` / ``member_axis``).
        truth: forecast shape without the member axis.
        weights: ``[latitude]``.
        member_axis, time_axis: axes of ``forecast``.
        mse_first: average MSE over init times before the root.

    Returns:
        forecast shape without init, member and spatial axes, float64, units of the inputs.

    Raises:
        ValueError: NaN/inf, shapes, weights, axes.
    """
    f = _finite(forecast, "forecast")
    m_ax = _member_axis(f.ndim, member_axis)
    t_ax = _reduced_time_axis(f.ndim, m_ax, time_axis)
    mse = ensemble_mean_mse_per_init(f, truth, weights, m_ax)
    return finalize_rmse_mse_first(mse, t_ax) if mse_first else finalize_rmse(mse, t_ax)


def ensemble_spread(
    forecast: Any,
    weights: Any,
    member_axis: int = 1,
    time_axis: int = 0,
    *,
    mse_first: bool = False,
) -> np.ndarray:
    """Ensemble spread (WB2 ``EnsembleStddevSqrtBeforeTimeAvg``).

    ``mean_t sqrt(<s^2>_t)`` with the unbiased (``ddof=1``) ensemble variance
    ``s^2``; ``mse_first=True``: ``sqrt(mean_t <s^2>_t)`` (root of WB2
    ``EnsembleVariance``). 0 for ``M = 1``.

    Args:
        forecast: ``[init, member, ..., latitude, longitude]``.
        weights: ``[latitude]``.
        member_axis, time_axis: axes of ``forecast``.
        mse_first: average the variance over init times before the root.

    Returns:
        forecast shape without init, member and spatial axes, float64, units of the forecast.

    Raises:
        ValueError: NaN/inf, weights, axes.
    """
    f = _finite(forecast, "forecast")
    m_ax = _member_axis(f.ndim, member_axis)
    t_ax = _reduced_time_axis(f.ndim, m_ax, time_axis)
    return finalize_spread(ensemble_variance_per_init(f, weights, m_ax), t_ax, mse_first=mse_first)


def spread_skill_ratio(
    forecast: Any,
    truth: Any,
    weights: Any,
    member_axis: int = 1,
    time_axis: int = 0,
    *,
    mse_first: bool = False,
    finite_ensemble_correction: bool = False,
) -> np.ndarray:
    """Spread-skill ratio: :func:`ensemble_spread` / :func:`ensemble_mean_rmse`.

    Both with the same averaging order (``mse_first``); multiplied by
    ``sqrt((M + 1) / M)`` if ``finite_ensemble_correction`` (Fortin et al. 2014;
    WB2's metrics do not apply it, hence the default ``False``). About 1 for a
    reliable ensemble, < 1 under-dispersive, > 1 over-dispersive.

    Args:
        forecast: ``[init, member, ..., latitude, longitude]``.
        truth: forecast shape without the member axis.
        weights: ``[latitude]``.
        member_axis, time_axis: axes of ``forecast``.
        mse_first: time-mean of variance and MSE before the roots.
        finite_ensemble_correction: apply ``sqrt((M + 1) / M)``.

    Returns:
        forecast shape without init, member and spatial axes, float64,
        dimensionless; NaN where the ensemble-mean RMSE is 0.

    Raises:
        ValueError: NaN/inf, shapes, weights, axes.
    """
    f = _finite(forecast, "forecast")
    m_ax = _member_axis(f.ndim, member_axis)
    t_ax = _reduced_time_axis(f.ndim, m_ax, time_axis)
    var = ensemble_variance_per_init(f, weights, m_ax)
    mse = ensemble_mean_mse_per_init(f, truth, weights, m_ax)
    var, mse = np.broadcast_arrays(var, mse)
    return finalize_spread_skill_ratio(
        var,
        mse,
        t_ax,
        mse_first=mse_first,
        n_members=f.shape[m_ax],
        finite_ensemble_correction=finite_ensemble_correction,
    )


def crps_fair(
    forecast: Any,
    truth: Any,
    weights: Any,
    member_axis: int = 1,
    time_axis: int = 0,
) -> np.ndarray:
    """Fair CRPS: pointwise fair CRPS, spatial mean per init, then mean over init times.

    ``mean_t < mean_m |x_m - y| - 1/(2 M (M-1)) sum_{m,m'} |x_m - x_m'| >_t``
    (WB2 ``CRPS``; Ferro 2014; Zamo & Naveau 2018). Equals :func:`metrics.mae`
    for ``M = 1``.

    Args:
        forecast: ``[init, member, ..., latitude, longitude]``.
        truth: forecast shape without the member axis.
        weights: ``[latitude]``.
        member_axis, time_axis: axes of ``forecast``.

    Returns:
        forecast shape without init, member and spatial axes, float64, units of the inputs.

    Raises:
        ValueError: NaN/inf, shapes, weights, axes.
    """
    f = _finite(forecast, "forecast")
    m_ax = _member_axis(f.ndim, member_axis)
    t_ax = _reduced_time_axis(f.ndim, m_ax, time_axis)
    return finalize_mean(crps_fair_per_init(f, truth, weights, m_ax), t_ax)
