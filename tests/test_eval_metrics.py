"""weathergnn.evaluation.metrics (lat-lon API) against brute-force loops and analytic cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from weathergnn.evaluation import metrics as M


def _data(seed: int = 0, N: int = 3, K: int = 2, nlat: int = 4, nlon: int = 5):
    rng = np.random.default_rng(seed)
    f = rng.normal(size=(N, K, nlat, nlon))
    t = rng.normal(size=(N, K, nlat, nlon))
    c = rng.normal(size=(N, K, nlat, nlon)) * 0.5
    w = rng.uniform(0.1, 1.0, size=nlat)
    return f, t, c, w


def _loop_spatial(fn, w, *fields):
    """[N, K, lat, lon] -> [N, K]: sum_ij w_i fn(fields at ij) / sum_ij w_i, by explicit loops."""
    N, K, nlat, nlon = fields[0].shape
    out = np.zeros((N, K))
    for n in range(N):
        for k in range(K):
            num = den = 0.0
            for i in range(nlat):
                for j in range(nlon):
                    num += w[i] * fn(*(x[n, k, i, j] for x in fields))
                    den += w[i]
            out[n, k] = num / den
    return out


def _loop_acc(f, t, c, w):
    N, K = f.shape[:2]
    out = np.zeros((N, K))
    fa, ta = f - c, t - c
    for n in range(N):
        for k in range(K):
            num = sum(w[i] * fa[n, k, i, j] * ta[n, k, i, j] for i in range(f.shape[2]) for j in range(f.shape[3]))
            ff = sum(w[i] * fa[n, k, i, j] ** 2 for i in range(f.shape[2]) for j in range(f.shape[3]))
            tt = sum(w[i] * ta[n, k, i, j] ** 2 for i in range(f.shape[2]) for j in range(f.shape[3]))
            out[n, k] = num / math.sqrt(ff * tt)
    return out


def test_spatial_functions_vs_loops() -> None:
    f, t, c, w = _data()
    np.testing.assert_allclose(M.spatial_mean(f, w), _loop_spatial(lambda a: a, w, f), rtol=1e-12)
    np.testing.assert_allclose(M.weighted_mse(f, t, w), _loop_spatial(lambda a, b: (a - b) ** 2, w, f, t), rtol=1e-12)
    np.testing.assert_allclose(M.weighted_bias(f, t, w), _loop_spatial(lambda a, b: a - b, w, f, t), rtol=1e-12)
    np.testing.assert_allclose(M.weighted_mae(f, t, w), _loop_spatial(lambda a, b: abs(a - b), w, f, t), rtol=1e-12)
    np.testing.assert_allclose(M.acc_per_init(f, t, c, w), _loop_acc(f, t, c, w), rtol=1e-12)


def test_aggregations_vs_loops_both_time_axes() -> None:
    f, t, c, w = _data(seed=1)
    mse = _loop_spatial(lambda a, b: (a - b) ** 2, w, f, t)  # [N, K]
    expected = {
        "rmse": np.sqrt(mse).mean(axis=0),
        "rmse_mse_first": np.sqrt(mse.mean(axis=0)),
        "bias": _loop_spatial(lambda a, b: a - b, w, f, t).mean(axis=0),
        "mae": _loop_spatial(lambda a, b: abs(a - b), w, f, t).mean(axis=0),
        "acc": _loop_acc(f, t, c, w).mean(axis=0),
    }
    swapped = tuple(np.swapaxes(x, 0, 1) for x in (f, t, c))  # [K, N, lat, lon]
    for ft, tt, ct, ax in [(f, t, c, 0), (*swapped, 1)]:
        np.testing.assert_allclose(M.rmse(ft, tt, w, time_axis=ax), expected["rmse"], rtol=1e-12)
        np.testing.assert_allclose(M.rmse(ft, tt, w, time_axis=ax, mse_first=True), expected["rmse_mse_first"], rtol=1e-12)
        np.testing.assert_allclose(
            M.rmse_mse_first(ft, tt, w, time_axis=ax, layout="latlon"), expected["rmse_mse_first"], rtol=1e-12
        )
        np.testing.assert_allclose(M.bias(ft, tt, w, time_axis=ax), expected["bias"], rtol=1e-12)
        np.testing.assert_allclose(M.mae(ft, tt, w, time_axis=ax), expected["mae"], rtol=1e-12)
        np.testing.assert_allclose(M.acc(ft, tt, ct, w, time_axis=ax), expected["acc"], rtol=1e-12)


def test_streaming_finalize_equals_whole_array() -> None:
    f, t, c, w = _data(seed=2, N=5)
    mse = np.stack([M.weighted_mse(f[i], t[i], w) for i in range(5)])  # per init [K]
    acc = np.stack([M.acc_per_init(f[i], t[i], c[i], w) for i in range(5)])
    np.testing.assert_allclose(M.finalize_rmse(mse), M.rmse(f, t, w), rtol=1e-13)
    np.testing.assert_allclose(M.finalize_rmse_mse_first(mse), M.rmse(f, t, w, mse_first=True), rtol=1e-13)
    np.testing.assert_allclose(M.finalize_mean(acc), M.acc(f, t, c, w), rtol=1e-13)


def test_analytic_cases() -> None:
    _, t, c, w = _data(seed=3)
    assert np.all(M.rmse(t, t, w) == 0) and np.all(M.mae(t, t, w) == 0) and np.all(M.bias(t, t, w) == 0)
    np.testing.assert_allclose(M.acc(t, t, c, w), 1.0, rtol=1e-12)
    for off in (0.7, -3.0):
        np.testing.assert_allclose(M.bias(t + off, t, w), off, rtol=1e-12)
        np.testing.assert_allclose(M.rmse(t + off, t, w), abs(off), rtol=1e-12)
        np.testing.assert_allclose(M.rmse(t + off, t, w, mse_first=True), abs(off), rtol=1e-12)
        np.testing.assert_allclose(M.mae(t + off, t, w), abs(off), rtol=1e-12)
    # forecast anomaly = - truth anomaly
    np.testing.assert_allclose(M.acc(c - (t - c), t, c, w), -1.0, rtol=1e-12)
    # ACC is invariant to a positive scaling of the forecast anomaly
    np.testing.assert_allclose(M.acc(c + 3.0 * (t - c), t, c, w), 1.0, rtol=1e-12)


def test_rmse_orders_differ_and_agree() -> None:
    w = np.ones(2)
    t = np.zeros((2, 2, 3))
    f = t.copy()
    f[0] = 2.0  # per-init MSE 4 and 0
    assert M.rmse(f, t, w) == pytest.approx(1.0)  # (2 + 0) / 2
    assert M.rmse(f, t, w, mse_first=True) == pytest.approx(math.sqrt(2.0))  # sqrt((4 + 0) / 2)
    # constant per-init MSE: the two orders agree
    rng = np.random.default_rng(4)
    signs = rng.choice([-1.0, 1.0], size=(3, 2, 3))
    f = t[:1].repeat(3, axis=0) + 1.5 * signs
    tt = np.zeros_like(f)
    assert M.rmse(f, tt, w) == pytest.approx(1.5) == M.rmse(f, tt, w, mse_first=True)


def test_weights_scale_invariance_and_cosine_weighting() -> None:
    f, t, _, w = _data(seed=5)
    np.testing.assert_allclose(M.rmse(f, t, 11.0 * w), M.rmse(f, t, w), rtol=1e-13)
    # a field equal to 1 on one latitude row only: the mean is that row's weight share
    x = np.zeros((4, 5))
    x[2] = 1.0
    assert M.spatial_mean(x, w) == pytest.approx(w[2] / w.sum())
    np.testing.assert_allclose(M.normalized_latitude_weights(w).mean(), 1.0)


def test_broadcast_and_torch_inputs() -> None:
    f, t, c, w = _data(seed=6)
    # a persistence-like truth broadcast over leads
    np.testing.assert_allclose(M.weighted_mse(f, t[:, :1], w), M.weighted_mse(f, np.repeat(t[:, :1], 2, axis=1), w))
    got = M.rmse(torch.from_numpy(f).float(), torch.from_numpy(t).float(), torch.from_numpy(w))
    assert isinstance(got, np.ndarray) and got.dtype == np.float64
    np.testing.assert_allclose(got, M.rmse(f, t, w), rtol=1e-6)


def test_acc_zero_denominator_is_nan() -> None:
    _, t, c, w = _data(seed=7)
    out = M.acc_per_init(c, t, c, w)  # forecast == climatology
    assert np.all(np.isnan(out))
    assert np.all(np.isnan(M.acc(c, t, c, w)))


def test_errors_name_the_argument() -> None:
    f, t, c, w = _data(seed=8)
    bad = f.copy()
    bad[0, 0, 1, 1] = np.nan
    with pytest.raises(ValueError, match="forecast contains NaN"):
        M.rmse(bad, t, w)
    with pytest.raises(ValueError, match="truth contains NaN"):
        M.weighted_mae(f, bad, w)
    with pytest.raises(ValueError, match="climatology contains NaN"):
        M.acc(f, t, bad, w)
    with pytest.raises(ValueError, match="weights must have shape"):
        M.bias(f, t, w[:-1])
    with pytest.raises(ValueError, match="non-negative"):
        M.bias(f, t, -w)
    with pytest.raises(ValueError, match="spatial"):
        M.rmse(f, t, w, time_axis=2)
    with pytest.raises(ValueError, match="spatial shape"):
        M.weighted_mse(f, t[..., :-1], w)
    with pytest.raises(ValueError, match="layout='latlon'"):
        M.rmse_mse_first(f[..., None], t[..., None], w, layout="nodes")  # 5-D is not the node layout
    with pytest.raises(TypeError):
        M.rmse_mse_first(f, t, w)  # layout must be said: a 4-D array is ambiguous
