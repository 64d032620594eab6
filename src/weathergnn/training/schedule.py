"""Learning-rate schedule (linear warm-up + cosine decay) and rollout curriculum.

GraphCast (Lam et al. 2023, supplement 4.6): LR rises linearly from 0 to
1e-3 over the first 1,000 steps, then follows a half-cosine decay to 0 over
~299,000 steps; then the autoregressive rollout length grows from 1 to 12
steps (6 h to 3 days), one more step every 1,000 training steps
(``RolloutCurriculum.from_phases(1, 12, start_step=300_000, steps_per_length=1_000)``).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch.optim.lr_scheduler import LambdaLR

__all__ = ["warmup_cosine_factor", "warmup_cosine", "RolloutCurriculum"]


def warmup_cosine_factor(
    step: int,
    warmup_steps: int,
    total_steps: int,
    min_lr_ratio: float = 0.0,
    warmup_start_ratio: float = 0.0,
) -> float:
    """LR multiplier at optimizer step ``step`` (0-based), peak = 1.

    - ``step < warmup_steps``: linear from ``warmup_start_ratio`` (at step 0)
      towards 1: ``r0 + (1 - r0) * step / warmup_steps``.
    - ``warmup_steps <= step <= total_steps``: cosine from 1 to ``min_lr_ratio``:
      ``m + (1 - m) * 0.5 * (1 + cos(pi * (step - warmup_steps) / (total_steps - warmup_steps)))``.
    - ``step > total_steps``: ``min_lr_ratio``.

    With the default ``warmup_start_ratio = 0`` the first step has LR 0, as
    GraphCast / ``optax.linear_schedule(0, peak, ...)``; pass e.g. 1e-3 to
    avoid that step.

    Raises:
        ValueError: ``warmup_steps < 0``, ``total_steps <= warmup_steps``, or a
            ratio outside [0, 1].
    """
    if warmup_steps < 0:
        raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
    if total_steps <= warmup_steps:
        raise ValueError(f"total_steps ({total_steps}) must exceed warmup_steps ({warmup_steps})")
    if not 0.0 <= min_lr_ratio <= 1.0:
        raise ValueError(f"min_lr_ratio must be in [0, 1], got {min_lr_ratio}")
    if not 0.0 <= warmup_start_ratio <= 1.0:
        raise ValueError(f"warmup_start_ratio must be in [0, 1], got {warmup_start_ratio}")
    if step < warmup_steps:
        return warmup_start_ratio + (1.0 - warmup_start_ratio) * step / warmup_steps
    progress = min(1.0, (step - warmup_steps) / (total_steps - warmup_steps))
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def warmup_cosine(
    optimizer: torch.optim.Optimizer,
    warmup_steps: int,
    total_steps: int,
    min_lr_ratio: float = 0.0,
    *,
    warmup_start_ratio: float = 0.0,
    last_epoch: int = -1,
) -> LambdaLR:
    """``LambdaLR`` with :func:`warmup_cosine_factor`; the peak LR is each param group's ``lr``.

    Call ``scheduler.step()`` once per optimizer step; LR at scheduler step
    ``s`` is ``peak * warmup_cosine_factor(s, ...)``. Its ``state_dict`` holds
    only the step count, so resuming from a checkpoint works.

    Raises:
        ValueError: see :func:`warmup_cosine_factor`.
    """
    warmup_cosine_factor(0, warmup_steps, total_steps, min_lr_ratio, warmup_start_ratio)  # validate now

    def factor(step: int) -> float:
        return warmup_cosine_factor(step, warmup_steps, total_steps, min_lr_ratio, warmup_start_ratio)

    return LambdaLR(optimizer, factor, last_epoch=last_epoch)


class RolloutCurriculum:
    """Autoregressive rollout length as a step function of the training step.

    Args:
        milestones: ``[(step, rollout_len), ...]`` with strictly increasing
            steps, the first at step 0, lengths >= 1. ``rollout_at(s)`` is the
            length of the last milestone with ``step <= s``.

    Raises:
        ValueError: empty, unsorted, first step not 0, or a length < 1.
    """

    def __init__(self, milestones: Sequence[tuple[int, int]]) -> None:
        ms = [(int(s), int(n)) for s, n in milestones]
        if not ms:
            raise ValueError("RolloutCurriculum needs at least one milestone")
        if ms[0][0] != 0:
            raise ValueError(f"the first milestone must be at step 0, got {ms[0]}")
        for (s0, _), (s1, _) in zip(ms, ms[1:]):
            if s1 <= s0:
                raise ValueError(f"milestone steps must increase strictly: {s0} then {s1}")
        bad = [m for m in ms if m[1] < 1]
        if bad:
            raise ValueError(f"rollout lengths must be >= 1: {bad}")
        self.milestones: list[tuple[int, int]] = ms
        self._steps = [s for s, _ in ms]

    def rollout_at(self, step: int) -> int:
        """Rollout length (number of autoregressive steps) at training step ``step`` (>= 0)."""
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        return self.milestones[bisect.bisect_right(self._steps, step) - 1][1]

    @property
    def max_rollout(self) -> int:
        """Longest rollout length of the curriculum."""
        return max(n for _, n in self.milestones)

    @classmethod
    def constant(cls, rollout_len: int) -> RolloutCurriculum:
        return cls([(0, rollout_len)])

    @classmethod
    def from_ramp(cls, start_len: int, end_len: int, ramp_steps: int, start_step: int = 0) -> RolloutCurriculum:
        """Grow linearly from ``start_len`` (at ``start_step``) to ``end_len`` (at ``start_step + ramp_steps``).

        Length ``start_len + i`` starts at ``start_step + round(i * ramp_steps / (end_len - start_len))``
        for ``i = 1 .. end_len - start_len``. Example: ``from_ramp(1, 4, 300)`` ->
        1 on [0, 100), 2 on [100, 200), 3 on [200, 300), 4 from 300.

        Raises:
            ValueError: ``end_len < start_len``, ``ramp_steps`` too small for
                one step per length, or ``start_step < 0``.
        """
        n = end_len - start_len
        if n < 0:
            raise ValueError(f"end_len ({end_len}) < start_len ({start_len})")
        if start_step < 0:
            raise ValueError(f"start_step must be >= 0, got {start_step}")
        if n == 0:
            return cls.constant(start_len)
        if ramp_steps < n:
            raise ValueError(f"ramp_steps ({ramp_steps}) must be >= end_len - start_len ({n})")
        ms = [(0, start_len)]
        ms += [(start_step + round(i * ramp_steps / n), start_len + i) for i in range(1, n + 1)]
        return cls(ms)

    @classmethod
    def from_phases(cls, start_len: int, end_len: int, start_step: int, steps_per_length: int) -> RolloutCurriculum:
        """``start_len`` before ``start_step``; then ``start_len + 1 + i`` from
        ``start_step + i * steps_per_length`` (GraphCast: ``(1, 12, 300_000, 1_000)``
        gives 2 at step 300,000 and 12 from step 310,000).

        Raises:
            ValueError: ``end_len < start_len``, ``steps_per_length < 1`` or ``start_step < 1``
                when the ramp is not empty.
        """
        n = end_len - start_len
        if n < 0:
            raise ValueError(f"end_len ({end_len}) < start_len ({start_len})")
        if n == 0:
            return cls.constant(start_len)
        if steps_per_length < 1 or start_step < 1:
            raise ValueError("from_phases needs steps_per_length >= 1 and start_step >= 1")
        return cls([(0, start_len)] + [(start_step + i * steps_per_length, start_len + 1 + i) for i in range(n)])

    @classmethod
    def from_config(cls, cfg: int | Mapping[str, Any] | Sequence[Sequence[int]]) -> RolloutCurriculum:
        """Build from a config value.

        Accepted forms: an int (constant length); a list of ``[step, length]``
        pairs; a mapping with ``milestones``; a mapping with ``start``, ``end``,
        ``ramp_steps`` and optional ``start_step`` (:meth:`from_ramp`); a mapping
        with ``start``, ``end``, ``start_step``, ``steps_per_length``
        (:meth:`from_phases`).

        Raises:
            ValueError: unrecognised form (message shows it).
        """
        if isinstance(cfg, bool):
            raise ValueError(f"invalid rollout curriculum config: {cfg!r}")
        if isinstance(cfg, int):
            return cls.constant(cfg)
        if isinstance(cfg, Mapping):
            keys = set(cfg)
            if keys == {"milestones"}:
                return cls([tuple(m) for m in cfg["milestones"]])  # type: ignore[misc]
            if keys in ({"start", "end", "ramp_steps"}, {"start", "end", "ramp_steps", "start_step"}):
                return cls.from_ramp(cfg["start"], cfg["end"], cfg["ramp_steps"], cfg.get("start_step", 0))
            if keys == {"start", "end", "start_step", "steps_per_length"}:
                return cls.from_phases(cfg["start"], cfg["end"], cfg["start_step"], cfg["steps_per_length"])
            raise ValueError(f"invalid rollout curriculum config keys {sorted(keys)}")
        if isinstance(cfg, Sequence) and not isinstance(cfg, str):
            return cls([tuple(m) for m in cfg])  # type: ignore[misc]
        raise ValueError(f"invalid rollout curriculum config: {cfg!r}")

    def __repr__(self) -> str:
        return f"RolloutCurriculum({self.milestones!r})"
