"""Training losses: latitude-weighted MSE with per-variable and per-level weights.

GraphCast (Lam et al. 2023, Science; supplement section 4.5, eq. 19)::

    L = 1/|B| sum_b  1/K sum_k  1/G sum_g  a_g  sum_c  w_c * ((x_hat - x) / s_c)^2

with ``a_g`` the latitude (cell-area) weights of mean 1, ``w_c`` the
per-channel loss weight and ``s_c`` the per-channel normaliser (GraphCast: the
std of the 6 h differences, i.e. ``NormStats.diff_std`` in residual
normalisation). ``x_hat - x`` is in physical units; dividing by ``s_c``
gives the error of the normalised quantity.

Channel weights follow ``graphcast/losses.py:weighted_mse_per_level``: for a
pressure-level variable the loss is the *mean* over its levels of
``level / mean(levels) * SE`` times the variable weight, so in the
per-channel sum above a pressure-level channel gets::

    w_{var_level} = variable_weight[var] * (level / mean(levels of var)) / n_levels(var)

and every atmospheric variable contributes ``variable_weight`` in total
(a surface channel gets ``w = surface weight``). This keeps 6 x 13
atmospheric channels from swamping the surface channels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import torch

from weathergnn.data.channels import split_channel

__all__ = [
    "GRAPHCAST_SURFACE_WEIGHTS",
    "DEFAULT_SURFACE_WEIGHT",
    "channel_loss_weights",
    "weighted_mse",
    "latitude_weighted_rmse",
]

#: GraphCast's per-variable weights for surface variables (training config of
#: Lam et al. 2023: 2t 1.0; 10u, 10v, msl, tp 0.1).
GRAPHCAST_SURFACE_WEIGHTS: dict[str, float] = {
    "2m_temperature": 1.0,
    "10m_u_component_of_wind": 0.1,
    "10m_v_component_of_wind": 0.1,
    "mean_sea_level_pressure": 0.1,
    "total_precipitation_6hr": 0.1,
}

#: Weight of a surface variable not listed in GRAPHCAST_SURFACE_WEIGHTS (e.g.
#: surface_pressure, total_column_water_vapour). Our choice: 0.1, as GraphCast
#: gives every surface variable except 2m_temperature (its code's generic
#: default is 1.0, but all its surface variables are listed explicitly).
DEFAULT_SURFACE_WEIGHT: float = 0.1


def channel_loss_weights(
    channels: Sequence[str],
    variable_weights: Mapping[str, float] | None = None,
    level_weighting: Literal["proportional", "uniform"] = "proportional",
    surface_weights: Mapping[str, float] | None = None,
) -> torch.Tensor:
    """Per-channel loss weights ``w`` [C] (float32) for :func:`weighted_mse`.

    Args:
        channels: channel names ``variable_level`` or ``variable`` (surface).
        variable_weights: per-variable weight overrides (atmospheric or
            surface variable names); atmospheric variables default to 1.0.
        level_weighting: ``"proportional"`` (GraphCast): level weight
            ``level / mean(levels present for that variable)``;
            ``"uniform"``: 1 for every level. Either way the weights of one
            variable are divided by its number of levels (mean over levels,
            as GraphCast), see the module docstring.
        surface_weights: surface-variable defaults; ``None`` ->
            :data:`GRAPHCAST_SURFACE_WEIGHTS`, unlisted surface variables get
            :data:`DEFAULT_SURFACE_WEIGHT`. ``variable_weights`` wins over it.

    Returns:
        ``torch.Tensor`` [C], float32, non-negative.

    Raises:
        ValueError: unknown ``level_weighting``, duplicate channels, a
            negative weight, a non-positive level, or a ``variable_weights``
            key naming no channel's variable (catches typos, as GraphCast).
    """
    if level_weighting not in ("proportional", "uniform"):
        raise ValueError(f"level_weighting must be 'proportional' or 'uniform', got {level_weighting!r}")
    channels = list(channels)
    if len(set(channels)) != len(channels):
        dup = sorted({c for c in channels if channels.count(c) > 1})
        raise ValueError(f"duplicate channels: {dup}")
    variable_weights = dict(variable_weights or {})
    surface_weights = dict(GRAPHCAST_SURFACE_WEIGHTS if surface_weights is None else surface_weights)

    parsed = [split_channel(c) for c in channels]
    levels_of: dict[str, list[int]] = {}
    for c, (var, level) in zip(channels, parsed):
        if level is not None:
            if level <= 0:
                raise ValueError(f"channel {c!r}: pressure level must be positive, got {level}")
            levels_of.setdefault(var, []).append(level)
    present_vars = {var for var, _ in parsed}
    unknown = set(variable_weights) - present_vars
    if unknown:
        raise ValueError(f"variable_weights names variables not in the channels: {sorted(unknown)}")

    weights: list[float] = []
    for c, (var, level) in zip(channels, parsed):
        if level is None:
            w = variable_weights.get(var, surface_weights.get(var, DEFAULT_SURFACE_WEIGHT))
        else:
            levels = levels_of[var]
            lw = level / (sum(levels) / len(levels)) if level_weighting == "proportional" else 1.0
            w = variable_weights.get(var, 1.0) * lw / len(levels)
        if w < 0:
            raise ValueError(f"negative loss weight {w} for channel {c!r}")
        weights.append(float(w))
    return torch.tensor(weights, dtype=torch.float32)


def _check_lat_weights(lat_weights: torch.Tensor, n_nodes: int) -> None:
    if lat_weights.ndim != 1 or lat_weights.shape[0] != n_nodes:
        raise ValueError(f"lat_weights must have shape [G={n_nodes}], got {tuple(lat_weights.shape)}")


def weighted_mse(
    pred: torch.Tensor,
    target: torch.Tensor,
    lat_weights: torch.Tensor,
    channel_weights: torch.Tensor,
    scale: torch.Tensor | None = None,
    lat_weight_sum: torch.Tensor | float | None = None,
) -> torch.Tensor:
    """GraphCast training loss (eq. 19 of the supplement), a scalar.

    ``loss = mean_{b,k} [ sum_g a_g SE'_{bkg} / sum_g a_g ]`` with
    ``SE'_{bkg} = sum_c w_c ((pred - target) / scale_c)^2``. With latitude
    weights of mean 1 (``WeatherGraphs.latitude_weights``) the spatial term is
    exactly GraphCast's ``1/G sum_g a_g (...)``; dividing by ``sum a_g``
    makes it independent of the weights' normalisation.

    Args:
        pred, target: ``[B, K, G, C]`` (batch, lead time, grid node, channel),
            physical units; any number of leading dims ``[..., G, C]`` is
            accepted and averaged over.
        lat_weights: ``[G]`` latitude (cell-area) weights, non-negative.
        channel_weights: ``[C]`` per-channel weights (:func:`channel_loss_weights`).
        scale: ``[C]`` per-channel normaliser in physical units (e.g. the
            residual std ``NormStats.diff_std``); ``None`` = 1 (inputs already
            normalised).
        lat_weight_sum: the divisor ``sum_g a_g``; ``None``: the sum of
            ``lat_weights``. Pass the whole grid's sum to get one chunk's term
            of the whole-grid loss from the chunk's nodes (``pred``,
            ``target`` and ``lat_weights`` restricted to them): the terms of
            the chunks then add up to the whole grid's loss.

    Returns:
        0-dim tensor (dtype of ``pred``), differentiable w.r.t. ``pred``.

    Raises:
        ValueError: shape mismatch.
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    if pred.ndim < 2:
        raise ValueError(f"pred must be [..., G, C], got shape {tuple(pred.shape)}")
    n_nodes, n_ch = pred.shape[-2], pred.shape[-1]
    _check_lat_weights(lat_weights, n_nodes)
    if channel_weights.shape != (n_ch,):
        raise ValueError(f"channel_weights must have shape [C={n_ch}], got {tuple(channel_weights.shape)}")
    err = pred - target  # [..., G, C]
    if scale is not None:
        if scale.shape != (n_ch,):
            raise ValueError(f"scale must have shape [C={n_ch}], got {tuple(scale.shape)}")
        err = err / scale.to(err)
    se = (err * err) @ channel_weights.to(err)  # [..., G]: sum_c w_c e_c^2
    a = lat_weights.to(se)
    total = a.sum() if lat_weight_sum is None else torch.as_tensor(lat_weight_sum).to(se)
    spatial = (se @ a) / total  # [...]: weighted spatial mean
    return spatial.mean()


def latitude_weighted_rmse(
    pred: torch.Tensor,
    target: torch.Tensor,
    lat_weights: torch.Tensor,
) -> torch.Tensor:
    """Per-channel latitude-weighted RMSE for validation, ``[B, ..., G, C] -> [..., C]``.

    Averaging order (WeatherBench2 ``rmse``): for each batch element (init
    time) and remaining leading index, the weighted spatial mean of the squared
    error ``sum_g a_g SE_g / sum_g a_g``, then the square root, then the mean
    over the batch dim 0 of those RMSEs. E.g. ``[B, K, G, C] -> [K, C]``,
    ``[B, G, C] -> [C]``. Computed under ``torch.no_grad`` is up to the caller;
    units are those of the inputs.

    Raises:
        ValueError: shape mismatch or fewer than 3 dims.
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    if pred.ndim < 3:
        raise ValueError(f"pred must be [B, ..., G, C], got shape {tuple(pred.shape)}")
    _check_lat_weights(lat_weights, pred.shape[-2])
    err = pred - target
    a = lat_weights.to(err)
    mse = torch.einsum("...gc,g->...c", err * err, a) / a.sum()  # [B, ..., C]
    return mse.sqrt().mean(dim=0)
