"""Tests for weathergnn.training.tracking.MetricsLogger."""

from __future__ import annotations

import csv
import json
import sys
import types

import numpy as np
import pytest
import torch

from weathergnn.training.tracking import MetricsLogger


def test_jsonl_and_csv(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # not installed
    with MetricsLogger(tmp_path / "run", use_tensorboard=False) as log:
        assert not log.mlflow_enabled and not log.tensorboard_enabled
        log.log(1, loss=0.5, lr=torch.tensor(1e-3))
        log.log(2, loss=np.float32(0.25), val_rmse_z500=float("nan"))
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    recs = [json.loads(x) for x in lines]
    assert [r["step"] for r in recs] == [1, 2]
    assert recs[0]["loss"] == 0.5 and recs[0]["lr"] == pytest.approx(1e-3)
    assert recs[1]["loss"] == 0.25 and recs[1]["val_rmse_z500"] == "nan"
    with (tmp_path / "run" / "metrics.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["step"], r["name"]) for r in rows] == [("1", "loss"), ("1", "lr"), ("2", "loss"), ("2", "val_rmse_z500")]
    assert float(rows[0]["value"]) == 0.5
    assert float(rows[1]["value"]) == pytest.approx(1e-3)
    assert np.isnan(float(rows[3]["value"]))


def test_resume_appends_single_header(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)
    for step in (1, 2):
        with MetricsLogger(tmp_path, use_tensorboard=False) as log:
            log.log(step, loss=float(step))
    text = (tmp_path / "metrics.csv").read_text().splitlines()
    assert text[0] == "step,name,value,time"
    assert sum(line.startswith("step,") for line in text) == 1
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 2


def test_errors(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)
    log = MetricsLogger(tmp_path, use_tensorboard=False)
    with pytest.raises(TypeError, match="'bad'"):
        log.log(0, bad="x")
    with pytest.raises(TypeError, match="'vec'"):
        log.log(0, vec=torch.ones(3))
    log.close()
    log.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        log.log(1, loss=1.0)
    with pytest.raises(ImportError, match="mlflow"):
        MetricsLogger(tmp_path / "x", use_tensorboard=False, use_mlflow=True)


def test_tensorboard_event_file(tmp_path, monkeypatch) -> None:
    pytest.importorskip("tensorboard")
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with MetricsLogger(tmp_path, use_tensorboard=True) as log:
        assert log.tensorboard_enabled
        for s in range(3):
            log.log(s, loss=1.0 / (s + 1))
    events = list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert len(events) == 1 and events[0].stat().st_size > 0
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tmp_path / "tensorboard"))
    acc.Reload()
    scalars = acc.Scalars("loss")
    assert [e.step for e in scalars] == [0, 1, 2]
    assert [e.value for e in scalars] == pytest.approx([1.0, 0.5, 1 / 3])


def _fake_mlflow(active: bool):
    calls: list = []
    m = types.ModuleType("mlflow")
    state = {"run": object() if active else None}
    m.active_run = lambda: state["run"]

    def start_run(run_name=None):
        calls.append(("start", run_name))
        state["run"] = object()

    def end_run():
        calls.append(("end",))
        state["run"] = None

    m.start_run = start_run
    m.end_run = end_run
    m.log_metrics = lambda metrics, step=None: calls.append(("metrics", metrics, step))
    m.log_params = lambda params: calls.append(("params", params))
    return m, calls


def test_mlflow_starts_and_ends_own_run(tmp_path, monkeypatch) -> None:
    m, calls = _fake_mlflow(active=False)
    monkeypatch.setitem(sys.modules, "mlflow", m)
    with MetricsLogger(tmp_path, use_tensorboard=False, run_name="r1") as log:
        assert log.mlflow_enabled
        log.log(5, loss=2.0)
        log.log_params({"lr": 1e-3})
    assert calls == [("start", "r1"), ("metrics", {"loss": 2.0}, 5), ("params", {"lr": "0.001"}), ("end",)]
    assert json.loads((tmp_path / "params.json").read_text()) == {"lr": 1e-3}


def test_mlflow_keeps_existing_run(tmp_path, monkeypatch) -> None:
    m, calls = _fake_mlflow(active=True)
    monkeypatch.setitem(sys.modules, "mlflow", m)
    with MetricsLogger(tmp_path, use_tensorboard=False) as log:
        log.log(1, loss=1.0)
    assert calls == [("metrics", {"loss": 1.0}, 1)]  # no start, no end
