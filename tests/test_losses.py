"""Tests for weathergnn.training.losses against brute-force float64 loops."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from weathergnn.data.channels import split_channel
from weathergnn.training.losses import (
    DEFAULT_SURFACE_WEIGHT,
    channel_loss_weights,
    latitude_weighted_rmse,
    weighted_mse,
)

LEVELS = [50, 500, 850, 1000]


def test_split_channel_for_loss_weights() -> None:
    """The channel parsing channel_loss_weights relies on."""
    assert split_channel("geopotential_500") == ("geopotential", 500)
    assert split_channel("u_component_of_wind_1000") == ("u_component_of_wind", 1000)
    assert split_channel("2m_temperature") == ("2m_temperature", None)
    assert split_channel("10m_u_component_of_wind") == ("10m_u_component_of_wind", None)
    assert split_channel("total_precipitation_6hr") == ("total_precipitation_6hr", None)


def test_graphcast_default_weights() -> None:
    channels = [f"geopotential_{lv}" for lv in LEVELS] + [f"temperature_{lv}" for lv in LEVELS]
    channels += ["2m_temperature", "10m_u_component_of_wind", "mean_sea_level_pressure", "surface_pressure"]
    w = channel_loss_weights(channels).double().numpy()
    mean_lv = np.mean(LEVELS)
    expected_atm = [lv / mean_lv / len(LEVELS) for lv in LEVELS]
    np.testing.assert_allclose(w[:4], expected_atm, rtol=1e-6)
    np.testing.assert_allclose(w[4:8], expected_atm, rtol=1e-6)
    np.testing.assert_allclose(w[8:], [1.0, 0.1, 0.1, DEFAULT_SURFACE_WEIGHT], rtol=1e-6)
    # each atmospheric variable contributes its variable weight (1) in total
    assert w[:4].sum() == pytest.approx(1.0, rel=1e-6)
    # level weights before the 1/n_levels factor average 1
    assert (w[:4] * len(LEVELS)).mean() == pytest.approx(1.0, rel=1e-6)


def test_weight_overrides_and_uniform() -> None:
    channels = ["geopotential_500", "geopotential_1000", "specific_humidity_500", "2m_temperature", "x_surface"]
    w = channel_loss_weights(
        channels,
        variable_weights={"geopotential": 2.0, "2m_temperature": 0.5},
        level_weighting="uniform",
        surface_weights={"x_surface": 3.0},
    )
    np.testing.assert_allclose(w.numpy(), [1.0, 1.0, 1.0, 0.5, 3.0], rtol=1e-6)
    # levels normalised over the levels present *for that variable*
    w = channel_loss_weights(channels)
    np.testing.assert_allclose(w.numpy()[:3], [500 / 750 / 2, 1000 / 750 / 2, 1.0], rtol=1e-6)


def test_weight_errors() -> None:
    with pytest.raises(ValueError, match="level_weighting"):
        channel_loss_weights(["temperature_850"], level_weighting="linear")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not in the channels"):
        channel_loss_weights(["temperature_850"], variable_weights={"temprature": 1.0})
    with pytest.raises(ValueError, match="duplicate"):
        channel_loss_weights(["temperature_850", "temperature_850"])
    with pytest.raises(ValueError, match="negative"):
        channel_loss_weights(["temperature_850"], variable_weights={"temperature": -1.0})


def _brute_weighted_mse(pred, target, a, w, s) -> float:
    B, K, G, C = pred.shape
    total = 0.0
    for b in range(B):
        for k in range(K):
            acc = 0.0
            for g in range(G):
                se = 0.0
                for c in range(C):
                    se += w[c] * ((pred[b, k, g, c] - target[b, k, g, c]) / s[c]) ** 2
                acc += a[g] * se
            total += acc / a.sum()
    return total / (B * K)


def _data(seed=0, B=2, K=3, G=7, C=4):
    rng = np.random.default_rng(seed)
    pred = rng.normal(size=(B, K, G, C))
    target = rng.normal(size=(B, K, G, C))
    a = rng.uniform(0.1, 2.0, size=G)
    a = a / a.mean()
    return pred, target, a


def test_weighted_mse_brute_force() -> None:
    pred, target, a = _data()
    w = np.array([0.3, 1.0, 0.1, 2.0])
    s = np.array([1.0, 2.5, 0.5, 10.0])
    expected = _brute_weighted_mse(pred, target, a, w, s)
    t = lambda x: torch.from_numpy(x)  # noqa: E731
    got64 = weighted_mse(t(pred), t(target), t(a), t(w), t(s))
    assert got64.item() == pytest.approx(expected, rel=1e-12)
    got32 = weighted_mse(t(pred).float(), t(target).float(), t(a).float(), t(w).float(), t(s).float())
    assert got32.dtype == torch.float32
    assert got32.item() == pytest.approx(expected, rel=1e-5)
    # scale=None is scale 1; lat weights need not have mean 1
    assert weighted_mse(t(pred), t(target), 5 * t(a), t(w)).item() == pytest.approx(
        _brute_weighted_mse(pred, target, a, w, np.ones(4)), rel=1e-12
    )


def test_weighted_mse_matches_graphcast_form_and_grad() -> None:
    """With mean-1 latitude weights the loss is GraphCast's 1/G sum_g a_g (...)."""
    pred, target, a = _data(seed=1)
    w = np.array([1.0, 0.5, 0.25, 0.1])
    err2 = (pred - target) ** 2
    graphcast_form = np.mean(np.sum(w * err2, axis=-1) * a)
    p = torch.from_numpy(pred).requires_grad_(True)
    loss = weighted_mse(p, torch.from_numpy(target), torch.from_numpy(a), torch.from_numpy(w))
    assert loss.item() == pytest.approx(graphcast_form, rel=1e-12)
    loss.backward()
    B, K, G, _ = pred.shape
    expected_grad = 2 * (pred - target) * w * a[:, None] / (B * K * G)
    np.testing.assert_allclose(p.grad.numpy(), expected_grad, rtol=1e-12)


def test_weighted_mse_shape_errors() -> None:
    x = torch.zeros(1, 2, 5, 3)
    with pytest.raises(ValueError, match="lat_weights"):
        weighted_mse(x, x, torch.ones(4), torch.ones(3))
    with pytest.raises(ValueError, match="channel_weights"):
        weighted_mse(x, x, torch.ones(5), torch.ones(2))
    with pytest.raises(ValueError, match="scale"):
        weighted_mse(x, x, torch.ones(5), torch.ones(3), torch.ones(4))
    with pytest.raises(ValueError, match="differ in shape"):
        weighted_mse(x, x[:, :1], torch.ones(5), torch.ones(3))


def test_latitude_weighted_rmse_brute_force() -> None:
    pred, target, a = _data(seed=2, B=3, K=2, G=6, C=3)
    B, K, G, C = pred.shape
    expected = np.zeros((K, C))
    for k in range(K):
        for c in range(C):
            rmses = []
            for b in range(B):
                mse = sum(a[g] * (pred[b, k, g, c] - target[b, k, g, c]) ** 2 for g in range(G)) / a.sum()
                rmses.append(np.sqrt(mse))
            expected[k, c] = np.mean(rmses)  # sqrt per init, then mean over inits
    got = latitude_weighted_rmse(torch.from_numpy(pred), torch.from_numpy(target), torch.from_numpy(a))
    assert got.shape == (K, C)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12)
    # [B, G, C] -> [C]
    got2 = latitude_weighted_rmse(torch.from_numpy(pred[:, 0]), torch.from_numpy(target[:, 0]), torch.from_numpy(a))
    np.testing.assert_allclose(got2.numpy(), expected[0], rtol=1e-12)


def test_latitude_weighted_rmse_constant_offset() -> None:
    target = torch.randn(2, 3, 10, 4, dtype=torch.float64)
    a = torch.rand(10, dtype=torch.float64) + 0.1
    offset = torch.tensor([0.0, 1.5, -2.0, 3.0], dtype=torch.float64)
    got = latitude_weighted_rmse(target + offset, target, a)
    np.testing.assert_allclose(got.numpy(), np.abs(offset.numpy())[None].repeat(3, 0), rtol=1e-12, atol=1e-15)
