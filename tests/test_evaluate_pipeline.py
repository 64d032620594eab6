"""`weathergnn evaluate --forecast`: scores of foreign WB2-layout stores vs brute-force NumPy references."""

from __future__ import annotations

import csv
import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from eval_fixtures import cell_area_weights, foreign_forecast, truth_dataset
from weathergnn.cli.main import app
from weathergnn.data.errors import DataError
from weathergnn.evaluation.evaluate import EvaluateOptions, evaluate_forecast
from weathergnn.evaluation.reference_curves import load_reference_curves
from weathergnn.evaluation.scorecard import headline_leads, scorecard_rows, write_scorecard


def _field(ds, channel, **sel):
    var, level = channel.rsplit("_", 1) if channel[-1].isdigit() else (channel, None)
    da = ds[var]
    if level is not None:
        da = da.sel(level=int(level))
    return da.isel(**sel) if sel else da


def _wmean(x, w):
    """Brute force: sum_ij w_i x_ij / sum_ij w_i with explicit loops."""
    num = den = 0.0
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            num += w[i] * x[i, j]
            den += w[i]
    return num / den


def _hourly_climatology(truth, channel):
    """Brute force: mean over all truth times with the same hour of day (window_days=None)."""
    da = _field(truth, channel).values.astype(np.float64)
    hours = pd.DatetimeIndex(truth.time.values).hour.to_numpy()
    return {h: da[hours == h].mean(axis=0) for h in np.unique(hours)}


def _reference_scores(truth, fc, channel, w):
    """[system][metric] -> [K] by explicit loops over init time and lead."""
    clim = _hourly_climatology(truth, channel)
    t_times = list(truth.time.values)
    out = {s: {m: [] for m in ("rmse", "rmse_mse_first", "bias", "mae", "acc")} for s in
           ("model", "persistence", "climatology")}
    for k, lead in enumerate(fc.prediction_timedelta.values):
        per = {s: {m: [] for m in ("mse", "bias", "mae", "acc")} for s in out}
        for n, init in enumerate(fc.time.values):
            valid = init + lead
            if valid not in t_times:
                continue
            o = _field(truth, channel, time=t_times.index(valid)).values.astype(np.float64)
            c = clim[pd.Timestamp(valid).hour]
            systems = {"model": _field(fc, channel, time=n, prediction_timedelta=k).values.astype(np.float64),
                       "persistence": _field(truth, channel, time=t_times.index(init)).values.astype(np.float64),
                       "climatology": c}
            for s, f in systems.items():
                per[s]["mse"].append(_wmean((f - o) ** 2, w))
                per[s]["bias"].append(_wmean(f - o, w))
                per[s]["mae"].append(_wmean(np.abs(f - o), w))
                fa, oa = f - c, o - c
                den = np.sqrt(_wmean(fa**2, w) * _wmean(oa**2, w))
                per[s]["acc"].append(_wmean(fa * oa, w) / den if den > 0 else np.nan)
        for s in out:
            mse = np.array(per[s]["mse"])
            out[s]["rmse"].append(np.mean(np.sqrt(mse)) if mse.size else np.nan)
            out[s]["rmse_mse_first"].append(np.sqrt(np.mean(mse)) if mse.size else np.nan)
            for m in ("bias", "mae", "acc"):
                out[s][m].append(np.mean(per[s][m]) if per[s][m] else np.nan)
    return out


@pytest.fixture
def stores(tmp_path):
    truth = truth_dataset(n_times=16)
    fc = foreign_forecast(truth, [2, 5, 9], n_leads=4)
    truth_path, fc_path = tmp_path / "truth.zarr", tmp_path / "forecast.zarr"
    truth.to_zarr(truth_path, zarr_format=2)
    fc.to_zarr(fc_path, consolidated=False)  # xarray's default zarr format: not written by our writer
    return truth, fc, truth_path, fc_path


def _opts(tmp_path, **kw):
    base = dict(climatology_window_days=None, cache_dir=tmp_path / "cache", show_progress=False,
                spectra_lead_hours=(12.0,), spectra_levels=(500,), spectra_bands=((1, 2), (3, 4)),
                spectra_lat_band=(30.0, 90.0))
    base.update(kw)
    return EvaluateOptions(**base)


def test_scores_match_brute_force(stores, tmp_path):
    truth, fc, truth_path, fc_path = stores
    res = evaluate_forecast(fc_path, truth_path, _opts(tmp_path))
    w = cell_area_weights(truth.latitude.values)
    assert res.lead_hours == [6.0, 12.0, 18.0, 24.0]
    for channel in ("geopotential_500", "temperature_850", "surface_pressure"):
        ref = _reference_scores(truth, fc, channel, w)
        c = res.channels.index(channel)
        for system, metrics in ref.items():
            for metric, values in metrics.items():
                got = res.scores[system][metric][:, c]
                # the climatology is stored in float32 (as WeatherBench2's), hence the tolerances
                np.testing.assert_allclose(got, values, rtol=1e-4, atol=1e-5 if metric == "acc" else 1e-9,
                                           equal_nan=True, err_msg=f"{system} {metric} {channel}")
    assert np.isnan(res.scores["climatology"]["acc"]).all()  # undefined for the climatology itself
    # root before the mean is never above the root of the mean (Jensen)
    assert (res.scores["model"]["rmse"] <= res.scores["model"]["rmse_mse_first"] + 1e-9).all()
    assert res.n_samples["model"].tolist() == [3, 3, 3, 3]


def test_spectrum_and_map_fields(stores, tmp_path):
    truth, fc, truth_path, fc_path = stores
    res = evaluate_forecast(fc_path, truth_path, _opts(tmp_path, map_channel="temperature_850",
                                                       map_lead_hours=12))
    (sp,) = res.spectra
    assert (sp.level, sp.lead_hours, sp.n_samples) == (500, 12.0, 3)
    # brute force: sum_k E_k of the truth = 0.5 <u^2 + v^2> zonal mean, averaged over samples and the band
    w = cell_area_weights(truth.latitude.values)
    ke = []
    for init in fc.time.values:
        i = list(truth.time.values).index(init + np.timedelta64(12, "h"))
        u = _field(truth, "u_component_of_wind_500", time=i).values.astype(np.float64)
        v = _field(truth, "v_component_of_wind_500", time=i).values.astype(np.float64)
        ke.append(0.5 * (u**2 + v**2).mean(axis=1))  # [lat]
    rows = np.abs(truth.latitude.values) >= 30  # the band is in |latitude|, both hemispheres
    want = (np.mean(ke, axis=0)[rows] * w[rows]).sum() / w[rows].sum()
    np.testing.assert_allclose(sp.truth.sum(), want, rtol=1e-6)
    assert sp.band_ratio.shape == (2,)
    mf = res.map
    assert mf.channel == "temperature_850" and mf.lead_hours == 12.0
    np.testing.assert_array_equal(mf.forecast, _field(fc, "temperature_850", time=0, prediction_timedelta=1).values)
    np.testing.assert_array_equal(mf.truth, _field(truth, "temperature_850", time=4).values)


def test_valid_times_beyond_truth_are_left_out(tmp_path):
    truth = truth_dataset(n_times=10)
    fc = foreign_forecast(truth, [3, 6], n_leads=4)  # init index 6 + 4 leads runs past the truth's end (9)
    with pytest.warns(UserWarning, match="lacks valid time 2000-01-03T12"):
        res = evaluate_forecast(fc, truth, _opts(tmp_path, spectra_lead_hours=()))
    assert res.n_samples["model"].tolist() == [2, 2, 2, 1]
    w = cell_area_weights(truth.latitude.values)
    ref = _reference_scores(truth, fc, "geopotential_500", w)
    c = res.channels.index("geopotential_500")
    np.testing.assert_allclose(res.scores["model"]["rmse"][:, c], ref["model"]["rmse"], rtol=1e-6)


def test_ensemble_scores_match_brute_force(tmp_path):
    truth = truth_dataset(n_times=12, members=[0, 1, 2, 3, 4])
    fc = foreign_forecast(truth, [2, 6], n_leads=2, numbers=[0, 1, 2])
    res = evaluate_forecast(fc, truth, _opts(tmp_path, member_mode="ensemble", truth_members=[3, 4],
                                             spectra_lead_hours=()))
    assert res.meta["member_mode"] == "ensemble" and res.n_samples["model"].tolist() == [4, 4]
    w = cell_area_weights(truth.latitude.values)
    channel, c = "temperature_500", res.channels.index("temperature_500")
    t_times = list(truth.time.values)
    for k, lead in enumerate(fc.prediction_timedelta.values):
        rmse, spread, crps = [], [], []
        for n, init in enumerate(fc.time.values):
            x = _field(fc, channel, time=n, prediction_timedelta=k).values.astype(np.float64)  # [M, lat, lon]
            for member in (3, 4):
                y = _field(truth, channel, time=t_times.index(init + lead)).sel(member=member).values
                m = x.shape[0]
                rmse.append(np.sqrt(_wmean((x.mean(0) - y) ** 2, w)))
                var = sum((x[a] - x.mean(0)) ** 2 for a in range(m)) / (m - 1)
                spread.append(np.sqrt(_wmean(var, w)))
                skill = sum(np.abs(x[a] - y) for a in range(m)) / m
                pair = sum(np.abs(x[a] - x[b]) for a in range(m) for b in range(m)) / (2 * m * (m - 1))
                crps.append(_wmean(skill - pair, w))
        np.testing.assert_allclose(res.ensemble["ens_mean_rmse"][k, c], np.mean(rmse), rtol=1e-5)
        np.testing.assert_allclose(res.scores["model"]["rmse"][k, c], np.mean(rmse), rtol=1e-5)
        np.testing.assert_allclose(res.ensemble["spread"][k, c], np.mean(spread), rtol=1e-5)
        np.testing.assert_allclose(res.ensemble["spread_skill"][k, c], np.mean(spread) / np.mean(rmse), rtol=1e-5)
        np.testing.assert_allclose(res.ensemble["crps"][k, c], np.mean(crps), rtol=1e-5)


def test_paired_members_and_member_errors(tmp_path):
    truth = truth_dataset(n_times=12, members=[0, 1, 2])
    fc = foreign_forecast(truth, [2, 6], n_leads=2, numbers=[1, 2])
    res = evaluate_forecast(fc, truth, _opts(tmp_path, spectra_lead_hours=()))
    assert res.meta["member_mode"] == "paired" and res.n_samples["model"].tolist() == [4, 4]
    w = cell_area_weights(truth.latitude.values)
    c = res.channels.index("geopotential_850")
    t_times = list(truth.time.values)
    lead = fc.prediction_timedelta.values[1]
    vals = []
    for n, init in enumerate(fc.time.values):
        for j, member in enumerate((1, 2)):
            f = _field(fc, "geopotential_850", time=n, prediction_timedelta=1).values[j]
            o = _field(truth, "geopotential_850", time=t_times.index(init + lead)).sel(member=member).values
            vals.append(np.sqrt(_wmean((f.astype(np.float64) - o) ** 2, w)))
    np.testing.assert_allclose(res.scores["model"]["rmse"][1, c], np.mean(vals), rtol=1e-5)
    with pytest.raises(DataError, match="also forecast members"):
        evaluate_forecast(fc, truth, _opts(tmp_path, member_mode="ensemble", truth_members=[1]))
    with pytest.raises(DataError, match="member 7"):
        evaluate_forecast(fc, truth, _opts(tmp_path, truth_members=[7]))


def test_grid_and_channel_mismatch_are_clear_errors(tmp_path):
    truth = truth_dataset(n_times=8)
    fc = foreign_forecast(truth, [2], n_leads=2)
    other = truth_dataset(n_times=8, n_lat=6, n_lon=12)
    with pytest.raises(DataError, match="grids differ in latitude"):
        evaluate_forecast(fc, other, _opts(tmp_path))
    with pytest.raises(DataError, match="specific_humidity_500"):
        evaluate_forecast(fc, truth, _opts(tmp_path, channels=["specific_humidity_500"]))
    holey = fc.copy(deep=True)
    holey["temperature"][0, 1, 1, 2, 3] = np.nan  # init 2000-01-01T12, lead 12 h, 850 hPa
    with pytest.raises(DataError, match="NaN/inf in the forecast init 2000-01-01T12, lead 12 h") as err:
        evaluate_forecast(holey, truth, _opts(tmp_path))
    assert err.value.variable == "temperature_850" and err.value.time == "2000-01-02T00"


def test_cli_scores_a_foreign_store(stores, tmp_path):
    truth, fc, truth_path, fc_path = stores
    out = tmp_path / "eval"
    result = CliRunner().invoke(app, [
        "evaluate", "--forecast", str(fc_path), "--truth", str(truth_path), "--out", str(out),
        "--climatology-window-days", "none", "--cache-dir", str(tmp_path / "cache"), "--spectra-leads-hours", "12",
        "--spectra-levels", "500", "--spectra-lat-band", "30,90", "--channels", "geopotential_500,temperature_850",
        "--reference", "weatherbench", "--no-progress"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "RMSE model" in result.output and "z500" in result.output
    for name in ("scorecard.md", "scorecard.csv", "scorecard.json", "rmse_vs_lead.png", "acc_vs_lead.png",
                 "spectra.png", "map.png"):
        assert (out / name).is_file(), name
    assert (out / "rmse_vs_lead.png").read_bytes()[:4] == b"\x89PNG"
    doc = json.loads((out / "scorecard.json").read_text())
    rows = list(csv.DictReader((out / "scorecard.csv").open()))
    w = cell_area_weights(truth.latitude.values)
    ref = _reference_scores(truth, fc, "temperature_850", w)
    got = [float(r["rmse"]) for r in rows if r["system"] == "persistence" and r["channel"] == "temperature_850"]
    np.testing.assert_allclose(got, ref["persistence"]["rmse"], rtol=1e-5)
    c = doc["channels"].index("temperature_850")
    np.testing.assert_allclose([row[c] for row in doc["scores"]["persistence"]["rmse"]], ref["persistence"]["rmse"],
                               rtol=1e-5)
    assert all(r["acc"] == "" for r in rows if r["system"] == "climatology")
    assert len(rows) == 3 * len(doc["channels"]) * len(doc["lead_hours"])
    assert doc["meta"]["climatology"]["window_days"] is None
    # the climatology was cached and is reused
    assert len(list((tmp_path / "cache").glob("climatology-*.nc"))) == 1
    result = CliRunner().invoke(app, ["evaluate", "--forecast", str(fc_path), "--checkpoint", "x.pt"])
    assert result.exit_code == 2 and "exactly one" in result.output


def test_scorecard_rows_and_reference_table(stores, tmp_path):
    truth, fc, truth_path, fc_path = stores
    res = evaluate_forecast(fc_path, truth_path, _opts(tmp_path, spectra_lead_hours=()))
    rows = scorecard_rows(res)
    by = {(r["system"], r["channel"], r["lead_hours"], r["metric"]): r["value"] for r in rows}
    c = res.channels.index("geopotential_500")
    assert by[("climatology", "geopotential_500", 18.0, "rmse")] == res.scores["climatology"]["rmse"][2, c]
    assert not any(r["metric"] == "acc" and r["system"] == "climatology" for r in rows)
    paths = write_scorecard(res, tmp_path / "sc")
    assert "| z500 | 6 h |" in paths[0].read_text()
    assert headline_leads([24.0 * d for d in range(1, 11)]) == [24.0, 72.0, 120.0, 168.0, 240.0]
    curves = {(cv.system, cv.channel): cv for cv in load_reference_curves("weatherbench")}
    assert "Rasp et al. 2020" in curves[("Persistence", "geopotential_500")].label
    assert curves[("Operational IFS", "geopotential_500")].values == [154.0, 334.0]
    assert curves[("Persistence", "temperature_850")].lead_hours == [72.0, 120.0]
    bad = tmp_path / "bad.csv"
    bad.write_text("system,channel,lead_hours,metric,value,units\nX,z,abc,rmse,1,m\n")
    with pytest.raises(DataError, match="row 1"):
        load_reference_curves(bad)
