"""Repeated timings: warm-up, then the median (p50) and 95th percentile (p95) of many calls, in milliseconds."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Timing:
    """Percentiles of ``runs`` wall-clock measurements (milliseconds) taken after ``warmup`` unmeasured calls."""

    p50: float
    p95: float
    mean: float
    min: float
    max: float
    runs: int
    warmup: int

    def to_dict(self) -> dict[str, float | int]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def summarize(samples_ms: list[float], warmup: int = 0) -> Timing:
    """p50 / p95 (linear interpolation), mean, min, max of samples in milliseconds."""
    if not samples_ms:
        raise ValueError("no timing samples")
    values = np.asarray(samples_ms, dtype=np.float64)
    return Timing(
        p50=float(np.percentile(values, 50)),
        p95=float(np.percentile(values, 95)),
        mean=float(values.mean()),
        min=float(values.min()),
        max=float(values.max()),
        runs=len(samples_ms),
        warmup=warmup,
    )


def time_calls(call: Callable[[], object], repeats: int, warmup: int = 5) -> Timing:
    """Call ``call`` ``warmup`` times unmeasured, then ``repeats`` times, each timed with ``perf_counter``."""
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(repeats):
        began = time.perf_counter()
        call()
        samples.append((time.perf_counter() - began) * 1000.0)
    return summarize(samples, warmup)


def time_interleaved(
    calls: dict[str, Callable[[], object]], repeats: int, warmup: int = 5, block: int = 10
) -> dict[str, Timing]:
    """Time several calls in turns, so that a change of machine load hits all of them alike.

    Each call is warmed up ``warmup`` times; then, round after round (starting from a different call each round),
    each call runs once unmeasured (threads left spinning by the previous call settle) and ``block`` times
    measured, until each has ``repeats`` measurements. Ratios between the results are measured under the same
    conditions.
    """
    if repeats < 1 or block < 1:
        raise ValueError("repeats and block must be at least 1")
    names = list(calls)
    for name in names:
        for _ in range(warmup):
            calls[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    round_index = 0
    while len(samples[names[0]]) < repeats:
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            calls[name]()
            for _ in range(min(block, repeats - len(samples[name]))):
                began = time.perf_counter()
                calls[name]()
                samples[name].append((time.perf_counter() - began) * 1000.0)
        round_index += 1
    return {name: summarize(values, warmup) for name, values in samples.items()}
