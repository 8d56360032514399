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
