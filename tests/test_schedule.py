"""Tests for weathergnn.training.schedule: analytic values at given steps."""

from __future__ import annotations

import math

import pytest
import torch

from weathergnn.training.schedule import RolloutCurriculum, warmup_cosine, warmup_cosine_factor


def _lrs(sched, opt, n: int) -> list[float]:
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_warmup_cosine_analytic() -> None:
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1e-3)
    sched = warmup_cosine(opt, warmup_steps=4, total_steps=12, min_lr_ratio=0.1)
    lrs = _lrs(sched, opt, 15)
    peak = 1e-3
    for s in range(4):
        assert lrs[s] == pytest.approx(peak * s / 4)
    for s in range(4, 13):
        expected = peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (s - 4) / 8)))
        assert lrs[s] == pytest.approx(expected)
    assert lrs[4] == pytest.approx(peak)
    assert lrs[8] == pytest.approx(peak * 0.55)  # half-way: (1 + 0.1) / 2
    assert lrs[12] == pytest.approx(peak * 0.1)
    assert lrs[13] == lrs[14] == pytest.approx(peak * 0.1)


def test_warmup_start_ratio_and_no_warmup() -> None:
    assert warmup_cosine_factor(0, 10, 100, 0.0, warmup_start_ratio=0.01) == pytest.approx(0.01)
    assert warmup_cosine_factor(5, 10, 100, 0.0, warmup_start_ratio=0.01) == pytest.approx(0.01 + 0.99 * 0.5)
    assert warmup_cosine_factor(0, 0, 10) == pytest.approx(1.0)
    assert warmup_cosine_factor(10, 0, 10) == pytest.approx(0.0, abs=1e-15)


def test_scheduler_resume_from_state_dict() -> None:
    def make():
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=1.0)
        return opt, warmup_cosine(opt, 3, 20, 0.0)

    opt, sched = make()
    _lrs(sched, opt, 7)
    opt2, sched2 = make()
    sched2.load_state_dict(sched.state_dict())
    assert sched2.get_last_lr() == sched.get_last_lr()
    assert sched2.get_last_lr()[0] == pytest.approx(warmup_cosine_factor(7, 3, 20))


@pytest.mark.parametrize(
    "args",
    [(-1, 10, 0.0), (10, 10, 0.0), (1, 10, -0.1), (1, 10, 1.5)],
)
def test_warmup_cosine_errors(args) -> None:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(ValueError):
        warmup_cosine(opt, *args)


def test_curriculum_milestones() -> None:
    c = RolloutCurriculum([(0, 1), (100, 2), (150, 4)])
    assert [c.rollout_at(s) for s in (0, 99, 100, 149, 150, 10**9)] == [1, 1, 2, 2, 4, 4]
    assert c.max_rollout == 4
    with pytest.raises(ValueError):
        c.rollout_at(-1)


@pytest.mark.parametrize(
    "milestones",
    [[], [(5, 1)], [(0, 1), (10, 2), (10, 3)], [(0, 0)], [(0, 1), (5, 2), (3, 3)]],
)
def test_curriculum_invalid(milestones) -> None:
    with pytest.raises(ValueError):
        RolloutCurriculum(milestones)


def test_curriculum_from_ramp() -> None:
    c = RolloutCurriculum.from_ramp(1, 4, 300)
    assert c.milestones == [(0, 1), (100, 2), (200, 3), (300, 4)]
    c = RolloutCurriculum.from_ramp(2, 4, 10, start_step=50)
    assert [c.rollout_at(s) for s in (0, 54, 55, 59, 60, 1000)] == [2, 2, 3, 3, 4, 4]
    assert RolloutCurriculum.from_ramp(3, 3, 0).milestones == [(0, 3)]
    with pytest.raises(ValueError):
        RolloutCurriculum.from_ramp(4, 1, 10)


def test_curriculum_graphcast_phases() -> None:
    c = RolloutCurriculum.from_phases(1, 12, start_step=300_000, steps_per_length=1_000)
    assert c.rollout_at(299_999) == 1
    assert c.rollout_at(300_000) == 2
    assert c.rollout_at(300_999) == 2
    assert c.rollout_at(301_000) == 3
    assert c.rollout_at(309_999) == 11
    assert c.rollout_at(310_000) == 12
    assert c.max_rollout == 12


def test_curriculum_from_config() -> None:
    assert RolloutCurriculum.from_config(3).milestones == [(0, 3)]
    assert RolloutCurriculum.from_config([[0, 1], [10, 2]]).milestones == [(0, 1), (10, 2)]
    assert RolloutCurriculum.from_config({"milestones": [[0, 1], [5, 3]]}).rollout_at(6) == 3
    assert RolloutCurriculum.from_config({"start": 1, "end": 3, "ramp_steps": 20}).milestones == [
        (0, 1),
        (10, 2),
        (20, 3),
    ]
    c = RolloutCurriculum.from_config({"start": 1, "end": 3, "start_step": 100, "steps_per_length": 5})
    assert c.milestones == [(0, 1), (100, 2), (105, 3)]
    with pytest.raises(ValueError, match="keys"):
        RolloutCurriculum.from_config({"begin": 1})
    with pytest.raises(ValueError):
        RolloutCurriculum.from_config("1..12")
