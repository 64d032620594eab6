"""Tests for weathergnn.evaluation.metrics against brute-force loops."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from weathergnn.evaluation.metrics import rmse_mse_first, rmse_per_lead, weighted_spatial_mse


def _data(seed: int = 0, N: int = 4, K: int = 3, G: int = 9, C: int = 2):
    rng = np.random.default_rng(seed)
    f = rng.normal(size=(N, K, G, C))
    t = rng.normal(size=(N, K, G, C))
    lat = np.linspace(-80, 80, G)
    a = np.cos(np.deg2rad(lat))
    return f, t, a


def _brute(f, t, a, sqrt_first: bool) -> np.ndarray:
    N, K, G, C = f.shape
    out = np.zeros((K, C))
    for k in range(K):
        for c in range(C):
            per_init = []
            for i in range(N):
                num = sum(a[g] * (f[i, k, g, c] - t[i, k, g, c]) ** 2 for g in range(G))
                per_init.append(num / sum(a))
            if sqrt_first:
                out[k, c] = sum(math.sqrt(m) for m in per_init) / N
            else:
                out[k, c] = math.sqrt(sum(per_init) / N)
    return out


def test_brute_force() -> None:
    f, t, a = _data()
    np.testing.assert_allclose(rmse_per_lead(f, t, a), _brute(f, t, a, True), rtol=1e-13)
    np.testing.assert_allclose(rmse_mse_first(f, t, a, layout="nodes"), _brute(f, t, a, False), rtol=1e-13)
    # Jensen: mean of roots <= root of mean
    assert np.all(rmse_per_lead(f, t, a) <= rmse_mse_first(f, t, a, layout="nodes") + 1e-15)


def test_torch_inputs_and_float64_output() -> None:
    f, t, a = _data(seed=1)
    got = rmse_per_lead(torch.from_numpy(f).float(), torch.from_numpy(t).float(), torch.from_numpy(a))
    assert isinstance(got, np.ndarray) and got.dtype == np.float64 and got.shape == (3, 2)
    np.testing.assert_allclose(got, _brute(f, t, a, True), rtol=1e-5)


def test_perfect_forecast_is_zero() -> None:
    _, t, a = _data(seed=2)
    assert np.all(rmse_per_lead(t, t, a) == 0.0)
    assert np.all(rmse_mse_first(t, t, a, layout="nodes") == 0.0)


@pytest.mark.parametrize("c", [0.7, -3.0])
def test_constant_offset(c: float) -> None:
    _, t, a = _data(seed=3)
    np.testing.assert_allclose(rmse_per_lead(t + c, t, a), abs(c), rtol=1e-12)
    np.testing.assert_allclose(rmse_mse_first(t + c, t, a, layout="nodes"), abs(c), rtol=1e-12)


def test_weight_scale_invariance_and_order_matters() -> None:
    f, t, a = _data(seed=4)
    np.testing.assert_allclose(rmse_per_lead(f, t, 7.0 * a), rmse_per_lead(f, t, a), rtol=1e-13)
    # error only in one init: the two orders differ in a known way
    t = np.zeros((2, 1, 3, 1))
    f = t.copy()
    f[0] = 2.0
    assert rmse_per_lead(f, t, np.ones(3))[0, 0] == pytest.approx(1.0)  # (2 + 0) / 2
    assert rmse_mse_first(f, t, np.ones(3), layout="nodes")[0, 0] == pytest.approx(math.sqrt(2.0))  # sqrt((4 + 0) / 2)


def test_errors() -> None:
    f, t, a = _data()
    with pytest.raises(ValueError, match="differ in shape"):
        rmse_per_lead(f, t[:2], a)
    with pytest.raises(ValueError, match="lat_weights"):
        rmse_per_lead(f, t, a[:-1])
    with pytest.raises(ValueError, match="non-negative"):
        rmse_per_lead(f, t, -a)
    with pytest.raises(ValueError, match=r"\[N_init, K, G, C\]"):
        rmse_per_lead(f[0], t[0], a)
    assert weighted_spatial_mse(f[0], t[0], a).shape == (3, 2)
