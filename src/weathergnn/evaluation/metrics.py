"""Area-weighted deterministic scores (WeatherBench2 definitions), NumPy float64.

Source: WeatherBench 2 (Rasp et al. 2024, sec. 4 and ``weatherbench2/metrics.py``):
``MSE``, ``RMSESqrtBeforeTimeAvg``, ``Bias``, ``MAE`` and ``ACC``.

Conventions (every public function):

- Inputs are NumPy arrays or torch tensors; everything is computed in float64
  and returned as NumPy (0-d results are NumPy scalars/0-d arrays).
- Fields are ``[..., latitude, longitude]``; ``weights`` are ``[latitude]``
  area weights (cos-latitude or cell-area, any positive scale): the spatial
  mean is ``sum_ij w_i x_ij / sum_ij w_i`` over latitude ``i`` and longitude
  ``j`` (weights normalised inside to mean 1 over the grid).
- Forecast, truth and climatology broadcast against each other (NumPy rules)
  but must have identical ``(latitude, longitude)`` axes. A NaN or inf in any
  of them raises :class:`ValueError` naming the argument (WB2 propagates NaNs;
  we refuse them because a silent NaN score is never wanted here).
- Units are those of the inputs (e.g. m2 s-2 for geopotential, K for
  temperature); ACC is dimensionless.

Two levels, so that a pipeline can stream over init times:

1. per-init "spatial" functions reduce only ``(latitude, longitude)``:
   :func:`spatial_mean`, :func:`weighted_mse`, :func:`weighted_bias`,
   :func:`weighted_mae`, :func:`acc_per_init` (``[..., lat, lon] -> [...]``);
2. aggregations over the init-time axis: :func:`rmse`, :func:`rmse_mse_first`,
   :func:`bias`, :func:`mae`, :func:`acc`, and the ``finalize_*`` helpers that
   reduce already-computed per-init values (store ``[init, lead, ...]`` arrays
   while streaming, reduce at the end).

Averaging orders (``t`` init time, spatial mean ``<.>`` as above):

- ``rmse``            = ``mean_t sqrt(<(f - o)^2>)`` (WB2 ``RMSESqrtBeforeTimeAvg``,
  the headline RMSE of the project GUIDE);
- ``rmse_mse_first``  = ``sqrt(mean_t <(f - o)^2>)`` (WB2 default ``RMSE``,
  the root of the time-mean ``MSE``); by Jensen ``rmse <= rmse_mse_first``;
- ``bias`` = ``mean_t <f - o>``, ``mae`` = ``mean_t <|f - o|>``;
- ``acc``  = ``mean_t ACC_t`` with per-init
  ``ACC_t = <f' o'> / sqrt(<f'^2> <o'^2>)``, ``f' = f - c``, ``o' = o - c``
  (``c`` climatology at the valid time). As in WB2 the anomalies are NOT
  centred by their spatial mean (uncentred ACC).

Legacy node layout: :func:`weighted_spatial_mse`, :func:`rmse_per_lead` and
:func:`rmse_mse_first` with ``layout="nodes"`` keep the earlier
``[N_init, K, G, C]`` convention (grid node ``G`` flattened, channel last,
weights ``[G]``) used by :mod:`weathergnn.evaluation.scoring`.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

__all__ = [
    "normalized_latitude_weights",
    "spatial_mean",
    "weighted_mse",
    "weighted_bias",
    "weighted_mae",
    "acc_per_init",
    "finalize_rmse",
    "finalize_rmse_mse_first",
    "finalize_mean",
    "rmse",
    "rmse_mse_first",
    "bias",
    "mae",
    "acc",
    "weighted_spatial_mse",
    "rmse_per_lead",
]

Layout = Literal["latlon", "nodes"]


# --------------------------------------------------------------------------- #
# input handling
# --------------------------------------------------------------------------- #
def _as_f64(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor, without importing torch here
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def _finite(x: Any, name: str) -> np.ndarray:
    """float64 array of ``x``; ValueError naming ``name`` if it has NaN/inf."""
    a = _as_f64(x)
    if not np.all(np.isfinite(a)):
        n_bad = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
        kind = "NaN" if np.isnan(a).any() else "inf"
        raise ValueError(f"{name} contains {kind} ({n_bad} of {a.size} values are not finite)")
    return a


def normalized_latitude_weights(weights: Any, n_lat: int | None = None) -> np.ndarray:
    """Check ``[latitude]`` area weights and return them scaled to mean 1.

    Args:
        weights: ``[latitude]`` non-negative area weights (e.g. cos-latitude,
            or WB2's cell-area ``sin(lat_upper) - sin(lat_lower)``), any scale.
        n_lat: expected length (the latitude axis of the fields), if known.

    Returns:
        ``[latitude]`` float64 weights with mean 1.

    Raises:
        ValueError: not 1-D, wrong length, NaN/inf, negative, or all zero.
    """
    w = _as_f64(weights)
    if w.ndim != 1:
        raise ValueError(f"weights must be 1-D [latitude], got shape {w.shape}")
    if n_lat is not None and w.shape[0] != n_lat:
        raise ValueError(f"weights must have shape [latitude={n_lat}], got {w.shape}")
    if not np.all(np.isfinite(w)):
        raise ValueError("weights contain NaN or inf")
    if np.any(w < 0) or not w.sum() > 0:
        raise ValueError("weights must be non-negative with a positive sum")
    return w / w.mean()


def _spatial_reduce(x: np.ndarray, w: np.ndarray, layout: Layout = "latlon") -> np.ndarray:
    """Weighted mean of ``x`` over its spatial axes; ``w`` already checked."""
    if layout == "latlon":
        # sum_ij w_i x_ij / (n_lon * sum_i w_i)
        return np.einsum("...ij,i->...", x, w) / (w.sum() * x.shape[-1])
    if layout == "nodes":
        return np.einsum("...gc,g->...c", x, w) / w.sum()
    raise ValueError(f"layout must be 'latlon' or 'nodes', got {layout!r}")


def _prepare(
    arrays: dict[str, Any], weights: Any, layout: Layout = "latlon"
) -> tuple[list[np.ndarray], np.ndarray, tuple[int, ...]]:
    """Cast, NaN-check and shape-check fields; return them, weights, broadcast shape."""
    out = [_finite(a, name) for name, a in arrays.items()]
    names = list(arrays)
    for name, a in zip(names, out):
        if a.ndim < 2:
            dims = "[..., latitude, longitude]" if layout == "latlon" else "[..., G, C]"
            raise ValueError(f"{name} must be {dims}, got shape {a.shape}")
    ref = out[0].shape[-2:]
    for name, a in zip(names[1:], out[1:]):
        if a.shape[-2:] != ref:
            raise ValueError(
                f"{name} spatial shape {a.shape[-2:]} differs from {names[0]}'s {ref} "
                "(last two axes must be identical)"
            )
    try:
        shape = np.broadcast_shapes(*(a.shape for a in out))
    except ValueError:
        shapes = ", ".join(f"{n} {a.shape}" for n, a in zip(names, out))
        raise ValueError(f"shapes do not broadcast: {shapes}") from None
    w = normalized_latitude_weights(weights, ref[0])
    return out, w, shape


def _non_spatial_axis(ndim: int, axis: int, name: str, what: str = "array") -> int:
    """Normalise ``axis`` (called ``name`` in errors) of a ``[..., lat, lon]`` ``what``; never a spatial axis."""
    if not -ndim <= axis < ndim:
        raise ValueError(f"{name} {axis} out of range for a {ndim}-D {what}")
    ax = axis % ndim
    if ax >= ndim - 2:
        raise ValueError(f"{name} {axis} is a spatial (latitude/longitude) axis of a {ndim}-D {what}")
    return ax


def _time_axis(ndim: int, time_axis: int) -> int:
    """Normalise ``time_axis`` of a ``[..., lat, lon]`` array (never a spatial axis)."""
    return _non_spatial_axis(ndim, time_axis, "time_axis")


# --------------------------------------------------------------------------- #
# level 1: per-init spatial reductions
# --------------------------------------------------------------------------- #
def spatial_mean(x: Any, weights: Any) -> np.ndarray:
    """Area-weighted mean over (latitude, longitude).

    ``<x> = sum_ij w_i x_ij / sum_ij w_i`` (WB2 ``_spatial_average``).

    Args:
        x: ``[..., latitude, longitude]`` any units.
        weights: ``[latitude]`` area weights.

    Returns:
        ``[...]`` float64, units of ``x``.

    Raises:
        ValueError: NaN/inf in ``x``, fewer than 2 dims, bad weights.
    """
    (a,), w, _ = _prepare({"x": x}, weights)
    return _spatial_reduce(a, w)


def weighted_mse(forecast: Any, truth: Any, weights: Any) -> np.ndarray:
    """Area-weighted spatial mean squared error per init (WB2 ``MSE.compute_chunk``).

    ``<(f - o)^2>`` over (latitude, longitude) only.

    Args:
        forecast, truth: ``[..., latitude, longitude]`` (broadcastable), same units.
        weights: ``[latitude]`` area weights.

    Returns:
        ``[...]`` float64 in squared units of the inputs.

    Raises:
        ValueError: NaN/inf in forecast or truth, shape mismatch, bad weights.
    """
    (f, t), w, _ = _prepare({"forecast": forecast, "truth": truth}, weights)
    return _spatial_reduce((f - t) ** 2, w)


def weighted_bias(forecast: Any, truth: Any, weights: Any) -> np.ndarray:
    """Area-weighted spatial mean error ``<f - o>`` per init (WB2 ``Bias``).

    Args/Raises: as :func:`weighted_mse`.

    Returns:
        ``[...]`` float64 in units of the inputs (positive: forecast too high).
    """
    (f, t), w, _ = _prepare({"forecast": forecast, "truth": truth}, weights)
    return _spatial_reduce(f - t, w)


def weighted_mae(forecast: Any, truth: Any, weights: Any) -> np.ndarray:
    """Area-weighted spatial mean absolute error ``<|f - o|>`` per init (WB2 ``MAE``).

    Args/Raises: as :func:`weighted_mse`.

    Returns:
        ``[...]`` float64 in units of the inputs.
    """
    (f, t), w, _ = _prepare({"forecast": forecast, "truth": truth}, weights)
    return _spatial_reduce(np.abs(f - t), w)


def acc_per_init(forecast: Any, truth: Any, climatology: Any, weights: Any) -> np.ndarray:
    """Anomaly correlation coefficient per init (WB2 ``ACC.compute_chunk``).

    ``ACC = <f' o'> / sqrt(<f'^2> <o'^2>)`` with ``f' = f - c``, ``o' = o - c``
    and ``<.>`` the area-weighted mean over (latitude, longitude). Following
    WB2 the anomalies are not centred by their spatial mean (uncentred ACC).

    Args:
        forecast, truth: ``[..., latitude, longitude]`` (broadcastable).
        climatology: climatological mean at the valid time of each field,
            broadcastable to the forecast (e.g. from
            :func:`weathergnn.evaluation.climatology.climatology_at`).
        weights: ``[latitude]`` area weights.

    Returns:
        ``[...]`` float64 in [-1, 1]; NaN where ``<f'^2> <o'^2>`` is zero
        (a forecast or truth identical to the climatology).

    Raises:
        ValueError: NaN/inf in forecast, truth or climatology; shapes; weights.
    """
    (f, t, c), w, _ = _prepare({"forecast": forecast, "truth": truth, "climatology": climatology}, weights)
    return _acc_core(f, t, c, w)


def _acc_core(f: np.ndarray, t: np.ndarray, c: np.ndarray, w: np.ndarray) -> np.ndarray:
    fa, ta = f - c, t - c
    num = _spatial_reduce(fa * ta, w)
    den2 = _spatial_reduce(fa**2, w) * _spatial_reduce(ta**2, w)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den2 > 0, num / np.sqrt(np.where(den2 > 0, den2, 1.0)), np.nan)


# --------------------------------------------------------------------------- #
# level 2: aggregation over init times
# --------------------------------------------------------------------------- #
def finalize_rmse(mse_per_init: Any, axis: int = 0) -> np.ndarray:
    """RMSE from per-init spatial MSEs, root before the time mean.

    ``mean_t sqrt(mse_t)`` (WB2 ``RMSESqrtBeforeTimeAvg``; GUIDE's RMSE).

    Args:
        mse_per_init: e.g. ``[init, lead, ...]`` from :func:`weighted_mse`.
        axis: the init-time axis.

    Returns:
        the array without ``axis``, float64. NaN propagates; negative MSE raises.
    """
    m = _as_f64(mse_per_init)
    if np.any(m < 0):
        raise ValueError("mse_per_init has negative values")
    return np.sqrt(m).mean(axis=axis)


def finalize_rmse_mse_first(mse_per_init: Any, axis: int = 0) -> np.ndarray:
    """RMSE from per-init spatial MSEs, time mean before the root.

    ``sqrt(mean_t mse_t)`` (WB2 default ``RMSE`` = sqrt of time-mean ``MSE``).

    Args/Returns: as :func:`finalize_rmse`.
    """
    m = _as_f64(mse_per_init)
    if np.any(m < 0):
        raise ValueError("mse_per_init has negative values")
    return np.sqrt(m.mean(axis=axis))


def finalize_mean(values_per_init: Any, axis: int = 0) -> np.ndarray:
    """Plain mean over init times of per-init scores (bias, MAE, ACC, CRPS, ...).

    NaN (e.g. an undefined per-init ACC) propagates, as WB2 (``skipna=False``).

    Args:
        values_per_init: e.g. ``[init, lead, ...]``.
        axis: the init-time axis.

    Returns:
        the array without ``axis``, float64.
    """
    return _as_f64(values_per_init).mean(axis=axis)


def rmse(
    forecast: Any,
    truth: Any,
    weights: Any,
    time_axis: int = 0,
    *,
    mse_first: bool = False,
    layout: Layout = "latlon",
) -> np.ndarray:
    """Area-weighted RMSE aggregated over init times.

    ``mse_first=False`` (default): ``mean_t sqrt(<(f - o)^2>_t)`` (WB2
    ``RMSESqrtBeforeTimeAvg``, the project's headline RMSE);
    ``mse_first=True``: ``sqrt(mean_t <(f - o)^2>_t)`` (WB2 ``RMSE``).

    Args:
        forecast, truth: ``[init, ..., latitude, longitude]`` (init axis at
            ``time_axis``), same units; broadcastable.
        weights: ``[latitude]`` area weights (``[G]`` node weights if
            ``layout="nodes"``).
        time_axis: init-time axis of the (broadcast) inputs; not a spatial axis.
        mse_first: average the MSE over init times before the root.
        layout: ``"latlon"`` (``[..., lat, lon]``) or ``"nodes"`` (legacy
            ``[..., G, C]``: reduce over ``G`` only, keep channel ``C``).

    Returns:
        the input shape without ``time_axis`` and the spatial axes, float64,
        units of the inputs.

    Raises:
        ValueError: NaN/inf, shapes, bad weights or ``time_axis``.
    """
    (f, t), w, shape = _prepare({"forecast": forecast, "truth": truth}, weights, layout)
    ax = _time_axis(len(shape), time_axis)
    kept = shape[:-2] + (shape[-1:] if layout == "nodes" else ())
    mse = np.broadcast_to(_spatial_reduce((f - t) ** 2, w, layout), kept)
    return finalize_rmse_mse_first(mse, ax) if mse_first else finalize_rmse(mse, ax)


def rmse_mse_first(
    forecast: Any,
    truth: Any,
    weights: Any,
    time_axis: int = 0,
    *,
    layout: Layout,
) -> np.ndarray:
    """RMSE with the MSE averaged over init times before the root (WB2 ``RMSE``).

    ``sqrt(mean_t <(f - o)^2>_t)``.

    ``layout`` is required because a 4-D array is ambiguous:
    ``layout="nodes"`` reads ``forecast [N_init, K, G, C]`` with
    ``lat_weights [G]`` (reduce over grid node ``G``) -> ``[K, C]``;
    ``layout="latlon"`` reads ``[init, ..., lat, lon]`` with weights ``[lat]``
    (the same as ``rmse(..., mse_first=True)``).

    Args:
        forecast, truth: see ``layout``; ``time_axis`` is the init axis.
        weights: ``[G]`` (nodes) or ``[latitude]`` (latlon) area weights.
        time_axis: init-time axis.
        layout: ``"nodes"`` (legacy, 4-D ``[N_init, K, G, C]`` required) or
            ``"latlon"``.

    Returns:
        ``[K, C]`` (nodes) or the input shape without init and spatial axes.

    Raises:
        ValueError: as :func:`rmse`; with ``layout="nodes"``: not 4-D or
            forecast and truth shapes differ.
    """
    if layout == "nodes":
        _check_4d(forecast)
        return np.sqrt(weighted_spatial_mse(forecast, truth, weights).mean(axis=time_axis))
    return rmse(forecast, truth, weights, time_axis, mse_first=True, layout=layout)


def _aggregate(per_init: np.ndarray, shape: tuple[int, ...], time_axis: int) -> np.ndarray:
    ax = _time_axis(len(shape), time_axis)
    return finalize_mean(np.broadcast_to(per_init, shape[:-2]), ax)


def bias(forecast: Any, truth: Any, weights: Any, time_axis: int = 0) -> np.ndarray:
    """Area-weighted bias, spatial mean per init then mean over init times.

    ``mean_t <f - o>_t`` (WB2 ``Bias``).

    Args:
        forecast, truth: ``[init, ..., latitude, longitude]`` (broadcastable).
        weights: ``[latitude]``.
        time_axis: init-time axis.

    Returns:
        shape without init and spatial axes, float64, units of the inputs.

    Raises:
        ValueError: NaN/inf, shapes, weights, ``time_axis``.
    """
    (f, t), w, shape = _prepare({"forecast": forecast, "truth": truth}, weights)
    return _aggregate(_spatial_reduce(f - t, w), shape, time_axis)


def mae(forecast: Any, truth: Any, weights: Any, time_axis: int = 0) -> np.ndarray:
    """Area-weighted MAE, spatial mean per init then mean over init times.

    ``mean_t <|f - o|>_t`` (WB2 ``MAE``). Args/Returns/Raises: as :func:`bias`.
    """
    (f, t), w, shape = _prepare({"forecast": forecast, "truth": truth}, weights)
    return _aggregate(_spatial_reduce(np.abs(f - t), w), shape, time_axis)


def acc(forecast: Any, truth: Any, climatology: Any, weights: Any, time_axis: int = 0) -> np.ndarray:
    """Anomaly correlation coefficient: per-init ACC, then mean over init times.

    ``mean_t ACC_t`` with ``ACC_t`` from :func:`acc_per_init` (WB2 ``ACC``;
    uncentred anomalies w.r.t. the climatology at the valid time).

    Args:
        forecast, truth, climatology: ``[init, ..., latitude, longitude]``
            (broadcastable).
        weights: ``[latitude]``.
        time_axis: init-time axis.

    Returns:
        shape without init and spatial axes, float64, dimensionless; NaN where
        any per-init ACC is undefined.

    Raises:
        ValueError: NaN/inf, shapes, weights, ``time_axis``.
    """
    (f, t, c), w, shape = _prepare({"forecast": forecast, "truth": truth, "climatology": climatology}, weights)
    return _aggregate(_acc_core(f, t, c, w), shape, time_axis)


# --------------------------------------------------------------------------- #
# legacy node layout [N_init, K, G, C] (scoring.py, tests/test_metrics.py)
# --------------------------------------------------------------------------- #
def weighted_spatial_mse(forecast: Any, truth: Any, lat_weights: Any) -> np.ndarray:
    """Area-weighted spatial mean squared error per init, lead and channel (node layout).

    Args:
        forecast, truth: ``[N_init, K, G, C]`` (any leading dims ``[..., G, C]``),
            grid node ``G`` flattened latitude-major, channel ``C`` last.
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
    return _spatial_reduce((f - t) ** 2, a, "nodes")


def _check_4d(forecast: Any) -> None:
    ndim = getattr(forecast, "ndim", np.ndim(forecast))
    if ndim != 4:
        raise ValueError(
            f"forecast must be [N_init, K, G, C], got {ndim} dims "
            "(for [..., latitude, longitude] fields pass layout='latlon')"
        )


def rmse_per_lead(forecast: Any, truth: Any, lat_weights: Any) -> np.ndarray:
    """RMSE per lead time and channel, root before the average over init times (node layout).

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
    return finalize_rmse(weighted_spatial_mse(forecast, truth, lat_weights), axis=0)
