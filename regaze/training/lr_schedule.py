"""The learning-rate schedule of a training run (config `lr_schedule`, `lr_final`): pure functions of where the
run stands in its budget, so the loop, its tests and the benchmarks read the same numbers.

Progress p in [0, 1] is the larger of the step fraction and the time fraction of the budget:

    p = clip(max(step / max_steps, trained_s / (60 * max_minutes)), 0, 1)     (the time term only when max_minutes > 0)

and the factor on lr_g and lr_d is

    constant:  f(p) = 1
    cosine:    f(p) = final + (1 - final) * (1 + cos(pi * p)) / 2               (1 at the start, `final` at the end)

A time budget is what the CPU recipes stop on (`max_minutes`), so the cosine reaches its end when the budget
does, whatever the machine's step rate. trained_s counts over resumes (checkpoints store it).
"""
from __future__ import annotations

import math

from regaze.errors import RegazeError

__all__ = ["LR_SCHEDULES", "budget_progress", "lr_factor"]

LR_SCHEDULES = ("constant", "cosine")


def budget_progress(*, step: int, max_steps: int, trained_s: float, max_minutes: float) -> float:
    """The fraction of the run's budget spent: the larger of steps and minutes (minutes only when set)."""
    by_time = trained_s / (60.0 * max_minutes) if max_minutes > 0 else 0.0
    return min(1.0, max(0.0, step / max_steps, by_time))


def lr_factor(*, schedule: str, progress: float, final: float) -> float:
    """The multiplier of the base learning rates at `progress` in [0, 1] (module docstring)."""
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, max(0.0, progress))))
    raise RegazeError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}; got {schedule!r}")
