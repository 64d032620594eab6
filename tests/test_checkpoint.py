"""Tests for weathergnn.training.checkpoint: round trip, RNG, atomicity, errors."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from weathergnn.training import checkpoint as ckmod
from weathergnn.training.checkpoint import (
    CHECKPOINT_FORMAT_VERSION,
    CheckpointError,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from weathergnn.training.schedule import warmup_cosine


def _setup(seed: int = 0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.SiLU(), torch.nn.Linear(8, 2))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    sched = warmup_cosine(opt, 2, 10, 0.1)
    return model, opt, sched


def _train(model, opt, sched, n: int = 3) -> None:
    for _ in range(n):
        loss = model(torch.randn(5, 4)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()


def _save(path, model, opt, sched, **kw):
    args = dict(
        model=model,
        optimizer=opt,
        scheduler=sched,
        step=3,
        epoch=1,
        config={"model": {"latent": 8}, "lr": 1e-2, "levels": [500, 850]},
        norm_stats={"channels": ["t_850"], "mean": np.array([280.0]), "std": np.float64(5.5)},
        graph_hash="abc123",
        extra={"best": 0.5},
    )
    args.update(kw)
    return save_checkpoint(path, **args)


def _state_equal(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_state_equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_state_equal(x, y) for x, y in zip(a, b))
    return a == b


def test_round_trip(tmp_path) -> None:
    model, opt, sched = _setup()
    _train(model, opt, sched)
    path = _save(tmp_path / "ckpt" / "last.pt", model, opt, sched)
    ck = load_checkpoint(path)
    assert ck["format_version"] == CHECKPOINT_FORMAT_VERSION
    assert (ck["step"], ck["epoch"], ck["graph_hash"]) == (3, 1, "abc123")
    assert ck["config"] == {"model": {"latent": 8}, "lr": 1e-2, "levels": [500, 850]}
    assert ck["extra"] == {"best": 0.5}
    ns = ck["norm_stats"]
    assert isinstance(ns["mean"], np.ndarray) and ns["mean"].dtype == np.float64
    np.testing.assert_array_equal(ns["mean"], [280.0])
    assert ns["std"] == 5.5 and isinstance(ns["std"], np.float64)

    model2, opt2, sched2 = _setup(seed=1)
    model2.load_state_dict(ck["model"])
    opt2.load_state_dict(ck["optimizer"])
    sched2.load_state_dict(ck["scheduler"])
    assert _state_equal(model.state_dict(), model2.state_dict())
    assert _state_equal(opt.state_dict(), opt2.state_dict())
    assert sched.state_dict()["last_epoch"] == sched2.state_dict()["last_epoch"]
    assert sched2.get_last_lr() == sched.get_last_lr()
    # training continues identically
    torch.manual_seed(5)
    _train(model, opt, sched, 2)
    torch.manual_seed(5)
    _train(model2, opt2, sched2, 2)
    assert _state_equal(model.state_dict(), model2.state_dict())


def test_rng_restore(tmp_path) -> None:
    model, opt, sched = _setup()
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    random.random(), np.random.normal(), torch.randn(1)  # advance, incl. numpy's cached gaussian
    path = _save(tmp_path / "c.pt", model, opt, sched)
    expected = (random.random(), np.random.normal(size=3), np.random.rand(), torch.randn(4))
    random.seed(99), np.random.seed(99), torch.manual_seed(99)
    restore_rng_state(load_checkpoint(path)["rng"])
    got = (random.random(), np.random.normal(size=3), np.random.rand(), torch.randn(4))
    assert got[0] == expected[0]
    np.testing.assert_array_equal(got[1], expected[1])
    assert got[2] == expected[2]
    assert torch.equal(got[3], expected[3])


def test_unwraps_compiled_prefix(tmp_path) -> None:
    model, opt, sched = _setup()

    class Wrapper(torch.nn.Module):  # mimics torch.compile's OptimizedModule
        def __init__(self, m):
            super().__init__()
            self._orig_mod = m

    path = _save(tmp_path / "c.pt", Wrapper(model), None, None)
    ck = load_checkpoint(path)
    assert set(ck["model"]) == set(model.state_dict())
    assert ck["optimizer"] is None and ck["scheduler"] is None


def test_atomic_on_failure(tmp_path, monkeypatch) -> None:
    model, opt, sched = _setup()
    path = _save(tmp_path / "last.pt", model, opt, sched, step=1)
    old_bytes = path.read_bytes()

    def failing_save(obj, f, *a, **kw):
        f.write(b"PK\x03\x04 partial garbage")
        f.flush()
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match="simulated"):
        _save(path, model, opt, sched, step=2)
    assert path.read_bytes() == old_bytes
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temp file left
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1

    # KeyboardInterrupt during the write: same guarantee
    def interrupted_save(obj, f, *a, **kw):
        f.write(b"xx")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", interrupted_save)
    with pytest.raises(KeyboardInterrupt):
        _save(path, model, opt, sched, step=3)
    assert path.read_bytes() == old_bytes
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_missing_file(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_checkpoint(tmp_path / "nope.pt")


def test_corrupt_and_truncated_files(tmp_path) -> None:
    bad = tmp_path / "garbage.pt"
    bad.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="garbage.pt"):
        load_checkpoint(bad)
    model, opt, sched = _setup()
    good = _save(tmp_path / "good.pt", model, opt, sched)
    trunc = tmp_path / "truncated.pt"
    trunc.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated.pt"):
        load_checkpoint(trunc)


def test_wrong_format(tmp_path) -> None:
    other = tmp_path / "plain_state_dict.pt"
    torch.save({"weight": torch.zeros(2)}, other)
    with pytest.raises(CheckpointError, match="plain_state_dict.pt.*not a WeatherGNN checkpoint"):
        load_checkpoint(other)
    newer = tmp_path / "newer.pt"
    torch.save({"format": ckmod.CHECKPOINT_FORMAT, "format_version": 99}, newer)
    with pytest.raises(CheckpointError, match="newer.pt.*format_version 99"):
        load_checkpoint(newer)
