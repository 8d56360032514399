"""Time budgets (``--time-budget 45m``): parse a duration, and size a stage's steps from its measured speed.

The step count is fitted before the first step from a short calibration on real batches (training steps whose
updates are thrown away, plus one evaluation batch when the stage evaluates as it goes), then fitted once more
after :data:`REFIT_AFTER` steps from the time those steps really took (:func:`refit_steps`): a few timed steps
miss what the run meets later (other load on the machine, the mix of lengths; when the calibration timed each
shape's first step, which also prepares its kernels, it planned 3.5 s a step on a Xeon where the run took 2.6, and
8.4 where it took 4.4 on an AVX2-only EPYC). The final count is stored as the
stage's ``max_steps`` in its checkpoint and run.json, so the learning-rate schedule spans the budget and a
resumed run keeps the same schedule.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import MISSING, dataclass, fields
from pathlib import Path

from edgeadapt.errors import EdgeAdaptError

log = logging.getLogger(__name__)

BUDGET_FILE = "time_budget.json"
"""The fitted plan, written into the run directory before the first step so that --resume reports it too."""
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smh])")


def parse_duration(text: str) -> float:
    """Seconds in ``"45m"``, ``"3h"``, ``"1h30m"``, ``"90s"`` or a bare number of minutes (``"20"``)."""
    value = str(text).strip().lower()
    try:
        seconds = float(value) * 60.0
    except ValueError:
        parts = _PART.findall(value)
        if not parts or _PART.sub("", value).strip():
            raise EdgeAdaptError(
                f"--time-budget {text!r} is not a duration: write e.g. 45m, 3h, 1h30m or 90s"
            ) from None
        seconds = sum(float(number) * _UNITS[unit] for number, unit in parts)
    if seconds <= 0:
        raise EdgeAdaptError(f"--time-budget {text!r} must be above zero")
    return seconds


def format_duration(seconds: float) -> str:
    """``5400`` -> ``1h30m``; ``150`` -> ``2m30s``."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    out = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "") + (f"{secs}s" if secs else "")
    return out or "0s"


REFIT_AFTER = 64
"""Steps after which a budgeted run fits its step count again from its own speed: two groups of length-grouped
batches (``batches.GROUP_STEPS``), the second timed, by when every batch shape has been prepared once."""


def refits(total_steps: int) -> bool:
    """Whether a budgeted run of ``total_steps`` (not resumed) fits its count again after :data:`REFIT_AFTER`."""
    return REFIT_AFTER < total_steps


@dataclass(frozen=True)
class BudgetPlan:
    """Steps fitted to a budget, and the speeds they were fitted from.

    ``steps`` is the calibration's count (the warm-up's length derives from it); ``refit_steps``, once the run has
    timed its own steps, the count it trains (``refit_seconds_per_step`` the speed measured then)."""

    budget_seconds: float
    steps: int
    seconds_per_step: float
    evaluations: int
    seconds_per_evaluation: float
    refit_steps: int | None = None
    refit_seconds_per_step: float | None = None

    @property
    def final_steps(self) -> int:
        return self.steps if self.refit_steps is None else self.refit_steps

    def to_json(self) -> dict[str, float | int]:
        out: dict[str, float | int] = {
            "budget_seconds": self.budget_seconds,
            "steps": self.steps,
            "seconds_per_step": round(self.seconds_per_step, 4),
            "evaluations": self.evaluations,
            "seconds_per_evaluation": round(self.seconds_per_evaluation, 2),
        }
        if self.refit_steps is not None and self.refit_seconds_per_step is not None:
            out |= {"refit_steps": self.refit_steps, "refit_seconds_per_step": round(self.refit_seconds_per_step, 4)}
        return out


ENOUGH_SOURCE_STEPS = 300
"""Source steps (of 16 windows) below which the task stage is still climbing steeply (BENCHMARKS.md section 2:
TyDi en dev F1 36 after 134 steps, XQuAD en about 50 after 309)."""


def short_budget_hint(plan: BudgetPlan, wanted_steps: int = ENOUGH_SOURCE_STEPS) -> str | None:
    """A one-line warning when ``plan`` fits fewer than ``wanted_steps`` (after its refit, when it has one), naming
    the budget that would fit them on this machine; None when it fits enough."""
    steps = plan.final_steps
    if steps >= wanted_steps:
        return None
    per_step = plan.refit_seconds_per_step or plan.seconds_per_step
    evaluation_share = plan.evaluations * plan.seconds_per_evaluation / max(plan.steps, 1)
    needed = wanted_steps * (per_step + evaluation_share) / 0.97  # the 3 % reserve of fit_steps
    return (
        f"only {steps} steps fit in {format_duration(plan.budget_seconds)} on this CPU"
        f" ({per_step:.1f} s a step): the source stage will be weak; --time-budget"
        f" {format_duration(60 * math.ceil(needed / 60))} fits about {wanted_steps}"
    )


def read_budget_plan(run_dir: Path) -> BudgetPlan | None:
    """The plan a run fitted before it was interrupted (None when it has none)."""
    path = Path(run_dir) / BUDGET_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        values = {f.name: data[f.name] if f.default is MISSING else data.get(f.name, f.default)
                  for f in fields(BudgetPlan)}  # fmt: skip
        return BudgetPlan(**values)
    except (OSError, ValueError, KeyError, TypeError):
        log.warning("%s is unreadable; the run's time budget plan is not reported", path)
        return None


def fit_steps(
    budget: float,
    seconds_per_step: float,
    *,
    seconds_per_evaluation: float = 0.0,
    evaluations_for: Callable[[int], int] = lambda steps: 0,
    reserve: float = 0.03,
) -> BudgetPlan:
    """The largest step count whose training plus evaluations fit ``budget`` seconds (less a small reserve for
    saving the run)."""
    usable = budget * (1.0 - reserve)
    steps = max(1, int(usable / seconds_per_step))
    while steps > 1 and steps * seconds_per_step + evaluations_for(steps) * seconds_per_evaluation > usable:
        overshoot = steps * seconds_per_step + evaluations_for(steps) * seconds_per_evaluation - usable
        steps = max(1, steps - max(1, int(overshoot / seconds_per_step)))
    return BudgetPlan(budget, steps, seconds_per_step, evaluations_for(steps), seconds_per_evaluation)


def refit_steps(
    plan: BudgetPlan,
    done: int,
    elapsed: float,
    seconds_per_step: float,
    evaluations_after: Callable[[int, int], int],
    reserve: float = 0.03,
) -> int:
    """The step count that spends what is left of ``plan``'s budget, ``done`` steps and ``elapsed`` seconds into
    the run, at the measured ``seconds_per_step``; ``evaluations_after(total, done)`` counts a ``total``-step run's
    evaluations still to come. Never below ``done + 1``."""
    left = plan.budget_seconds * (1.0 - reserve) - elapsed
    per_eval = plan.seconds_per_evaluation

    def cost(total: int) -> float:
        return (total - done) * seconds_per_step + evaluations_after(total, done) * per_eval

    total = done + max(1, int(left / seconds_per_step))
    while total > done + 1 and cost(total) > left:
        total = max(done + 1, total - max(1, int((cost(total) - left) / seconds_per_step)))
    return total


def time_call(function: Callable[[], object], repeats: int) -> float:
    """The mean of ``repeats`` timed calls of ``function`` after one untimed warm-up call (a mean, not the fastest:
    batches differ in length, and the budget is spent on all of them)."""
    function()
    began = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - began) / repeats
