"""How much several runs (seeds, checkpoints) of the same method agree: a score in [0, 1].

Definition (also in docs/evaluation.md), for runs r_1..r_n (n >= 2) answering the same questions:

- agreement: for each pair of runs and each question both answered, the agreement of their two
  answers = 1 if they normalise to the same string (both empty included), else their token F1
  (:func:`edgeadapt.evaluation.metrics.token_f1`); averaged over questions, then over pairs.
- F1 consistency: ``1 - std(F1) / mean(F1)`` over the runs' F1 scores (population std), clipped to
  [0, 1]; 1 when every run scores the same (all zero included).
- stability = agreement * F1 consistency when F1 scores are given, else agreement alone.

Identical predictions give 1; runs that never share a token give 0.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from edgeadapt.evaluation.metrics import normalize_answer, token_f1


@dataclass(frozen=True)
class Stability:
    """The stability score and its parts; ``f1_consistency`` is None when no F1 scores were given."""

    score: float
    agreement: float
    f1_consistency: float | None
    runs: int
    questions: int

    def to_dict(self) -> dict:
        return asdict(self)


def answer_agreement(first: str, second: str, lang: str | None) -> float:
    """1.0 for answers equal after normalisation (two empty answers agree), else their token F1."""
    if normalize_answer(first, lang) == normalize_answer(second, lang):
        return 1.0
    return token_f1(first, second, lang)


def prediction_agreement(runs: Sequence[Mapping[str, str]], lang: str | None) -> tuple[float, int]:
    """Mean pairwise agreement of ``runs`` (each id -> answer) and the number of questions all runs answered."""
    if len(runs) < 2:
        raise ValueError("stability needs the predictions of at least two runs")
    shared = set(runs[0]).intersection(*runs[1:])
    if not shared:
        raise ValueError("the runs have no question in common")
    questions = sorted(shared)
    pair_means = [
        statistics.fmean(answer_agreement(a[q], b[q], lang) for q in questions)
        for a, b in itertools.combinations(runs, 2)
    ]
    return statistics.fmean(pair_means), len(questions)


def f1_consistency(f1_scores: Sequence[float]) -> float:
    """``1 - std/mean`` of the runs' F1 scores (population std), clipped to [0, 1]; 1 when all are equal."""
    if len(f1_scores) < 2:
        raise ValueError("F1 consistency needs the scores of at least two runs")
    spread = statistics.pstdev(f1_scores)
    if spread == 0:
        return 1.0
    mean = statistics.fmean(f1_scores)
    return min(1.0, max(0.0, 1.0 - spread / mean)) if mean > 0 else 0.0


def stability(
    runs: Sequence[Mapping[str, str]], lang: str | None, f1_scores: Sequence[float] | None = None
) -> Stability:
    """The stability of several runs' predictions on one dataset (see the module docstring)."""
    agreement, questions = prediction_agreement(runs, lang)
    consistency = None
    if f1_scores is not None:
        if len(f1_scores) != len(runs):
            raise ValueError(f"got {len(f1_scores)} F1 scores for {len(runs)} runs")
        consistency = f1_consistency(f1_scores)
    total = agreement if consistency is None else agreement * consistency
    return Stability(score=total, agreement=agreement, f1_consistency=consistency, runs=len(runs), questions=questions)
