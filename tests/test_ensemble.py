"""weathergnn.evaluation.ensemble against explicit loops and analytic cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from weathergnn.evaluation import ensemble as E
from weathergnn.evaluation import metrics as M


def _data(seed: int = 0, N: int = 3, Mem: int = 5, nlat: int = 3, nlon: int = 4):
    rng = np.random.default_rng(seed)
    f = rng.normal(size=(N, Mem, nlat, nlon))  # [init, member, lat, lon]
    t = rng.normal(size=(N, nlat, nlon))
    w = rng.uniform(0.2, 1.0, size=nlat)
    return f, t, w


def _loop_point(f, t, stat):
    """Apply ``stat(members list, truth)`` at every (init, lat, lon) by loops."""
    N, Mem, nlat, nlon = f.shape
    out = np.zeros((N, nlat, nlon))
    for n in range(N):
        for i in range(nlat):
            for j in range(nlon):
                out[n, i, j] = stat([f[n, m, i, j] for m in range(Mem)], t[n, i, j])
    return out


def _crps_double_loop(xs, y):
    m = len(xs)
    skill = sum(abs(x - y) for x in xs) / m
    if m == 1:
        return skill
    pair = sum(abs(a - b) for a in xs for b in xs)
    return skill - pair / (2 * m * (m - 1))


def _var_ddof1(xs, y):
    m = len(xs)
    mean = sum(xs) / m
    return sum((x - mean) ** 2 for x in xs) / (m - 1)


def _ens_mean_se(xs, y):
    return (sum(xs) / len(xs) - y) ** 2


def _wmean(x, w):  # [N, lat, lon] -> [N], by loops
    N, nlat, nlon = x.shape
    return np.array(
        [sum(w[i] * x[n, i, j] for i in range(nlat) for j in range(nlon)) / (w.sum() * nlon) for n in range(N)]
    )


@pytest.mark.parametrize("n_members", [2, 5, 6])
def test_fair_crps_vs_double_loop(n_members: int) -> None:
    f, t, w = _data(seed=n_members, Mem=n_members)
    point = _loop_point(f, t, _crps_double_loop)
    np.testing.assert_allclose(E.pointwise_crps_fair(f, t), point, rtol=1e-12)
    per_init = _wmean(point, w)
    np.testing.assert_allclose(E.crps_fair_per_init(f, t, w), per_init, rtol=1e-12)
    np.testing.assert_allclose(E.crps_fair(f, t, w), per_init.mean(), rtol=1e-12)


def test_spread_and_ensemble_mean_rmse_vs_loops() -> None:
    f, t, w = _data(seed=10)
    var = _wmean(_loop_point(f, t, _var_ddof1), w)
    mse = _wmean(_loop_point(f, t, _ens_mean_se), w)
    np.testing.assert_allclose(E.ensemble_variance_per_init(f, w), var, rtol=1e-12)
    np.testing.assert_allclose(E.ensemble_mean_mse_per_init(f, t, w), mse, rtol=1e-12)
    np.testing.assert_allclose(E.ensemble_spread(f, w), np.sqrt(var).mean(), rtol=1e-12)
    np.testing.assert_allclose(E.ensemble_spread(f, w, mse_first=True), math.sqrt(var.mean()), rtol=1e-12)
    np.testing.assert_allclose(E.ensemble_mean_rmse(f, t, w), np.sqrt(mse).mean(), rtol=1e-12)
    np.testing.assert_allclose(E.ensemble_mean_rmse(f, t, w, mse_first=True), math.sqrt(mse.mean()), rtol=1e-12)
    ssr = np.sqrt(var).mean() / np.sqrt(mse).mean()
    np.testing.assert_allclose(E.spread_skill_ratio(f, t, w), ssr, rtol=1e-12)
    np.testing.assert_allclose(
        E.spread_skill_ratio(f, t, w, finite_ensemble_correction=True), ssr * math.sqrt(6 / 5), rtol=1e-12
    )
    np.testing.assert_allclose(
        E.spread_skill_ratio(f, t, w, mse_first=True), math.sqrt(var.mean() / mse.mean()), rtol=1e-12
    )
    # streaming helpers give the same numbers
    np.testing.assert_allclose(E.finalize_spread(var), E.ensemble_spread(f, w), rtol=1e-13)
    np.testing.assert_allclose(
        E.finalize_spread_skill_ratio(var, mse, n_members=5, finite_ensemble_correction=True),
        E.spread_skill_ratio(f, t, w, finite_ensemble_correction=True),
        rtol=1e-13,
    )


def test_member_and_time_axes() -> None:
    f, t, w = _data(seed=11)
    g = np.transpose(f, (1, 0, 2, 3))  # [member, init, lat, lon]
    for name in ("crps_fair", "ensemble_mean_rmse", "spread_skill_ratio"):
        fn = getattr(E, name)
        np.testing.assert_allclose(fn(g, t, w, member_axis=0, time_axis=1), fn(f, t, w), rtol=1e-13)
    np.testing.assert_allclose(E.ensemble_spread(g, w, member_axis=0, time_axis=1), E.ensemble_spread(f, w), rtol=1e-13)
    # extra lead axis: [init, member, lead, lat, lon] -> [lead]
    h = np.stack([f, 2 * f], axis=2)
    tt = np.stack([t, 2 * t], axis=1)
    np.testing.assert_allclose(E.crps_fair(h, tt, w), [E.crps_fair(f, t, w), 2 * E.crps_fair(f, t, w)], rtol=1e-12)
    with pytest.raises(ValueError, match="member axis"):
        E.crps_fair(f, t, w, time_axis=1)


def test_perfect_and_single_member_ensembles() -> None:
    _, t, w = _data(seed=12)
    same = np.repeat(t[:, None], 4, axis=1)
    assert E.crps_fair(same, t, w) == pytest.approx(0.0, abs=1e-15)
    assert E.ensemble_spread(same, w) == 0.0
    assert E.ensemble_mean_rmse(same, t, w) == 0.0
    assert np.isnan(E.spread_skill_ratio(same, t, w))  # 0 / 0
    f, t, w = _data(seed=13, Mem=1)
    np.testing.assert_allclose(E.crps_fair(f, t, w), M.mae(f[:, 0], t, w), rtol=1e-13)
    assert E.ensemble_spread(f, w) == 0.0


def test_reliable_ensemble_corrected_ssr_is_one() -> None:
    # truth and members iid N(0, 1): E<(xbar - y)^2> = (1 + 1/M) E<s^2> (Fortin et al. 2014)
    rng = np.random.default_rng(14)
    f = rng.normal(size=(400, 3, 8, 16))
    t = rng.normal(size=(400, 8, 16))
    w = np.ones(8)
    plain = E.spread_skill_ratio(f, t, w, mse_first=True)
    corrected = E.spread_skill_ratio(f, t, w, mse_first=True, finite_ensemble_correction=True)
    assert corrected == pytest.approx(1.0, abs=0.01)
    assert plain == pytest.approx(math.sqrt(3 / 4), abs=0.01)


def test_errors() -> None:
    f, t, w = _data(seed=15)
    bad = t.copy()
    bad[1, 1, 1] = np.nan
    with pytest.raises(ValueError, match="truth contains NaN"):
        E.crps_fair(f, bad, w)
    with pytest.raises(ValueError, match="without the member axis"):
        E.crps_fair(f, f, w)
    with pytest.raises(ValueError, match="spatial"):
        E.ensemble_spread(f, w, member_axis=2)
    with pytest.raises(ValueError, match="n_members"):
        E.finalize_spread_skill_ratio(np.ones(3), np.ones(3), finite_ensemble_correction=True)
